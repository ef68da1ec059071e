// Judging a fix before rollout: does it bring the SLOs back, and does it break anything else?
// Pure functions over per-replication figures of three simulated arms (no cause, cause left
// alone, cause + fix); method in docs/diagnosis.md.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "doppel/telemetry/summary_recorder.hpp"

namespace doppel::experiments {

// One figure with a limit, measured once per replication: an SLO ("route checkout p99 <=
// 500 ms") or a saturation limit ("orders-db connections <= max_connections 100"). The figure
// is violated when its value is above the limit.
struct Figure {
  enum class Kind { slo, saturation };
  std::string name;
  Kind kind = Kind::slo;
  std::string unit;  // "ms", "share", "connections"
  double limit = 0.0;
  std::vector<double> per_replication;
  // The service, datastore or host a saturation figure measures (empty: a route's SLO).
  std::string component;

  bool operator==(const Figure&) const = default;
};

// One simulated arm: every figure, same names across arms.
struct ArmResults {
  std::vector<Figure> figures;

  const Figure* find(std::string_view name) const;
};

// Every SLO check of a run's summary as a figure: "route <name> p<q> latency" in ms and
// "route <name> error rate" as a share, one value per summary (replication).
ArmResults figures_from_summaries(const std::vector<telemetry::Summary>& replications);

// The largest value of a series per replication, against a limit: saturation that the
// summaries do not hold (connections of a datastore, a pool's utilisation).
Figure saturation_figure(std::string name, std::string unit, double limit,
                         const std::vector<double>& peak_per_replication,
                         std::string component = {});

struct FixVerdictOptions {
  // Most replications a needs-review verdict suggests; beyond that the figure sits so close
  // to its limit that more runs will not settle it.
  int max_suggested_replications = 1000;
  // The components the fix itself changes (FixAction targets). Saturation the fix pushes over
  // its limit at one of them is the fix failing where it applies (reject: ineffective); at
  // any other component it is saturation moved elsewhere (reject: harmful).
  std::vector<std::string> touched_components;
};

// The 95% confidence interval of a figure's mean in one arm (Student's t).
struct FigureInterval {
  int replications = 0;
  double mean = 0.0;
  double lower = 0.0;  // -inf / +inf with fewer than two replications
  double upper = 0.0;
};
FigureInterval interval_of(const Figure& figure);

enum class VerdictKind { recommend, reject_ineffective, reject_harmful, needs_review };
std::string_view to_string(VerdictKind kind);  // "recommend", "reject: ineffective", ...

// How one figure fares across the arms.
struct FigureComparison {
  std::string name;
  Figure::Kind kind = Figure::Kind::slo;
  std::string unit;
  double limit = 0.0;
  std::optional<FigureInterval> no_cause;
  FigureInterval cause;
  FigureInterval fix;
  bool broken_by_cause = false;  // violated with the cause, not without it
  std::string outcome;           // "recovers", "still violated", "newly violated", "unchanged"...
};

struct FixVerdict {
  std::string fix;
  VerdictKind kind = VerdictKind::needs_review;
  std::string reason;  // one sentence: what recovers, what it breaks, what is uncertain
  // needs_review: the uncertain figure and the replications (per arm, in total) that would
  // narrow its interval enough to settle it.
  std::string uncertain_figure;
  int suggested_replications = 0;
  std::vector<std::string> breaks;  // harmful: figures the fix newly violates
  std::vector<FigureComparison> figures;
};

// Compares the fix arm against the cause arm (and the no-cause arm when given). Figures
// missing from the fix or cause arm are not compared. Throws std::invalid_argument when the
// cause arm has no figure at all.
FixVerdict judge_fix(std::string fix_name, const ArmResults* no_cause, const ArmResults& cause,
                     const ArmResults& fix, const FixVerdictOptions& options = {});

void print_fix_verdicts(std::ostream& out, const std::vector<FixVerdict>& verdicts);

}  // namespace doppel::experiments
