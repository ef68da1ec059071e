#include "doppel/experiments/rehearse.hpp"

#include <algorithm>
#include <memory>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/faults/apply_scenario.hpp"
#include "doppel/twin/runtime.hpp"

namespace doppel::experiments {

namespace {

// Sends each request's records to the summary of the phase it started in, and keeps the
// system events for the causal chain.
class PhaseSplitter final : public twin::TwinObserver {
 public:
  PhaseSplitter(const model::Topology& judged, std::vector<std::pair<double, double>> bounds)
      : bounds_(std::move(bounds)) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
      recorders_.push_back(std::make_unique<telemetry::SummaryRecorder>(judged));
    }
  }

  void on_span(const twin::SpanRecord& span) override {
    if (auto* r = recorder_at(span.start_s)) r->on_span(span);
  }
  void on_entry(const twin::EntryRecord& entry) override {
    if (auto* r = recorder_at(entry.start_s)) r->on_entry(entry);
  }
  void on_event(const twin::TwinEvent& event) override {
    const auto key = std::make_pair(event.kind, event.component);
    if (seen_.insert(key).second) chain_.push_back(event);
  }
  void on_run_end(double end_time_s) override {
    for (std::size_t i = 0; i < recorders_.size(); ++i) {
      recorders_[i]->on_run_end(std::min(end_time_s, bounds_[i].second));
    }
  }

  telemetry::Summary summary(std::size_t phase) const { return recorders_[phase]->summary(); }
  std::vector<twin::TwinEvent> take_chain() { return std::move(chain_); }

 private:
  telemetry::SummaryRecorder* recorder_at(double t) {
    for (std::size_t i = 0; i < bounds_.size(); ++i) {
      if (t >= bounds_[i].first && t < bounds_[i].second) return recorders_[i].get();
    }
    return nullptr;
  }

  std::vector<std::pair<double, double>> bounds_;
  std::vector<std::unique_ptr<telemetry::SummaryRecorder>> recorders_;
  std::set<std::pair<std::string, std::string>> seen_;
  std::vector<twin::TwinEvent> chain_;
};

const telemetry::RequestStats* find_stats(const std::vector<telemetry::RequestStats>& stats,
                                          const std::string& name) {
  auto it = std::find_if(stats.begin(), stats.end(),
                         [&](const telemetry::RequestStats& s) { return s.name == name; });
  return it == stats.end() ? nullptr : &*it;
}

telemetry::Verdict slo_verdict(const telemetry::Summary& summary, const std::string& route) {
  for (const auto& slo : summary.slos) {
    if (slo.route == route) return slo.verdict;
  }
  return telemetry::Verdict::no_data;
}

}  // namespace

RehearsalResult rehearse(const faults::Scenario& scenario, const model::Topology& topology,
                         const RunOptions& options) {
  const model::Topology prepared = faults::prepare_topology(scenario, topology);
  const faults::Phases phases = faults::scenario_phases(scenario, prepared);

  // The phases, without the empty ones.
  std::vector<std::pair<std::string, std::pair<double, double>>> named = {
      {"before", {0.0, phases.first_start_s}},
      {"during", {phases.first_start_s, phases.last_end_s}},
      {"after", {phases.last_end_s, phases.run_end_s}}};
  std::erase_if(named, [](const auto& p) { return p.second.second <= p.second.first; });
  std::vector<std::pair<double, double>> bounds;
  for (const auto& p : named) bounds.push_back(p.second);

  model::Topology judged = prepared;
  judged.slos = faults::steady_state_slos(scenario, prepared);
  PhaseSplitter splitter(judged, bounds);

  telemetry::TelemetrySuite suite(prepared, options.telemetry);
  twin::TwinOptions twin_options = options.twin;
  twin_options.duration_s = phases.run_end_s;
  twin_options.snapshot_interval_s = options.telemetry.window_s;
  twin_options.on_start = [&](twin::TwinRuntime& runtime) {
    faults::apply_scenario(scenario, prepared, runtime);
  };
  std::vector<twin::TwinObserver*> observers = suite.observers();
  observers.push_back(&splitter);
  observers.insert(observers.end(), options.extra_observers.begin(), options.extra_observers.end());

  RehearsalResult result;
  result.scenario = scenario.name;
  result.run.stats = twin::run_twin(prepared, twin_options, observers);
  result.run.summary = suite.finish();
  for (std::size_t i = 0; i < named.size(); ++i) {
    result.phases.push_back(
        {named[i].first, named[i].second.first, named[i].second.second, splitter.summary(i)});
  }
  result.causal_chain = splitter.take_chain();

  const PhaseResult* before = nullptr;
  for (const auto& phase : result.phases) {
    if (phase.name == "before") before = &phase;
    if (phase.summary.slo_verdict == telemetry::Verdict::fail) result.steady_state_held = false;
  }
  std::set<std::string> broken;
  std::set<std::string> affected;
  for (const auto& phase : result.phases) {
    if (phase.name == "before") continue;
    for (const auto& slo : phase.summary.slos) {
      const bool held_before =
          before == nullptr || slo_verdict(before->summary, slo.route) != telemetry::Verdict::fail;
      if (slo.verdict == telemetry::Verdict::fail && held_before) broken.insert(slo.route);
    }
    for (const auto& client : phase.summary.clients) {
      const auto* base = before ? find_stats(before->summary.clients, client.name) : nullptr;
      const double base_rate = base ? base->error_rate : 0.0;
      if (client.requests > 0 && client.error_rate > base_rate + 0.01) affected.insert(client.name);
    }
  }
  // Keep the topology's order, not the set's.
  for (const auto& slo : judged.slos) {
    if (broken.count(slo.route)) result.broken_routes.push_back(slo.route);
  }
  for (const auto& client : prepared.workload.clients) {
    if (affected.count(client.name)) result.affected_clients.push_back(client.name);
  }
  return result;
}

