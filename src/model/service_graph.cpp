#include "doppel/model/service_graph.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/graphviz.hpp>
#include <boost/graph/reverse_graph.hpp>
#include <boost/graph/topological_sort.hpp>
#include <fmt/format.h>

namespace doppel::model {

std::string_view to_string(ComponentKind kind) {
  return kind == ComponentKind::service ? "service" : "datastore";
}

ServiceGraph::ServiceGraph(const Topology& topology) {
  for (const auto& service : topology.services) {
    index_[service.name] =
        boost::add_vertex(Component{service.name, ComponentKind::service}, graph_);
  }
  for (const auto& store : topology.datastores) {
    index_[store.name] = boost::add_vertex(Component{store.name, ComponentKind::datastore}, graph_);
  }
  for (const auto& service : topology.services) {
    const Vertex caller = index_.at(service.name);
    for (const auto& operation : service.operations) {
      for (const auto& step : operation.steps) {
        for (const auto& call : step.calls) {
          auto callee = index_.find(call.to);
          if (callee == index_.end()) {
            throw std::invalid_argument(fmt::format(
                "service graph: \"{}\" calls unknown \"{}\"; load topologies with load_topology",
                service.name, call.to));
          }
          auto [edge, exists] = boost::edge(caller, callee->second, graph_);
          if (!exists) {
            Dependency dependency;
            dependency.from = service.name;
            dependency.to = call.to;
            dependency.policy = topology.policy(service.name, call.to);
            edge = boost::add_edge(caller, callee->second, std::move(dependency), graph_).first;
          }
          Dependency& dependency = graph_[edge];
          const double mean_calls = call.count * call.probability;
          if (dependency.callers.empty() || dependency.callers.back().operation != operation.name) {
            dependency.callers.push_back(CallerOperation{operation.name, 0.0});
          }
          dependency.callers.back().mean_calls += mean_calls;
          dependency.mean_calls += mean_calls;
        }
      }
    }
  }
}

std::optional<ServiceGraph::Vertex> ServiceGraph::find(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

ServiceGraph::Vertex ServiceGraph::vertex(std::string_view name) const {
  if (auto found = find(name)) return *found;
  throw std::invalid_argument(fmt::format("no service or datastore named \"{}\"", name));
}

ServiceGraph build_service_graph(const Topology& topology) {
  return ServiceGraph(topology);
}

std::vector<Dependency> edges_of(const ServiceGraph& graph) {
  const auto& g = graph.graph();
  std::vector<Dependency> out;
  for (auto v : boost::make_iterator_range(boost::vertices(g))) {
    for (auto e : boost::make_iterator_range(boost::out_edges(v, g))) out.push_back(g[e]);
  }
  return out;
}

std::optional<std::vector<std::string>> topological_order(const ServiceGraph& graph) {
  const auto& g = graph.graph();
  std::vector<ServiceGraph::Vertex> reversed;
  try {
    boost::topological_sort(g, std::back_inserter(reversed));
  } catch (const boost::not_a_dag&) {
    return std::nullopt;
  }
  std::vector<std::string> order;
  for (auto it = reversed.rbegin(); it != reversed.rend(); ++it) order.push_back(g[*it].name);
  return order;
}

namespace {

using Graph = ServiceGraph::Graph;
using Vertex = ServiceGraph::Vertex;

struct CycleFound {
  std::vector<std::string> path;
};

class CycleRecorder : public boost::default_dfs_visitor {
 public:
  explicit CycleRecorder(std::vector<Vertex>& path) : path_(&path) {}
  void discover_vertex(Vertex v, const Graph&) { path_->push_back(v); }
  void finish_vertex(Vertex, const Graph&) { path_->pop_back(); }
  void back_edge(boost::graph_traits<Graph>::edge_descriptor e, const Graph& g) {
    const Vertex start = boost::target(e, g);
    CycleFound found;
    for (auto it = std::find(path_->begin(), path_->end(), start); it != path_->end(); ++it) {
      found.path.push_back(g[*it].name);
    }
    found.path.push_back(g[start].name);
    throw found;
  }

 private:
  std::vector<Vertex>* path_;
};

// Every vertex a breadth-first search from `start` reaches, except start, in vertex order.
template <typename AnyGraph>
std::vector<std::string> reachable_from(const AnyGraph& g, const Graph& names, Vertex start) {
  std::vector<boost::default_color_type> colors(boost::num_vertices(g), boost::white_color);
  boost::breadth_first_search(g, start,
                              boost::color_map(boost::make_iterator_property_map(
                                  colors.begin(), boost::get(boost::vertex_index, g))));
  std::vector<std::string> out;
  for (Vertex v = 0; v < colors.size(); ++v) {
    if (v != start && colors[v] != boost::white_color) out.push_back(names[v].name);
  }
  return out;
}

// A DOT string of one or more lines: quotes and backslashes escaped, lines joined with DOT's
// own "\n" escape (a raw newline would be kept verbatim by some renderers).
std::string dot_quoted(std::initializer_list<std::string_view> lines) {
  std::string out = "\"";
  for (auto line = lines.begin(); line != lines.end(); ++line) {
    if (line != lines.begin()) out += "\\n";
    for (char c : *line) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
  }
  return out + "\"";
}

std::string policy_summary(const EdgePolicy& policy) {
  std::string out = fmt::format("timeout {:g} ms", policy.timeout_ms);
  if (policy.retry.max_retries > 0) {
    out += fmt::format(", {} {}", policy.retry.max_retries,
                       policy.retry.max_retries == 1 ? "retry" : "retries");
  }
  if (policy.breaker.enabled) out += ", breaker";
  if (policy.pool.size > 0) out += fmt::format(", pool {}", policy.pool.size);
  return out;
}

}  // namespace

std::vector<std::string> find_cycle(const ServiceGraph& graph) {
  std::vector<Vertex> path;
  try {
    boost::depth_first_search(graph.graph(), boost::visitor(CycleRecorder(path)));
  } catch (CycleFound& found) {
    return std::move(found.path);
  }
  return {};
}

std::vector<std::string> downstream_of(const ServiceGraph& graph, std::string_view component) {
  return reachable_from(graph.graph(), graph.graph(), graph.vertex(component));
}

std::vector<std::string> upstream_of(const ServiceGraph& graph, std::string_view component) {
  const Vertex start = graph.vertex(component);
  return reachable_from(boost::make_reverse_graph(graph.graph()), graph.graph(), start);
}

std::vector<std::string> reached_by_requests(const Topology& topology, const ServiceGraph& graph) {
  std::set<std::string, std::less<>> reached;
  const auto reach = [&](const std::string& entry) {
    if (!reached.insert(entry).second) return;
    for (auto& name : downstream_of(graph, entry)) reached.insert(std::move(name));
  };
  for (const auto& route : topology.gateway.routes) reach(route.service);
  if (topology.gateway.default_service) reach(*topology.gateway.default_service);
  std::vector<std::string> in_order;
  for (const auto v : boost::make_iterator_range(boost::vertices(graph.graph()))) {
    if (reached.contains(graph.graph()[v].name)) in_order.push_back(graph.graph()[v].name);
  }
  return in_order;
}

void write_dot(std::ostream& out, const ServiceGraph& graph) {
  const auto& g = graph.graph();
  auto write_vertex = [&](std::ostream& os, Vertex v) {
    const Component& c = g[v];
    os << "[label=" << dot_quoted({c.name})
       << (c.kind == ComponentKind::datastore ? ", shape=cylinder" : ", shape=box") << "]";
  };
  auto write_edge = [&](std::ostream& os, boost::graph_traits<Graph>::edge_descriptor e) {
    const Dependency& d = g[e];
    std::string callers;
    for (const auto& caller : d.callers) {
      if (!callers.empty()) callers += ", ";
      callers += fmt::format("{} x{:g}", caller.operation, caller.mean_calls);
    }
    os << "[label=" << dot_quoted({callers, policy_summary(d.policy)}) << "]";
  };
  auto write_graph = [](std::ostream& os) {
    os << "rankdir=LR;\n"
       << "node [fontname=\"Helvetica\"];\n"
       << "edge [fontname=\"Helvetica\", fontsize=10];\n";
  };
  boost::write_graphviz(out, g, write_vertex, write_edge, write_graph);
}

}  // namespace doppel::model
