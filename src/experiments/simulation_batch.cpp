#include "doppel/experiments/simulation_batch.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "doppel/experiments/process_pool.hpp"
#include "doppel/experiments/run.hpp"
#include "doppel/faults/apply_scenario.hpp"

namespace doppel::experiments {

namespace {

// The summary of the requests that start at or after a time: what a fix is judged on.
class JudgedWindow final : public twin::TwinObserver {
 public:
  JudgedWindow(const model::Topology& judged, double from_s) : recorder_(judged), from_s_(from_s) {}

  void on_span(const twin::SpanRecord& span) override {
    if (span.start_s >= from_s_) recorder_.on_span(span);
  }
  void on_entry(const twin::EntryRecord& entry) override {
    if (entry.start_s >= from_s_) recorder_.on_entry(entry);
  }
  void on_run_end(double end_time_s) override { recorder_.on_run_end(end_time_s); }

  telemetry::Summary summary() const { return recorder_.summary(); }

 private:
  telemetry::SummaryRecorder recorder_;
  double from_s_;
};

constexpr const char* kJobFileName = "job.json";

nlohmann::json job_description(const SimulationJob& job) {
  return nlohmann::json{{"scenario", job.scenario},
                        {"seed", job.seed},
                        {"duration_s", job.duration_s},
                        {"judge_from_s", job.judge_from_s}};
}

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool job_done(const SimulationJob& job) {
  const auto description = job.dir / kJobFileName;
  if (!std::filesystem::exists(job.dir / kJudgedSummaryFileName)) return false;
  if (!std::filesystem::exists(description)) return false;
  return read_text(description) == job_description(job).dump(2) + "\n";
}

std::string last_lines(const std::filesystem::path& file, std::size_t count) {
  std::istringstream in(read_text(file));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string text;
  for (std::size_t i = lines.size() > count ? lines.size() - count : 0; i < lines.size(); ++i) {
    text += "\n  " + lines[i];
  }
  return text;
}

telemetry::Verdict verdict_from(const nlohmann::json& value) {
  const std::string text = value.is_string() ? value.get<std::string>() : "";
  if (text == "pass") return telemetry::Verdict::pass;
  if (text == "fail") return telemetry::Verdict::fail;
  return telemetry::Verdict::no_data;
}

}  // namespace

void simulate_job(const faults::Scenario& scenario_in, const model::Topology& topology,
                  const SimulateOptions& options) {
  faults::Scenario scenario = scenario_in;
  scenario.abort_conditions.clear();
  const model::Topology prepared = faults::prepare_topology(scenario, topology);
  model::Topology judged = prepared;
  judged.slos = faults::steady_state_slos(scenario, prepared);
  JudgedWindow window(judged, options.judge_from_s);

  RunOptions run;
  run.twin.seed = options.seed;
  run.twin.network = options.network;
  run.twin.duration_s = options.duration_s > 0.0
                            ? options.duration_s
                            : faults::scenario_phases(scenario, prepared).run_end_s;
  run.twin.on_start = [&](twin::TwinRuntime& runtime) {
    faults::apply_scenario(scenario, prepared, runtime);
  };
  run.telemetry.out_dir = options.out_dir;
  run.telemetry.write_traces = false;
  run.telemetry.write_events = false;
  run.telemetry.trace_sample_ratio = 0.0;
  run.extra_observers = {&window};
  run_simulation(prepared, run);

  // Written last and renamed into place: its presence means the job finished.
  const auto temporary = options.out_dir / (std::string(kJudgedSummaryFileName) + ".tmp");
  {
    std::ofstream out(temporary, std::ios::binary);
    telemetry::write_summary_json(out, window.summary());
    if (!out) throw std::runtime_error(fmt::format("cannot write {}", temporary.string()));
  }
  std::filesystem::rename(temporary, options.out_dir / kJudgedSummaryFileName);
}

std::string directory_name(const std::string& name) {
  std::string text;
  for (const char c : name) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_' || c == '.';
    text += keep ? c : '-';
  }
  return text;
}

