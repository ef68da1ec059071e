#include "doppel/experiments/rehearse.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <tuple>
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

double nearest_rank_percentile(std::vector<double>& values, double percentile) {
  const auto n = values.size();
  const auto rank = static_cast<std::size_t>(
      std::max(1.0, std::ceil(percentile / 100.0 * static_cast<double>(n))));
  auto nth = values.begin() + static_cast<std::ptrdiff_t>(std::min(rank, n) - 1);
  std::nth_element(values.begin(), nth, values.end());
  return *nth;
}

}  // namespace

AbortMonitor::AbortMonitor(std::vector<faults::AbortCondition> conditions, bool stop_run)
    : conditions_(std::move(conditions)), windows_(conditions_.size()), stop_run_(stop_run) {}

void AbortMonitor::on_entry(const twin::EntryRecord& entry) {
  if (fired_) return;
  const double now = entry.end_s;
  for (std::size_t i = 0; i < conditions_.size(); ++i) {
    const auto& condition = conditions_[i];
    if (!condition.route.empty() && entry.route != condition.route) continue;
    if (!condition.client.empty() && entry.client != condition.client) continue;
    auto& window = windows_[i];
    const bool failed = entry.outcome != twin::Outcome::ok;
    window.requests.push_back({now, (entry.end_s - entry.start_s) * 1000.0, failed});
    if (failed) ++window.failed;
    while (!window.requests.empty() && window.requests.front().end_s <= now - condition.window_s) {
      if (window.requests.front().failed) --window.failed;
      window.requests.pop_front();
    }
    const auto measured = measure(i, now);
    if (measured && *measured > condition.above) {
      fire(i, now, *measured);
      return;
    }
  }
}

std::optional<double> AbortMonitor::measure(std::size_t index, double now) {
  const auto& condition = conditions_[index];
  auto& window = windows_[index];
  // A window not yet whole, or too thin, would fire on the first unlucky request.
  if (now < condition.window_s || window.requests.size() < kMinRequests) return std::nullopt;
  const auto n = static_cast<double>(window.requests.size());
  if (condition.metric == faults::AbortCondition::Metric::error_rate) {
    return static_cast<double>(window.failed) / n;
  }
  // A percentile costs a pass over the window: judged often enough to stop within a fiftieth
  // of the window, not at every request.
  if (now < window.next_percentile_s) return std::nullopt;
  window.next_percentile_s = now + condition.window_s / 50.0;
  scratch_.clear();
  for (const auto& r : window.requests) scratch_.push_back(r.latency_ms);
  const double percentile =
      condition.metric == faults::AbortCondition::Metric::latency_p50_ms   ? 50.0
      : condition.metric == faults::AbortCondition::Metric::latency_p90_ms ? 90.0
                                                                           : 99.0;
  return nearest_rank_percentile(scratch_, percentile);
}

void AbortMonitor::fire(std::size_t index, double now, double measured) {
  const auto& condition = conditions_[index];
  fired_ = AbortFiring{index,
                       condition,
                       now,
                       measured,
                       windows_[index].requests.size(),
                       stop_run_ && runtime_ != nullptr};
  if (runtime_ == nullptr) return;
  runtime_->emit_event({now,
                        "abort_condition_fired",
                        fmt::format("abort_conditions/{}", index),
                        {{"metric", std::string(faults::to_string(condition.metric))},
                         {"route", condition.route},
                         {"client", condition.client},
                         {"above", fmt::format("{:g}", condition.above)},
                         {"window_s", fmt::format("{:g}", condition.window_s)},
                         {"measured", fmt::format("{:g}", measured)},
                         {"action", stop_run_ ? "stopped the run" : "reported (--no-abort)"}}});
  if (stop_run_) runtime_->stop();
}

