#include "doppel/experiments/candidates.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "doppel/faults/scenario.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/service_graph.hpp"

namespace doppel::experiments {

namespace {

using Json = nlohmann::json;

Candidate make(std::string kind, std::string component, const std::string& magnitude,
               std::string description, Json injection) {
  Candidate candidate;
  candidate.cause = kind + "@" + component;
  candidate.name = magnitude.empty() ? candidate.cause : candidate.cause + " " + magnitude;
  candidate.kind = std::move(kind);
  candidate.component = std::move(component);
  candidate.components = {candidate.component};
  candidate.description = std::move(description);
  injection["name"] = candidate.name;
  if (!injection.contains("kind")) injection["kind"] = candidate.kind;
  injection["start_s"] = 0;
  candidate.injections.push_back(std::move(injection));
  return candidate;
}

Candidate no_fault() {
  Candidate candidate;
  candidate.name = "no fault";
  candidate.cause = candidate.name;
  candidate.description = "nothing happened: the symptoms are noise (the null hypothesis)";
  candidate.null_hypothesis = true;
  return candidate;
}

// The scenario a candidate runs as, for checking it against the topology.
Json scenario_document(const Json& injections) {
  return Json{{"doppel", faults::kScenarioFormat},
              {"name", "candidate"},
              {"duration_s", 60},
              {"injections", injections}};
}

std::vector<std::string> witnesses_in(const model::Topology& topology,
                                      const model::ServiceGraph& graph,
                                      const std::string& service) {
  std::vector<std::string> prefixes;
  const auto add = [&](std::string prefix) {
    if (std::find(prefixes.begin(), prefixes.end(), prefix) == prefixes.end()) {
      prefixes.push_back(std::move(prefix));
    }
  };
  if (const auto vertex = graph.find(service)) {
    for (auto [edge, end] = boost::in_edges(*vertex, graph.graph()); edge != end; ++edge) {
      const std::string& caller = graph.graph()[*edge].from;
      add(caller + "_err");
      add(caller + "_lat_");
      add(caller + "_to_" + service + "_");
    }
  }
  for (const auto& route : topology.gateway.routes) {
    if (route.service != service) continue;
    add("route_" + route.name + "_err");
    add("route_" + route.name + "_lat_");
  }
  if (topology.gateway.default_service == service) {
    add("all_routes_err");
    add("all_routes_lat_");
  }
  return prefixes;
}

// Every host the service's instances may run on: the named ones, or all of an unpinned
// placement's zone (the twin spreads instances over a zone's hosts by its own rule, which is
// not ours to re-derive). Empty when a placement's zone is unknown or has no host.
std::set<std::string> possible_hosts(const model::Topology& topology,
                                     const model::Service& service) {
  std::set<std::string> hosts;
  const std::size_t used = std::min<std::size_t>(
      service.placement.size(), static_cast<std::size_t>(std::max(1, service.replicas)));
  for (std::size_t i = 0; i < used; ++i) {
    const auto& placement = service.placement[i];
    if (placement.host) {
      hosts.insert(*placement.host);
      continue;
    }
    const auto* zone = topology.find_zone(placement.zone);
    if (zone == nullptr || zone->hosts.empty()) return {};
    for (const auto& host : zone->hosts) hosts.insert(host.name);
  }
  return hosts;
}

// The one host every instance of the service runs on, when the topology says so: each used
// placement names it, or its zone has that single host.
std::optional<std::string> only_host(const model::Topology& topology,
                                     const model::Service& service) {
  const auto hosts = possible_hosts(topology, service);
  if (hosts.size() != 1) return std::nullopt;
  return *hosts.begin();
}

// Stress on a host shows in its own CPU metrics (<host>_host_cpu...).
std::vector<std::string> host_witnesses(const model::Topology& topology,
                                        const model::Service& service) {
  std::vector<std::string> prefixes;
  for (const auto& host : possible_hosts(topology, service)) prefixes.push_back(host + "_host_");
  return prefixes;
}

// The hosts of the service's instances when every used placement names its host: where a
// stress on one of them is known exactly. nullopt when a placement leaves the host to the twin.
std::optional<std::set<std::string>> pinned_hosts(const model::Service& service) {
  std::set<std::string> hosts;
  const std::size_t used = std::min<std::size_t>(
      service.placement.size(), static_cast<std::size_t>(std::max(1, service.replicas)));
  if (used == 0) return std::nullopt;
  for (std::size_t i = 0; i < used; ++i) {
    if (!service.placement[i].host) return std::nullopt;
    hosts.insert(*service.placement[i].host);
  }
  return hosts;
}

bool on_several_hosts(const model::Topology& topology, const model::Service& service) {
  return service.replicas > 1 && !only_host(topology, service);
}

}  // namespace

std::vector<std::string> witness_prefixes(const model::Topology& topology,
                                          const std::string& service) {
  return witnesses_in(topology, model::ServiceGraph(topology), service);
}

std::vector<Candidate> auto_candidates(const model::Topology& topology,
                                       const AutoCandidateOptions& options) {
  const model::ServiceGraph graph(topology);
  // Services sharing a known host: stress on that host is one simulation, whichever service
  // is named. A noisy neighbour takes one machine, so a replicated service pinned to several
  // hosts gets one candidate per host rather than one per "one of its hosts": variants of
  // services that draw the same host would be identical simulations splitting the probability.
  std::map<std::string, std::vector<std::string>> services_on_host;
  for (const auto& service : topology.services) {
    if (const auto host = only_host(topology, service)) {
      services_on_host[*host].push_back(service.name);
    } else if (const auto hosts = pinned_hosts(service)) {
      for (const auto& host : *hosts) services_on_host[host].push_back(service.name);
    }
  }
  // Replicated services pinned to the same hosts: stress on all of them is one simulation too.
  std::map<std::set<std::string>, std::vector<std::string>> services_on_hosts;
  for (const auto& service : topology.services) {
    const auto hosts = pinned_hosts(service);
    if (hosts && hosts->size() > 1) services_on_hosts[*hosts].push_back(service.name);
  }
  // A fault on the requests to what no client request reaches (Sock Shop's queue-master, an
  // asynchronous consumer) is the null hypothesis again: identical runs that would share its
  // probability, a cause with three such variants taking three shares.
  const auto reached_names = model::reached_by_requests(topology, graph);
  const std::set<std::string> reached(reached_names.begin(), reached_names.end());
  std::vector<Candidate> candidates = {no_fault()};
  std::set<std::string> stressed_hosts;
  const auto stress_host = [&](const std::string& host) {
    if (!stressed_hosts.insert(host).second) return;
    const auto& sharing = services_on_host[host];
    for (const double share : options.cpu_stress_share) {
      Candidate stress =
          make("cpu_stress", host, fmt::format("{:g}%", share * 100.0),
               fmt::format("{:g}% of {}'s cores taken (it runs {})", share * 100.0, host,
                           fmt::join(sharing, ", ")),
               Json{{"target", {{"host", host}}}, {"parameters", {{"share", share}}}});
      stress.components = sharing;
      stress.witnesses = {host + "_host_"};
      candidates.push_back(std::move(stress));
    }
  };

  for (const auto& service : topology.services) {
    const std::string& name = service.name;
    const Json target{{"service", name}};
    const std::size_t first_of_service = candidates.size();
    const bool requests_reach = reached.contains(name);
    for (const double ms : requests_reach ? options.latency_ms : std::vector<double>{}) {
      candidates.push_back(make("latency", name, fmt::format("{:g}ms", ms),
                                fmt::format("{:g} ms added to every request to {}", ms, name),
                                Json{{"target", target}, {"parameters", {{"ms", ms}}}}));
    }
    const auto host = only_host(topology, service);
    if (host && services_on_host[*host].size() > 1) {
      stress_host(*host);
    } else {
      const auto pinned = pinned_hosts(service);
      const bool alike = pinned && pinned->size() > 1 && services_on_hosts[*pinned].size() > 1;
      const std::string hosts = pinned ? fmt::format("{}", fmt::join(*pinned, "+")) : "";
      if (!alike) {
        for (const double share : options.cpu_stress_share) {
          candidates.push_back(
              make("cpu_stress", name, fmt::format("{:g}%", share * 100.0),
                   fmt::format("{:g}% of the cores of {}'s hosts taken", share * 100.0, name),
                   Json{{"target", target}, {"parameters", {{"share", share}}}}));
        }
      } else if (stressed_hosts.insert(hosts).second) {
        // Named after the hosts, listing the services pinned to exactly them.
        const auto& sharing = services_on_hosts[*pinned];
        for (const double share : options.cpu_stress_share) {
          Candidate stress =
              make("cpu_stress", hosts, fmt::format("{:g}%", share * 100.0),
                   fmt::format("{:g}% of the cores of {} taken (they run {})", share * 100.0,
                               fmt::join(*pinned, " and "), fmt::join(sharing, ", ")),
                   Json{{"target", target}, {"parameters", {{"share", share}}}});
          stress.components = sharing;
          candidates.push_back(std::move(stress));
        }
      }
      if (on_several_hosts(topology, service) && pinned) {
        for (const auto& one : *pinned) stress_host(one);
      } else if (on_several_hosts(topology, service)) {
        // Hosts the twin picks in a zone: each instance's host in turn (the host of
        // instance k is the twin's choice, not re-derived here). Instances sharing a host
        // are identical runs, summed into the same cause.
        for (int instance = 0; instance < service.replicas; ++instance) {
          for (const double share : options.cpu_stress_share) {
            candidates.push_back(make(
                "cpu_stress", name, fmt::format("instance {} host {:g}%", instance, share * 100.0),
                fmt::format("{:g}% of the cores of the host of {}/{} taken", share * 100.0, name,
                            instance),
                Json{{"target", {{"service", name}, {"instance", instance}}},
                     {"parameters", {{"share", share}}}}));
          }
        }
      }
    }
    for (const double rate : requests_reach ? options.error_rate : std::vector<double>{}) {
      candidates.push_back(make("error_rate", name, fmt::format("{:g}%", rate * 100.0),
                                fmt::format("{} fails {:g}% of its requests", name, rate * 100.0),
                                Json{{"target", target}, {"parameters", {{"rate", rate}}}}));
    }
    for (const double rate : requests_reach ? options.packet_loss_rate : std::vector<double>{}) {
      candidates.push_back(
          make("packet_loss", name, fmt::format("{:g}%", rate * 100.0),
               fmt::format("{:g}% of packets to and from {} lost", rate * 100.0, name),
               Json{{"target", target}, {"parameters", {{"rate", rate}}}}));
    }
    if (service.replicas <= 1) {
      candidates.push_back(make("instance_crash", name, "one",
                                fmt::format("one instance of {} crashes", name),
                                Json{{"target", {{"service", name}, {"mode", "one"}}}}));
    } else {
      // Which instance matters: its host's metrics fall, the others' do not.
      for (int instance = 0; instance < service.replicas; ++instance) {
        candidates.push_back(make("instance_crash", name, fmt::format("instance {}", instance),
                                  fmt::format("instance {} of {} crashes", instance, name),
                                  Json{{"target", {{"service", name}, {"instance", instance}}}}));
      }
      candidates.push_back(make("instance_crash", name, "all",
                                fmt::format("every instance of {} crashes", name),
                                Json{{"target", target}}));
    }
    if (requests_reach) {
      candidates.push_back(make("dns_failure", name, "", fmt::format("{} stops resolving", name),
                                Json{{"target", target}}));
    }
    const auto witnesses = witnesses_in(topology, graph, name);
    const auto hosts = host_witnesses(topology, service);
    for (std::size_t c = first_of_service; c < candidates.size(); ++c) {
      auto& candidate = candidates[c];
      if (candidate.kind == "cpu_stress") {
        // Host candidates made here carry their own host's witnesses.
        if (candidate.witnesses.empty()) candidate.witnesses = hosts;
        continue;
      }
      candidate.witnesses = witnesses;
      // A crashed instance stops using its host's CPU: the host's metrics show it even where
      // the service's callers, retrying on the other replicas, hardly do.
      if (candidate.kind == "instance_crash") {
        candidate.witnesses.insert(candidate.witnesses.end(), hosts.begin(), hosts.end());
      }
    }
  }
  for (const auto& datastore : topology.datastores) {
    const std::string& name = datastore.name;
    const Json target{{"datastore", name}};
    if (!reached.contains(name)) continue;  // nothing queries it
    for (const double factor : options.datastore_slowdown_factor) {
      candidates.push_back(
          make("datastore_slowdown", name, fmt::format("x{:g}", factor),
               fmt::format("every query of {} {:g}x slower (a schema change, a missing index)",
                           name, factor),
               Json{{"target", target}, {"parameters", {{"factor", factor}}}}));
    }
    if (datastore.replicas.empty()) continue;
    for (const double lag : options.replication_lag_ms) {
      candidates.push_back(make("replication_lag", name, fmt::format("{:g}ms", lag),
                                fmt::format("{}'s replicas fall {:g} ms behind", name, lag),
                                Json{{"target", target}, {"parameters", {{"lag_ms", lag}}}}));
    }
  }
  for (const auto& edge : topology.edges) {
    if (edge.pool.size <= 0 || edge.from == "*" || !reached.contains(edge.from)) continue;
    const std::string component = edge.from + "->" + edge.to;
    for (const int size : options.shrunk_pool_size) {
      if (size >= edge.pool.size) continue;
      const Json change{{"set", fmt::format("/edges/{}/connection_pool/size", component)},
                        {"value", size}};
      candidates.push_back(
          make("pool_exhaustion", component, fmt::format("size {}", size),
               fmt::format("a deploy shrinks {}'s connection pool to {} to {}", edge.from, edge.to,
                           size),
               Json{{"kind", "deploy"}, {"parameters", {{"changes", Json::array({change})}}}}));
    }
  }
  for (const auto& client : topology.workload.clients) {
    for (const double factor : options.traffic_surge_factor) {
      candidates.push_back(
          make("traffic_surge", client.name, fmt::format("x{:g}", factor),
               fmt::format("{}'s traffic x{:g}", client.name, factor),
               Json{{"target", {{"client", client.name}}}, {"parameters", {{"factor", factor}}}}));
    }
  }
  if (topology.zones.size() >= 2) {
    for (const auto& zone : topology.zones) {
      candidates.push_back(make("zone_outage", zone.name, "",
                                fmt::format("{} goes dark", zone.name),
                                Json{{"target", {{"zone", zone.name}}}}));
    }
    Json others = Json::array();
    for (std::size_t z = 1; z < topology.zones.size(); ++z)
      others.push_back(topology.zones[z].name);
    candidates.push_back(make(
        "partition", topology.zones[0].name, "",
        fmt::format("{} cut off from the other zones", topology.zones[0].name),
        Json{{"parameters", {{"of", "zone"}, {"a", {topology.zones[0].name}}, {"b", others}}}}));
  }
  return candidates;
}

std::vector<Candidate> parse_candidates(const nlohmann::json& document,
                                        const std::string& file_label,
                                        const model::Topology& topology) {
  const auto fail = [&](const std::string& pointer, const std::string& message) -> void {
    throw InputError(file_label, InputLocation{pointer, {}, {}, {}}, message);
  };
  if (!document.is_object()) fail("", "expected an object with \"doppel\": \"candidates/v1\"");
  if (document.value("doppel", "") != kCandidatesFormat) {
    fail("/doppel", fmt::format("expected \"{}\"", kCandidatesFormat));
  }
  const auto list = document.find("candidates");
  if (list == document.end() || !list->is_array() || list->empty()) {
    fail("/candidates", "expected a non-empty array of candidates");
  }
  std::vector<Candidate> candidates;
  std::set<std::string> names;
  bool has_null = false;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const std::string at = fmt::format("/candidates/{}", i);
    const auto& entry = (*list)[i];
    if (!entry.is_object()) fail(at, "expected an object");
    for (const auto& [key, value] : entry.items()) {
      if (key != "name" && key != "cause" && key != "description" && key != "injections") {
        fail(at + "/" + key, "unknown member (expected name, cause, description, injections)");
      }
    }
    Candidate candidate;
    if (!entry.contains("name") || !entry["name"].is_string() ||
        entry["name"].get<std::string>().empty()) {
      fail(at + "/name", "expected a non-empty string");
    }
    candidate.name = entry["name"].get<std::string>();
    candidate.cause = candidate.name;
    if (entry.contains("cause")) {
      if (!entry["cause"].is_string()) fail(at + "/cause", "expected a string");
      candidate.cause = entry["cause"].get<std::string>();
    }
    if (!names.insert(candidate.name).second) {
      fail(at + "/name", fmt::format("\"{}\" names an earlier candidate too", candidate.name));
    }
    if (entry.contains("description")) {
      if (!entry["description"].is_string()) fail(at + "/description", "expected a string");
      candidate.description = entry["description"].get<std::string>();
    }
    const Json injections = entry.value("injections", Json::array());
    if (!injections.is_array()) fail(at + "/injections", "expected an array");
    try {
      (void)faults::parse_scenario(scenario_document(injections), "candidate", topology);
    } catch (const InputError& error) {
      // The scenario's pointer starts at its /injections: re-root it in the candidates file.
      fail(at + error.where().json_pointer, error.message());
    }
    candidate.injections = injections;
    candidate.null_hypothesis = injections.empty();
    has_null = has_null || candidate.null_hypothesis;
    if (!injections.empty()) {
      candidate.kind = injections[0].value("kind", "");
      // The component the target names ("mode" and "count" only say how many units).
      const auto& target = injections[0].value("target", Json::object());
      for (const char* key : {"service", "datastore", "host", "zone", "route", "client"}) {
        if (target.contains(key) && target[key].is_string()) {
          candidate.component = target[key].get<std::string>();
          candidate.components = {candidate.component};
          break;
        }
      }
      if (topology.find_service(candidate.component) != nullptr && candidate.kind != "cpu_stress") {
        candidate.witnesses = witness_prefixes(topology, candidate.component);
      }
    }
    candidates.push_back(std::move(candidate));
  }
  if (!has_null) candidates.insert(candidates.begin(), no_fault());
  return candidates;
}

