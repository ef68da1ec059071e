#include "doppel/experiments/fix_verdict.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

namespace doppel::experiments {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();

// Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; the normal 1.96 beyond.
constexpr std::array<double, 30> kStudentT95 = {
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};

double student_t95(int degrees_of_freedom) {
  if (degrees_of_freedom < 1) return kInfinity;
  if (degrees_of_freedom <= static_cast<int>(kStudentT95.size())) {
    return kStudentT95[static_cast<std::size_t>(degrees_of_freedom - 1)];
  }
  return 1.96;
}

bool violated(const FigureInterval& interval, double limit) {
  return interval.mean > limit;
}
bool clearly_violated(const FigureInterval& interval, double limit) {
  return interval.lower > limit;
}
bool clearly_within(const FigureInterval& interval, double limit) {
  return interval.upper <= limit;
}

// Replications that would shrink the interval's half-width below the mean's distance to the
// limit, with the half-width falling as 1/sqrt(n); at least one more than now.
int replications_to_settle(const FigureInterval& interval, double limit, int cap) {
  if (interval.replications < 2) return std::max(5, interval.replications + 1);
  const double distance = std::abs(interval.mean - limit);
  const double half_width = (interval.upper - interval.lower) / 2.0;
  if (distance <= 0.0) return cap;
  const double ratio = half_width / distance;
  const double needed = std::ceil(interval.replications * ratio * ratio * 1.1);
  return static_cast<int>(
      std::clamp(needed, interval.replications + 1.0, static_cast<double>(cap)));
}

std::string format_value(double value, const std::string& unit) {
  return unit.empty() ? fmt::format("{:.4g}", value) : fmt::format("{:.4g} {}", value, unit);
}

std::string describe_interval(const FigureInterval& interval, const std::string& unit) {
  if (!std::isfinite(interval.lower)) {
    return fmt::format("{} (one replication)", format_value(interval.mean, unit));
  }
  return fmt::format("{} [{:.4g}, {:.4g}]", format_value(interval.mean, unit), interval.lower,
                     interval.upper);
}

}  // namespace

const Figure* ArmResults::find(std::string_view name) const {
  for (const auto& figure : figures) {
    if (figure.name == name) return &figure;
  }
  return nullptr;
}

ArmResults figures_from_summaries(const std::vector<telemetry::Summary>& replications) {
  ArmResults arm;
  const auto figure_for = [&arm](std::string name, std::string unit, double limit) -> Figure& {
    for (auto& figure : arm.figures) {
      if (figure.name == name) return figure;
    }
    Figure& figure = arm.figures.emplace_back();
    figure.name = std::move(name);
    figure.kind = Figure::Kind::slo;
    figure.unit = std::move(unit);
    figure.limit = limit;
    return figure;
  };
  for (const auto& summary : replications) {
    for (const auto& slo : summary.slos) {
      for (const auto& check : slo.checks) {
        if (check.verdict == telemetry::Verdict::no_data) continue;
        if (check.kind == telemetry::SloCheck::Kind::latency) {
          figure_for(fmt::format("route {} p{:g} latency", slo.route, check.percentile), "ms",
                     check.bound)
              .per_replication.push_back(check.observed);
        } else {
          figure_for(fmt::format("route {} error rate", slo.route), "share", check.bound)
              .per_replication.push_back(check.observed);
        }
      }
    }
  }
  return arm;
}

Figure saturation_figure(std::string name, std::string unit, double limit,
                         const std::vector<double>& peak_per_replication, std::string component) {
  Figure figure;
  figure.name = std::move(name);
  figure.component = std::move(component);
  figure.kind = Figure::Kind::saturation;
  figure.unit = std::move(unit);
  figure.limit = limit;
  figure.per_replication = peak_per_replication;
  return figure;
}

FigureInterval interval_of(const Figure& figure) {
  FigureInterval interval;
  std::vector<double> values;
  for (double v : figure.per_replication) {
    if (std::isfinite(v)) values.push_back(v);
  }
  interval.replications = static_cast<int>(values.size());
  if (values.empty()) {
    interval.mean = std::numeric_limits<double>::quiet_NaN();
    interval.lower = -kInfinity;
    interval.upper = kInfinity;
    return interval;
  }
  double sum = 0.0;
  for (double v : values) sum += v;
  interval.mean = sum / static_cast<double>(values.size());
  if (values.size() < 2) {
    interval.lower = -kInfinity;
    interval.upper = kInfinity;
    return interval;
  }
  double squares = 0.0;
  for (double v : values) squares += (v - interval.mean) * (v - interval.mean);
  const double n = static_cast<double>(values.size());
  const double standard_error = std::sqrt(squares / (n - 1.0) / n);
  const double half_width = student_t95(interval.replications - 1) * standard_error;
  interval.lower = interval.mean - half_width;
  interval.upper = interval.mean + half_width;
  return interval;
}

std::string_view to_string(VerdictKind kind) {
  switch (kind) {
    case VerdictKind::recommend:
      return "recommend";
    case VerdictKind::reject_ineffective:
      return "reject: ineffective";
    case VerdictKind::reject_harmful:
      return "reject: harmful";
    case VerdictKind::needs_review:
      return "needs review";
  }
  return "?";
}