RehearsalResult rehearse(const faults::Scenario& scenario, const model::Topology& topology,
                         const RunOptions& options, const RehearseOptions& rehearse_options) {
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
  AbortMonitor monitor(scenario.abort_conditions, rehearse_options.stop_on_abort);
  twin_options.on_start = [&](twin::TwinRuntime& runtime) {
    monitor.attach(runtime);
    faults::apply_scenario(scenario, prepared, runtime);
  };
  // The monitor first: the entry that fires the abort still reaches every other observer.
  std::vector<twin::TwinObserver*> observers = {&monitor};
  const auto suite_observers = suite.observers();
  observers.insert(observers.end(), suite_observers.begin(), suite_observers.end());
  observers.push_back(&splitter);
  observers.insert(observers.end(), options.extra_observers.begin(), options.extra_observers.end());

  RehearsalResult result;
  result.scenario = scenario.name;
  result.run.stats = twin::run_twin(prepared, twin_options, observers);
  result.run.summary = suite.finish();
  result.abort = monitor.fired();
  result.scenario_end_s = phases.run_end_s;
  result.simulated_until_s = result.run.stats.simulated_s;
  for (std::size_t i = 0; i < named.size(); ++i) {
    // A stopped run has no phases after the stop, and the phase it stopped in ends there.
    const double start = named[i].second.first;
    if (start >= result.simulated_until_s) break;
    const double end = std::min(named[i].second.second, result.simulated_until_s);
    result.phases.push_back({named[i].first, start, end, splitter.summary(i)});
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

nlohmann::json abort_json(const AbortFiring& a) {
  return {{"condition", a.condition}, {"metric", faults::to_string(a.spec.metric)},
          {"route", a.spec.route},    {"client", a.spec.client},
          {"above", a.spec.above},    {"window_s", a.spec.window_s},
          {"time_s", a.time_s},       {"measured", a.measured},
          {"requests", a.requests},   {"stopped_run", a.stopped_run}};
}

// "error_rate of route checkout (client mobile) over 5 s"
std::string describe_condition(const faults::AbortCondition& c) {
  std::string what(faults::to_string(c.metric));
  what += c.route.empty() ? " of every route" : " of route " + c.route;
  if (!c.client.empty()) what += " (client " + c.client + ")";
  return what + fmt::format(" over {:g} s", c.window_s);
}
}  // namespace

void write_rehearsal_json(std::ostream& out, const RehearsalResult& result) {
  nlohmann::json doc;
  doc["format"] = "doppel-rehearsal/v1";
  doc["scenario"] = result.scenario;
  doc["steady_state_held"] = result.steady_state_held;
  doc["aborted"] = result.aborted();
  doc["abort"] = result.abort ? abort_json(*result.abort) : nlohmann::json();
  doc["simulated_until_s"] = result.simulated_until_s;
  doc["scenario_end_s"] = result.scenario_end_s;
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
  out << fmt::format("Rehearsal of \"{}\": steady state {}{}\n", result.scenario,
                     result.steady_state_held ? "HELD" : "BROKEN",
                     result.aborted() ? ", ABORTED" : "");
  if (result.abort) {
    const auto& a = *result.abort;
    out << fmt::format("{} at t={:.3f}s: {} = {:g} > {:g} (abort_conditions/{}, {} requests)\n",
                       a.stopped_run ? "Aborted" : "Abort condition would have fired", a.time_s,
                       describe_condition(a.spec), a.measured, a.spec.above, a.condition,
                       a.requests);
    if (a.stopped_run) {
      out << fmt::format("The run stopped at {:.3f} s of {:g} s.\n", result.simulated_until_s,
                         result.scenario_end_s);
    }
  }
  out << '\n';
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

namespace doppel::experiments {

namespace {

using nlohmann::json;

// Two-sided 95% quantiles of Student's t by degrees of freedom (1..30), then coarser.
double t_quantile_975(std::size_t degrees) {
  static constexpr double kTable[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                      2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                      2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                      2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (degrees >= 1 && degrees <= std::size(kTable)) return kTable[degrees - 1];
  if (degrees <= 40) return 2.021;
  if (degrees <= 60) return 2.000;
  if (degrees <= 120) return 1.980;
  return 1.960;
}

// A figure over the replications that measured it: mean, min, max, and the 95% interval of
// the mean (null with a single value).
json spread(const std::vector<double>& values) {
  if (values.empty()) return json();
  const double n = static_cast<double>(values.size());
  double sum = 0.0;
  for (double v : values) sum += v;
  const double mean = sum / n;
  double squares = 0.0;
  for (double v : values) squares += (v - mean) * (v - mean);
  json interval;
  if (values.size() > 1) {
    const double half = t_quantile_975(values.size() - 1) * std::sqrt(squares / (n - 1.0) / n);
    interval = json::array({mean - half, mean + half});
  }
  return {{"n", values.size()},
          {"mean", mean},
          {"min", *std::min_element(values.begin(), values.end())},
          {"max", *std::max_element(values.begin(), values.end())},
          {"ci95", interval}};
}

json share(std::size_t count, std::size_t of) {
  return {{"count", count},
          {"share", of == 0 ? 0.0 : static_cast<double>(count) / static_cast<double>(of)}};
}

// Values collected per name, names kept in the order first seen (replication order).
template <typename T>
class Ordered {
 public:
  T& operator[](const std::string& name) {
    auto it = index_.find(name);
    if (it == index_.end()) {
      it = index_.emplace(name, items_.size()).first;
      items_.emplace_back(name, T{});
    }
    return items_[it->second].second;
  }
  const std::vector<std::pair<std::string, T>>& items() const { return items_; }

 private:
  std::map<std::string, std::size_t> index_;
  std::vector<std::pair<std::string, T>> items_;
};

struct StatsSeries {
  std::vector<double> requests, error_rate, p50_ms, p99_ms;
  std::size_t slo_failed = 0;
  std::size_t seen = 0;  // replications whose phase listed it

  void add(const json& stats) {
    ++seen;
    const double requests_here = stats.at("requests").get<double>();
    requests.push_back(requests_here);
    // Rates and latencies of nothing are not zeros: leave those replications out.
    if (requests_here <= 0) return;
    error_rate.push_back(stats.at("error_rate").get<double>());
    p50_ms.push_back(stats.at("p50_ms").get<double>());
    p99_ms.push_back(stats.at("p99_ms").get<double>());
  }
  json to_json(const std::string& name, bool with_slo, std::size_t phase_count) const {
    json j{{"name", name},
           {"replications", seen},
           {"requests", spread(requests)},
           {"error_rate", spread(error_rate)},
           {"p50_ms", spread(p50_ms)},
           {"p99_ms", spread(p99_ms)}};
    if (with_slo) j["slo_failed"] = share(slo_failed, phase_count);
    return j;
  }
};

struct PhaseSeries {
  std::size_t count = 0;
  std::vector<double> start_s, end_s;
  std::size_t slo_failed = 0;
  Ordered<StatsSeries> routes;
  Ordered<StatsSeries> clients;
};

struct EventSeries {
  std::string kind, component;
  std::vector<double> time_s;
};

}  // namespace

std::string replication_dir_name(std::size_t index) {
  return fmt::format("replication-{:03}", index);
}

json aggregate_rehearsals(const std::vector<json>& replications) {
  if (replications.empty()) throw std::invalid_argument("no replications to aggregate");
  const std::size_t n = replications.size();
  std::size_t held = 0;
  std::size_t aborted = 0;
  std::size_t would_abort = 0;
  std::vector<double> abort_times, until;
  Ordered<PhaseSeries> phases;
  Ordered<std::size_t> broken_routes;
  Ordered<std::size_t> affected_clients;
  Ordered<EventSeries> events;
  for (const auto& doc : replications) {
    held += doc.at("steady_state_held").get<bool>() ? 1 : 0;
    until.push_back(doc.at("simulated_until_s").get<double>());
    const json& abort = doc.at("abort");
    if (!abort.is_null()) {
      abort_times.push_back(abort.at("time_s").get<double>());
      (abort.at("stopped_run").get<bool>() ? aborted : would_abort) += 1;
    }
    for (const auto& route : doc.at("broken_routes")) ++broken_routes[route.get<std::string>()];
    for (const auto& c : doc.at("affected_clients")) ++affected_clients[c.get<std::string>()];
    for (const auto& phase : doc.at("phases")) {
      auto& series = phases[phase.at("name").get<std::string>()];
      ++series.count;
      series.start_s.push_back(phase.at("start_s").get<double>());
      series.end_s.push_back(phase.at("end_s").get<double>());
      if (phase.at("slo_verdict") == "fail") ++series.slo_failed;
      for (const auto& route : phase.at("routes")) {
        series.routes[route.at("name").get<std::string>()].add(route);
      }
      for (const auto& slo : phase.at("slos")) {
        if (slo.at("verdict") == "fail")
          ++series.routes[slo.at("route").get<std::string>()].slo_failed;
      }
      for (const auto& client : phase.at("clients")) {
        series.clients[client.at("name").get<std::string>()].add(client);
      }
    }
    for (const auto& event : doc.at("causal_chain")) {
      const std::string kind = event.at("kind").get<std::string>();
      const std::string component = event.at("component").get<std::string>();
      auto& series = events[kind + '\n' + component];
      series.kind = kind;
      series.component = component;
      series.time_s.push_back(event.at("time_s").get<double>());
    }
  }

  json doc;
  doc["format"] = "doppel-rehearsal-replications/v1";
  doc["scenario"] = replications.front().at("scenario");
  doc["replications"] = n;
  doc["scenario_end_s"] = replications.front().at("scenario_end_s");
  doc["steady_state_held"] = share(held, n);
  doc["aborted"] = share(aborted, n);
  doc["abort_would_have_fired"] = share(would_abort, n);  // --no-abort runs
  doc["abort_time_s"] = spread(abort_times);
  doc["simulated_until_s"] = spread(until);
  json phase_docs = json::array();
  for (const auto& [name, series] : phases.items()) {
    json p{{"name", name},
           {"replications", series.count},
           {"start_s", spread(series.start_s)},
           {"end_s", spread(series.end_s)},
           {"slo_failed", share(series.slo_failed, series.count)}};
    p["routes"] = json::array();
    for (const auto& [route, stats] : series.routes.items()) {
      p["routes"].push_back(stats.to_json(route, true, series.count));
    }
    p["clients"] = json::array();
    for (const auto& [client, stats] : series.clients.items()) {
      p["clients"].push_back(stats.to_json(client, false, series.count));
    }
    phase_docs.push_back(std::move(p));
  }
  doc["phases"] = std::move(phase_docs);
  json blast = {{"routes", json::array()}, {"clients", json::array()}};
  for (const auto& [route, count] : broken_routes.items()) {
    json entry = share(count, n);
    entry["route"] = route;
    blast["routes"].push_back(std::move(entry));
  }
  for (const auto& [client, count] : affected_clients.items()) {
    json entry = share(count, n);
    entry["client"] = client;
    blast["clients"].push_back(std::move(entry));
  }
  doc["blast_radius"] = std::move(blast);
  // In the order the events happen on average; ties by name, so the order is the data's.
  std::vector<const EventSeries*> ordered;
  for (const auto& item : events.items()) ordered.push_back(&item.second);
  auto mean_time = [](const EventSeries* e) {
    double sum = 0.0;
    for (double t : e->time_s) sum += t;
    return sum / static_cast<double>(e->time_s.size());
  };
  std::stable_sort(ordered.begin(), ordered.end(), [&](const EventSeries* a, const EventSeries* b) {
    const double ta = mean_time(a);
    const double tb = mean_time(b);
    if (ta != tb) return ta < tb;
    return std::tie(a->kind, a->component) < std::tie(b->kind, b->component);
  });
  json chain = json::array();
  for (const EventSeries* e : ordered) {
    json entry = share(e->time_s.size(), n);
    entry["kind"] = e->kind;
    entry["component"] = e->component;
    entry["time_s"] = spread(e->time_s);
    chain.push_back(std::move(entry));
  }
  doc["causal_chain"] = std::move(chain);
  return doc;
}

namespace {

// "1.20 [0.80-1.90]" (the scale multiplies every figure), "-" when nothing was measured.
std::string format_spread(const json& s, double scale = 1.0, int decimals = 2) {
  if (s.is_null()) return "-";
  return fmt::format("{:.{}f} [{:.{}f}-{:.{}f}]", s.at("mean").get<double>() * scale, decimals,
                     s.at("min").get<double>() * scale, decimals, s.at("max").get<double>() * scale,
                     decimals);
}

std::string percent(const json& share) {
  return fmt::format("{:.0f}%", share.at("share").get<double>() * 100.0);
}

}  // namespace

void print_rehearsal_aggregate(std::ostream& out, const json& aggregate) {
  const auto n = aggregate.at("replications").get<std::size_t>();
  out << fmt::format(
      "Rehearsal of \"{}\" over {} replications: steady state held in {} of {}, aborted in {}\n",
      aggregate.at("scenario").get<std::string>(), n,
      aggregate.at("steady_state_held").at("count").get<std::size_t>(), n,
      aggregate.at("aborted").at("count").get<std::size_t>());
  if (!aggregate.at("abort_time_s").is_null()) {
    out << fmt::format(
        "An abort condition fired at t = {} s (mean [min-max]); runs ended at {} s\n",
        format_spread(aggregate.at("abort_time_s")),
        format_spread(aggregate.at("simulated_until_s")));
  }
  out << fmt::format("\nmean [min-max] over the replications\n");
  out << fmt::format("{:<8} {:<24} {:>22} {:>22} {:>26} {:>9}\n", "phase", "route", "requests",
                     "err%", "p99_ms", "SLO broke");
  for (const auto& phase : aggregate.at("phases")) {
    for (const auto& r : phase.at("routes")) {
      if (r.at("requests").is_null() || r.at("requests").at("max").get<double>() <= 0) continue;
      out << fmt::format("{:<8} {:<24} {:>22} {:>22} {:>26} {:>9}\n",
                         phase.at("name").get<std::string>(), r.at("name").get<std::string>(),
                         format_spread(r.at("requests"), 1.0, 0),
                         format_spread(r.at("error_rate"), 100.0), format_spread(r.at("p99_ms")),
                         percent(r.at("slo_failed")));
    }
    out << fmt::format("{:<8} SLOs failed in {} of {} replications\n",
                       phase.at("name").get<std::string>(),
                       phase.at("slo_failed").at("count").get<std::size_t>(),
                       phase.at("replications").get<std::size_t>());
  }
  auto shares = [&](const json& list, const char* key) {
    std::vector<std::string> parts;
    for (const auto& item : list) {
      parts.push_back(fmt::format("{} ({})", item.at(key).get<std::string>(), percent(item)));
    }
    return parts.empty() ? std::string("none") : fmt::format("{}", fmt::join(parts, ", "));
  };
  out << "\nBlast radius (share of replications)\n";
  out << fmt::format("  routes that broke their SLOs: {}\n",
                     shares(aggregate.at("blast_radius").at("routes"), "route"));
  out << fmt::format("  client classes with more errors: {}\n",
                     shares(aggregate.at("blast_radius").at("clients"), "client"));
  out << "\nCausal chain (first occurrence per replication; mean time [min-max], share)\n";
  for (const auto& e : aggregate.at("causal_chain")) {
    out << fmt::format("  t={:>24}s  {:<22} {:<28} {}\n", format_spread(e.at("time_s")),
                       e.at("kind").get<std::string>(), e.at("component").get<std::string>(),
                       percent(e));
  }
}

}  // namespace doppel::experiments
