// Reconstruction from handwritten spans: self time, parallel groups, call counts, errors,
// datastores, workload; and the output always loads as topology/v1.
#include "doppel/ingest/reconstruct.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::ingest {
namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kEpoch = 1'700'000'000LL * 1'000'000'000LL;

Span span(std::uint64_t trace, std::uint64_t id, std::uint64_t parent, std::string service,
          std::string operation, SpanKind kind, double start_ms, double end_ms,
          bool error = false) {
  Span s;
  s.trace_id = TraceId{0, trace};
  s.span_id = id;
  s.parent_span_id = parent;
  s.service = std::move(service);
  s.operation = std::move(operation);
  s.kind = kind;
  s.start_ns = kEpoch + static_cast<std::int64_t>(start_ms * kMs);
  s.end_ns = kEpoch + static_cast<std::int64_t>(end_ms * kMs);
  s.error = error;
  return s;
}

// A client span in `caller` and the server span it leads to in `callee`, same interval.
void add_call(std::vector<Span>& spans, std::uint64_t trace, std::uint64_t& next_id,
              std::uint64_t parent, const std::string& caller, const std::string& callee,
              const std::string& operation, double start_ms, double end_ms, bool error = false) {
  const std::uint64_t client = next_id++;
  spans.push_back(
      span(trace, client, parent, caller, operation, SpanKind::client, start_ms, end_ms, error));
  spans.push_back(span(trace, next_id++, client, callee, operation, SpanKind::server,
                       start_ms + 0.1, end_ms - 0.1, error));
}

Reconstruction reconstruct(std::vector<Span> spans, ReconstructOptions options = {}) {
  TopologyReconstructor reconstructor(options);
  for (auto& s : spans) reconstructor.on_span(std::move(s));
  return reconstructor.finish();
}

const model::Operation& operation(const model::Topology& t, const std::string& service,
                                  const std::string& name) {
  const model::Service* s = t.find_service(service);
  if (s == nullptr) throw std::runtime_error("no service " + service);
  for (const auto& op : s->operations) {
    if (op.name == name) return op;
  }
  throw std::runtime_error("no operation " + name);
}

void expect_loads(const Reconstruction& r) {
  const nlohmann::json doc = model::topology_to_json(r.topology);
  const model::Topology reloaded = model::parse_topology(doc, "reconstructed");
  EXPECT_EQ(reloaded, r.topology);
}

TEST(Reconstruct, SelfTimeSubtractsTheUnionOfOverlappingCalls) {
  std::vector<Span> spans;
  std::uint64_t id = 2;
  spans.push_back(span(1, 1, 0, "web", "home", SpanKind::server, 0, 100));
  // 10..40 and 30..60 overlap: together they cover 50 ms, not 60; 80..90 adds 10.
  spans.push_back(span(1, id++, 1, "web", "a", SpanKind::client, 10, 40));
  spans.push_back(span(1, id++, 2, "api", "a", SpanKind::server, 11, 39));
  spans.push_back(span(1, id++, 1, "web", "b", SpanKind::client, 30, 60));
  spans.push_back(span(1, id++, 4, "api", "b", SpanKind::server, 31, 59));
  spans.push_back(span(1, id++, 1, "web", "c", SpanKind::client, 80, 90));
  spans.push_back(span(1, id++, 6, "api", "c", SpanKind::server, 81, 89));
  ReconstructOptions options;
  options.fit = SelfTimeFit::lognormal;
  const auto r = reconstruct(spans, options);
  const auto& home = operation(r.topology, "web", "home");
  EXPECT_EQ(home.cpu_ms.kind, model::Distribution::Kind::lognormal);
  EXPECT_NEAR(home.cpu_ms.median_ms, 40.0, 1e-6);
  EXPECT_NEAR(operation(r.topology, "api", "a").cpu_ms.median_ms, 28.0, 1e-6);
  const ObservedOperation& observed = r.observed.at("web.home");
  EXPECT_EQ(observed.spans, 1u);
  EXPECT_EQ(observed.latency_ms, std::vector<double>{100.0});
  EXPECT_DOUBLE_EQ(observed.calls_per_span.at("api.b"), 1.0);
  // Each client span is 2 ms longer than its server span: 1 ms each way.
  EXPECT_DOUBLE_EQ(r.topology.zones.at(0).network.latency_us, 1000.0);
  expect_loads(r);
}