FixVerdict judge_fix(std::string fix_name, const ArmResults* no_cause, const ArmResults& cause,
                     const ArmResults& fix, const FixVerdictOptions& options) {
  if (cause.figures.empty()) {
    throw std::invalid_argument("the cause arm has no SLO or saturation figure to compare");
  }
  FixVerdict verdict;
  verdict.fix = std::move(fix_name);

  std::vector<std::string> recovered;
  std::vector<std::string> still_violated;
  struct Doubt {
    std::string figure;
    std::string what;
    int replications = 0;
  };
  std::vector<Doubt> doubts;
  int broken_by_cause = 0;

  for (const auto& cause_figure : cause.figures) {
    const Figure* fix_figure = fix.find(cause_figure.name);
    if (fix_figure == nullptr) continue;
    FigureComparison comparison;
    comparison.name = cause_figure.name;
    comparison.kind = cause_figure.kind;
    comparison.unit = cause_figure.unit;
    comparison.limit = cause_figure.limit;
    comparison.cause = interval_of(cause_figure);
    comparison.fix = interval_of(*fix_figure);
    if (comparison.cause.replications == 0 || comparison.fix.replications == 0) continue;
    if (no_cause != nullptr) {
      if (const Figure* baseline = no_cause->find(cause_figure.name)) {
        comparison.no_cause = interval_of(*baseline);
        if (comparison.no_cause->replications == 0) comparison.no_cause.reset();
      }
    }
    const double limit = comparison.limit;
    const bool violated_without_cause =
        comparison.no_cause.has_value() && violated(*comparison.no_cause, limit);
    comparison.broken_by_cause = violated(comparison.cause, limit) && !violated_without_cause;
    const std::string fix_text = describe_interval(comparison.fix, comparison.unit);

    if (comparison.broken_by_cause) {
      ++broken_by_cause;
      if (clearly_within(comparison.fix, limit)) {
        comparison.outcome = "recovers";
        recovered.push_back(comparison.name);
      } else if (clearly_violated(comparison.fix, limit)) {
        comparison.outcome = "still violated";
        still_violated.push_back(fmt::format("{} stays at {} (limit {:g}; cause alone {})",
                                             comparison.name, fix_text, limit,
                                             format_value(comparison.cause.mean, comparison.unit)));
      } else {
        comparison.outcome = "uncertain recovery";
        doubts.push_back(
            {comparison.name,
             fmt::format("whether {} recovers: {} against the limit {:g}", comparison.name,
                         fix_text, limit),
             replications_to_settle(comparison.fix, limit, options.max_suggested_replications)});
      }
    } else if (!violated(comparison.cause, limit) && !violated_without_cause) {
      // Saturation pushed over its limit at a component the fix itself changes (the caller
      // whose timeout it lengthened now holds every worker) is the fix failing where it was
      // applied; "saturation moved here" is for a component the fix did not touch.
      const bool where_applied =
          comparison.kind == Figure::Kind::saturation && !cause_figure.component.empty() &&
          std::find(options.touched_components.begin(), options.touched_components.end(),
                    cause_figure.component) != options.touched_components.end();
      if (where_applied && clearly_violated(comparison.fix, limit)) {
        comparison.outcome = "saturated where the fix applies";
        still_violated.push_back(fmt::format(
            "{} rises to {} (limit {:g}; cause alone {}) at {}, which the fix changes",
            comparison.name, fix_text, limit, format_value(comparison.cause.mean, comparison.unit),
            cause_figure.component));
      } else if (clearly_violated(comparison.fix, limit)) {
        comparison.outcome = "newly violated";
        verdict.breaks.push_back(fmt::format(
            "{}: {} > {} ({})", comparison.name, format_value(comparison.fix.mean, comparison.unit),
            format_value(limit, comparison.unit),
            comparison.kind == Figure::Kind::saturation ? "saturation moved here"
                                                        : "SLO newly broken"));
      } else if (violated(comparison.fix, limit) || !clearly_within(comparison.fix, limit)) {
        comparison.outcome = "may be newly violated";
        doubts.push_back(
            {comparison.name,
             fmt::format("whether the fix breaks {}: {} against the limit {:g}", comparison.name,
                         fix_text, limit),
             replications_to_settle(comparison.fix, limit, options.max_suggested_replications)});
      } else {
        comparison.outcome = "within limit";
      }
    } else {
      comparison.outcome = "violated without the cause too";
    }
    verdict.figures.push_back(std::move(comparison));
  }

  const auto joined = [](const std::vector<std::string>& parts) {
    std::string text;
    for (const auto& part : parts) text += (text.empty() ? "" : "; ") + part;
    return text;
  };
  if (!verdict.breaks.empty()) {
    verdict.kind = VerdictKind::reject_harmful;
    verdict.reason = "breaks " + joined(verdict.breaks);
  } else if (!still_violated.empty()) {
    verdict.kind = VerdictKind::reject_ineffective;
    verdict.reason = "does not recover: " + joined(still_violated);
  } else if (!doubts.empty()) {
    const auto most = std::max_element(
        doubts.begin(), doubts.end(),
        [](const auto& a, const auto& b) { return a.replications < b.replications; });
    verdict.kind = VerdictKind::needs_review;
    verdict.uncertain_figure = most->figure;
    verdict.suggested_replications = most->replications;
    verdict.reason = fmt::format("uncertain {}; about {} replications per arm would settle it",
                                 most->what, most->replications);
  } else if (broken_by_cause == 0) {
    verdict.kind = VerdictKind::needs_review;
    verdict.reason =
        "the cause breaks no SLO in the simulation: nothing to recover, so nothing "
        "shows the fix is needed";
  } else {
    verdict.kind = VerdictKind::recommend;
    verdict.reason =
        fmt::format("recovers {} with 95% confidence and breaks nothing else", joined(recovered));
  }
  return verdict;
}

void print_fix_verdicts(std::ostream& out, const std::vector<FixVerdict>& verdicts) {
  out << fmt::format("{:<28} {:<20} {}\n", "fix", "verdict", "why");
  for (const auto& verdict : verdicts) {
    out << fmt::format("{:<28} {:<20} {}\n", verdict.fix, to_string(verdict.kind), verdict.reason);
  }
}

}  // namespace doppel::experiments
