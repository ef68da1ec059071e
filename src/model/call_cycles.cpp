#include "model/call_cycles.hpp"

#include <algorithm>
#include <map>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>

namespace doppel::model::detail {

namespace {

struct CallEdge {
  std::size_t call_index = 0;
};

using OperationGraph =
    boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, OperationRef, CallEdge>;
using Vertex = boost::graph_traits<OperationGraph>::vertex_descriptor;
using Edge = boost::graph_traits<OperationGraph>::edge_descriptor;

// Thrown out of the search: Boost's DFS has no other way to stop early.
struct CycleFound {
  CallCycle cycle;
};

// Keeps the current DFS path so a back edge can be turned into the cycle it closes.
class CycleVisitor : public boost::default_dfs_visitor {
 public:
  CycleVisitor(std::vector<Vertex>& path, const std::vector<OperationCall>& calls)
      : path_(&path), calls_(&calls) {}

  void discover_vertex(Vertex v, const OperationGraph&) { path_->push_back(v); }
  void finish_vertex(Vertex, const OperationGraph&) { path_->pop_back(); }

  void back_edge(Edge e, const OperationGraph& graph) {
    const Vertex start = boost::target(e, graph);
    CallCycle cycle;
    auto it = std::find(path_->begin(), path_->end(), start);
    for (; it != path_->end(); ++it) cycle.path.push_back(graph[*it]);
    cycle.path.push_back(graph[start]);
    cycle.closing_call_pointer = (*calls_)[graph[e].call_index].pointer;
    throw CycleFound{std::move(cycle)};
  }

 private:
  std::vector<Vertex>* path_;
  const std::vector<OperationCall>* calls_;
};

}  // namespace

std::optional<CallCycle> find_call_cycle(const Topology& topology,
                                         const std::vector<OperationCall>& calls) {
  OperationGraph graph;
  std::map<std::pair<std::string, std::string>, Vertex> vertex_of;
  for (const auto& service : topology.services) {
    for (const auto& operation : service.operations) {
      vertex_of[{service.name, operation.name}] =
          boost::add_vertex(OperationRef{service.name, operation.name}, graph);
    }
  }
  for (std::size_t i = 0; i < calls.size(); ++i) {
    auto from = vertex_of.find({calls[i].caller.service, calls[i].caller.operation});
    auto to = vertex_of.find({calls[i].callee.service, calls[i].callee.operation});
    if (from == vertex_of.end() || to == vertex_of.end()) continue;
    boost::add_edge(from->second, to->second, CallEdge{i}, graph);
  }
  std::vector<Vertex> path;
  try {
    boost::depth_first_search(graph, boost::visitor(CycleVisitor(path, calls)));
  } catch (CycleFound& found) {
    return std::move(found.cycle);
  }
  return std::nullopt;
}

}  // namespace doppel::model::detail
