// The topologies shipped in topologies/: every file there loads, stays below half load at its
// default workload (the design rule docs/topologies.md derives by hand), and keeps the
// architecture facts taken from the real applications' source.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "doppel/model/topology_loader.hpp"

namespace doppel::model {
namespace {

const std::filesystem::path kTopologyDir = std::filesystem::path(DOPPEL_SOURCE_DIR) / "topologies";

// Globbed rather than listed, so a topology added later is tested without editing this file.
std::vector<std::filesystem::path> bundled_files() {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(kTopologyDir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

Topology load_bundled(const std::string& name) {
  return load_topology(kTopologyDir / (name + ".json"));
}

const Operation& operation_of(const Topology& t, const std::string& service,
                              const std::string& operation) {
  const Service* s = t.find_service(service);
  if (s == nullptr) throw std::runtime_error("no service " + service);
  for (const auto& op : s->operations) {
    if (op.name == operation) return op;
  }
  throw std::runtime_error("no operation " + service + "." + operation);
}

// The calls of an operation in step order, parallel groups flattened.
std::vector<Call> calls_of(const Operation& op) {
  std::vector<Call> calls;
  for (const auto& step : op.steps) calls.insert(calls.end(), step.calls.begin(), step.calls.end());
  return calls;
}

// Total mean calls an operation makes to one target operation, over all its steps.
double mean_calls(const Operation& op, const std::string& to, const std::string& operation) {
  double total = 0.0;
  for (const auto& call : calls_of(op)) {
    if (call.to == to && call.operation == operation) total += call.count * call.probability;
  }
  return total;
}

// ---------------------------------------------------------------------------------------
// Offered load, the arithmetic of docs/topologies.md: gateway rate split by the mix, pushed
// down the call graph by count x probability. No queueing, no retries.

using OperationKey = std::pair<std::string, std::string>;  // service or datastore, operation

// The test's own route matcher: enough for the bundled files (std::regex stands in for RE2;
// their patterns use the common subset).
const Route* match_route(const Topology& t, const ClientClass& client, const RequestKind& kind) {
  for (const auto& route : t.gateway.routes) {
    if (route.method && *route.method != kind.method) continue;
    if (route.path_prefix && kind.path.rfind(*route.path_prefix, 0) != 0) continue;
    if (route.path_regex && !std::regex_match(kind.path, std::regex(*route.path_regex))) continue;
    const bool headers_match =
        std::all_of(route.headers.begin(), route.headers.end(), [&](const HeaderMatch& header) {
          auto it = client.headers.find(header.name);
          return it != client.headers.end() &&
                 std::regex_match(it->second, std::regex(header.regex));
        });
    if (headers_match) return &route;
  }
  return nullptr;
}

void add_downstream(const Topology& t, const OperationKey& key, double rps,
                    std::map<OperationKey, double>& rates) {
  rates[key] += rps;
  const Service* service = t.find_service(key.first);
  if (service == nullptr) return;  // a datastore query calls nothing
  for (const auto& call : calls_of(operation_of(t, key.first, key.second))) {
    add_downstream(t, {call.to, call.operation}, rps * call.count * call.probability, rates);
  }
}

std::map<OperationKey, double> offered_load(const Topology& t) {
  std::map<OperationKey, double> rates;
  for (const auto& client : t.workload.clients) {
    double peak_rps = 0.0;
    for (const auto& point : client.rate) peak_rps = std::max(peak_rps, point.rps);
    double total_weight = 0.0;
    for (const auto& kind : client.mix) total_weight += kind.weight;
    for (const auto& kind : client.mix) {
      const Route* route = match_route(t, client, kind);
      if (route == nullptr) {
        ADD_FAILURE() << t.name << ": no route for " << kind.method << " " << kind.path;
        continue;
      }
      add_downstream(t, {route->service, route->operation}, peak_rps * kind.weight / total_weight,
                     rates);
    }
  }
  return rates;
}

// Cores one instance can use: its workers, capped by the smallest host it may land on.
double instance_capacity_cores(const Topology& t, const Service& service) {
  int cores = service.workers;
  for (const auto& placement : service.placement) {
    for (const auto& host : t.find_zone(placement.zone)->hosts) {
      if (!placement.host || *placement.host == host.name) {
        cores = std::min(cores, host.cores);
      }
    }
  }
  return cores;
}

std::map<std::string, double> utilisation(const Topology& t) {
  std::map<std::string, double> busy_ms;  // per second, per component
  for (const auto& [key, rps] : offered_load(t)) {
    if (t.find_service(key.first) != nullptr) {
      busy_ms[key.first] += rps * operation_of(t, key.first, key.second).cpu_ms.mean();
    } else {
      for (const auto& query : t.find_datastore(key.first)->queries) {
        if (query.name == key.second) busy_ms[key.first] += rps * query.cost_ms.mean();
      }
    }
  }
  std::map<std::string, double> result;
  for (const auto& [name, ms] : busy_ms) {
    if (const Service* service = t.find_service(name)) {
      result[name] = ms / 1000.0 / service->replicas / instance_capacity_cores(t, *service);
    } else {
      result[name] = ms / 1000.0 / t.find_datastore(name)->workers;
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------
// Every bundled file.

class BundledTopology : public testing::TestWithParam<std::filesystem::path> {};

// Warnings a bundled topology is allowed to raise, each a documented modelling choice.
const std::map<std::string, std::vector<std::string>> kExpectedWarnings = {
    // docs/topologies.md, "queue-master: our choice": an asynchronous consumer nobody calls.
    {"sock-shop", {"service \"queue-master\" is never called"}},
};

TEST_P(BundledTopology, LoadsWithOnlyTheDocumentedWarnings) {
  std::vector<std::string> warnings;
  const Topology t = load_topology(GetParam(), &warnings);
  EXPECT_EQ(t.name, GetParam().stem().string()) << "a bundled topology is named after its file";
  EXPECT_FALSE(t.description.empty());
  const auto expected_it = kExpectedWarnings.find(t.name);
  const std::vector<std::string> expected =
      expected_it == kExpectedWarnings.end() ? std::vector<std::string>{} : expected_it->second;
  ASSERT_EQ(warnings.size(), expected.size()) << testing::PrintToString(warnings);
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NE(warnings[i].find(expected[i]), std::string::npos) << warnings[i];
  }
}

TEST_P(BundledTopology, HasAWorkloadAndSlosOnMostRoutesItDrives) {
  const Topology t = load_topology(GetParam());
  ASSERT_FALSE(t.workload.clients.empty());
  std::set<std::string> driven_routes;
  for (const auto& client : t.workload.clients) {
    for (const auto& kind : client.mix) {
      if (const Route* route = match_route(t, client, kind)) driven_routes.insert(route->name);
    }
  }
  // Static pages and cart mutations may go without an SLO; the main flows may not.
  ASSERT_FALSE(driven_routes.empty());
  std::set<std::string> routes_with_slo;
  for (const auto& slo : t.slos) routes_with_slo.insert(slo.route);
  std::size_t covered = 0;
  for (const auto& route : driven_routes) covered += routes_with_slo.count(route);
  EXPECT_GE(covered * 2, driven_routes.size()) << "fewer than half the driven routes have an SLO";
}

TEST_P(BundledTopology, DefaultLoadKeepsEveryInstanceBelowHalfLoad) {
  const Topology t = load_topology(GetParam());
  const auto load = utilisation(t);
  ASSERT_FALSE(load.empty());
  for (const auto& [component, share] : load) {
    EXPECT_LT(share, 0.5) << t.name << ": " << component << " at " << share * 100 << " %";
  }
}

std::string test_name(const testing::TestParamInfo<std::filesystem::path>& info) {
  std::string name = info.param.stem().string();
  std::replace_if(
      name.begin(), name.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
      '_');
  return name;
}

INSTANTIATE_TEST_SUITE_P(Files, BundledTopology, testing::ValuesIn(bundled_files()), test_name);

TEST(BundledTopologies, TheThreeDocumentedOnesAreThere) {
  std::set<std::string> stems;
  for (const auto& file : bundled_files()) stems.insert(file.stem().string());
  for (const char* name : {"online-boutique", "hotrod", "sock-shop"}) {
    EXPECT_TRUE(stems.count(name)) << name;
  }
}

// ---------------------------------------------------------------------------------------
// Online Boutique: GoogleCloudPlatform/microservices-demo.

TEST(OnlineBoutique, PlaceOrderFollowsCheckoutserviceMainGo) {
  const Topology t = load_bundled("online-boutique");
  const Operation& place_order = operation_of(t, "checkoutservice", "PlaceOrder");
  std::vector<std::pair<std::string, std::string>> sequence;
  for (const auto& call : calls_of(place_order)) sequence.emplace_back(call.to, call.operation);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"cartservice", "GetCart"},
      {"productcatalogservice", "GetProduct"},
      {"currencyservice", "Convert"},
      {"shippingservice", "GetQuote"},
      {"currencyservice", "Convert"},
      {"paymentservice", "Charge"},
      {"shippingservice", "ShipOrder"},
      {"cartservice", "EmptyCart"},
      {"emailservice", "SendOrderConfirmation"}};
  EXPECT_EQ(sequence, expected);
  for (const auto& step : place_order.steps)
    EXPECT_FALSE(step.parallel) << "PlaceOrder is sequential";
}

TEST(OnlineBoutique, CheckoutLooksUpEveryCartItemOnce) {
  const Topology t = load_bundled("online-boutique");
  const Operation& place_order = operation_of(t, "checkoutservice", "PlaceOrder");
  // Mean cart size at checkout is 3 (docs/topologies.md: 2 earlier adds + checkout's own).
  EXPECT_DOUBLE_EQ(mean_calls(place_order, "productcatalogservice", "GetProduct"), 3.0);
  // One Convert per item, plus one for the shipping quote.
  EXPECT_DOUBLE_EQ(mean_calls(place_order, "currencyservice", "Convert"), 4.0);
  EXPECT_DOUBLE_EQ(mean_calls(place_order, "cartservice", "GetCart"), 1.0);
}

TEST(OnlineBoutique, FrontendPagesCallWhatHandlersGoCalls) {
  const Topology t = load_bundled("online-boutique");
  const Operation& home = operation_of(t, "frontend", "home");
  EXPECT_DOUBLE_EQ(mean_calls(home, "currencyservice", "Convert"), 9.0) << "9 catalogue products";
  EXPECT_DOUBLE_EQ(mean_calls(home, "productcatalogservice", "ListProducts"), 1.0);
  EXPECT_DOUBLE_EQ(mean_calls(home, "adservice", "GetAds"), 1.0);
  const Operation& product = operation_of(t, "frontend", "product");
  EXPECT_DOUBLE_EQ(mean_calls(product, "recommendationservice", "ListRecommendations"), 1.0);
  // The product itself, then one GetProduct per recommendation (max_responses = 5).
  EXPECT_DOUBLE_EQ(mean_calls(product, "productcatalogservice", "GetProduct"), 6.0);
  const Operation& recommendations =
      operation_of(t, "recommendationservice", "ListRecommendations");
  EXPECT_DOUBLE_EQ(mean_calls(recommendations, "productcatalogservice", "ListProducts"), 1.0);
  EXPECT_TRUE(operation_of(t, "frontend", "setCurrency").steps.empty());
}

TEST(OnlineBoutique, CartStoreIsAPooledStrongRedis) {
  const Topology t = load_bundled("online-boutique");
  const Datastore* redis = t.find_datastore("redis-cart");
  ASSERT_NE(redis, nullptr);
  EXPECT_EQ(redis->kind, DatastoreKind::kv);
  EXPECT_EQ(redis->consistency, Consistency::strong);
  const EdgePolicy& to_redis = t.policy("cartservice", "redis-cart");
  EXPECT_EQ(to_redis.from, "cartservice") << "an explicit edge, not the defaults";
  EXPECT_GT(to_redis.pool.size, 0) << "the checkout path must be able to exhaust this pool";
}

TEST(OnlineBoutique, CheckoutEdgesHaveTheirOwnTimeoutsAndNoRetriesOnCharge) {
  const Topology t = load_bundled("online-boutique");
  for (const auto& call : calls_of(operation_of(t, "checkoutservice", "PlaceOrder"))) {
    const EdgePolicy& policy = t.policy("checkoutservice", call.to);
    EXPECT_EQ(policy.to, call.to) << "checkoutservice -> " << call.to << " has no explicit edge";
    EXPECT_LT(policy.timeout_ms, t.policy("frontend", "checkoutservice").timeout_ms)
        << "a callee's timeout must fit inside the caller's";
  }
  EXPECT_EQ(t.policy("checkoutservice", "paymentservice").retry.max_retries, 0);
  EXPECT_EQ(t.policy("frontend", "checkoutservice").retry.max_retries, 0);
}

TEST(OnlineBoutique, MixIsTheLoadGeneratorsHttpRequests) {
  const Topology t = load_bundled("online-boutique");
  ASSERT_EQ(t.workload.clients.size(), 1u);
  const ClientClass& client = t.workload.clients[0];
  ASSERT_EQ(client.rate.size(), 1u);
  EXPECT_DOUBLE_EQ(client.rate[0].rps, 200.0);
  std::map<std::string, double> weight_by_route;
  double total = 0.0;
  for (const auto& kind : client.mix) {
    const Route* route = match_route(t, client, kind);
    ASSERT_NE(route, nullptr) << kind.path;
    weight_by_route[route->name] += kind.weight;
    total += kind.weight;
  }
  // locustfile.py task weights 1, 2, 10, 2, 3, 1, with addToCart and checkout expanded into
  // their HTTP requests: 23 requests per 19 tasks.
  EXPECT_DOUBLE_EQ(weight_by_route["home"] / total, 1.0 / 23);
  EXPECT_DOUBLE_EQ(weight_by_route["set-currency"] / total, 2.0 / 23);
  EXPECT_DOUBLE_EQ(weight_by_route["product"] / total, 13.0 / 23);
  EXPECT_DOUBLE_EQ(weight_by_route["add-to-cart"] / total, 3.0 / 23);
  EXPECT_DOUBLE_EQ(weight_by_route["view-cart"] / total, 3.0 / 23);
  EXPECT_DOUBLE_EQ(weight_by_route["checkout"] / total, 1.0 / 23);
}

TEST(OnlineBoutique, ReplicatedServicesSpanBothZones) {
  const Topology t = load_bundled("online-boutique");
  ASSERT_EQ(t.zones.size(), 2u);
  for (const auto& service : t.services) {
    if (service.replicas < 2) continue;
    std::set<std::string> zones;
    for (int i = 0; i < service.replicas; ++i) {
      zones.insert(service.placement[i % service.placement.size()].zone);
    }
    EXPECT_EQ(zones.size(), 2u) << service.name;
  }
}

// ---------------------------------------------------------------------------------------
// HotROD: jaegertracing/jaeger examples/hotrod.

TEST(HotRod, CustomerQueriesMysqlThroughAOneConnectionPool) {
  const Topology t = load_bundled("hotrod");
  const Datastore* mysql = t.find_datastore("mysql");
  ASSERT_NE(mysql, nullptr);
  EXPECT_EQ(mysql->kind, DatastoreKind::sql);
  EXPECT_DOUBLE_EQ(
      mean_calls(operation_of(t, "customer", "GetCustomer"), "mysql", "select_customer"), 1.0);
  EXPECT_EQ(t.policy("customer", "mysql").pool.size, 1) << "config.go: MySQLMutexDisabled = false";
  // MySQLGetDelay = 300 ms.
  EXPECT_NEAR(mysql->queries.at(0).cost_ms.mean(), 300.0, 1.0);
}

TEST(HotRod, DispatchAsksRouteForTenDriversThreeAtATime) {
  const Topology t = load_bundled("hotrod");
  const Operation& dispatch = operation_of(t, "frontend", "dispatch");
  ASSERT_EQ(dispatch.steps.size(), 3u);
  EXPECT_EQ(dispatch.steps[0].calls.at(0).to, "customer");
  EXPECT_EQ(dispatch.steps[1].calls.at(0).to, "driver");
  const Step& routes = dispatch.steps[2];
  EXPECT_TRUE(routes.parallel);
  ASSERT_EQ(routes.calls.size(), 1u);
  EXPECT_EQ(routes.calls[0].to, "route");
  EXPECT_DOUBLE_EQ(routes.calls[0].count, 10.0);
  EXPECT_EQ(t.policy("frontend", "route").pool.size, 3) << "config.go: RouteWorkerPoolSize = 3";
  EXPECT_NEAR(operation_of(t, "route", "FindRoute").cpu_ms.mean(), 50.0, 0.5);
}

TEST(HotRod, DriverReadsRedisWithEveryFifthGetDriverRetried) {
  const Topology t = load_bundled("hotrod");
  const Operation& find_nearest = operation_of(t, "driver", "FindNearest");
  EXPECT_DOUBLE_EQ(mean_calls(find_nearest, "redis", "FindDriverIDs"), 1.0);
  // 10 drivers; 1 GetDriver in 5 fails and is retried: 10 / (4/5) calls.
  EXPECT_DOUBLE_EQ(mean_calls(find_nearest, "redis", "GetDriver"), 12.5);
  EXPECT_EQ(t.policy("driver", "redis").retry.max_retries, 2) << "3 attempts in FindNearest";
  // MySQL's one connection is the bottleneck: 1 req/s x 300 ms keeps it 30 % busy.
  const double dispatch_rps = offered_load(t).at({"frontend", "dispatch"});
  EXPECT_NEAR(dispatch_rps * 0.300 / t.policy("customer", "mysql").pool.size, 0.30, 0.01);
}

// ---------------------------------------------------------------------------------------
// Sock Shop: microservices-demo/*.

TEST(SockShop, OrdersGathersUserAndCartInParallelThenPaysAndShips) {
  const Topology t = load_bundled("sock-shop");
  const Operation& create = operation_of(t, "orders", "Create");
  ASSERT_GE(create.steps.size(), 3u);
  const Step& gather = create.steps[0];
  EXPECT_TRUE(gather.parallel);
  std::set<std::string> gathered;
  for (const auto& call : gather.calls) gathered.insert(call.to + "." + call.operation);
  EXPECT_EQ(gathered, (std::set<std::string>{"user.GetAddress", "user.GetCustomer", "user.GetCard",
                                             "carts.GetItems"}));
  EXPECT_EQ(create.steps[1].calls.at(0).to, "payment");
  EXPECT_EQ(create.steps[2].calls.at(0).to, "shipping");
  EXPECT_DOUBLE_EQ(mean_calls(create, "orders-db", "insert_order"), 1.0);
  EXPECT_DOUBLE_EQ(t.policy("orders", "payment").timeout_ms, 5000.0) << "http.timeout:5";
}

TEST(SockShop, ShippingPublishesToRabbitmqAndNobodyCallsQueueMaster) {
  const Topology t = load_bundled("sock-shop");
  const Datastore* rabbitmq = t.find_datastore("rabbitmq");
  ASSERT_NE(rabbitmq, nullptr);
  EXPECT_EQ(rabbitmq->kind, DatastoreKind::queue);
  EXPECT_DOUBLE_EQ(
      mean_calls(operation_of(t, "shipping", "Create"), "rabbitmq", "publish_shipping_task"), 1.0);
  ASSERT_NE(t.find_service("queue-master"), nullptr);
  for (const auto& service : t.services) {
    for (const auto& op : service.operations) {
      for (const auto& call : calls_of(op)) EXPECT_NE(call.to, "queue-master") << service.name;
    }
  }
  EXPECT_EQ(offered_load(t).count({"queue-master", "ConsumeShippingTask"}), 0u);
}

TEST(SockShop, EachServiceOwnsItsDatabase) {
  const Topology t = load_bundled("sock-shop");
  const std::map<std::string, std::pair<std::string, DatastoreKind>> owner = {
      {"catalogue", {"catalogue-db", DatastoreKind::sql}},
      {"carts", {"carts-db", DatastoreKind::kv}},
      {"orders", {"orders-db", DatastoreKind::kv}},
      {"user", {"user-db", DatastoreKind::kv}}};
  for (const auto& [service, store] : owner) {
    const Datastore* datastore = t.find_datastore(store.first);
    ASSERT_NE(datastore, nullptr) << store.first;
    EXPECT_EQ(datastore->kind, store.second) << store.first;
    for (const auto& other : t.services) {
      for (const auto& op : other.operations) {
        for (const auto& call : calls_of(op)) {
          if (call.to == store.first) {
            EXPECT_EQ(other.name, service) << store.first;
          }
        }
      }
    }
  }
  for (const auto& service : t.services) EXPECT_EQ(service.replicas, 1) << "complete-demo.yaml";
}

}  // namespace
}  // namespace doppel::model
