// A small topology and record builders for feeding recorders synthetic streams with known
// answers, without the twin.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "doppel/model/topology.hpp"
#include "doppel/twin/observer.hpp"

namespace doppel::telemetry::testing {

// Zone z1 with hosts h1 (4 cores) and h2 (2 cores, speed 2); services front (calls back and
// db, pool of 10 to back) and back; datastore db with one replica; routes home and api;
// client browser; one SLO on home (p50 <= 50 ms, p99 <= 200 ms, errors <= 1%).
inline model::Topology small_topology() {
  model::Topology topology;
  topology.name = "small";
  model::Zone zone;
  zone.name = "z1";
  zone.hosts = {{"h1", 4, 1.0}, {"h2", 2, 2.0}};
  topology.zones.push_back(zone);

  model::Service front;
  front.name = "front";
  front.replicas = 2;
  model::Operation home;
  home.name = "home";
  model::Step call_back;
  call_back.calls.push_back(model::Call{"back", "get"});
  model::Step call_db;
  call_db.calls.push_back(model::Call{"db", "read"});
  home.steps = {call_back, call_db};
  front.operations.push_back(home);
  topology.services.push_back(front);

  model::Service back;
  back.name = "back";
  model::Operation get;
  get.name = "get";
  back.operations.push_back(get);
  topology.services.push_back(back);

  model::EdgePolicy front_to_back;
  front_to_back.from = "front";
  front_to_back.to = "back";
  front_to_back.pool.size = 10;
  topology.edges.push_back(front_to_back);

  model::Datastore db;
  db.name = "db";
  db.primary.zone = "z1";
  db.replicas.push_back(model::Placement{"z1", std::nullopt});
  topology.datastores.push_back(db);

  model::Route home_route;
  home_route.name = "home";
  home_route.service = "front";
  home_route.operation = "home";
  model::Route api_route = home_route;
  api_route.name = "api";
  topology.gateway.routes = {home_route, api_route};

  model::ClientClass browser;
  browser.name = "browser";
  topology.workload.clients.push_back(browser);

  model::Slo slo;
  slo.route = "home";
  slo.latency = {{50.0, 50.0}, {99.0, 200.0}};
  slo.max_error_rate = 0.01;
  topology.slos.push_back(slo);
  return topology;
}

inline twin::SpanRecord server_span(std::string_view service, double start_s, double end_s,
                                    twin::Outcome outcome = twin::Outcome::ok) {
  twin::SpanRecord span;
  span.kind = twin::SpanKind::server;
  span.service = service;
  span.operation = "op";
  span.host = "h1";
  span.start_s = start_s;
  span.end_s = end_s;
  span.outcome = outcome;
  return span;
}

inline twin::SpanRecord client_span(std::string_view caller, std::string_view peer, double start_s,
                                    double end_s, int attempt = 0,
                                    twin::Outcome outcome = twin::Outcome::ok) {
  twin::SpanRecord span = server_span(caller, start_s, end_s, outcome);
  span.kind = twin::SpanKind::client;
  span.peer = peer;
  span.attempt = attempt;
  return span;
}

inline twin::EntryRecord entry(std::string_view route, double start_s, double end_s,
                               twin::Outcome outcome = twin::Outcome::ok) {
  twin::EntryRecord record;
  record.client = "browser";
  record.route = route;
  record.method = "GET";
  record.path = "/";
  record.start_s = start_s;
  record.end_s = end_s;
  record.outcome = outcome;
  record.status = outcome == twin::Outcome::ok ? 200 : 503;
  return record;
}

}  // namespace doppel::telemetry::testing
