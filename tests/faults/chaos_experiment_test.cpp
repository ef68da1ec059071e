// Chaos Toolkit experiments: reading, mapping onto the twin, laying out in time, judging.
#include <gtest/gtest.h>

#include "doppel/faults/chaos_toolkit.hpp"
#include "doppel/model/input_error.hpp"
#include "doppel/model/topology_loader.hpp"

namespace doppel::faults::chaos {
namespace {

using nlohmann::json;

const std::filesystem::path kSource = DOPPEL_SOURCE_DIR;
const std::filesystem::path kChaos = kSource / "tests/data/chaos";

const model::Topology& boutique() {
  static const model::Topology topology =
      model::load_topology(kSource / "topologies/online-boutique.json");
  return topology;
}

ChaosPlan cart_plan() {
  const auto experiment = load_experiment(kChaos / "cart-pod-failure.json");
  return plan_experiment(experiment, mapping_from_extensions(experiment, boutique()), boutique());
}

TEST(ChaosExperiment, ReadsARealLookingExperiment) {
  const auto experiment = load_experiment(kChaos / "cart-pod-failure.json");
  EXPECT_EQ(experiment.title, "The storefront keeps serving when a cart pod is terminated");
  ASSERT_EQ(experiment.hypothesis_probes.size(), 2u);
  EXPECT_EQ(experiment.hypothesis_probes[0].provider, "http");
  ASSERT_EQ(experiment.method.size(), 3u);
  EXPECT_EQ(experiment.method[0].pause_after_s, 10.0);
  EXPECT_EQ(experiment.method[2].name, "frontend-home") << "the ref is resolved";
  EXPECT_EQ(experiment.rollback_strategy, RollbackStrategy::deviated);
  ASSERT_EQ(experiment.rollbacks.size(), 1u);
}

TEST(ChaosExperiment, LaysTheExperimentOutInSimulatedTime) {
  const auto plan = cart_plan();
  // Warm-up 10 s, then the two hypothesis probes (5 s and 10 s windows) before the method.
  EXPECT_DOUBLE_EQ(plan.method_start_s, 25.0);
  ASSERT_EQ(plan.scenario.injections.size(), 1u);
  const auto& crash = plan.scenario.injections[0];
  EXPECT_EQ(crash.kind, InjectionKind::instance_crash);
  EXPECT_DOUBLE_EQ(crash.start_s, 25.0);
  // Action, 10 s pause, two 5 s probes; then the after-hypothesis (15 s); the rollback ends it.
  EXPECT_DOUBLE_EQ(plan.method_end_s, 45.0);
  EXPECT_DOUBLE_EQ(plan.rollbacks_at_s, 60.0);
  ASSERT_TRUE(crash.end_s.has_value());
  EXPECT_DOUBLE_EQ(*crash.end_s, 60.0);
  EXPECT_EQ(crash.label, "terminate-cart-pod");
  int before = 0;
  int after = 0;
  for (const auto& probe : plan.probes) {
    before += probe.phase == ProbePoint::Phase::before;
    after += probe.phase == ProbePoint::Phase::after;
  }
  EXPECT_EQ(before, 2);
  EXPECT_EQ(after, 2);
}

TEST(ChaosExperiment, MappingFileMapsAnExperimentWithoutExtension) {
  const auto experiment = load_experiment(kChaos / "payment-latency.json");
  EXPECT_THROW((void)plan_experiment(experiment, mapping_from_extensions(experiment, boutique()),
                                     boutique()),
               InputError);
  const auto mapping = load_mapping(kChaos / "payment-latency.mapping.json", boutique());
  const auto plan = plan_experiment(experiment, mapping, boutique());
  ASSERT_EQ(plan.scenario.injections.size(), 1u);
  EXPECT_EQ(plan.scenario.injections[0].kind, InjectionKind::latency);
  EXPECT_DOUBLE_EQ(plan.scenario.injections[0].start_s, 25.0);  // 10 + 10 s window + 5 s pause
  EXPECT_DOUBLE_EQ(*plan.scenario.injections[0].end_s,
                   65.0);  // healed after the 30 s pause and 10 s probe
}

TEST(ChaosExperiment, AMappedInjectionMistakeIsReportedInTheMapping) {
  auto doc = json::parse(R"({"title": "t", "description": "d",
    "method": [{"type": "action", "name": "kill", "provider": {"type": "process", "path": "kill"}}],
    "extensions": [{"name": "doppel", "actions": {"kill": {"kind": "instance_crash", "target": {"service": "cartsrvice"}}}}]})");
  const auto experiment = parse_experiment(doc, "e.json");
  try {
    (void)plan_experiment(experiment, mapping_from_extensions(experiment, boutique()), boutique());
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_EQ(e.where().json_pointer, "/extensions/0/actions/kill/target/service");
    EXPECT_EQ(e.message(),
              "action \"kill\": unknown service \"cartsrvice\" (did you mean \"cartservice\"?)");
  }
}

struct BadExperiment {
  const char* json_text;
  const char* pointer;
  const char* message;
};

TEST(ChaosExperiment, RejectsMistakesAtTheirPlace) {
  const BadExperiment cases[] = {
      {R"({"title": "t", "method": []})", "", "missing required field \"description\""},
      {R"({"title": "t", "description": "d", "method": []})", "/method",
       "the method needs at least one activity"},
      {R"({"title": "t", "description": "d", "method": [{"ref": "nope"}]})", "/method/0",
       "ref \"nope\" names no activity of the experiment"},
      {R"({"title": "t", "description": "d", "method": [{"type": "acton", "name": "a", "provider": {"type": "http", "url": "u"}}]})",
       "/method/0/type",
       "unknown value \"acton\", expected one of probe, action (did you mean \"action\"?)"},
      {R"({"title": "t", "description": "d", "steady-state-hypothesis": {"title": "h", "probes": [
          {"type": "probe", "name": "p", "provider": {"type": "http", "url": "u"}}]},
          "method": [{"ref": "p"}]})",
       "/steady-state-hypothesis/probes/0", "a hypothesis probe must have a tolerance"},
      {R"({"title": "t", "description": "d", "steady-state-hypothesis": {"title": "h", "probes": [
          {"type": "probe", "name": "p", "tolerance": 0.5, "provider": {"type": "http", "url": "u"}}]},
          "method": [{"ref": "p"}]})",
       "/steady-state-hypothesis/probes/0/tolerance",
       "a tolerance is a bool, an integer, a string, a list or an object, got 0.5"},
      {R"({"title": "t", "description": "d", "steady-state-hypothesis": {"title": "h", "probes": [
          {"type": "probe", "name": "p", "tolerance": {"type": "range", "range": [1]}, "provider": {"type": "http", "url": "u"}}]},
          "method": [{"ref": "p"}]})",
       "/steady-state-hypothesis/probes/0/tolerance/range", "a range is made of two values"},
      {R"({"title": "t", "description": "d", "runtime": {"rollbacks": {"strategy": "sometimes"}},
          "method": [{"type": "action", "name": "a", "provider": {"type": "process", "path": "p"}}]})",
       "/runtime/rollbacks/strategy",
       "unknown value \"sometimes\", expected one of default, always, never, deviated"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.json_text);
    try {
      (void)parse_experiment(json::parse(c.json_text), "e.json");
      ADD_FAILURE() << "expected an error";
    } catch (const InputError& e) {
      EXPECT_EQ(e.where().json_pointer, c.pointer);
      EXPECT_EQ(e.message(), c.message);
    }
  }
}

