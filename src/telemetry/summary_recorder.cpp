#include "doppel/telemetry/summary_recorder.hpp"

#include <algorithm>
#include <array>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "doppel/telemetry/name_ids.hpp"

namespace doppel::telemetry {
namespace {

constexpr std::array kOutcomes{twin::Outcome::ok,           twin::Outcome::error,
                               twin::Outcome::timeout,      twin::Outcome::rejected,
                               twin::Outcome::circuit_open, twin::Outcome::pool_timeout,
                               twin::Outcome::unavailable,  twin::Outcome::not_found};
constexpr const char* kNoRoute = "(no route)";

using OutcomeCounts = std::array<std::uint64_t, kOutcomes.size()>;

struct RequestAccumulator {
  std::string name;
  std::uint64_t errors = 0;
  LatencyHistogram latency_ms;
};

struct ServiceAccumulator {
  RequestAccumulator server;
  OutcomeCounts server_outcomes{};
  std::uint64_t call_attempts = 0;
  std::uint64_t retries = 0;
  OutcomeCounts call_outcomes{};
};

// Accumulators in a fixed order (topology first, then as names are first seen), found by
// the name's id: every span comes here.
template <typename Accumulator>
class NamedAccumulators {
 public:
  Accumulator& get(std::string_view name) {
    const std::size_t id = ids_.id(name);
    if (id == items_.size()) items_.emplace_back();
    return items_[id];
  }
  const std::vector<Accumulator>& items() const { return items_; }

 private:
  NameIds ids_;
  std::vector<Accumulator> items_;
};

LatencyStats latency_stats(const LatencyHistogram& histogram) {
  return LatencyStats{histogram.count(),
                      histogram.percentile(50.0),
                      histogram.percentile(90.0),
                      histogram.percentile(99.0),
                      histogram.max(),
                      histogram.mean()};
}

double rate(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : static_cast<double>(part) / static_cast<double>(whole);
}

RequestStats request_stats(const RequestAccumulator& accumulator) {
  const std::uint64_t requests = accumulator.latency_ms.count();
  return RequestStats{accumulator.name, requests, accumulator.errors,
                      rate(accumulator.errors, requests), latency_stats(accumulator.latency_ms)};
}

std::vector<OutcomeCount> outcome_counts(const OutcomeCounts& counts) {
  std::vector<OutcomeCount> result;
  for (std::size_t i = 0; i < kOutcomes.size(); ++i) {
    result.push_back(OutcomeCount{std::string(twin::to_string(kOutcomes[i])), counts[i]});
  }
  return result;
}

Verdict combine(Verdict overall, Verdict next) {
  if (overall == Verdict::fail || next == Verdict::fail) return Verdict::fail;
  if (overall == Verdict::no_data || next == Verdict::no_data) return Verdict::no_data;
  return Verdict::pass;
}

}  // namespace

std::string_view to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::pass:
      return "pass";
    case Verdict::fail:
      return "fail";
    case Verdict::no_data:
      return "no_data";
  }
  return "unknown";
}

struct SummaryRecorder::Impl {
  std::vector<model::Slo> slos;
  RequestAccumulator total;
  NamedAccumulators<RequestAccumulator> routes;
  NamedAccumulators<RequestAccumulator> clients;
  NamedAccumulators<ServiceAccumulator> services;
  std::uint64_t server_spans = 0;
  std::uint64_t client_spans = 0;
  std::map<std::string, std::uint64_t, std::less<>> events_by_kind;
  double last_time_s = 0.0;
  double end_time_s = -1.0;
};

SummaryRecorder::SummaryRecorder(const model::Topology& topology)
    : impl_(std::make_unique<Impl>()) {
  impl_->slos = topology.slos;
  impl_->total.name = "all";
  for (const auto& route : topology.gateway.routes) impl_->routes.get(route.name).name = route.name;
  for (const auto& client : topology.workload.clients) {
    impl_->clients.get(client.name).name = client.name;
  }
  for (const auto& service : topology.services) {
    impl_->services.get(service.name).server.name = service.name;
  }
}

