// The config overlay: merged on top of what traces gave, partial, strict about names and
// keys, and recorded in the provenance.
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "doppel/ingest/config_overlay.hpp"
#include "doppel/ingest/reconstruct.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::ingest {
namespace {

using nlohmann::json;

Span make_span(std::uint64_t id, std::uint64_t parent, std::string service, std::string op,
               SpanKind kind, std::int64_t start_ms, std::int64_t end_ms) {
  Span s;
  s.trace_id = TraceId{0, 7};
  s.span_id = id;
  s.parent_span_id = parent;
  s.service = std::move(service);
  s.operation = std::move(op);
  s.kind = kind;
  s.start_ns = 1'000'000'000'000'000 + start_ms * 1'000'000;
  s.end_ns = 1'000'000'000'000'000 + end_ms * 1'000'000;
  return s;
}

// web.home -> api.get -> db (redis)
Reconstruction small_reconstruction() {
  TopologyReconstructor reconstructor;
  reconstructor.on_span(make_span(1, 0, "web", "home", SpanKind::server, 0, 50));
  reconstructor.on_span(make_span(2, 1, "web", "get", SpanKind::client, 5, 40));
  reconstructor.on_span(make_span(3, 2, "api", "get", SpanKind::server, 6, 39));
  Span db = make_span(4, 3, "api", "GET", SpanKind::client, 10, 12);
  db.set_attribute("db.system", "redis");
  db.set_attribute("peer.service", "sessions");
  reconstructor.on_span(std::move(db));
  return reconstructor.finish();
}

std::string source_of(const Reconstruction& r, const std::string& pointer) {
  for (const auto& e : r.provenance) {
    if (e.pointer == pointer) return e.source;
  }
  return "absent";
}

std::string error_of(const json& overlay) {
  Reconstruction r = small_reconstruction();
  try {
    apply_config_overlay(r, overlay, "overlay.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

TEST(ConfigOverlay, PartialOverlayMergesOnTopOfTheInferredTopology) {
  Reconstruction r = small_reconstruction();
  const model::Topology inferred = r.topology;
  EXPECT_EQ(source_of(r, "/services/api/replicas"), "default");
  apply_config_overlay(r, json::parse(R"({
    "doppel": "overlay/v1",
    "services": {"api": {"replicas": 3, "workers": 8,
                         "operations": {"get": {"error_rate": 0.02}}}},
    "datastores": {"sessions": {"consistency": "eventual", "max_connections": 20}},
    "edges": [{"from": "web", "to": "api", "timeout_ms": 250,
               "retries": {"max": 2, "backoff_base_ms": 10, "backoff_cap_ms": 100}}],
    "slos": [{"route": "web-home", "latency": [{"percentile": 99, "max_ms": 200}]}]
  })"),
                       "overlay.json");
  const model::Topology& t = r.topology;
  EXPECT_EQ(t.find_service("api")->replicas, 3);
  EXPECT_EQ(t.find_service("api")->workers, 8);
  EXPECT_EQ(t.find_service("api")->placement.size(), 3u) << "a host per new replica";
  EXPECT_DOUBLE_EQ(t.find_service("api")->operations[0].error_rate, 0.02);
  EXPECT_EQ(t.find_service("api")->operations[0].cpu_ms,
            inferred.find_service("api")->operations[0].cpu_ms);
  EXPECT_EQ(t.find_service("web")->replicas, 1);
  EXPECT_EQ(t.find_datastore("sessions")->consistency, model::Consistency::eventual);
  EXPECT_EQ(t.find_datastore("sessions")->max_connections, 20);
  EXPECT_DOUBLE_EQ(t.policy("web", "api").timeout_ms, 250.0);
  EXPECT_EQ(t.policy("web", "api").retry.max_retries, 2);
  ASSERT_EQ(t.slos.size(), 1u);

  EXPECT_EQ(source_of(r, "/services/api/replicas"), "overlay");
  EXPECT_EQ(source_of(r, "/services/api/operations/get/error_rate"), "overlay");
  EXPECT_EQ(source_of(r, "/services/api/operations/get/cpu_ms"), "traces");
  EXPECT_EQ(source_of(r, "/datastores/sessions/consistency"), "overlay");
  EXPECT_EQ(source_of(r, "/edges/web->api"), "overlay");
  EXPECT_EQ(source_of(r, "/slos"), "overlay");
  EXPECT_EQ(model::parse_topology(model::topology_to_json(t), "merged"), t);
}

TEST(ConfigOverlay, ZonesReplaceTheInferredPlatform) {
  Reconstruction r = small_reconstruction();
  apply_config_overlay(r, json::parse(R"({
    "zones": [{"name": "eu", "hosts": [{"name": "n1", "cores": 8}, {"name": "n2", "cores": 8}]},
              {"name": "us", "hosts": [{"name": "m1"}]}],
    "services": {"web": {"replicas": 2, "placement": [{"zone": "eu"}, {"zone": "us"}]}}
  })"),
                       "overlay.json");
  const model::Topology& t = r.topology;
  ASSERT_EQ(t.zones.size(), 2u);
  EXPECT_EQ(t.find_service("web")->placement.size(), 2u);
  EXPECT_EQ(t.find_service("api")->placement[0].zone, "eu");
  EXPECT_FALSE(t.find_service("api")->placement[0].host.has_value());
  EXPECT_EQ(t.find_datastore("sessions")->primary.zone, "eu");
  EXPECT_EQ(source_of(r, "/zones"), "overlay");
}

TEST(ConfigOverlay, UnknownNamesAndKeysAreErrorsWithPointers) {
  EXPECT_EQ(error_of(json::parse(R"({"services": {"apl": {"replicas": 2}}})")),
            "overlay.json: /services/apl: no service \"apl\" in the reconstructed topology "
            "(it has: api, web)");
  EXPECT_EQ(error_of(json::parse(R"({"services": {"api": {"replica": 2}}})")),
            "overlay.json: /services/api/replica: unknown key \"replica\" (known here: replicas, "
            "placement, workers, queue_capacity, memory, operations)");
  EXPECT_EQ(
      error_of(json::parse(R"({"services": {"api": {"operations": {"put": {"error_rate": 1}}}}})")),
      "overlay.json: /services/api/operations/put: no operation \"put\" in the reconstructed "
      "topology (it has: get)");
  EXPECT_EQ(error_of(json::parse(R"({"datastores": {"db": {"kind": "sql"}}})")),
            "overlay.json: /datastores/db: no datastore \"db\" in the reconstructed topology (it "
            "has: sessions)");
  EXPECT_EQ(error_of(json::parse(R"({"edges": [{"from": "web", "to": "cache"}]})")),
            "overlay.json: /edges/0/to: no service or datastore \"cache\" in the reconstructed "
            "topology");
  EXPECT_EQ(error_of(json::parse(R"({"replicas": 2})")).substr(0, 36),
            "overlay.json: /replicas: unknown key");
  EXPECT_EQ(error_of(json::parse(R"({"doppel": "topology/v1"})")),
            "overlay.json: /doppel: unsupported format \"topology/v1\": an overlay says "
            "\"overlay/v1\"");
}

TEST(ConfigOverlay, ValuesTheTopologyFormatRefusesAreErrorsAndLeaveTheInputAlone) {
  Reconstruction r = small_reconstruction();
  const model::Topology before = r.topology;
  try {
    apply_config_overlay(r, json::parse(R"({"services": {"api": {"workers": 0}}})"),
                         "overlay.json");
    FAIL() << "workers 0 accepted";
  } catch (const InputError& e) {
    EXPECT_EQ(e.file(), "overlay.json");
    EXPECT_NE(std::string(e.what()).find("after merging the overlay"), std::string::npos);
    EXPECT_NE(e.where().json_pointer.find("/workers"), std::string::npos) << e.what();
  }
  EXPECT_EQ(r.topology, before);
}

TEST(ConfigOverlay, FileSyntaxErrorsHaveLineAndColumn) {
  const auto path = std::filesystem::path(DOPPEL_BINARY_DIR) / "overlay_syntax_error.json";
  std::ofstream(path) << "{\n  \"services\": {\n    \"api\" 3\n}\n";
  Reconstruction r = small_reconstruction();
  try {
    apply_config_overlay_file(r, path);
    FAIL() << "bad JSON accepted";
  } catch (const InputError& e) {
    ASSERT_TRUE(e.where().line.has_value());
    EXPECT_EQ(*e.where().line, 3);
  }
}

}  // namespace
}  // namespace doppel::ingest