// Synthetic requests: `status` on every route, every 0.1 s, over [from, to).
void traffic(ProbeRecorder& recorder, double from, double to, int status, double latency_ms) {
  for (double t = from; t < to; t += 0.1) {
    for (const char* route : {"home", "checkout", "view-cart"}) {
      recorder.add({route, "shoppers", t, latency_ms, status, status >= 500});
    }
  }
}

TEST(ChaosVerdict, CompletedWhenTheSteadyStateHolds) {
  const auto plan = cart_plan();
  ProbeRecorder recorder;
  traffic(recorder, 0.0, 70.0, 200, 50.0);
  const auto verdict = judge_experiment(plan, recorder.entries(), std::nullopt, 70.0);
  EXPECT_EQ(verdict.status, "completed");
  EXPECT_FALSE(verdict.deviated);
  EXPECT_FALSE(verdict.rollbacks_played) << "strategy deviated, and it did not";
}

TEST(ChaosVerdict, DeviatedWhenTheHypothesisFailsAfterTheMethod) {
  const auto plan = cart_plan();
  ProbeRecorder recorder;
  traffic(recorder, 0.0, 45.0, 200, 50.0);
  traffic(recorder, 45.0, 70.0, 503, 50.0);
  const auto verdict = judge_experiment(plan, recorder.entries(), std::nullopt, 70.0);
  EXPECT_EQ(verdict.status, "failed");
  EXPECT_TRUE(verdict.deviated);
  EXPECT_TRUE(verdict.steady_state_before);
  EXPECT_FALSE(verdict.steady_state_after);
  EXPECT_TRUE(verdict.rollbacks_played);
  const auto report = to_json(verdict);
  EXPECT_EQ(report["status"], "failed");
  EXPECT_EQ(report["deviated"], true);
}

TEST(ChaosVerdict, FailedNotDeviatedWhenTheSteadyStateNeverHeld) {
  const auto plan = cart_plan();
  ProbeRecorder recorder;
  traffic(recorder, 0.0, 70.0, 200, 900.0);  // checkout p99 over 400 ms from the start
  const auto verdict = judge_experiment(plan, recorder.entries(), std::nullopt, 70.0);
  EXPECT_EQ(verdict.status, "failed");
  EXPECT_FALSE(verdict.deviated);
  EXPECT_FALSE(verdict.steady_state_before);
}

TEST(ChaosVerdict, AbortedAndInterrupted) {
  const auto plan = cart_plan();
  ProbeRecorder recorder;
  traffic(recorder, 0.0, 70.0, 200, 50.0);
  EXPECT_EQ(judge_experiment(plan, recorder.entries(), 30.0, 70.0).status, "aborted");
  EXPECT_EQ(judge_experiment(plan, recorder.entries(), std::nullopt, 40.0).status, "interrupted");
}

TEST(ChaosVerdict, HttpStatusProbeReportsTheModalStatus) {
  ProbePoint probe;
  probe.measure.route = "home";
  probe.http = true;
  probe.at_s = 10.0;
  std::vector<ProbeRecorder::Entry> entries{{"home", "c", 10.5, 5.0, 200, false},
                                            {"home", "c", 11.0, 5.0, 503, true},
                                            {"home", "c", 11.5, 5.0, 503, true},
                                            {"home", "c", 20.0, 5.0, 200, false}};
  const auto output = measure_probe(probe, entries);
  ASSERT_TRUE(output.has_value());
  EXPECT_EQ((*output)["status"], 503);
  probe.measure.route = "checkout";
  EXPECT_FALSE(measure_probe(probe, entries).has_value());
}

}  // namespace
}  // namespace doppel::faults::chaos