TEST(Reconstruct, InternalSpansAreTransparentAndChildrenBeyondTheParentAreClipped) {
  std::vector<Span> spans;
  spans.push_back(span(1, 1, 0, "web", "home", SpanKind::server, 0, 50));
  spans.push_back(span(1, 2, 1, "web", "render", SpanKind::internal, 5, 45));
  // Clock skew: the call ends after its parent; only 40..50 counts.
  spans.push_back(span(1, 3, 2, "web", "get", SpanKind::client, 40, 70));
  spans.push_back(span(1, 4, 3, "api", "get", SpanKind::server, 41, 69));
  ReconstructOptions options;
  options.fit = SelfTimeFit::lognormal;
  const auto r = reconstruct(spans, options);
  const auto& home = operation(r.topology, "web", "home");
  EXPECT_NEAR(home.cpu_ms.median_ms, 40.0, 1e-6);
  ASSERT_EQ(home.steps.size(), 1u);
  EXPECT_EQ(home.steps[0].calls[0].to, "api");
  EXPECT_EQ(r.topology.find_service("web")->operations.size(), 1u) << "render is not an operation";
}

TEST(Reconstruct, OverlappingCallsFormParallelStepsInStartOrder) {
  std::vector<Span> spans;
  for (std::uint64_t trace = 1; trace <= 3; ++trace) {
    std::uint64_t id = 2;
    spans.push_back(span(trace, 1, 0, "web", "home", SpanKind::server, 0, 100));
    add_call(spans, trace, id, 1, "web", "auth", "check", 1, 10);
    add_call(spans, trace, id, 1, "web", "catalog", "list", 12, 40);
    add_call(spans, trace, id, 1, "web", "ads", "pick", 15, 35);
    add_call(spans, trace, id, 1, "web", "cart", "get", 50, 60);
  }
  const auto r = reconstruct(spans);
  const auto& home = operation(r.topology, "web", "home");
  ASSERT_EQ(home.steps.size(), 3u);
  EXPECT_FALSE(home.steps[0].parallel);
  EXPECT_EQ(home.steps[0].calls[0].to, "auth");
  EXPECT_TRUE(home.steps[1].parallel);
  ASSERT_EQ(home.steps[1].calls.size(), 2u);
  EXPECT_EQ(home.steps[1].calls[0].to, "catalog");
  EXPECT_EQ(home.steps[1].calls[1].to, "ads");
  EXPECT_FALSE(home.steps[2].parallel);
  EXPECT_EQ(home.steps[2].calls[0].to, "cart");
  expect_loads(r);
}

TEST(Reconstruct, CallCountIsTheMeanPerParentSpanAndAbsenceIsProbability) {
  std::vector<Span> spans;
  // checkout calls the catalog once per cart item: 1, 2 and 3 items, one after another.
  for (std::uint64_t trace = 1; trace <= 3; ++trace) {
    std::uint64_t id = 2;
    spans.push_back(span(trace, 1, 0, "checkout", "place", SpanKind::server, 0, 100));
    for (std::uint64_t item = 0; item < trace; ++item) {
      const double start = 10.0 + 20.0 * static_cast<double>(item);
      add_call(spans, trace, id, 1, "checkout", "catalog", "get", start, start + 10);
    }
    if (trace == 1) add_call(spans, trace, id, 1, "checkout", "email", "send", 90, 95);
  }
  const auto r = reconstruct(spans);
  const auto& place = operation(r.topology, "checkout", "place");
  ASSERT_EQ(place.steps.size(), 2u);
  const model::Call& catalog = place.steps[0].calls[0];
  EXPECT_EQ(catalog.to, "catalog");
  EXPECT_DOUBLE_EQ(catalog.count, 2.0);
  EXPECT_DOUBLE_EQ(catalog.probability, 1.0);
  EXPECT_FALSE(place.steps[0].parallel) << "the repeats never overlap";
  const model::Call& email = place.steps[1].calls[0];
  EXPECT_EQ(email.to, "email");
  EXPECT_DOUBLE_EQ(email.count, 1.0);
  EXPECT_NEAR(email.probability, 1.0 / 3.0, 1e-6);
}