SummaryRecorder::~SummaryRecorder() = default;

void SummaryRecorder::on_span(const twin::SpanRecord& span) {
  impl_->last_time_s = std::max(impl_->last_time_s, span.end_s);
  const auto outcome = static_cast<std::size_t>(span.outcome);
  ServiceAccumulator& service = impl_->services.get(span.service);
  if (service.server.name.empty()) service.server.name = span.service;
  if (span.kind == twin::SpanKind::server) {
    ++impl_->server_spans;
    service.server.latency_ms.add((span.end_s - span.start_s) * 1000.0);
    if (span.outcome != twin::Outcome::ok) ++service.server.errors;
    if (outcome < kOutcomes.size()) ++service.server_outcomes[outcome];
  } else {
    ++impl_->client_spans;
    ++service.call_attempts;
    if (span.attempt > 0) ++service.retries;
    if (outcome < kOutcomes.size()) ++service.call_outcomes[outcome];
  }
}

void SummaryRecorder::on_entry(const twin::EntryRecord& entry) {
  impl_->last_time_s = std::max(impl_->last_time_s, entry.end_s);
  const double latency_ms = (entry.end_s - entry.start_s) * 1000.0;
  const bool failed = entry.outcome != twin::Outcome::ok;
  const std::string_view route_name = entry.route.empty() ? kNoRoute : entry.route;
  RequestAccumulator& route = impl_->routes.get(route_name);
  if (route.name.empty()) route.name = route_name;
  RequestAccumulator& client = impl_->clients.get(entry.client);
  if (client.name.empty()) client.name = entry.client;
  for (RequestAccumulator* group : {&impl_->total, &route, &client}) {
    group->latency_ms.add(latency_ms);
    if (failed) ++group->errors;
  }
}

void SummaryRecorder::on_event(const twin::TwinEvent& event) {
  impl_->last_time_s = std::max(impl_->last_time_s, event.time_s);
  const auto found = impl_->events_by_kind.find(event.kind);
  if (found != impl_->events_by_kind.end()) {
    ++found->second;
  } else {
    impl_->events_by_kind.emplace(event.kind, 1);
  }
}

void SummaryRecorder::on_run_end(double end_time_s) {
  impl_->end_time_s = end_time_s;
}

Summary SummaryRecorder::summary() const {
  Summary summary;
  summary.duration_s = impl_->end_time_s >= 0.0 ? impl_->end_time_s : impl_->last_time_s;
  summary.total = request_stats(impl_->total);
  for (const auto& route : impl_->routes.items()) summary.routes.push_back(request_stats(route));
  for (const auto& client : impl_->clients.items()) {
    summary.clients.push_back(request_stats(client));
  }
  for (const auto& service : impl_->services.items()) {
    const RequestStats server = request_stats(service.server);
    summary.services.push_back(
        ServiceStats{server.name, server.requests, server.errors, server.error_rate, server.latency,
                     outcome_counts(service.server_outcomes), service.call_attempts,
                     service.retries, outcome_counts(service.call_outcomes)});
  }
  summary.server_spans = impl_->server_spans;
  summary.client_spans = impl_->client_spans;
  summary.events_by_kind.assign(impl_->events_by_kind.begin(), impl_->events_by_kind.end());
  summary.latency_relative_accuracy = impl_->total.latency_ms.relative_accuracy();

  summary.slo_verdict = Verdict::pass;
  for (const auto& slo : impl_->slos) {
    SloResult result;
    result.route = slo.route;
    const auto stats = std::find_if(summary.routes.begin(), summary.routes.end(),
                                    [&](const RequestStats& r) { return r.name == slo.route; });
    const bool has_data = stats != summary.routes.end() && stats->requests > 0;
    const RequestAccumulator* accumulator = nullptr;
    for (const auto& route : impl_->routes.items()) {
      if (route.name == slo.route) accumulator = &route;
    }
    for (const auto& bound : slo.latency) {
      SloCheck check;
      check.kind = SloCheck::Kind::latency;
      check.percentile = bound.percentile;
      check.bound = bound.max_ms;
      if (has_data) {
        check.observed = accumulator->latency_ms.percentile(bound.percentile);
        check.verdict = check.observed <= check.bound ? Verdict::pass : Verdict::fail;
      }
      result.checks.push_back(check);
    }
    if (slo.max_error_rate) {
      SloCheck check;
      check.kind = SloCheck::Kind::error_rate;
      check.bound = *slo.max_error_rate;
      if (has_data) {
        check.observed = stats->error_rate;
        check.verdict = check.observed <= check.bound ? Verdict::pass : Verdict::fail;
      }
      result.checks.push_back(check);
    }
    result.verdict =
        result.checks.empty() ? (has_data ? Verdict::pass : Verdict::no_data) : Verdict::pass;
    for (const auto& check : result.checks) result.verdict = combine(result.verdict, check.verdict);
    summary.slo_verdict = combine(summary.slo_verdict, result.verdict);
    summary.slos.push_back(std::move(result));
  }
  return summary;
}

