// topology_to_json: the canonical topology/v1 document. Every field is written, with the
// values the loader resolved (defaults filled in, edges complete), so the output reads back
// to an equal Topology and two equal topologies print identically.
#include "doppel/model/topology_loader.hpp"

namespace doppel::model {

namespace {

using nlohmann::json;

json link_to_json(const NetworkLink& link) {
  return {{"latency_us", link.latency_us}, {"bandwidth_mbps", link.bandwidth_mbps}};
}

json placement_to_json(const Placement& placement) {
  json out = {{"zone", placement.zone}};
  if (placement.host) out["host"] = *placement.host;
  return out;
}

json distribution_to_json(const Distribution& d) {
  switch (d.kind) {
    case Distribution::Kind::constant:
      return {{"dist", "constant"}, {"value_ms", d.value_ms}};
    case Distribution::Kind::exponential:
      return {{"dist", "exponential"}, {"mean_ms", d.mean_ms}};
    case Distribution::Kind::lognormal:
      return {{"dist", "lognormal"}, {"median_ms", d.median_ms}, {"sigma", d.sigma}};
    case Distribution::Kind::empirical: {
      json buckets = json::array();
      for (const auto& b : d.buckets) {
        buckets.push_back({{"upper_ms", b.upper_ms}, {"weight", b.weight}});
      }
      return {{"dist", "empirical"}, {"buckets", buckets}};
    }
  }
  return {};
}

json call_to_json(const Call& call) {
  return {{"to", call.to},
          {"operation", call.operation},
          {"count", call.count},
          {"probability", call.probability},
          {"request_bytes", call.request_bytes},
          {"response_bytes", call.response_bytes}};
}

json service_to_json(const Service& service) {
  json placement = json::array();
  for (const auto& p : service.placement) placement.push_back(placement_to_json(p));
  json operations = json::array();
  for (const auto& op : service.operations) {
    json steps = json::array();
    for (const auto& step : op.steps) {
      if (step.parallel) {
        json group = json::array();
        for (const auto& call : step.calls) group.push_back(call_to_json(call));
        steps.push_back({{"parallel", group}});
      } else {
        steps.push_back({{"call", call_to_json(step.calls.front())}});
      }
    }
    operations.push_back({{"name", op.name},
                          {"cpu_ms", distribution_to_json(op.cpu_ms)},
                          {"error_rate", op.error_rate},
                          {"steps", steps}});
  }
  return {
      {"name", service.name},
      {"replicas", service.replicas},
      {"placement", placement},
      {"workers", service.workers},
      {"queue_capacity", service.queue_capacity},
      {"memory",
       {{"base_mb", service.memory.base_mb}, {"per_request_kb", service.memory.per_request_kb}}},
      {"operations", operations}};
}

std::string_view jitter_name(JitterKind jitter) {
  switch (jitter) {
    case JitterKind::none:
      return "none";
    case JitterKind::full:
      return "full";
    case JitterKind::equal:
      return "equal";
  }
  return "full";
}

std::string_view balancing_name(LoadBalancing balancing) {
  switch (balancing) {
    case LoadBalancing::round_robin:
      return "round_robin";
    case LoadBalancing::least_request:
      return "least_request";
    case LoadBalancing::power_of_two:
      return "power_of_two";
  }
  return "round_robin";
}

// The policy fields shared by edge_defaults and edges. A disabled breaker is written as null
// on an edge whose defaults enable one, so that reading it back does not inherit the breaker.
json policy_fields_to_json(const EdgePolicy& policy, const EdgePolicy* defaults) {
  json out = {
      {"timeout_ms", policy.timeout_ms},
      {"retries",
       {{"max", policy.retry.max_retries},
        {"backoff_base_ms", policy.retry.backoff_base_ms},
        {"backoff_cap_ms", policy.retry.backoff_cap_ms},
        {"jitter", jitter_name(policy.retry.jitter)},
        {"budget_ratio", policy.retry.budget_ratio}}},
      {"load_balancing", balancing_name(policy.load_balancing)},
      {"connection_pool",
       {{"size", policy.pool.size}, {"acquire_timeout_ms", policy.pool.acquire_timeout_ms}}}};
  const CircuitBreakerPolicy& cb = policy.breaker;
  if (cb.enabled) {
    out["circuit_breaker"] = {{"error_threshold", cb.error_threshold},
                              {"min_requests", cb.min_requests},
                              {"window_s", cb.window_s},
                              {"open_s", cb.open_s},
                              {"half_open_probes", cb.half_open_probes}};
  } else if (defaults != nullptr && defaults->breaker.enabled) {
    out["circuit_breaker"] = nullptr;
  }
  return out;
}

std::string_view kind_name(DatastoreKind kind) {
  switch (kind) {
    case DatastoreKind::sql:
      return "sql";
    case DatastoreKind::kv:
      return "kv";
    case DatastoreKind::cache:
      return "cache";
    case DatastoreKind::queue:
      return "queue";
  }
  return "kv";
}

std::string_view consistency_name(Consistency consistency) {
  switch (consistency) {
    case Consistency::strong:
      return "strong";
    case Consistency::eventual:
      return "eventual";
    case Consistency::quorum:
      return "quorum";
    case Consistency::read_your_writes:
      return "read_your_writes";
  }
  return "strong";
}

json datastore_to_json(const Datastore& store) {
  json replicas = json::array();
  for (const auto& r : store.replicas) replicas.push_back(placement_to_json(r));
  json queries = json::array();
  for (const auto& q : store.queries) {
    queries.push_back({{"name", q.name},
                       {"type", q.type == QueryType::read ? "read" : "write"},
                       {"cost_ms", distribution_to_json(q.cost_ms)}});
  }
  return {{"name", store.name},
          {"kind", kind_name(store.kind)},
          {"consistency", consistency_name(store.consistency)},
          {"primary", placement_to_json(store.primary)},
          {"replicas", replicas},
          {"replication_lag_ms", distribution_to_json(store.replication_lag_ms)},
          {"max_connections", store.max_connections},
          {"workers", store.workers},
          {"key_space", store.key_space},
          {"queries", queries}};
}

json gateway_to_json(const Gateway& gateway) {
  json routes = json::array();
  for (const auto& route : gateway.routes) {
    json out = {{"name", route.name}};
    if (route.method) out["method"] = *route.method;
    if (route.path_prefix) out["path_prefix"] = *route.path_prefix;
    if (route.path_regex) out["path_regex"] = *route.path_regex;
    json headers = json::array();
    for (const auto& h : route.headers) headers.push_back({{"name", h.name}, {"regex", h.regex}});
    out["headers"] = headers;
    out["to"] = {{"service", route.service}, {"operation", route.operation}};
    routes.push_back(std::move(out));
  }
  json out = {{"latency_ms", gateway.latency_ms}, {"routes", routes}};
  if (gateway.default_service && gateway.default_operation) {
    out["default"] = {{"service", *gateway.default_service},
                      {"operation", *gateway.default_operation}};
  }
  return out;
}

json workload_to_json(const Workload& workload) {
  json clients = json::array();
  for (const auto& client : workload.clients) {
    json rate = json::array();
    for (const auto& point : client.rate)
      rate.push_back({{"at_s", point.at_s}, {"rps", point.rps}});
    json mix = json::array();
    for (const auto& kind : client.mix) {
      mix.push_back({{"method", kind.method}, {"path", kind.path}, {"weight", kind.weight}});
    }
    json out = {
        {"name", client.name}, {"headers", json(client.headers)}, {"rate", rate}, {"mix", mix}};
    if (!client.zone.empty()) out["zone"] = client.zone;
    clients.push_back(std::move(out));
  }
  return {{"duration_s", workload.duration_s}, {"clients", clients}};
}

json slos_to_json(const std::vector<Slo>& slos) {
  json out = json::array();
  for (const auto& slo : slos) {
    json latency = json::array();
    for (const auto& bound : slo.latency) {
      latency.push_back({{"percentile", bound.percentile}, {"max_ms", bound.max_ms}});
    }
    json item = {{"route", slo.route}, {"latency", latency}};
    if (slo.max_error_rate) item["max_error_rate"] = *slo.max_error_rate;
    out.push_back(std::move(item));
  }
  return out;
}

}  // namespace

nlohmann::json topology_to_json(const Topology& topology) {
  json zones = json::array();
  for (const auto& zone : topology.zones) {
    json hosts = json::array();
    for (const auto& host : zone.hosts) {
      hosts.push_back({{"name", host.name}, {"cores", host.cores}, {"speed", host.speed}});
    }
    zones.push_back({{"name", zone.name},
                     {"latency_us", zone.network.latency_us},
                     {"bandwidth_mbps", zone.network.bandwidth_mbps},
                     {"hosts", hosts}});
  }
  json zone_links = json::array();
  for (const auto& link : topology.zone_links) {
    json out = link_to_json(link.network);
    out["from"] = link.from;
    out["to"] = link.to;
    zone_links.push_back(std::move(out));
  }
  json services = json::array();
  for (const auto& service : topology.services) services.push_back(service_to_json(service));
  json edges = json::array();
  for (const auto& edge : topology.edges) {
    json out = policy_fields_to_json(edge, &topology.edge_defaults);
    out["from"] = edge.from;
    out["to"] = edge.to;
    edges.push_back(std::move(out));
  }
  json datastores = json::array();
  for (const auto& store : topology.datastores) datastores.push_back(datastore_to_json(store));
  return {{"doppel", kTopologyFormat},
          {"name", topology.name},
          {"description", topology.description},
          {"zones", zones},
          {"network",
           {{"inter_zone_default", link_to_json(topology.default_zone_link)},
            {"zone_links", zone_links}}},
          {"services", services},
          {"edge_defaults", policy_fields_to_json(topology.edge_defaults, nullptr)},
          {"edges", edges},
          {"datastores", datastores},
          {"gateway", gateway_to_json(topology.gateway)},
          {"workload", workload_to_json(topology.workload)},
          {"slos", slos_to_json(topology.slos)}};
}

}  // namespace doppel::model