TEST(Reconstruct, OverlappingRepeatsOfOneCallAreAParallelStep) {
  std::vector<Span> spans;
  std::uint64_t id = 2;
  spans.push_back(span(1, 1, 0, "frontend", "dispatch", SpanKind::server, 0, 100));
  for (int k = 0; k < 3; ++k)
    add_call(spans, 1, id, 1, "frontend", "route", "find", 10 + k, 40 + k);
  const auto r = reconstruct(spans);
  const auto& dispatch = operation(r.topology, "frontend", "dispatch");
  ASSERT_EQ(dispatch.steps.size(), 1u);
  EXPECT_TRUE(dispatch.steps[0].parallel);
  EXPECT_DOUBLE_EQ(dispatch.steps[0].calls[0].count, 3.0);
}

TEST(Reconstruct, ErrorRateCountsOwnFailuresNotPropagatedOnes) {
  std::vector<Span> spans;
  for (std::uint64_t trace = 1; trace <= 4; ++trace) {
    std::uint64_t id = 2;
    // Trace 2: home fails on its own. Trace 3: the call fails and home fails with it.
    // Trace 4: only the client side saw the failure (a timeout): the callee is blamed.
    const bool home_failed = trace == 2 || trace == 3;
    spans.push_back(span(trace, 1, 0, "web", "home", SpanKind::server, 0, 100, home_failed));
    const std::uint64_t client = id++;
    spans.push_back(
        span(trace, client, 1, "web", "get", SpanKind::client, 10, 50, trace == 3 || trace == 4));
    spans.push_back(span(trace, id++, client, "api", "get", SpanKind::server, 11, 49, trace == 3));
  }
  const auto r = reconstruct(spans);
  EXPECT_DOUBLE_EQ(operation(r.topology, "web", "home").error_rate, 0.25);
  // api.get: its own failure (trace 3) and the one only its caller saw (trace 4).
  EXPECT_DOUBLE_EQ(operation(r.topology, "api", "get").error_rate, 0.5);
}

TEST(Reconstruct, DatastoresFromAttributesAndNames) {
  std::vector<Span> spans;
  spans.push_back(span(1, 1, 0, "cart", "GetCart", SpanKind::server, 0, 20));
  Span redis = span(1, 2, 1, "cart", "HGET", SpanKind::client, 2, 4);
  redis.set_attribute("db.system", "redis");
  redis.set_attribute("server.address", "redis-cart:6379");
  spans.push_back(redis);
  // DeathStarBench style: no kinds, the technology in the operation name.
  spans.push_back(span(1, 3, 1, "cart", "cart_mongo_insert_client", SpanKind::unspecified, 5, 9));
  // HotROD style: the client span carries the database's name as its service.
  spans.push_back(span(1, 4, 1, "mysql", "SQL SELECT", SpanKind::client, 10, 15));
  const auto r = reconstruct(spans);
  const auto& t = r.topology;
  ASSERT_NE(t.find_datastore("redis-cart"), nullptr);
  EXPECT_EQ(t.find_datastore("redis-cart")->kind, model::DatastoreKind::cache);
  EXPECT_EQ(t.find_datastore("redis-cart")->queries[0].name, "HGET");
  ASSERT_NE(t.find_datastore("cart-mongodb"), nullptr);
  EXPECT_EQ(t.find_datastore("cart-mongodb")->kind, model::DatastoreKind::kv);
  EXPECT_EQ(t.find_datastore("cart-mongodb")->queries[0].name, "insert");
  EXPECT_EQ(t.find_datastore("cart-mongodb")->queries[0].type, model::QueryType::write);
  ASSERT_NE(t.find_datastore("mysql"), nullptr);
  EXPECT_EQ(t.find_datastore("mysql")->kind, model::DatastoreKind::sql);
  EXPECT_EQ(t.services.size(), 1u);
  EXPECT_EQ(callees_of(r.call_graph, "cart"),
            (std::vector<std::string>{"cart-mongodb", "mysql", "redis-cart"}));
  const auto& get_cart = operation(t, "cart", "GetCart");
  EXPECT_NEAR(get_cart.cpu_ms.quantile(1.0), 20.0 - 2 - 4 - 5, 1e-6);
  expect_loads(r);
}