std::vector<Candidate> load_candidates(const std::filesystem::path& file,
                                       const model::Topology& topology) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), {}, "cannot open the file");
  std::stringstream text;
  text << in.rdbuf();
  Json document;
  try {
    document = Json::parse(text.str());
  } catch (const Json::parse_error& error) {
    throw InputError(file.string(),
                     InputLocation{"", {}, {}, static_cast<std::int64_t>(error.byte)},
                     "not valid JSON");
  }
  return parse_candidates(document, file.string(), topology);
}

namespace {

// The magnitude parameters auto_candidates varies, with how their variants are labelled.
struct MagnitudeScale {
  const char* parameter;
  bool geometric;  // times and factors grow by ratios, shares and rates by steps
  double resolution;
  std::string (*label)(double value);   // in the variant's name: "50ms"
  std::string (*spoken)(double value);  // in its description: "50 ms"
};

constexpr MagnitudeScale kMagnitudeScales[] = {
    {"ms", true, 1.0, [](double v) { return fmt::format("{:g}ms", v); },
     [](double v) { return fmt::format("{:g} ms", v); }},
    {"lag_ms", true, 1.0, [](double v) { return fmt::format("{:g}ms", v); },
     [](double v) { return fmt::format("{:g} ms", v); }},
    {"factor", true, 0.1, [](double v) { return fmt::format("x{:g}", v); },
     [](double v) { return fmt::format("{:g}x", v); }},
    {"share", false, 0.01, [](double v) { return fmt::format("{:g}%", v * 100.0); },
     [](double v) { return fmt::format("{:g}%", v * 100.0); }},
    {"rate", false, 0.01, [](double v) { return fmt::format("{:g}%", v * 100.0); },
     [](double v) { return fmt::format("{:g}%", v * 100.0); }},
};

// The candidate's one magnitude parameter and its value, when it has exactly one injection
// with exactly one parameter that is a magnitude.
std::optional<std::pair<const MagnitudeScale*, double>> magnitude_of(const Candidate& candidate) {
  if (candidate.injections.size() != 1) return std::nullopt;
  const auto& parameters = candidate.injections[0].value("parameters", Json::object());
  if (!parameters.is_object() || parameters.size() != 1) return std::nullopt;
  for (const auto& scale : kMagnitudeScales) {
    const auto found = parameters.find(scale.parameter);
    if (found != parameters.end() && found->is_number()) {
      return std::pair{&scale, found->get<double>()};
    }
  }
  return std::nullopt;
}

// The injection without its name and magnitude: what siblings share.
Json without_magnitude(const Candidate& candidate, const char* parameter) {
  Json injection = candidate.injections[0];
  injection.erase("name");
  injection["parameters"].erase(parameter);
  return injection;
}

std::string replace_last(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.rfind(from);
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

}  // namespace

std::vector<Candidate> magnitude_refinements(const Candidate& best,
                                             const std::vector<Candidate>& candidates) {
  const auto magnitude = magnitude_of(best);
  if (!magnitude) return {};
  const auto [scale, value] = *magnitude;
  const Json shape = without_magnitude(best, scale->parameter);
  std::set<double> grid{value};
  for (const auto& other : candidates) {
    if (other.cause != best.cause || other.name == best.name) continue;
    const auto theirs = magnitude_of(other);
    if (theirs && theirs->first == scale && without_magnitude(other, scale->parameter) == shape) {
      grid.insert(theirs->second);
    }
  }
  const auto at = grid.find(value);
  std::vector<double> neighbours;
  if (at != grid.begin()) neighbours.push_back(*std::prev(at));
  if (std::next(at) != grid.end()) neighbours.push_back(*std::next(at));
  std::vector<Candidate> refined;
  for (const double neighbour : neighbours) {
    const double halfway =
        scale->geometric ? std::sqrt(value * neighbour) : 0.5 * (value + neighbour);
    const double rounded = std::round(halfway / scale->resolution) * scale->resolution;
    if (rounded == value || rounded == neighbour || !(rounded > 0.0)) continue;
    const std::string old_label = scale->label(value);
    if (best.name.rfind(old_label) == std::string::npos) continue;
    Candidate variant = best;
    variant.name = replace_last(best.name, old_label, scale->label(rounded));
    variant.description = best.description;
    for (const auto form : {scale->label, scale->spoken}) {
      if (variant.description.rfind(form(value)) != std::string::npos) {
        variant.description = replace_last(variant.description, form(value), form(rounded));
        break;
      }
    }
    variant.injections[0]["name"] = variant.name;
    variant.injections[0]["parameters"][scale->parameter] = rounded;
    refined.push_back(std::move(variant));
  }
  return refined;
}

nlohmann::json candidate_scenario(const Candidate& candidate, double onset_s, double duration_s,
                                  std::uint64_t seed) {
  Json injections = candidate.injections;
  for (auto& injection : injections) {
    injection["start_s"] = onset_s + injection.value("start_s", 0.0);
    if (injection.contains("end_s")) {
      injection["end_s"] = onset_s + injection["end_s"].get<double>();
    }
  }
  return Json{{"doppel", faults::kScenarioFormat},
              {"name", candidate.name},
              {"description", candidate.description},
              {"duration_s", duration_s},
              {"seed", seed},
              {"injections", std::move(injections)},
              {"steady_state", {{"slos", "topology"}}}};
}

}  // namespace doppel::experiments
