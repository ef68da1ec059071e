#include "doppel/experiments/diagnosis.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "doppel/model/distribution.hpp"

namespace doppel::experiments {
namespace {

// A metric that sits at `base` with noise and moves to `incident` from t = 100 s on.
struct Shape {
  std::string name;
  double base = 0.0;
  double incident = 0.0;
  double noise = 0.0;
};

MetricSeries synthesise(const std::vector<Shape>& shapes, std::uint64_t seed) {
  auto rng = model::RandomStream(seed);
  MetricSeries series;
  for (const auto& shape : shapes) {
    TimeSeries& points = series[shape.name];
    for (int t = 1; t <= 200; ++t) {
      const double level = t >= 100 ? shape.incident : shape.base;
      points.push_back({static_cast<double>(t), level + shape.noise * rng.standard_normal()});
    }
  }
  return series;
}

CandidateRuns candidate(std::string name, const std::vector<Shape>& shapes, int replications,
                        bool null_hypothesis = false) {
  CandidateRuns runs;
  runs.name = std::move(name);
  runs.description = "synthetic";
  runs.null_hypothesis = null_hypothesis;
  for (int r = 0; r < replications; ++r) {
    runs.replications.push_back(synthesise(shapes, 1000 + static_cast<std::uint64_t>(r)));
  }
  return runs;
}

DiagnosisOptions window_100_200() {
  DiagnosisOptions options;
  options.window_start_s = 100.0;
  options.window_end_s = 200.0;
  return options;
}

// The incident: checkout's p99 goes from 100 to 600 ms, its error rate from 0 to 0.05; the
// database's CPU does not move.
const std::vector<Shape> kObservedIncident = {{"checkout_lat_99", 100, 600, 10},
                                              {"checkout_err", 0, 0.05, 0.005},
                                              {"db_cpu", 0.5, 0.5, 0.02}};
const std::vector<Shape> kPoolExhaustion = {{"checkout_lat_99", 100, 580, 15},
                                            {"checkout_err", 0, 0.05, 0.006},
                                            {"db_cpu", 0.5, 0.5, 0.02}};
const std::vector<Shape> kDbCpuStress = {{"checkout_lat_99", 100, 300, 15},
                                         {"checkout_err", 0, 0.0, 0.001},
                                         {"db_cpu", 0.5, 0.95, 0.02}};
const std::vector<Shape> kNothing = {
    {"checkout_lat_99", 100, 100, 10}, {"checkout_err", 0, 0, 0.001}, {"db_cpu", 0.5, 0.5, 0.02}};

std::vector<CandidateRuns> three_candidates(int replications = 5) {
  return {candidate("db-cpu-stress", kDbCpuStress, replications),
          candidate("no fault", kNothing, replications, true),
          candidate("pool-exhaustion", kPoolExhaustion, replications)};
}

const CandidateScore& score_of(const Diagnosis& diagnosis, const std::string& name) {
  const auto found = std::find_if(diagnosis.ranking.begin(), diagnosis.ranking.end(),
                                  [&](const auto& s) { return s.name == name; });
  EXPECT_NE(found, diagnosis.ranking.end()) << name;
  return *found;
}

TEST(Diagnosis, MatchingCandidateRanksFirstWithHighPosterior) {
  const auto observed = synthesise(kObservedIncident, 7);
  const auto diagnosis = diagnose(observed, three_candidates(), window_100_200());
  ASSERT_EQ(diagnosis.ranking.size(), 3U);
  const auto& leader = diagnosis.ranking.front();
  EXPECT_EQ(leader.name, "pool-exhaustion");
  EXPECT_GT(leader.posterior, 0.95);
  EXPECT_LE(leader.interval.lower, leader.posterior);
  EXPECT_GE(leader.interval.upper, leader.posterior);
  double total = 0.0;
  for (const auto& score : diagnosis.ranking) total += score.posterior;
  EXPECT_NEAR(total, 1.0, 1e-12);
  EXPECT_TRUE(leader_is_clear(diagnosis));

  // What each candidate explains and contradicts, metric by metric.
  EXPECT_EQ(leader.explains, (std::vector<std::string>{"checkout_err", "checkout_lat_99"}));
  EXPECT_TRUE(leader.contradicts.empty());
  const auto& stress = score_of(diagnosis, "db-cpu-stress");
  EXPECT_EQ(stress.contradicts, std::vector<std::string>{"db_cpu"});  // predicted, not seen
  // Latency goes the right way but reaches 300 ms, not 600: too little to explain it.
  EXPECT_EQ(stress.misses, (std::vector<std::string>{"checkout_err", "checkout_lat_99"}));
  const auto& nothing = score_of(diagnosis, "no fault");
  EXPECT_TRUE(nothing.explains.empty());
  EXPECT_EQ(nothing.misses, (std::vector<std::string>{"checkout_err", "checkout_lat_99"}));

  // Symptoms: the two checkout metrics deviate, db_cpu does not.
  for (const auto& metric : diagnosis.metrics) {
    EXPECT_EQ(metric.symptom, metric.name != "db_cpu") << metric.name;
  }
}

// Each metric's scale comes from the observed data and the null hypothesis, never from the
// other candidates: a far-off third candidate (Sock Shop's 95% CPU stress in the accuracy
// suite) must not widen the scales that decide between the first two.
TEST(Diagnosis, TheScoresOfTwoCandidatesDoNotDependOnAThird) {
  const auto observed = synthesise(kObservedIncident, 7);
  std::vector<CandidateRuns> two = {candidate("pool-exhaustion", kPoolExhaustion, 5),
                                    candidate("no fault", kNothing, 5, true)};
  const auto alone = diagnose(observed, two, window_100_200());
  two.push_back(candidate("meltdown",
                          {{"checkout_lat_99", 100, 60000, 500},
                           {"checkout_err", 0, 0.9, 0.01},
                           {"db_cpu", 0.5, 1.0, 0.02}},
                          5));
  const auto with_third = diagnose(observed, two, window_100_200());
  for (const char* name : {"pool-exhaustion", "no fault"}) {
    EXPECT_DOUBLE_EQ(score_of(alone, name).log_likelihood,
                     score_of(with_third, name).log_likelihood)
        << name;
  }
  for (std::size_t m = 0; m < alone.metrics.size(); ++m) {
    EXPECT_DOUBLE_EQ(alone.metrics[m].scale, with_third.metrics[m].scale) << alone.metrics[m].name;
  }
  // Far off is far off, but no metric's z counts beyond max_abs_z: the third is last, with a
  // finite score.
  EXPECT_EQ(with_third.ranking.back().name, "meltdown");
  EXPECT_TRUE(std::isfinite(with_third.ranking.back().log_likelihood));
}

// Gauges count whole things: one more waiter on a pool whose baseline reads 0 throughout is
// a step of the gauge's resolution, and the scale is at least half of it, so that one step
// is two scales, not twenty.
TEST(Diagnosis, AGaugesScaleIsAtLeastHalfItsResolution) {
  MetricSeries observed;
  for (int t = 1; t <= 200; ++t) {
    const double waiters = t < 100 ? 0.0 : double(t % 3);  // 0, 1, 2 in the window
    observed["db_waiters"].push_back({double(t), waiters});
    observed["api_workers_util"].push_back({double(t), t < 100 ? 0.0 : (t % 2) / 64.0});
  }
  MetricSeries quiet;
  for (int t = 1; t <= 200; ++t) {
    quiet["db_waiters"].push_back({double(t), 0.0});
    quiet["api_workers_util"].push_back({double(t), 0.0});
  }
  CandidateRuns nothing;
  nothing.name = "no fault";
  nothing.null_hypothesis = true;
  nothing.replications = {quiet, quiet};
  const auto diagnosis = diagnose(observed, {nothing}, window_100_200());
  std::map<std::string, double> scale;
  for (const auto& metric : diagnosis.metrics) scale[metric.name] = metric.scale;
  EXPECT_DOUBLE_EQ(scale["db_waiters"], 0.5);               // not 5% of the excursion of 2
  EXPECT_DOUBLE_EQ(scale["api_workers_util"], 0.5 / 64.0);  // one worker of 64
}

TEST(Diagnosis, NullHypothesisWinsWhenNothingDeviates) {
  const auto observed = synthesise(kNothing, 8);
  const auto diagnosis = diagnose(observed, three_candidates(), window_100_200());
  EXPECT_EQ(diagnosis.ranking.front().name, "no fault");
  EXPECT_GT(diagnosis.ranking.front().posterior, 0.9);
  for (const auto& metric : diagnosis.metrics) EXPECT_FALSE(metric.symptom) << metric.name;
}

TEST(Diagnosis, OppositeSignIsAContradiction) {
  // Latency drops in the observed data; a candidate predicting a rise contradicts it.
  const auto observed = synthesise({{"checkout_lat_99", 100, 20, 5}}, 9);
  const auto diagnosis = diagnose(
      observed, {candidate("rise", {{"checkout_lat_99", 100, 400, 5}}, 3)}, window_100_200());
  EXPECT_EQ(diagnosis.ranking[0].contradicts, std::vector<std::string>{"checkout_lat_99"});
}

TEST(Diagnosis, MissingMetricsAreNotCompared) {
  // The observed data has only latency; the candidates also simulate an error rate that
  // would otherwise separate them, and the observed data has a metric nobody simulates.
  auto observed = synthesise({{"checkout_lat_99", 100, 600, 10}}, 7);
  observed["frontend_mem"] = {{1.0, 10.0}, {150.0, 900.0}};
  std::vector<CandidateRuns> candidates = {
      candidate("same latency, errors",
                {{"checkout_lat_99", 100, 600, 10}, {"checkout_err", 0, 1, 0}}, 4),
      candidate("same latency, no errors",
                {{"checkout_lat_99", 100, 600, 10}, {"checkout_err", 0, 0, 0}}, 4)};
  const auto diagnosis = diagnose(observed, candidates, window_100_200());
  ASSERT_EQ(diagnosis.metrics.size(), 1U);
  EXPECT_EQ(diagnosis.metrics[0].name, "checkout_lat_99");
  EXPECT_EQ(diagnosis.ignored_metrics, (std::vector<std::string>{"checkout_err", "frontend_mem"}));
  // Same latency behaviour: both equally likely, within replication noise.
  EXPECT_NEAR(diagnosis.ranking[0].posterior, 0.5, 0.2);
}

TEST(Diagnosis, DeterministicForTheSameSeedAndInputs) {
  const auto observed = synthesise(kObservedIncident, 7);
  const auto render = [&](std::uint64_t seed) {
    auto options = window_100_200();
    options.seed = seed;
    options.bootstrap_samples = 50;
    std::ostringstream out;
    write_diagnosis_json(out, diagnose(observed, three_candidates(2), options));
    return out.str();
  };
  EXPECT_EQ(render(3), render(3));
  // The seed only drives the bootstrap: posteriors agree, the JSON differs at most in intervals.
  const auto a = nlohmann::json::parse(render(3));
  const auto b = nlohmann::json::parse(render(4));
  EXPECT_EQ(a["ranking"][0]["posterior"], b["ranking"][0]["posterior"]);
}

TEST(Diagnosis, ResamplingMetricsWidensTheIntervalOfEvidenceFromFewMetrics) {
  // Only one of the compared metrics tells the candidates apart.
  const auto observed = synthesise({{"a_lat_99", 100, 600, 10}, {"b_rps", 50, 50, 2}}, 7);
  const std::vector<CandidateRuns> candidates = {
      candidate("a slow", {{"a_lat_99", 100, 600, 10}, {"b_rps", 50, 50, 2}}, 4),
      candidate("nothing", {{"a_lat_99", 100, 100, 10}, {"b_rps", 50, 50, 2}}, 4, true)};
  auto options = window_100_200();
  const auto replications_only = diagnose(observed, candidates, options);
  options.resample_metrics = true;
  const auto with_metrics = diagnose(observed, candidates, options);
  EXPECT_EQ(replications_only.ranking[0].name, "a slow");
  EXPECT_DOUBLE_EQ(replications_only.ranking[0].posterior, with_metrics.ranking[0].posterior);
  EXPECT_GT(replications_only.ranking[0].interval.lower, 0.99);
  // A quarter of the draws leave a_lat_99 out: the two are then indistinguishable.
  EXPECT_LT(with_metrics.ranking[0].interval.lower, 0.6);
}

TEST(Diagnosis, JsonHasTheDocumentedShape) {
  const auto observed = synthesise(kObservedIncident, 7);
  std::ostringstream out;
  write_diagnosis_json(out, diagnose(observed, three_candidates(3), window_100_200()));
  const auto doc = nlohmann::json::parse(out.str());
  EXPECT_EQ(doc["format"], "doppel-diagnosis/v1");
  EXPECT_EQ(doc["window"]["start_s"], 100.0);
  ASSERT_EQ(doc["ranking"].size(), 3U);
  const auto& first = doc["ranking"][0];
  EXPECT_EQ(first["rank"], 1);
  EXPECT_EQ(first["name"], "pool-exhaustion");
  EXPECT_EQ(first["interval"].size(), 2U);
  EXPECT_TRUE(first["simulated"].contains("checkout_lat_99"));
  EXPECT_EQ(doc["metrics"][0]["observed"].size(), doc["metrics"][0]["bin_times_s"].size());
  EXPECT_TRUE(doc["leader_is_clear"].get<bool>());
}

TEST(Diagnosis, TableListsEveryCandidate) {
  const auto observed = synthesise(kObservedIncident, 7);
  std::ostringstream out;
  print_diagnosis_table(out, diagnose(observed, three_candidates(3), window_100_200()));
  const std::string table = out.str();
  for (const char* name : {"pool-exhaustion", "db-cpu-stress", "no fault"}) {
    EXPECT_NE(table.find(name), std::string::npos) << table;
  }
  EXPECT_LT(table.find("pool-exhaustion"), table.find("db-cpu-stress"));
}

TEST(Diagnosis, ScreeningKeepsLeadersAndTheNullHypothesis) {
  const auto observed = synthesise(kObservedIncident, 7);
  const auto diagnosis = diagnose(observed, three_candidates(2), window_100_200());
  const auto leaders = screen(diagnosis);
  ASSERT_FALSE(leaders.empty());
  EXPECT_EQ(leaders.front(), "pool-exhaustion");
  EXPECT_NE(std::find(leaders.begin(), leaders.end(), "no fault"), leaders.end());
  EXPECT_EQ(std::find(leaders.begin(), leaders.end(), "db-cpu-stress"), leaders.end());
  ScreeningOptions without_null;
  without_null.keep_null_hypothesis = false;
  EXPECT_EQ(screen(diagnosis, without_null), std::vector<std::string>{"pool-exhaustion"});
}

TEST(Diagnosis, NoClearLeaderBetweenTwins) {
  const auto observed = synthesise(kObservedIncident, 7);
  const auto diagnosis =
      diagnose(observed, {candidate("a", kPoolExhaustion, 3), candidate("b", kPoolExhaustion, 3)},
               window_100_200());
  EXPECT_FALSE(leader_is_clear(diagnosis));
  EXPECT_DOUBLE_EQ(diagnosis.ranking[0].posterior, 0.5);
  EXPECT_EQ(diagnosis.ranking[0].name, "a");  // ties keep the input order
}

TEST(Diagnosis, RejectsEmptyInputs) {
  const auto observed = synthesise(kObservedIncident, 7);
  EXPECT_THROW(diagnose(observed, {}, window_100_200()), std::invalid_argument);
  CandidateRuns empty;
  empty.name = "empty";
  EXPECT_THROW(diagnose(observed, {empty}, window_100_200()), std::invalid_argument);
  auto options = window_100_200();
  options.window_end_s = options.window_start_s;
  EXPECT_THROW(diagnose(observed, three_candidates(1), options), std::invalid_argument);
}

TEST(Diagnosis, SymptomSpecRanksTheCandidateThatReproducesIt) {
  const auto spec = parse_symptom_spec(
      R"({"symptoms":[
            {"service":"checkout","metric":"lat_99","op":">","value":400,"from_s":120},
            {"service":"checkout","metric":"err","op":">=","value":0.02,"from_s":120},
            {"service":"nowhere","metric":"rps","op":"<","value":1}]})",
      "spec.json");
  const auto diagnosis = diagnose(spec, three_candidates(4), window_100_200());
  EXPECT_EQ(diagnosis.ranking.front().name, "pool-exhaustion");
  EXPECT_GT(diagnosis.ranking.front().posterior, 0.9);
  EXPECT_EQ(diagnosis.ranking.front().explains.size(), 2U);
  EXPECT_EQ(diagnosis.ignored_metrics, std::vector<std::string>{"nowhere_rps < 1 from t=0 s"});
  EXPECT_EQ(score_of(diagnosis, "no fault").misses.size(), 2U);
}

}  // namespace
TEST(Diagnose, AnErrorShareCountsOnlyRowsWithRequests) {
  // A route with a request every other second fails all of them from t = 100 s. Writers put
  // an error share of 0 in a row without requests; that 0 is no evidence of health, in the
  // observed data or in a replication whose requests fell on other rows. "all fail" matches
  // every row that had requests and must beat "half fail".
  const auto route = [](double failing_share, int phase) {
    MetricSeries series;
    for (int t = 1; t <= 200; ++t) {
      const bool requests = (t + phase) % 2 == 0;
      series["route_rps"].push_back({double(t), requests ? 1.0 : 0.0});
      series["route_err"].push_back({double(t), requests && t >= 100 ? failing_share : 0.0});
    }
    return series;
  };
  CandidateRuns all_fail{.name = "all fail",
                         .description = "",
                         .null_hypothesis = false,
                         .replications = {route(1.0, 0), route(1.0, 1)}};
  CandidateRuns half_fail{.name = "half fail",
                          .description = "",
                          .null_hypothesis = false,
                          .replications = {route(0.5, 0), route(0.5, 0)}};
  CandidateRuns nothing{.name = "no fault",
                        .description = "",
                        .null_hypothesis = true,
                        .replications = {route(0.0, 0), route(0.0, 1)}};
  DiagnosisOptions options = window_100_200();
  options.bin_s = 1.0;  // bins of one row: every other one empty
  const auto diagnosis = diagnose(route(1.0, 0), {nothing, half_fail, all_fail}, options);
  EXPECT_EQ(diagnosis.ranking.front().name, "all fail");
  // The observed share, binned, is 1 wherever there were requests and missing elsewhere.
  const auto& err = *std::find_if(diagnosis.metrics.begin(), diagnosis.metrics.end(),
                                  [](const auto& m) { return m.name == "route_err"; });
  EXPECT_DOUBLE_EQ(err.observed[0], 1.0);    // t = 100: requests
  EXPECT_TRUE(std::isnan(err.observed[1]));  // t = 101: none
}

}  // namespace doppel::experiments