TEST(Reconstruct, ProducerCallsGoToAQueueAndConsumersAreMessagingEdges) {
  std::vector<Span> spans;
  spans.push_back(span(1, 1, 0, "checkout", "place", SpanKind::server, 0, 20));
  Span produce = span(1, 2, 1, "checkout", "orders send", SpanKind::producer, 5, 6);
  produce.set_attribute("messaging.system", "kafka");
  produce.set_attribute("messaging.destination.name", "orders");
  spans.push_back(produce);
  spans.push_back(span(1, 3, 2, "accounting", "orders process", SpanKind::consumer, 30, 40));
  const auto r = reconstruct(spans);
  ASSERT_NE(r.topology.find_datastore("orders"), nullptr);
  EXPECT_EQ(r.topology.find_datastore("orders")->kind, model::DatastoreKind::queue);
  EXPECT_EQ(callees_of(r.call_graph, "checkout"), std::vector<std::string>{"orders"});
  EXPECT_EQ(callees_of(r.call_graph, "orders"), std::vector<std::string>{"accounting"});
  expect_loads(r);
}

TEST(Reconstruct, WorkloadRatesPerWindowAndARoutePerEntryOperation) {
  std::vector<Span> spans;
  std::uint64_t trace = 1;
  // 20 requests in the first 10 s, 5 in the next 10 s.
  for (int k = 0; k < 20; ++k) {
    Span root = span(trace++, 1, 0, "web", "home", SpanKind::server, k * 500.0, k * 500.0 + 5);
    root.set_attribute("http.method", "GET");
    root.set_attribute("http.route", "/home");
    spans.push_back(root);
  }
  for (int k = 0; k < 5; ++k) {
    spans.push_back(span(trace++, 1, 0, "web", "home", SpanKind::server, 10'000.0 + k * 2000.0,
                         10'000.0 + k * 2000.0 + 5));
  }
  const auto r = reconstruct(spans);
  const auto& t = r.topology;
  ASSERT_EQ(t.gateway.routes.size(), 1u);
  EXPECT_EQ(t.gateway.routes[0].method, "GET");
  EXPECT_EQ(t.gateway.routes[0].path_regex, "/home");
  ASSERT_EQ(t.workload.clients.size(), 1u);
  const auto& rate = t.workload.clients[0].rate;
  ASSERT_EQ(rate.size(), 2u);
  EXPECT_DOUBLE_EQ(rate[0].rps, 2.0);
  EXPECT_DOUBLE_EQ(rate[1].at_s, 10.0);
  EXPECT_DOUBLE_EQ(rate[1].rps, 0.5);
  EXPECT_DOUBLE_EQ(t.workload.duration_s, 20.0);
  EXPECT_EQ(r.stats.entry_requests, 25u);
  expect_loads(r);
}

TEST(Reconstruct, CallCyclesAreBrokenAndNoted) {
  std::vector<Span> spans;
  std::uint64_t id = 2;
  spans.push_back(span(1, 1, 0, "a", "x", SpanKind::server, 0, 100));
  const std::uint64_t first = id;
  add_call(spans, 1, id, 1, "a", "b", "y", 10, 90);
  add_call(spans, 1, id, first + 1, "b", "a", "x", 20, 80);
  const auto r = reconstruct(spans);
  ASSERT_FALSE(r.stats.notes.empty());
  EXPECT_NE(r.stats.notes[0].find("call cycle"), std::string::npos);
  expect_loads(r);
}

TEST(Reconstruct, EmpiricalFitKeepsTheQuantiles) {
  std::vector<Span> spans;
  for (std::uint64_t trace = 1; trace <= 1000; ++trace) {
    const double ms = 1.0 + static_cast<double>(trace % 100);  // 1..100 ms, uniform
    spans.push_back(
        span(trace, 1, 0, "web", "home", SpanKind::server, trace * 1000.0, trace * 1000.0 + ms));
  }
  ReconstructOptions options;
  options.histogram_buckets = 20;
  const auto r = reconstruct(spans, options);
  const auto& cpu = operation(r.topology, "web", "home").cpu_ms;
  ASSERT_EQ(cpu.kind, model::Distribution::Kind::empirical);
  // 20 quantile buckets, the minimum's, and finer edges at 0.95, 0.975, 0.99, 0.995, 0.999.
  EXPECT_LE(cpu.buckets.size(), 26u);
  EXPECT_NEAR(cpu.quantile(0.5), 50.5, 3.0);
  EXPECT_NEAR(cpu.quantile(0.9), 90.5, 3.0);
  // The tail edges keep p99 where it was; a last bucket from p95 to the max would not.
  EXPECT_NEAR(cpu.quantile(0.99), 99.5, 1.0);
  EXPECT_NEAR(cpu.quantile(1.0), 100.0, 1e-9);
  EXPECT_GE(cpu.quantile(0.0), 1.0);
}

TEST(Reconstruct, DuplicatesAndOrphansDoNotDistort) {
  std::vector<Span> spans;
  std::uint64_t id = 2;
  spans.push_back(span(1, 1, 0, "web", "home", SpanKind::server, 0, 100));
  add_call(spans, 1, id, 1, "web", "api", "get", 10, 20);
  spans.push_back(spans.back());  // a duplicate server span
  spans.push_back(span(1, 99, 98, "api", "get", SpanKind::server, 0, 5));  // parent missing
  const auto r = reconstruct(spans);
  EXPECT_DOUBLE_EQ(operation(r.topology, "web", "home").steps[0].calls[0].count, 1.0);
  EXPECT_EQ(r.stats.fragment_roots, 1u);
  EXPECT_EQ(r.stats.entry_requests, 1u);
}

TEST(Reconstruct, InterleavedTracesBeyondTheBufferAreAnalysedEarly) {
  ReconstructOptions options;
  options.max_buffered_spans = 10;
  TopologyReconstructor reconstructor(options);
  for (std::uint64_t trace = 1; trace <= 50; ++trace) {
    reconstructor.on_span(span(trace, 1, 0, "web", "home", SpanKind::server, 0, 10));
  }
  const auto r = reconstructor.finish();
  EXPECT_GT(r.stats.early_flushed_traces, 0u);
  EXPECT_EQ(r.stats.traces, 50u);
  EXPECT_EQ(r.stats.entry_requests, 50u);
}

TEST(Reconstruct, NoSpansIsAnInputError) {
  TopologyReconstructor reconstructor;
  EXPECT_THROW(reconstructor.finish(), InputError);
}

TEST(Reconstruct, ProvenanceSaysInferredOrDefault) {
  std::vector<Span> spans;
  spans.push_back(span(1, 1, 0, "web", "GET /a/b", SpanKind::server, 0, 10));
  const auto r = reconstruct(spans);
  auto find = [&](const std::string& pointer) -> const ProvenanceEntry* {
    for (const auto& e : r.provenance) {
      if (e.pointer == pointer) return &e;
    }
    return nullptr;
  };
  ASSERT_NE(find("/services/web/operations/GET ~1a~1b/cpu_ms"), nullptr);
  EXPECT_EQ(find("/services/web/operations/GET ~1a~1b/cpu_ms")->source, "traces");
  ASSERT_NE(find("/services/web/workers"), nullptr);
  EXPECT_EQ(find("/services/web/workers")->source, "default");
}

}  // namespace
}  // namespace doppel::ingest
