#include "doppel/model/topology_loader.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <re2/re2.h>

#include "doppel/model/input_error.hpp"

#include "model/call_cycles.hpp"
#include "model/did_you_mean.hpp"
#include "model/json_reader.hpp"

namespace doppel::model {

namespace {

using detail::JsonObject;
using detail::JsonValue;

// Where each named thing was declared, for "already declared at ..." messages.
struct Declared {
  std::string pointer;
  std::string kind;  // "service", "datastore", ...
};

// A call that names a target, checked once every service and datastore is known.
struct PendingCall {
  std::size_t service = 0;
  std::size_t operation = 0;
  std::size_t step = 0;
  std::size_t call = 0;
  JsonValue value;  // the call object
};

class TopologyReader {
 public:
  TopologyReader(const std::string& file, std::vector<std::string>* warnings)
      : file_(file), warnings_(warnings) {}

  Topology read(const nlohmann::json& doc);

 private:
  void check_format(const JsonValue& root);
  void read_zones(const JsonValue& value);
  void read_network(const JsonValue& value);
  NetworkLink read_link(const JsonObject& object, NetworkLink defaults);
  Placement read_placement(const JsonValue& value);
  void read_services(const JsonValue& value);
  Operation read_operation(const JsonValue& value, std::size_t service_index,
                           std::size_t operation_index);
  Call read_call(const JsonValue& value);
  void read_datastores(const JsonValue& value);
  Distribution read_distribution(const JsonValue& value);
  EdgePolicy read_edge_fields(const JsonObject& object, EdgePolicy base);
  void read_edges(const JsonValue& value);
  void read_gateway(const JsonValue& value);
  void read_workload(const JsonValue& value);
  void read_slos(const JsonValue& value);

  // Cross-reference checks once everything is read.
  void check_calls();
  void check_call_cycles();
  void collect_warnings();

  void check_regex(const JsonValue& value, const std::string& pattern);
  void claim_component_name(const JsonValue& name_value, const std::string& name,
                            const std::string& kind);
  [[noreturn]] void fail_unknown_service(const JsonValue& at, const std::string& name,
                                         bool datastores_allowed);
  const Service& service_target(const JsonValue& at, const std::string& name);
  void warn(const std::string& pointer, const std::string& message);

  std::vector<std::string> zone_names() const;
  std::vector<std::string> service_names() const;
  std::vector<std::string> component_names() const;

