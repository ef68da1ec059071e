// Who calls whom: services and datastores as vertices, caller -> callee dependencies as
// edges, as a Boost.Graph so the graph algorithms come from Boost rather than from us.
//
// The graph is built from a checked Topology and is immutable. Vertices are numbered in file
// order (services, then datastores), edges in the order the calls appear, so every result
// below is deterministic.
#pragma once

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "doppel/model/topology.hpp"

namespace doppel::model {

enum class ComponentKind { service, datastore };

std::string_view to_string(ComponentKind kind);

struct Component {
  std::string name;
  ComponentKind kind = ComponentKind::service;
};

// One operation of the caller that calls the callee, and how often per invocation.
struct CallerOperation {
  std::string operation;
  // Expected calls to the callee each time this operation runs: the sum over its call sites
  // of count * probability.
  double mean_calls = 0.0;
};

struct Dependency {
  std::string from;
  std::string to;
  EdgePolicy policy;                     // the explicit edge policy, else the topology's defaults
  std::vector<CallerOperation> callers;  // in the caller's operation order
  // Sum of mean_calls over the caller's operations: the calls to the callee if each of the
  // caller's operations ran once. A weight for ranking and drawing, not a rate.
  double mean_calls = 0.0;
};

class ServiceGraph {
 public:
  using Graph =
      boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, Component, Dependency>;
  using Vertex = boost::graph_traits<Graph>::vertex_descriptor;

  explicit ServiceGraph(const Topology& topology);

  const Graph& graph() const { return graph_; }
  std::optional<Vertex> find(std::string_view name) const;
  // The vertex of a component; throws std::invalid_argument for an unknown name.
  Vertex vertex(std::string_view name) const;

 private:
  Graph graph_;
  std::map<std::string, Vertex, std::less<>> index_;
};

ServiceGraph build_service_graph(const Topology& topology);

// Every dependency, by caller in file order, then in the order of the caller's first call.
std::vector<Dependency> edges_of(const ServiceGraph& graph);

// Component names with every caller before its callees; nullopt if the service-level graph
// has a cycle (legal: a -> b -> a through different operations).
std::optional<std::vector<std::string>> topological_order(const ServiceGraph& graph);

// One service-level cycle as a path that returns to its start ("a", "b", "a"); empty if the
// graph is acyclic.
std::vector<std::string> find_cycle(const ServiceGraph& graph);

// What `component` calls, directly or not: what it needs to work. In file order, never itself.
// Throws std::invalid_argument for an unknown name.
std::vector<std::string> downstream_of(const ServiceGraph& graph, std::string_view component);

// What calls `component`, directly or not: the blast radius when it fails. In file order,
// never itself. Throws std::invalid_argument for an unknown name.
std::vector<std::string> upstream_of(const ServiceGraph& graph, std::string_view component);

// The components a client request can reach: the gateway's routes and default service, and
// what they call, directly or not. In file order (services, then datastores). A fault on
// requests to anything else (an asynchronous consumer nothing calls) changes nothing.
std::vector<std::string> reached_by_requests(const Topology& topology, const ServiceGraph& graph);

// Graphviz DOT: services as boxes, datastores as cylinders, edges labelled with the calling
// operations and the edge policy.
void write_dot(std::ostream& out, const ServiceGraph& graph);

}  // namespace doppel::model