namespace {

using Json = nlohmann::ordered_json;

Json latency_json(const LatencyStats& latency) {
  return Json{{"count", latency.count}, {"p50", latency.p50_ms}, {"p90", latency.p90_ms},
              {"p99", latency.p99_ms},  {"max", latency.max_ms}, {"mean", latency.mean_ms}};
}

Json request_json(const RequestStats& stats) {
  return Json{{"name", stats.name},
              {"requests", stats.requests},
              {"errors", stats.errors},
              {"error_rate", stats.error_rate},
              {"latency_ms", latency_json(stats.latency)}};
}

Json outcomes_json(const std::vector<OutcomeCount>& outcomes) {
  Json json = Json::object();
  for (const auto& outcome : outcomes) json[outcome.outcome] = outcome.count;
  return json;
}

}  // namespace

void write_summary_json(std::ostream& out, const Summary& summary) {
  Json routes = Json::array();
  for (const auto& route : summary.routes) routes.push_back(request_json(route));
  Json clients = Json::array();
  for (const auto& client : summary.clients) clients.push_back(request_json(client));
  Json services = Json::array();
  for (const auto& service : summary.services) {
    services.push_back(Json{{"name", service.name},
                            {"requests", service.requests},
                            {"errors", service.errors},
                            {"error_rate", service.error_rate},
                            {"latency_ms", latency_json(service.latency)},
                            {"outcomes", outcomes_json(service.outcomes)},
                            {"calls", Json{{"attempts", service.call_attempts},
                                           {"retries", service.retries},
                                           {"outcomes", outcomes_json(service.call_outcomes)}}}});
  }
  Json slos = Json::array();
  for (const auto& slo : summary.slos) {
    Json checks = Json::array();
    for (const auto& check : slo.checks) {
      Json json;
      if (check.kind == SloCheck::Kind::latency) {
        json["kind"] = "latency";
        json["percentile"] = check.percentile;
        json["bound_ms"] = check.bound;
        json["observed_ms"] = check.verdict == Verdict::no_data ? Json() : Json(check.observed);
      } else {
        json["kind"] = "error_rate";
        json["bound"] = check.bound;
        json["observed"] = check.verdict == Verdict::no_data ? Json() : Json(check.observed);
      }
      json["verdict"] = to_string(check.verdict);
      checks.push_back(std::move(json));
    }
    slos.push_back(
        Json{{"route", slo.route}, {"verdict", to_string(slo.verdict)}, {"checks", checks}});
  }
  Json events = Json::object();
  for (const auto& [kind, count] : summary.events_by_kind) events[kind] = count;
  const Json json{
      {"format", "doppel-summary/v1"},
      {"duration_s", summary.duration_s},
      {"latency_relative_accuracy", summary.latency_relative_accuracy},
      {"slo_verdict", to_string(summary.slo_verdict)},
      {"total", request_json(summary.total)},
      {"routes", std::move(routes)},
      {"clients", std::move(clients)},
      {"services", std::move(services)},
      {"slos", std::move(slos)},
      {"spans", Json{{"server", summary.server_spans}, {"client", summary.client_spans}}},
      {"events", std::move(events)}};
  out << json.dump(2, ' ', false, Json::error_handler_t::replace) << '\n';
}

