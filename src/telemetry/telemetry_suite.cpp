#include "doppel/telemetry/telemetry_suite.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "doppel/model/input_error.hpp"
#include "doppel/telemetry/event_log.hpp"
#include "doppel/telemetry/metrics_recorder.hpp"
#include "doppel/telemetry/otlp_trace_writer.hpp"

namespace doppel::telemetry {
namespace {

std::ofstream open_for_writing(const std::filesystem::path& path) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  if (!file)
    throw InputError(path.string(), {}, fmt::format("cannot write: {}", std::strerror(errno)));
  return file;
}

void close_checked(std::ofstream& file, const std::filesystem::path& path) {
  if (!file.is_open()) return;
  file.flush();
  const bool written = static_cast<bool>(file);
  file.close();
  if (!written || file.fail()) {
    throw std::runtime_error(fmt::format("{}: write failed (disk full?)", path.string()));
  }
}

class FanOut final : public twin::TwinObserver {
 public:
  std::vector<twin::TwinObserver*> targets;

  void on_span(const twin::SpanRecord& span) override {
    for (auto* target : targets) target->on_span(span);
  }
  void on_entry(const twin::EntryRecord& entry) override {
    for (auto* target : targets) target->on_entry(entry);
  }
  void on_event(const twin::TwinEvent& event) override {
    for (auto* target : targets) target->on_event(event);
  }
  void on_snapshot(const twin::Snapshot& snapshot) override {
    for (auto* target : targets) target->on_snapshot(snapshot);
  }
  void on_run_end(double end_time_s) override {
    for (auto* target : targets) target->on_run_end(end_time_s);
  }
};

}  // namespace

struct TelemetrySuite::Impl {
  TelemetryOptions options;
  std::ofstream metrics_file;
  std::ofstream traces_file;
  std::ofstream events_file;
  std::optional<MetricsRecorder> metrics;
  std::optional<OtlpTraceWriter> traces;
  std::optional<EventLog> events;
  std::optional<SummaryRecorder> summary;
  FanOut fan_out;
  std::optional<Summary> result;

  std::filesystem::path path(std::string_view name) const { return options.out_dir / name; }
};

TelemetrySuite::TelemetrySuite(const model::Topology& topology, TelemetryOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  const auto& opts = impl_->options;
  std::error_code error;
  std::filesystem::create_directories(opts.out_dir, error);
  if (error) {
    throw InputError(opts.out_dir.string(), {},
                     fmt::format("cannot create the output directory: {}", error.message()));
  }
  if (opts.write_metrics) {
    impl_->metrics_file = open_for_writing(impl_->path(kMetricsFileName));
    impl_->metrics.emplace(topology, impl_->metrics_file,
                           MetricsOptions{opts.window_s, static_cast<double>(opts.epoch_unix_s),
                                          opts.metric_decimals, opts.idle_latency_as_zero});
    impl_->fan_out.targets.push_back(&*impl_->metrics);
  }
  if (opts.write_traces) {
    impl_->traces_file = open_for_writing(impl_->path(kTracesFileName));
    impl_->traces.emplace(impl_->traces_file, OtlpOptions{opts.trace_sample_ratio,
                                                          opts.epoch_unix_s, opts.max_open_traces});
    impl_->fan_out.targets.push_back(&*impl_->traces);
  }
  if (opts.write_events) {
    impl_->events_file = open_for_writing(impl_->path(kEventsFileName));
    impl_->events.emplace(impl_->events_file);
    impl_->fan_out.targets.push_back(&*impl_->events);
  }
  if (opts.compute_summary || opts.write_summary) {
    impl_->summary.emplace(topology);
    impl_->fan_out.targets.push_back(&*impl_->summary);
  }
}

TelemetrySuite::~TelemetrySuite() = default;

twin::TwinObserver& TelemetrySuite::observer() {
  return impl_->fan_out;
}

std::vector<twin::TwinObserver*> TelemetrySuite::observers() {
  return impl_->fan_out.targets;
}

const Summary& TelemetrySuite::finish() {
  if (impl_->result) return *impl_->result;
  if (impl_->metrics) impl_->metrics->finish();
  if (impl_->traces) impl_->traces->finish();
  impl_->result = impl_->summary ? impl_->summary->summary() : Summary{};
  if (impl_->options.write_summary) {
    std::ofstream json = open_for_writing(impl_->path(kSummaryFileName));
    write_summary_json(json, *impl_->result);
    close_checked(json, impl_->path(kSummaryFileName));
    std::ofstream table = open_for_writing(impl_->path(kSummaryTableFileName));
    print_summary_table(table, *impl_->result);
    close_checked(table, impl_->path(kSummaryTableFileName));
  }
  close_checked(impl_->metrics_file, impl_->path(kMetricsFileName));
  close_checked(impl_->traces_file, impl_->path(kTracesFileName));
  close_checked(impl_->events_file, impl_->path(kEventsFileName));
  return *impl_->result;
}

const std::filesystem::path& TelemetrySuite::out_dir() const {
  return impl_->options.out_dir;
}

}  // namespace doppel::telemetry