std::vector<std::string> simulate_arguments(const SimulationJob& job, const BatchOptions& options) {
  return {"simulate",
          options.topology_file.string(),
          (job.dir / "scenario.json").string(),
          "--seed",
          std::to_string(job.seed),
          "--duration",
          fmt::format("{}", job.duration_s),
          "--judge-from",
          fmt::format("{}", job.judge_from_s),
          "--network",
          options.network,
          "--out",
          job.dir.string()};
}

void run_batch(const std::vector<SimulationJob>& jobs, const BatchOptions& options) {
  std::vector<ChildProcess> children;
  std::vector<std::size_t> job_of_child;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto& job = jobs[i];
    if (job_done(job)) continue;
    std::filesystem::create_directories(job.dir);
    std::filesystem::remove(job.dir / kJudgedSummaryFileName);
    std::ofstream(job.dir / "scenario.json", std::ios::binary) << job.scenario.dump(2) << '\n';
    children.push_back({simulate_arguments(job, options), job.dir / "simulate.log"});
    job_of_child.push_back(i);
  }
  const std::size_t skipped = jobs.size() - children.size();
  std::size_t done = skipped;
  if (options.on_progress && skipped > 0) options.on_progress(done, jobs.size());
  const auto exits = run_children(
      options.executable, children, options.jobs, [&](std::size_t index, const ChildExit& exit) {
        ++done;
        if (exit.ok()) {
          std::ofstream(jobs[job_of_child[index]].dir / kJobFileName, std::ios::binary)
              << job_description(jobs[job_of_child[index]]).dump(2) << '\n';
        }
        if (options.on_progress) options.on_progress(done, jobs.size());
      });
  for (std::size_t c = 0; c < exits.size(); ++c) {
    if (exits[c].ok()) continue;
    const auto& job = jobs[job_of_child[c]];
    throw std::runtime_error(fmt::format("the simulation in {} failed ({}); its log {} ends:{}",
                                         job.dir.string(), exits[c].describe(),
                                         (job.dir / "simulate.log").string(),
                                         last_lines(job.dir / "simulate.log", 5)));
  }
}

MetricSeries read_job_metrics(const std::filesystem::path& dir) {
  return read_metrics_csv(dir / "metrics.csv").series;
}

telemetry::Summary read_judged_slos(const std::filesystem::path& dir) {
  const auto file = dir / kJudgedSummaryFileName;
  const auto json = nlohmann::json::parse(read_text(file), nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    throw std::runtime_error(fmt::format("{}: not a summary written by doppel", file.string()));
  }
  telemetry::Summary summary;
  for (const auto& slo : json.value("slos", nlohmann::json::array())) {
    telemetry::SloResult result;
    result.route = slo.value("route", "");
    result.verdict = verdict_from(slo.value("verdict", nlohmann::json()));
    for (const auto& check : slo.value("checks", nlohmann::json::array())) {
      telemetry::SloCheck parsed;
      parsed.verdict = verdict_from(check.value("verdict", nlohmann::json()));
      const bool latency = check.value("kind", "") == "latency";
      parsed.kind =
          latency ? telemetry::SloCheck::Kind::latency : telemetry::SloCheck::Kind::error_rate;
      parsed.percentile = check.value("percentile", 0.0);
      parsed.bound = check.value(latency ? "bound_ms" : "bound", 0.0);
      const auto& observed = check.value(latency ? "observed_ms" : "observed", nlohmann::json());
      parsed.observed = observed.is_number() ? observed.get<double>() : 0.0;
      result.checks.push_back(parsed);
    }
    summary.slos.push_back(std::move(result));
  }
  return summary;
}

double peak_after(const MetricSeries& series, const std::string& metric, double from_s) {
  const auto found = series.find(metric);
  if (found == series.end()) return 0.0;
  double peak = 0.0;
  for (const auto& point : found->second) {
    if (point.t_s >= from_s) peak = std::max(peak, point.value);
  }
  return peak;
}

std::optional<double> mean_after(const MetricSeries& series, const std::string& metric,
                                 double from_s) {
  const auto found = series.find(metric);
  if (found == series.end()) return std::nullopt;
  double sum = 0.0;
  int points = 0;
  for (const auto& point : found->second) {
    if (point.t_s < from_s) continue;
    sum += point.value;
    ++points;
  }
  if (points == 0) return std::nullopt;
  return sum / points;
}

}  // namespace doppel::experiments