namespace {

void print_request_table(std::ostream& out, std::string_view title,
                         const std::vector<RequestStats>& rows) {
  out << fmt::format("{:<28} {:>10} {:>8} {:>8} {:>10} {:>10} {:>10} {:>10}\n", title, "requests",
                     "errors", "err%", "p50_ms", "p90_ms", "p99_ms", "max_ms");
  for (const auto& row : rows) {
    out << fmt::format("{:<28.28} {:>10} {:>8} {:>7.2f}% {:>10.2f} {:>10.2f} {:>10.2f} {:>10.2f}\n",
                       row.name, row.requests, row.errors, row.error_rate * 100.0,
                       row.latency.p50_ms, row.latency.p90_ms, row.latency.p99_ms,
                       row.latency.max_ms);
  }
  out << '\n';
}

std::string outcome_list(const std::vector<OutcomeCount>& outcomes) {
  std::string text;
  for (const auto& outcome : outcomes) {
    if (outcome.outcome == "ok" || outcome.count == 0) continue;
    if (!text.empty()) text += ' ';
    text += fmt::format("{}={}", outcome.outcome, outcome.count);
  }
  return text.empty() ? "-" : text;
}

}  // namespace

void print_summary_table(std::ostream& out, const Summary& summary) {
  out << fmt::format("Run of {:.3f} s simulated; percentiles within {:.1f}%; SLOs: {}\n\n",
                     summary.duration_s, summary.latency_relative_accuracy * 100.0,
                     to_string(summary.slo_verdict));
  std::vector<RequestStats> routes = summary.routes;
  routes.push_back(summary.total);
  print_request_table(out, "route", routes);
  print_request_table(out, "client", summary.clients);

  out << fmt::format("{:<28} {:>10} {:>8} {:>8} {:>10} {:>10} {:>10} {:>8}  {}\n", "service",
                     "requests", "errors", "err%", "p50_ms", "p99_ms", "calls", "retries",
                     "failed calls");
  for (const auto& service : summary.services) {
    out << fmt::format("{:<28.28} {:>10} {:>8} {:>7.2f}% {:>10.2f} {:>10.2f} {:>10} {:>8}  {}\n",
                       service.name, service.requests, service.errors, service.error_rate * 100.0,
                       service.latency.p50_ms, service.latency.p99_ms, service.call_attempts,
                       service.retries, outcome_list(service.call_outcomes));
  }
  out << '\n';

  if (summary.slos.empty()) return;
  out << fmt::format("{:<28} {:<16} {:>12} {:>12}  {}\n", "slo route", "check", "bound", "observed",
                     "verdict");
  for (const auto& slo : summary.slos) {
    for (const auto& check : slo.checks) {
      const bool latency = check.kind == SloCheck::Kind::latency;
      const std::string name =
          latency ? fmt::format("p{:g} latency", check.percentile) : std::string("error rate");
      const std::string bound = latency ? fmt::format("{:.2f} ms", check.bound)
                                        : fmt::format("{:.3f}%", check.bound * 100.0);
      const std::string observed = check.verdict == Verdict::no_data
                                       ? std::string("-")
                                       : (latency ? fmt::format("{:.2f} ms", check.observed)
                                                  : fmt::format("{:.3f}%", check.observed * 100.0));
      out << fmt::format("{:<28.28} {:<16} {:>12} {:>12}  {}\n", slo.route, name, bound, observed,
                         to_string(check.verdict));
    }
  }
}

}  // namespace doppel::telemetry
