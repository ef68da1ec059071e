// The files of a labelled RCA dataset case (docs/datasets.md) beyond metrics.csv: what the
// public root-cause-analysis benchmarks ship (traces.csv, logs.csv) and what causal-inference
// research wants on top (events.jsonl with vector clocks, folded CPU profiles).
//
// Each writer is a TwinObserver; RcaDatasetWriters opens all of them in one directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string_view>
#include <vector>

#include "doppel/model/topology.hpp"
#include "doppel/telemetry/otlp_trace_writer.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::telemetry {

inline constexpr std::string_view kTracesCsvFileName = "traces.csv";
inline constexpr std::string_view kLogsCsvFileName = "logs.csv";
inline constexpr std::string_view kCausalEventsFileName = "events.jsonl";
inline constexpr std::string_view kProfilesDirName = "profiles";

// The HTTP-like status code a span's outcome shows as in traces.csv: ok 200, error 500,
// timeout 504, not_found 404, and 503 for every refusal (rejected, circuit_open,
// pool_timeout, unavailable).
int status_code(twin::Outcome outcome);

// traces.csv: one row per span of the sampled traces, in the order spans end:
// traceID,spanID,parentSpanID,serviceName,operationName,startTime,duration,statusCode
// Ids in lowercase hex (32 and 16 digits; parentSpanID empty for a root); startTime in Unix
// microseconds, duration in microseconds. A client span's serviceName is the caller and its
// operationName the callee's operation, as tracers record it.
class SpanCsvWriter final : public twin::TwinObserver {
 public:
  SpanCsvWriter(std::ostream& out, double sample_ratio, std::int64_t epoch_unix_s);
  void on_span(const twin::SpanRecord& span) override;
  std::uint64_t rows_written() const { return rows_; }

 private:
  std::ostream& out_;
  TraceSampler sampler_;
  std::int64_t epoch_unix_s_;
  std::uint64_t rows_ = 0;
};

// logs.csv (time,service,level,message): the lines a service would log when a request fails
// (timeouts, rejections, refused calls, pool exhaustion, errors) and when its breakers or
// pools change state. Only what the service itself could see: faults are never logged.
// At most `max_lines_per_second` lines per service per simulated second, so a storm of
// failures keeps the file small; time in Unix seconds with microseconds.
class ServiceLogWriter final : public twin::TwinObserver {
 public:
  ServiceLogWriter(std::ostream& out, std::int64_t epoch_unix_s, int max_lines_per_second = 10);
  ~ServiceLogWriter() override;
  void on_span(const twin::SpanRecord& span) override;
  void on_event(const twin::TwinEvent& event) override;
  std::uint64_t lines_written() const;
  std::uint64_t lines_suppressed() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// events.jsonl with vector clocks over processes (the topology's services, then datastores,
// then "environment" for hosts and zones). Every message of the sampled traces gives a
// request_sent / request_received / response_sent / response_received event (a refused call
// gives call_refused), and every TwinEvent (fault_start, pool_exhausted, breaker_open...) an
// event at the process it names. A send ticks the sender's clock and the message carries it;
// a receive merges it in and ticks: `a.clock < b.clock` exactly when a happened before b.
// Events are buffered and written in time order at the end of the run.
class CausalEventLog final : public twin::TwinObserver {
 public:
  CausalEventLog(const model::Topology& topology, std::ostream& out, double sample_ratio,
                 std::int64_t epoch_unix_s);
  ~CausalEventLog() override;
  void on_span(const twin::SpanRecord& span) override;
  void on_event(const twin::TwinEvent& event) override;
  void on_run_end(double end_time_s) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// profiles/<service>.folded (also one per datastore): CPU time in folded-stack form, the
// input of flamegraph.pl and speedscope. `svc;op N` is the time svc's instances spent
// working on op themselves (a server span's duration minus its queueing and the union of
// the intervals its outgoing calls took); `svc;op;callee_op N` is the callee's own time
// spent on calls svc's op made. N in microseconds, over every span (not only sampled ones).
class CpuProfileRecorder final : public twin::TwinObserver {
 public:
  explicit CpuProfileRecorder(std::filesystem::path profiles_dir);
  ~CpuProfileRecorder() override;
  void on_span(const twin::SpanRecord& span) override;
  void on_run_end(double end_time_s) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct RcaDatasetOptions {
  std::filesystem::path out_dir;
  double trace_sample_ratio = 0.01;  // traces.csv and the message events of events.jsonl
  std::int64_t epoch_unix_s = 1700000000;
  int max_log_lines_per_service_per_second = 10;
};

// All four writers on files in out_dir (created with parents). Throws doppel::InputError
// naming the path if a file cannot be opened; finish() throws std::runtime_error if a write
// failed.
class RcaDatasetWriters {
 public:
  RcaDatasetWriters(const model::Topology& topology, RcaDatasetOptions options);
  ~RcaDatasetWriters();
  RcaDatasetWriters(const RcaDatasetWriters&) = delete;
  RcaDatasetWriters& operator=(const RcaDatasetWriters&) = delete;

  std::vector<twin::TwinObserver*> observers();
  void finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace doppel::telemetry
