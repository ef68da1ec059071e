// The gateway's routing table: routes tried in order, the first match wins; no match goes to
// the default target or, without one, is a 404. Regexes are RE2, compiled once.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/model/topology.hpp"

namespace re2 {
class RE2;
}

namespace doppel::twin::detail {

struct RouteTarget {
  int route = -1;               // index in Gateway::routes; -1 for the default target
  std::string_view route_name;  // "" for the default target
  std::string_view service;
  std::string_view operation;
};

class GatewayRouter {
 public:
  // Throws InputError (labelled with `source`) for a regex RE2 cannot compile.
  GatewayRouter(const model::Gateway& gateway, const std::string& source);
  ~GatewayRouter();
  GatewayRouter(GatewayRouter&&) noexcept;
  GatewayRouter& operator=(GatewayRouter&&) noexcept;

  // Method: exact and case-sensitive; path: prefix or RE2 full match; headers: names
  // case-insensitive, values RE2 full match (a missing header never matches). nullopt: 404.
  std::optional<RouteTarget> match(std::string_view method, std::string_view path,
                                   const std::map<std::string, std::string>& headers) const;

 private:
  struct CompiledHeader {
    std::string lower_name;
    std::unique_ptr<re2::RE2> regex;
  };
  struct CompiledRoute {
    const model::Route* route;
    std::unique_ptr<re2::RE2> path_regex;
    std::vector<CompiledHeader> headers;
  };
  const model::Gateway* gateway_;
  std::vector<CompiledRoute> routes_;
};

}  // namespace doppel::twin::detail