  const std::string& file_;
  std::vector<std::string>* warnings_;
  Topology topology_;
  std::map<std::string, Declared, std::less<>> components_;    // services and datastores
  std::map<std::string, std::string, std::less<>> host_zone_;  // host -> its zone
  std::map<std::string, std::string, std::less<>> host_pointer_;
  std::vector<PendingCall> pending_calls_;
  std::vector<std::string> service_pointers_;
  std::vector<std::string> datastore_pointers_;
  std::vector<std::string> edge_pointers_;
};

template <typename T>
std::vector<std::string> names_of(const std::vector<T>& items) {
  std::vector<std::string> names;
  names.reserve(items.size());
  for (const auto& item : items) names.push_back(item.name);
  return names;
}

std::vector<std::string> TopologyReader::zone_names() const {
  return names_of(topology_.zones);
}
std::vector<std::string> TopologyReader::service_names() const {
  return names_of(topology_.services);
}
std::vector<std::string> TopologyReader::component_names() const {
  auto names = names_of(topology_.services);
  for (const auto& d : topology_.datastores) names.push_back(d.name);
  return names;
}

void TopologyReader::warn(const std::string& pointer, const std::string& message) {
  if (warnings_ != nullptr) warnings_->push_back(fmt::format("{}: {}", pointer, message));
}

void TopologyReader::check_format(const JsonValue& root) {
  if (!root.raw().is_object()) {
    root.fail(fmt::format("expected a topology object at the top level, got {}",
                          detail::describe_json_value(root.raw())));
  }
  // Checked before anything else: a trace or scenario file given by mistake should be told so,
  // not drown in unknown-field errors.
  const auto& raw = root.raw();
  auto it = raw.find("doppel");
  if (it == raw.end()) {
    root.fail(fmt::format(
        "missing required field \"doppel\": a topology file starts with \"doppel\": \"{}\"",
        kTopologyFormat));
  }
  const JsonValue version(file_, *it, "/doppel");
  const std::string format = version.as_string();
  if (format != kTopologyFormat) {
    version.fail(fmt::format("unsupported format \"{}\": this version of Doppel reads \"{}\"",
                             format, kTopologyFormat));
  }
}

Topology TopologyReader::read(const nlohmann::json& doc) {
  const JsonValue root(file_, doc, "");
  check_format(root);
  const JsonObject top =
      root.as_object({"doppel", "name", "description", "zones", "network", "services",
                      "edge_defaults", "edges", "datastores", "gateway", "workload", "slos"});
  topology_.name = top.at("name").as_string();
  if (auto description = top.find("description")) {
    topology_.description = description->as_string();
  }
  // Order matters: what is referenced is read before what refers to it.
  read_zones(top.at("zones"));
  if (auto network = top.find("network")) read_network(*network);
  if (auto datastores = top.find("datastores")) read_datastores(*datastores);
  read_services(top.at("services"));
  check_calls();
  check_call_cycles();
  if (auto defaults = top.find("edge_defaults")) {
    const JsonObject object = defaults->as_object(
        {"timeout_ms", "retries", "circuit_breaker", "load_balancing", "connection_pool"});
    topology_.edge_defaults = read_edge_fields(object, wildcard_edge_policy());
  }
  if (auto edges = top.find("edges")) read_edges(*edges);
  if (auto gateway = top.find("gateway")) read_gateway(*gateway);
  if (auto workload = top.find("workload")) read_workload(*workload);
  if (auto slos = top.find("slos")) read_slos(*slos);
  collect_warnings();
  return std::move(topology_);
}

NetworkLink TopologyReader::read_link(const JsonObject& object, NetworkLink defaults) {
  NetworkLink link = defaults;
  if (auto latency = object.find("latency_us")) link.latency_us = latency->number_at_least(0.0);
  if (auto bandwidth = object.find("bandwidth_mbps")) {
    link.bandwidth_mbps = bandwidth->number_above(0.0);
  }
  return link;
}

void TopologyReader::read_zones(const JsonValue& value) {
  std::map<std::string, std::string, std::less<>> zone_pointers;
  for (const auto& item : value.as_nonempty_array()) {
    const JsonObject object = item.as_object({"name", "latency_us", "bandwidth_mbps", "hosts"});
    Zone zone;
    const JsonValue name = object.at("name");
    zone.name = name.as_string();
    if (auto [it, fresh] = zone_pointers.emplace(zone.name, name.pointer()); !fresh) {
      name.fail(
          fmt::format("duplicate zone name \"{}\" (first declared at {})", zone.name, it->second));
    }
    zone.network = read_link(object, NetworkLink{});
    for (const auto& host_value : object.at("hosts").as_nonempty_array()) {
      const JsonObject host_object = host_value.as_object({"name", "cores", "speed"});
      Host host;
      const JsonValue host_name = host_object.at("name");
      host.name = host_name.as_string();
      if (auto it = host_pointer_.find(host.name); it != host_pointer_.end()) {
        host_name.fail(
            fmt::format("duplicate host name \"{}\" (first declared at {}; host names are global)",
                        host.name, it->second));
      }
      host_pointer_.emplace(host.name, host_name.pointer());
      host_zone_.emplace(host.name, zone.name);
      if (auto cores = host_object.find("cores")) host.cores = cores->int_at_least(1);
      if (auto speed = host_object.find("speed")) host.speed = speed->number_above(0.0);
      zone.hosts.push_back(std::move(host));
    }
    topology_.zones.push_back(std::move(zone));
  }
}

void TopologyReader::read_network(const JsonValue& value) {
  const JsonObject network = value.as_object({"inter_zone_default", "zone_links"});
  if (auto defaults = network.find("inter_zone_default")) {
    const JsonObject object = defaults->as_object({"latency_us", "bandwidth_mbps"});
    topology_.default_zone_link = read_link(object, topology_.default_zone_link);
  }
  if (auto links = network.find("zone_links")) {
    std::map<std::pair<std::string, std::string>, std::string> seen;
    for (const auto& item : links->as_array()) {
      const JsonObject object = item.as_object({"from", "to", "latency_us", "bandwidth_mbps"});
      ZoneLink link;
      for (auto [key, field] : {std::pair{"from", &link.from}, std::pair{"to", &link.to}}) {
        const JsonValue end = object.at(key);
        *field = end.as_string();
        if (topology_.find_zone(*field) == nullptr) {
          end.fail(fmt::format("unknown zone \"{}\"{}", *field,
                               detail::did_you_mean(*field, zone_names())));
        }
      }
      if (link.from == link.to) {
        object.at("to").fail(
            fmt::format("a zone link joins two different zones, got \"{}\" twice", link.to));
      }
      // Links are symmetric: a -> b and b -> a are the same link.
      auto key = std::minmax(link.from, link.to);
      if (auto [it, fresh] = seen.emplace(std::pair{key.first, key.second}, item.pointer());
          !fresh) {
        item.fail(fmt::format("duplicate zone link between \"{}\" and \"{}\" (first at {})",
                              link.from, link.to, it->second));
      }
      link.network = read_link(object, topology_.default_zone_link);
      topology_.zone_links.push_back(std::move(link));
    }
  }
}

Placement TopologyReader::read_placement(const JsonValue& value) {
  const JsonObject object = value.as_object({"zone", "host"});
  Placement placement;
  const JsonValue zone = object.at("zone");
  placement.zone = zone.as_string();
  if (topology_.find_zone(placement.zone) == nullptr) {
    zone.fail(fmt::format("unknown zone \"{}\"{}", placement.zone,
                          detail::did_you_mean(placement.zone, zone_names())));
  }
  if (auto host = object.find("host")) {
    placement.host = host->as_string();
    auto it = host_zone_.find(*placement.host);
    if (it == host_zone_.end()) {
      std::vector<std::string> hosts;
      for (const auto& h : topology_.find_zone(placement.zone)->hosts) hosts.push_back(h.name);
      host->fail(fmt::format("unknown host \"{}\"{}", *placement.host,
                             detail::did_you_mean(*placement.host, hosts)));
    }
    if (it->second != placement.zone) {
      host->fail(fmt::format("host \"{}\" is in zone \"{}\", not in zone \"{}\"", *placement.host,
                             it->second, placement.zone));
    }
  }
  return placement;
}

void TopologyReader::claim_component_name(const JsonValue& name_value, const std::string& name,
                                          const std::string& kind) {
  auto [it, fresh] = components_.emplace(name, Declared{name_value.pointer(), kind});
  if (fresh) return;
  if (it->second.kind == kind) {
    name_value.fail(fmt::format("duplicate {} name \"{}\" (first declared at {})", kind, name,
                                it->second.pointer));
  }
  name_value.fail(fmt::format(
      "name \"{}\" is already taken by the {} at {} (services and datastores share one name "
      "space)",
      name, it->second.kind, it->second.pointer));
}

Distribution TopologyReader::read_distribution(const JsonValue& value) {
  // The kind decides which other fields are allowed, so read it before checking keys.
  const JsonObject loose =
      value.as_object({"dist", "value_ms", "mean_ms", "median_ms", "sigma", "buckets"});
  const auto kind = loose.at("dist").as_enum<Distribution::Kind>(
      {{"constant", Distribution::Kind::constant},
       {"exponential", Distribution::Kind::exponential},
       {"lognormal", Distribution::Kind::lognormal},
       {"empirical", Distribution::Kind::empirical}});
  switch (kind) {
    case Distribution::Kind::constant: {
      const JsonObject object = value.as_object({"dist", "value_ms"});
      return Distribution::constant(object.at("value_ms").number_at_least(0.0));
    }
    case Distribution::Kind::exponential: {
      const JsonObject object = value.as_object({"dist", "mean_ms"});
      return Distribution::exponential(object.at("mean_ms").number_at_least(0.0));
    }
    case Distribution::Kind::lognormal: {
      const JsonObject object = value.as_object({"dist", "median_ms", "sigma"});
      const double median = object.at("median_ms").number_at_least(0.0);
      const double sigma = object.at("sigma").number_at_least(0.0);
      return Distribution::lognormal(median, sigma);
    }
    case Distribution::Kind::empirical: {
      const JsonObject object = value.as_object({"dist", "buckets"});
      const JsonValue buckets_value = object.at("buckets");
      std::vector<HistogramBucket> buckets;
      double previous_upper = 0.0;
      double total_weight = 0.0;
      for (const auto& item : buckets_value.as_nonempty_array()) {
        const JsonObject bucket_object = item.as_object({"upper_ms", "weight"});
        HistogramBucket bucket;
        const JsonValue upper = bucket_object.at("upper_ms");
        bucket.upper_ms = upper.number_at_least(0.0);
        if (!buckets.empty() && !(bucket.upper_ms > previous_upper)) {
          upper.fail(fmt::format("bucket bounds must ascend: {} is not above the previous bound {}",
                                 upper.raw().dump(), previous_upper));
        }
        bucket.weight = bucket_object.at("weight").number_at_least(0.0);
        previous_upper = bucket.upper_ms;
        total_weight += bucket.weight;
        buckets.push_back(bucket);
      }
      if (!(total_weight > 0.0)) buckets_value.fail("all bucket weights are zero");
      return Distribution::empirical(std::move(buckets));
    }
  }
  return {};
}

void TopologyReader::read_datastores(const JsonValue& value) {
  for (const auto& item : value.as_array()) {
    const JsonObject object =
        item.as_object({"name", "kind", "consistency", "primary", "replicas", "replication_lag_ms",
                        "max_connections", "workers", "key_space", "queries"});
    Datastore store;
    const JsonValue name = object.at("name");
    store.name = name.as_string();
    claim_component_name(name, store.name, "datastore");
    if (auto kind = object.find("kind")) {
      store.kind = kind->as_enum<DatastoreKind>({{"sql", DatastoreKind::sql},
                                                 {"kv", DatastoreKind::kv},
                                                 {"cache", DatastoreKind::cache},
                                                 {"queue", DatastoreKind::queue}});
    }
    if (auto consistency = object.find("consistency")) {
      store.consistency =
          consistency->as_enum<Consistency>({{"strong", Consistency::strong},
                                             {"eventual", Consistency::eventual},
                                             {"quorum", Consistency::quorum},
                                             {"read_your_writes", Consistency::read_your_writes}});
    }
    store.primary = read_placement(object.at("primary"));
    if (auto replicas = object.find("replicas")) {
      for (const auto& replica : replicas->as_array()) {
        store.replicas.push_back(read_placement(replica));
      }
    }
    if (auto lag = object.find("replication_lag_ms")) {
      store.replication_lag_ms = read_distribution(*lag);
    }
    if (auto max_connections = object.find("max_connections")) {
      store.max_connections = max_connections->int_at_least(1);
    }
    if (auto workers = object.find("workers")) store.workers = workers->int_at_least(1);
    if (auto key_space = object.find("key_space")) store.key_space = key_space->integer_at_least(1);
    std::map<std::string, std::string, std::less<>> query_pointers;
    for (const auto& query_value : object.at("queries").as_nonempty_array()) {
      const JsonObject query_object = query_value.as_object({"name", "type", "cost_ms"});
      Query query;
      const JsonValue query_name = query_object.at("name");
      query.name = query_name.as_string();
      if (auto [it, fresh] = query_pointers.emplace(query.name, query_name.pointer()); !fresh) {
        query_name.fail(
            fmt::format("duplicate query name \"{}\" in datastore \"{}\" (first "
                        "declared at {})",
                        query.name, store.name, it->second));
      }
      if (auto type = query_object.find("type")) {
        query.type =
            type->as_enum<QueryType>({{"read", QueryType::read}, {"write", QueryType::write}});
      }
      if (auto cost = query_object.find("cost_ms")) query.cost_ms = read_distribution(*cost);
      store.queries.push_back(std::move(query));
    }
    datastore_pointers_.push_back(item.pointer());
    topology_.datastores.push_back(std::move(store));
  }
}

Call TopologyReader::read_call(const JsonValue& value) {
  const JsonObject object = value.as_object(
      {"to", "operation", "count", "probability", "request_bytes", "response_bytes"});
  Call call;
  call.to = object.at("to").as_string();
  call.operation = object.at("operation").as_string();
  if (auto count = object.find("count")) call.count = count->number_at_least(0.0);
  if (auto probability = object.find("probability")) call.probability = probability->probability();
  if (auto bytes = object.find("request_bytes")) call.request_bytes = bytes->integer_at_least(0);
  if (auto bytes = object.find("response_bytes")) call.response_bytes = bytes->integer_at_least(0);
  return call;
}

Operation TopologyReader::read_operation(const JsonValue& value, std::size_t service_index,
                                         std::size_t operation_index) {
  const JsonObject object = value.as_object({"name", "cpu_ms", "error_rate", "steps"});
  Operation operation;
  operation.name = object.at("name").as_string();
  if (auto cpu = object.find("cpu_ms")) operation.cpu_ms = read_distribution(*cpu);
  if (auto error_rate = object.find("error_rate")) operation.error_rate = error_rate->probability();
  if (auto steps = object.find("steps")) {
    for (const auto& step_value : steps->as_array()) {
      const JsonObject step_object = step_value.as_object({"call", "parallel"});
      const auto single = step_object.find("call");
      const auto group = step_object.find("parallel");
      if (single && group) step_value.fail("a step has either \"call\" or \"parallel\", not both");
      if (!single && !group) step_value.fail("a step needs \"call\" or \"parallel\"");
      Step step;
      step.parallel = group.has_value();
      const std::vector<JsonValue> call_values =
          single ? std::vector<JsonValue>{*single} : group->as_nonempty_array();
      for (const auto& call_value : call_values) {
        pending_calls_.push_back(PendingCall{service_index, operation_index, operation.steps.size(),
                                             step.calls.size(), call_value});
        step.calls.push_back(read_call(call_value));
      }
      operation.steps.push_back(std::move(step));
    }
  }
  return operation;
}

void TopologyReader::read_services(const JsonValue& value) {
  for (const auto& item : value.as_nonempty_array()) {
    const JsonObject object = item.as_object(
        {"name", "replicas", "placement", "workers", "queue_capacity", "memory", "operations"});
    Service service;
    const JsonValue name = object.at("name");
    service.name = name.as_string();
    claim_component_name(name, service.name, "service");
    if (auto replicas = object.find("replicas")) service.replicas = replicas->int_at_least(1);
    for (const auto& placement : object.at("placement").as_nonempty_array()) {
      service.placement.push_back(read_placement(placement));
    }
    if (auto workers = object.find("workers")) service.workers = workers->int_at_least(1);
    if (auto queue = object.find("queue_capacity")) service.queue_capacity = queue->int_at_least(0);
    if (auto memory = object.find("memory")) {
      const JsonObject memory_object = memory->as_object({"base_mb", "per_request_kb"});
      if (auto base = memory_object.find("base_mb")) {
        service.memory.base_mb = base->number_at_least(0.0);
      }
      if (auto per_request = memory_object.find("per_request_kb")) {
        service.memory.per_request_kb = per_request->number_at_least(0.0);
      }
    }
    std::map<std::string, std::string, std::less<>> operation_pointers;
    const std::size_t service_index = topology_.services.size();
    const auto operation_values = object.at("operations").as_nonempty_array();
    for (std::size_t i = 0; i < operation_values.size(); ++i) {
      Operation operation = read_operation(operation_values[i], service_index, i);
      const std::string name_pointer = operation_values[i].pointer() + "/name";
      if (auto [it, fresh] = operation_pointers.emplace(operation.name, name_pointer); !fresh) {
        JsonValue(file_, operation_values[i].raw().at("name"), name_pointer)
            .fail(fmt::format("duplicate operation name \"{}\" in service \"{}\" (first "
                              "declared at {})",
                              operation.name, service.name, it->second));
      }
      service.operations.push_back(std::move(operation));
    }
    service_pointers_.push_back(item.pointer());
    topology_.services.push_back(std::move(service));
  }
}

void TopologyReader::fail_unknown_service(const JsonValue& at, const std::string& name,
                                          bool datastores_allowed) {
  if (!datastores_allowed && topology_.find_datastore(name) != nullptr) {
    at.fail(fmt::format("\"{}\" is a datastore; a service is needed here", name));
  }
  at.fail(fmt::format(
      "unknown service \"{}\"{}", name,
      detail::did_you_mean(name, datastores_allowed ? component_names() : service_names())));
}

void TopologyReader::check_calls() {
  for (const auto& pending : pending_calls_) {
    const Call& call = topology_.services[pending.service]
                           .operations[pending.operation]
                           .steps[pending.step]
                           .calls[pending.call];
    const JsonValue to(file_, pending.value.raw().at("to"), pending.value.pointer() + "/to");
    const JsonValue operation(file_, pending.value.raw().at("operation"),
                              pending.value.pointer() + "/operation");
    if (const Service* target = topology_.find_service(call.to)) {
      if (std::none_of(target->operations.begin(), target->operations.end(),
                       [&](const Operation& op) { return op.name == call.operation; })) {
        operation.fail(
            fmt::format("service \"{}\" has no operation \"{}\"{}", call.to, call.operation,
                        detail::did_you_mean(call.operation, names_of(target->operations))));
      }
    } else if (const Datastore* store = topology_.find_datastore(call.to)) {
      if (std::none_of(store->queries.begin(), store->queries.end(),
                       [&](const Query& q) { return q.name == call.operation; })) {
        operation.fail(fmt::format("datastore \"{}\" has no query \"{}\"{}", call.to,
                                   call.operation,
                                   detail::did_you_mean(call.operation, names_of(store->queries))));
      }
    } else {
      fail_unknown_service(to, call.to, true);
    }
  }
}

void TopologyReader::check_call_cycles() {
  std::vector<detail::OperationCall> calls;
  for (const auto& pending : pending_calls_) {
    const Service& caller = topology_.services[pending.service];
    const Call& call = caller.operations[pending.operation].steps[pending.step].calls[pending.call];
    if (topology_.find_service(call.to) == nullptr) continue;  // datastores call nothing
    calls.push_back(detail::OperationCall{{caller.name, caller.operations[pending.operation].name},
                                          {call.to, call.operation},
                                          pending.value.pointer()});
  }
  if (auto cycle = detail::find_call_cycle(topology_, calls)) {
    std::string path;
    for (const auto& op : cycle->path) {
      if (!path.empty()) path += " -> ";
      path += op.service + "." + op.operation;
    }
    throw InputError(file_, InputLocation{cycle->closing_call_pointer, {}, {}, {}},
                     fmt::format("call cycle: {} (a request's calls must form a DAG)", path));
  }
}

EdgePolicy TopologyReader::read_edge_fields(const JsonObject& object, EdgePolicy base) {
  EdgePolicy policy = std::move(base);
  if (auto timeout = object.find("timeout_ms")) policy.timeout_ms = timeout->number_above(0.0);
  if (auto retries = object.find("retries")) {
    const JsonObject retry =
        retries->as_object({"max", "backoff_base_ms", "backoff_cap_ms", "jitter", "budget_ratio"});
    if (auto max = retry.find("max")) policy.retry.max_retries = max->int_at_least(0);
    if (auto base_ms = retry.find("backoff_base_ms")) {
      policy.retry.backoff_base_ms = base_ms->number_at_least(0.0);
    }
    if (auto cap = retry.find("backoff_cap_ms")) {
      policy.retry.backoff_cap_ms = cap->number_at_least(0.0);
    }
    if (policy.retry.backoff_cap_ms < policy.retry.backoff_base_ms) {
      retries->fail(fmt::format("backoff_cap_ms ({}) is below backoff_base_ms ({})",
                                policy.retry.backoff_cap_ms, policy.retry.backoff_base_ms));
    }
    if (auto jitter = retry.find("jitter")) {
      policy.retry.jitter = jitter->as_enum<JitterKind>(
          {{"none", JitterKind::none}, {"full", JitterKind::full}, {"equal", JitterKind::equal}});
    }
    if (auto budget = retry.find("budget_ratio")) policy.retry.budget_ratio = budget->probability();
  }
  if (auto breaker = object.find("circuit_breaker")) {
    // null switches off a breaker inherited from edge_defaults.
    if (breaker->raw().is_null()) {
      policy.breaker.enabled = false;
    } else {
      const JsonObject cb = breaker->as_object(
          {"error_threshold", "min_requests", "window_s", "open_s", "half_open_probes"});
      policy.breaker.enabled = true;
      if (auto threshold = cb.find("error_threshold")) {
        policy.breaker.error_threshold = threshold->probability();
      }
      if (auto min = cb.find("min_requests")) policy.breaker.min_requests = min->int_at_least(1);
      if (auto window = cb.find("window_s")) policy.breaker.window_s = window->number_above(0.0);
      if (auto open = cb.find("open_s")) policy.breaker.open_s = open->number_at_least(0.0);
      if (auto probes = cb.find("half_open_probes")) {
        policy.breaker.half_open_probes = probes->int_at_least(1);
      }
    }
  }
  if (auto balancing = object.find("load_balancing")) {
    policy.load_balancing =
        balancing->as_enum<LoadBalancing>({{"round_robin", LoadBalancing::round_robin},
                                           {"least_request", LoadBalancing::least_request},
                                           {"power_of_two", LoadBalancing::power_of_two}});
  }
  if (auto pool = object.find("connection_pool")) {
    const JsonObject pool_object = pool->as_object({"size", "acquire_timeout_ms"});
    if (auto size = pool_object.find("size")) policy.pool.size = size->int_at_least(0);
    if (auto acquire = pool_object.find("acquire_timeout_ms")) {
      policy.pool.acquire_timeout_ms = acquire->number_at_least(0.0);
    }
  }
  return policy;
}

const Service& TopologyReader::service_target(const JsonValue& at, const std::string& name) {
  const Service* service = topology_.find_service(name);
  if (service == nullptr) fail_unknown_service(at, name, false);
  return *service;
}

void TopologyReader::read_edges(const JsonValue& value) {
  std::map<std::pair<std::string, std::string>, std::string> seen;
  for (const auto& item : value.as_array()) {
    const JsonObject object =
        item.as_object({"from", "to", "timeout_ms", "retries", "circuit_breaker", "load_balancing",
                        "connection_pool"});
    const JsonValue from = object.at("from");
    const JsonValue to = object.at("to");
    EdgePolicy base = topology_.edge_defaults;
    base.from = from.as_string();
    base.to = to.as_string();
    service_target(from, base.from);
    if (topology_.find_service(base.to) == nullptr &&
        topology_.find_datastore(base.to) == nullptr) {
      fail_unknown_service(to, base.to, true);
    }
    if (auto [it, fresh] = seen.emplace(std::pair{base.from, base.to}, item.pointer()); !fresh) {
      item.fail(fmt::format("duplicate edge \"{}\" -> \"{}\" (first at {})", base.from, base.to,
                            it->second));
    }
    topology_.edges.push_back(read_edge_fields(object, std::move(base)));
    edge_pointers_.push_back(item.pointer());
  }
}

void TopologyReader::check_regex(const JsonValue& value, const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  const RE2 regex(pattern, options);
  if (!regex.ok()) value.fail(fmt::format("invalid regex \"{}\": {}", pattern, regex.error()));
}

void TopologyReader::read_gateway(const JsonValue& value) {
  const JsonObject object = value.as_object({"latency_ms", "routes", "default"});
  Gateway& gateway = topology_.gateway;
  if (auto latency = object.find("latency_ms")) gateway.latency_ms = latency->number_at_least(0.0);
  auto read_target = [&](const JsonValue& target_value, std::string& service_out,
                         std::string& operation_out) {
    const JsonObject target = target_value.as_object({"service", "operation"});
    const JsonValue service_value = target.at("service");
    const JsonValue operation_value = target.at("operation");
    service_out = service_value.as_string();
    operation_out = operation_value.as_string();
    const Service& service = service_target(service_value, service_out);
    if (std::none_of(service.operations.begin(), service.operations.end(),
                     [&](const Operation& op) { return op.name == operation_out; })) {
      operation_value.fail(
          fmt::format("service \"{}\" has no operation \"{}\"{}", service_out, operation_out,
                      detail::did_you_mean(operation_out, names_of(service.operations))));
    }
  };
  if (auto routes = object.find("routes")) {
    std::map<std::string, std::string, std::less<>> route_pointers;
    for (const auto& item : routes->as_array()) {
      const JsonObject route_object =
          item.as_object({"name", "method", "path_prefix", "path_regex", "headers", "to"});
      Route route;
      const JsonValue name = route_object.at("name");
      route.name = name.as_string();
      if (auto [it, fresh] = route_pointers.emplace(route.name, name.pointer()); !fresh) {
        name.fail(fmt::format("duplicate route name \"{}\" (first declared at {})", route.name,
                              it->second));
      }
      if (auto method = route_object.find("method")) route.method = method->as_string();
      if (auto prefix = route_object.find("path_prefix")) route.path_prefix = prefix->as_string();
      if (auto regex = route_object.find("path_regex")) {
        route.path_regex = regex->as_string();
        check_regex(*regex, *route.path_regex);
      }
      if (auto headers = route_object.find("headers")) {
        for (const auto& header_value : headers->as_array()) {
          const JsonObject header_object = header_value.as_object({"name", "regex"});
          HeaderMatch header;
          header.name = header_object.at("name").as_string();
          const JsonValue regex = header_object.at("regex");
          header.regex = regex.as_string();
          check_regex(regex, header.regex);
          route.headers.push_back(std::move(header));
        }
      }
      read_target(route_object.at("to"), route.service, route.operation);
      gateway.routes.push_back(std::move(route));
    }
  }
  if (auto fallback = object.find("default")) {
    std::string service;
    std::string operation;
    read_target(*fallback, service, operation);
    gateway.default_service = service;
    gateway.default_operation = operation;
  }
}

void TopologyReader::read_workload(const JsonValue& value) {
  const JsonObject object = value.as_object({"duration_s", "clients"});
  Workload& workload = topology_.workload;
  if (auto duration = object.find("duration_s")) workload.duration_s = duration->number_above(0.0);
  if (auto clients = object.find("clients")) {
    std::map<std::string, std::string, std::less<>> client_pointers;
    for (const auto& item : clients->as_array()) {
      const JsonObject client_object = item.as_object({"name", "zone", "headers", "rate", "mix"});
      ClientClass client;
      const JsonValue name = client_object.at("name");
      client.name = name.as_string();
      if (auto [it, fresh] = client_pointers.emplace(client.name, name.pointer()); !fresh) {
        name.fail(fmt::format("duplicate client class name \"{}\" (first declared at {})",
                              client.name, it->second));
      }
      if (auto zone = client_object.find("zone")) {
        client.zone = zone->as_string();
        if (topology_.find_zone(client.zone) == nullptr) {
          zone->fail(fmt::format("unknown zone \"{}\"{}", client.zone,
                                 detail::did_you_mean(client.zone, zone_names())));
        }
      }
      if (auto headers = client_object.find("headers")) {
        for (const auto& [header_name, header_value] : headers->as_map()) {
          client.headers.emplace(header_name, header_value.as_string());
        }
      }
      const JsonValue rate = client_object.at("rate");
      if (rate.raw().is_number()) {
        client.rate.push_back(RatePoint{0.0, rate.number_at_least(0.0)});
      } else {
        if (!rate.raw().is_array()) {
          rate.fail(
              fmt::format("expected a number (requests per second) or an array of "
                          "{{\"at_s\", \"rps\"}} points, got {}",
                          detail::describe_json_value(rate.raw())));
        }
        for (const auto& point_value : rate.as_nonempty_array()) {
          const JsonObject point_object = point_value.as_object({"at_s", "rps"});
          RatePoint point;
          const JsonValue at = point_object.at("at_s");
          point.at_s = at.number_at_least(0.0);
          if (!client.rate.empty() && !(point.at_s > client.rate.back().at_s)) {
            at.fail(fmt::format("rate points must ascend in time: {} is not after {}",
                                at.raw().dump(), client.rate.back().at_s));
          }
          point.rps = point_object.at("rps").number_at_least(0.0);
          client.rate.push_back(point);
        }
      }
      const JsonValue mix = client_object.at("mix");
      double total_weight = 0.0;
      for (const auto& kind_value : mix.as_nonempty_array()) {
        const JsonObject kind_object = kind_value.as_object({"method", "path", "weight"});
        RequestKind kind;
        if (auto method = kind_object.find("method")) kind.method = method->as_string();
        if (auto path = kind_object.find("path")) kind.path = path->as_string();
        if (auto weight = kind_object.find("weight")) kind.weight = weight->number_at_least(0.0);
        total_weight += kind.weight;
        client.mix.push_back(std::move(kind));
      }
      if (!(total_weight > 0.0)) mix.fail("all mix weights are zero");
      workload.clients.push_back(std::move(client));
    }
  }
}

void TopologyReader::read_slos(const JsonValue& value) {
  for (const auto& item : value.as_array()) {
    const JsonObject object = item.as_object({"route", "latency", "max_error_rate"});
    Slo slo;
    const JsonValue route = object.at("route");
    slo.route = route.as_string();
    if (topology_.find_route(slo.route) == nullptr) {
      route.fail(fmt::format("unknown route \"{}\"{}", slo.route,
                             detail::did_you_mean(slo.route, names_of(topology_.gateway.routes))));
    }
    if (auto latency = object.find("latency")) {
      for (const auto& bound_value : latency->as_array()) {
        const JsonObject bound_object = bound_value.as_object({"percentile", "max_ms"});
        LatencyBound bound;
        const JsonValue percentile = bound_object.at("percentile");
        bound.percentile = percentile.as_number();
        if (!(bound.percentile > 0.0 && bound.percentile <= 100.0)) {
          percentile.fail(fmt::format("must be in (0, 100], got {}", percentile.raw().dump()));
        }
        bound.max_ms = bound_object.at("max_ms").number_at_least(0.0);
        slo.latency.push_back(bound);
      }
    }
    if (auto error_rate = object.find("max_error_rate")) {
      slo.max_error_rate = error_rate->probability();
    }
    if (slo.latency.empty() && !slo.max_error_rate) {
      warn(item.pointer(),
           "this SLO has neither latency bounds nor max_error_rate: it always holds");
    }
    topology_.slos.push_back(std::move(slo));
  }
}

void TopologyReader::collect_warnings() {
  if (warnings_ == nullptr) return;
  std::set<std::string, std::less<>> called;
  std::set<std::pair<std::string, std::string>> used_pairs;
  for (const auto& service : topology_.services) {
    for (const auto& operation : service.operations) {
      for (const auto& step : operation.steps) {
        for (const auto& call : step.calls) {
          called.insert(call.to);
          used_pairs.emplace(service.name, call.to);
        }
      }
    }
  }
  for (const auto& route : topology_.gateway.routes) called.insert(route.service);
  if (topology_.gateway.default_service) called.insert(*topology_.gateway.default_service);
  for (std::size_t i = 0; i < topology_.services.size(); ++i) {
    if (!called.contains(topology_.services[i].name)) {
      warn(service_pointers_[i], fmt::format("service \"{}\" is never called: no route and no "
                                             "operation leads to it",
                                             topology_.services[i].name));
    }
  }
  for (std::size_t i = 0; i < topology_.datastores.size(); ++i) {
    if (!called.contains(topology_.datastores[i].name)) {
      warn(datastore_pointers_[i],
           fmt::format("datastore \"{}\" is never queried", topology_.datastores[i].name));
    }
  }
  for (std::size_t i = 0; i < topology_.edges.size(); ++i) {
    const auto& edge = topology_.edges[i];
    if (!used_pairs.contains({edge.from, edge.to})) {
      warn(edge_pointers_[i], fmt::format("no operation of \"{}\" calls \"{}\": this edge policy "
                                          "is never used",
                                          edge.from, edge.to));
    }
  }
  if (!topology_.workload.clients.empty() && topology_.gateway.routes.empty() &&
      !topology_.gateway.default_service) {
    warn("/gateway",
         "the workload has clients but the gateway has no routes and no default: "
         "every request gets a 404");
  }
}

}  // namespace

Topology parse_topology(const nlohmann::json& doc, const std::string& file_label,
                        std::vector<std::string>* warnings) {
  return TopologyReader(file_label, warnings).read(doc);
}

Topology parse_topology_text(std::string_view text, const std::string& file_label,
                             std::vector<std::string>* warnings) {
  return parse_topology(detail::parse_json_text(text, file_label), file_label, warnings);
}

Topology load_topology(const std::filesystem::path& file, std::vector<std::string>* warnings) {
  const std::string label = file.string();
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(label, InputLocation{}, "cannot open the file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw InputError(label, InputLocation{}, "cannot read the file");
  return parse_topology_text(text.str(), label, warnings);
}

}  // namespace doppel::model