namespace {
nlohmann::json request_stats_json(const telemetry::RequestStats& s) {
  return {{"name", s.name},
          {"requests", s.requests},
          {"errors", s.errors},
          {"error_rate", s.error_rate},
          {"p50_ms", s.latency.p50_ms},
          {"p99_ms", s.latency.p99_ms}};
}
}  // namespace

void write_rehearsal_json(std::ostream& out, const RehearsalResult& result) {
  nlohmann::json doc;
  doc["format"] = "doppel-rehearsal/v1";
  doc["scenario"] = result.scenario;
  doc["steady_state_held"] = result.steady_state_held;
  doc["broken_routes"] = result.broken_routes;
  doc["affected_clients"] = result.affected_clients;
  nlohmann::json phases = nlohmann::json::array();
  for (const auto& phase : result.phases) {
    nlohmann::json p{{"name", phase.name},
                     {"start_s", phase.start_s},
                     {"end_s", phase.end_s},
                     {"slo_verdict", telemetry::to_string(phase.summary.slo_verdict)}};
    p["routes"] = nlohmann::json::array();
    for (const auto& r : phase.summary.routes) p["routes"].push_back(request_stats_json(r));
    p["clients"] = nlohmann::json::array();
    for (const auto& c : phase.summary.clients) p["clients"].push_back(request_stats_json(c));
    p["slos"] = nlohmann::json::array();
    for (const auto& slo : phase.summary.slos) {
      p["slos"].push_back({{"route", slo.route}, {"verdict", telemetry::to_string(slo.verdict)}});
    }
    phases.push_back(std::move(p));
  }
  doc["phases"] = std::move(phases);
  nlohmann::json chain = nlohmann::json::array();
  for (const auto& e : result.causal_chain) {
    nlohmann::json attributes = nlohmann::json::object();
    for (const auto& [k, v] : e.attributes) attributes[k] = v;
    chain.push_back({{"time_s", e.time_s},
                     {"kind", e.kind},
                     {"component", e.component},
                     {"attributes", attributes}});
  }
  doc["causal_chain"] = std::move(chain);
  out << doc.dump(2) << '\n';
}

void print_rehearsal(std::ostream& out, const RehearsalResult& result) {
  out << fmt::format("Rehearsal of \"{}\": steady state {}\n\n", result.scenario,
                     result.steady_state_held ? "HELD" : "BROKEN");
  out << fmt::format("{:<8} {:>8} {:>8}  {:<28} {:>9} {:>8} {:>10}\n", "phase", "from_s", "to_s",
                     "route", "requests", "err%", "p99_ms");
  for (const auto& phase : result.phases) {
    for (const auto& r : phase.summary.routes) {
      if (r.requests == 0) continue;
      out << fmt::format("{:<8} {:>8.1f} {:>8.1f}  {:<28} {:>9} {:>7.2f}% {:>10.2f}\n", phase.name,
                         phase.start_s, phase.end_s, r.name, r.requests, r.error_rate * 100.0,
                         r.latency.p99_ms);
    }
    out << fmt::format("{:<8} SLOs: {}\n", phase.name,
                       telemetry::to_string(phase.summary.slo_verdict));
  }
  out << "\nBlast radius\n";
  out << fmt::format("  routes that broke their SLOs: {}\n",
                     result.broken_routes.empty()
                         ? "none"
                         : fmt::format("{}", fmt::join(result.broken_routes, ", ")));
  out << fmt::format("  client classes with more errors: {}\n",
                     result.affected_clients.empty()
                         ? "none"
                         : fmt::format("{}", fmt::join(result.affected_clients, ", ")));
  out << "\nCausal chain (first occurrence of each event)\n";
  for (const auto& e : result.causal_chain) {
    out << fmt::format("  t={:>8.3f}s  {:<22} {}\n", e.time_s, e.kind, e.component);
  }
}

}  // namespace doppel::experiments
