// Observed symptoms: what the user saw in production, in a form the diagnosis can compare with
// the twin's telemetry (docs/diagnosis.md).
//
// Two inputs: a metrics CSV in the wide `time,<service>_<metric>` layout (Doppel's own
// metrics.csv, or an RCA dataset's such as RCAEval/RCD, whose column names are translated by a
// column mapping), or a small JSON symptom spec ("p99 of checkout above 2000 ms from t=300").
#pragma once

#include <filesystem>
#include <istream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace doppel::experiments {

struct SeriesPoint {
  double t_s = 0.0;  // seconds since the start of the run (see ReadMetricsOptions)
  double value = 0.0;

  bool operator==(const SeriesPoint&) const = default;
};

using TimeSeries = std::vector<SeriesPoint>;  // ascending t_s, finite values only

// Metric name ("checkout_lat_99", Doppel's column naming) -> its series. A std::map so every
// output that walks it is in name order.
using MetricSeries = std::map<std::string, TimeSeries, std::less<>>;

// How the columns of a foreign CSV become Doppel metrics. One rule per metric kind: a regular
// expression (ECMAScript, whole-name match) whose first capture group is the service, the
// Doppel metric suffix it maps to, and a factor applied to every value (seconds -> ms: 1000).
struct ColumnRule {
  std::string pattern;
  std::string metric;  // "lat_99": the column becomes "<service>_lat_99"
  double scale = 1.0;

  bool operator==(const ColumnRule&) const = default;
};

struct ColumnMapping {
  std::string time_column = "time";
  double time_scale = 1.0;  // multiplies time values into seconds (ms timestamps: 0.001)
  // First matching rule wins; a column no rule matches is kept under its own name, so
  // Doppel's own metrics.csv needs no rules at all.
  std::vector<ColumnRule> rules;
  // Service names as the CSV spells them -> as the topology does ("cartsdb" -> "carts-db").
  std::map<std::string, std::string, std::less<>> service_aliases;
  // Columns no rule matched are dropped instead of kept.
  bool drop_unmatched = false;

  // The mapping for RCAEval/RCD metrics.csv columns: <svc>_cpu, _mem, _lat_50/90/99, _lod
  // (load: requests per second) and _err, values kept as they are.
  static ColumnMapping rca_default();
  // Doppel's own metrics.csv: every column under its own name.
  static ColumnMapping identity();
};

// Reads a column mapping file (format "doppel-column-mapping/v1", docs/diagnosis.md).
// Errors are InputError with the file and JSON pointer.
ColumnMapping load_column_mapping(const std::filesystem::path& file);
ColumnMapping parse_column_mapping(std::string_view json_text, const std::string& file_label);

struct ReadMetricsOptions {
  ColumnMapping mapping = ColumnMapping::identity();
  // The CSV time that is t = 0. Absent: one row interval before the first row, because
  // Doppel stamps each row with its window's end (the first row of a 1 s window reads t = 1).
  std::optional<double> time_origin_s;
};

struct ObservedMetrics {
  MetricSeries series;
  std::vector<std::string> unmapped_columns;  // dropped by drop_unmatched, in file order
  double row_interval_s = 0.0;                // median spacing of the rows; 0 with < 2 rows
};

// Reads a wide metrics CSV. Empty cells, "NaN", "nan" and "null" are missing values (the
// point is skipped, not zero). Throws InputError "FILE: line N: ..." for a missing time
// column, a row of the wrong width, a non-number, or time going backwards.
ObservedMetrics read_metrics_csv(const std::filesystem::path& file,
                                 const ReadMetricsOptions& options = {});
ObservedMetrics read_metrics_csv(std::istream& in, const std::string& file_label,
                                 const ReadMetricsOptions& options = {});

// One symptom of a symptom spec: `metric` of `service` is `op` `value` from `from_s` on
// (until `until_s` when given).
struct Symptom {
  enum class Op { greater, greater_equal, less, less_equal };
  std::string service;
  std::string metric;  // Doppel suffix: "lat_99", "err", "rps"...
  Op op = Op::greater;
  double value = 0.0;
  double from_s = 0.0;
  std::optional<double> until_s;

  std::string metric_name() const { return service + "_" + metric; }
  bool holds(double observed) const;
  std::string describe() const;  // "checkout_lat_99 > 2000 from t=300 s"

  bool operator==(const Symptom&) const = default;
};

struct SymptomSpec {
  std::vector<Symptom> symptoms;
};

// Reads {"symptoms":[{"service":..,"metric":..,"op":">","value":..,"from_s":..}]}; op is one
// of > >= < <=. Errors are InputError with the file and JSON pointer.
SymptomSpec load_symptom_spec(const std::filesystem::path& file);
SymptomSpec parse_symptom_spec(std::string_view json_text, const std::string& file_label);

std::string_view to_string(Symptom::Op op);

}  // namespace doppel::experiments
