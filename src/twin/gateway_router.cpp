#include "twin/gateway_router.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>
#include <re2/re2.h>

#include "doppel/model/input_error.hpp"

namespace doppel::twin::detail {

namespace {
std::string lowercase(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::unique_ptr<re2::RE2> compile(const std::string& pattern, const std::string& source,
                                  const std::string& pointer) {
  RE2::Options options;
  options.set_log_errors(false);
  auto regex = std::make_unique<re2::RE2>(pattern, options);
  if (!regex->ok()) {
    throw InputError(source, InputLocation{pointer, {}, {}, {}},
                     fmt::format("invalid regex '{}': {}", pattern, regex->error()));
  }
  return regex;
}
}  // namespace

GatewayRouter::GatewayRouter(const model::Gateway& gateway, const std::string& source)
    : gateway_(&gateway) {
  for (std::size_t i = 0; i < gateway.routes.size(); ++i) {
    const auto& route = gateway.routes[i];
    CompiledRoute compiled{&route, nullptr, {}};
    const auto pointer = fmt::format("/gateway/routes/{}", i);
    if (route.path_regex)
      compiled.path_regex = compile(*route.path_regex, source, pointer + "/path_regex");
    for (std::size_t h = 0; h < route.headers.size(); ++h) {
      compiled.headers.push_back({lowercase(route.headers[h].name),
                                  compile(route.headers[h].regex, source,
                                          fmt::format("{}/headers/{}/regex", pointer, h))});
    }
    routes_.push_back(std::move(compiled));
  }
}

GatewayRouter::~GatewayRouter() = default;
GatewayRouter::GatewayRouter(GatewayRouter&&) noexcept = default;
GatewayRouter& GatewayRouter::operator=(GatewayRouter&&) noexcept = default;

std::optional<RouteTarget> GatewayRouter::match(
    std::string_view method, std::string_view path,
    const std::map<std::string, std::string>& headers) const {
  // Header names are case-insensitive: index the request's once, lowercased.
  std::map<std::string, std::string_view, std::less<>> request_headers;
  for (const auto& [name, value] : headers) request_headers.emplace(lowercase(name), value);

  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const auto& compiled = routes_[i];
    const auto& route = *compiled.route;
    if (route.method && *route.method != method) continue;
    if (route.path_prefix && !path.starts_with(*route.path_prefix)) continue;
    if (compiled.path_regex &&
        !RE2::FullMatch(re2::StringPiece(path.data(), path.size()), *compiled.path_regex)) {
      continue;
    }
    const bool headers_match =
        std::all_of(compiled.headers.begin(), compiled.headers.end(), [&](const auto& h) {
          auto it = request_headers.find(h.lower_name);
          return it != request_headers.end() &&
                 RE2::FullMatch(re2::StringPiece(it->second.data(), it->second.size()), *h.regex);
        });
    if (!headers_match) continue;
    return RouteTarget{static_cast<int>(i), route.name, route.service, route.operation};
  }
  if (gateway_->default_service) {
    return RouteTarget{-1, "", *gateway_->default_service,
                       gateway_->default_operation ? std::string_view(*gateway_->default_operation)
                                                   : std::string_view()};
  }
  return std::nullopt;
}

}  // namespace doppel::twin::detail
