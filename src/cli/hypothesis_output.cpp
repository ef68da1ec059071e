#include "cli/hypothesis_output.hpp"

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

#include "cli/progress_bar.hpp"

namespace doppel::cli {

namespace {

void write_text(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

}  // namespace

std::function<void(std::size_t, std::size_t)> simulation_progress(ProgressBar& bar) {
  // Wall time only for the display: it never reaches an output file.
  const auto started = std::chrono::steady_clock::now();
  return [&bar, started](std::size_t done, std::size_t total) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    bar.update(total > 0 ? double(done) / double(total) : 1.0,
               fmt::format("{}/{} simulations, {:.1f}/s", done, total,
                           elapsed > 0 ? double(done) / elapsed : 0.0));
  };
}

void write_diagnosis(const std::filesystem::path& out_dir,
                     const experiments::SimulatedDiagnosis& diagnosis) {
  std::ostringstream json;
  experiments::write_simulated_diagnosis_json(json, diagnosis);
  write_text(out_dir / "diagnosis.json", json.str());
}

void print_diagnosis(const experiments::SimulatedDiagnosis& diagnosis, std::size_t candidates) {
  fmt::print("Onset of the symptoms: {:g} s; compared over {:g}-{:g} s\n", diagnosis.onset_s,
             diagnosis.window_start_s, diagnosis.window_end_s);
  if (diagnosis.onset_relaxed) {
    fmt::print(
        "Warning: no metric departs clearly from its baseline; the onset is the first weak "
        "change (relaxed thresholds). The symptoms may be noise: weigh \"no fault\".\n");
  }
  fmt::print(
      "{} candidates: {} not simulated (nothing observed at them), {} screened, {} kept; {} "
      "simulations{}\n\n",
      candidates, diagnosis.pruned.size(), diagnosis.screening.ranking.size(),
      diagnosis.leaders.size(), diagnosis.simulations,
      diagnosis.stopped_early ? " (stopped early: the leader is clear)" : "");
  const auto causes = experiments::rank_causes(diagnosis);
  fmt::print("{:>4}  {:<40} {:>11}  {}\n", "rank", "cause", "probability", "best variant");
  for (std::size_t i = 0; i < causes.size() && i < 5; ++i) {
    fmt::print("{:>4}  {:<40} {:>11.3f}  {}\n", i + 1, causes[i].cause, causes[i].posterior,
               causes[i].best_candidate);
  }
  fmt::print("\nThe leading candidates, with their evidence:\n\n");
  experiments::print_diagnosis_table(std::cout, diagnosis.result);
}

void write_validation(const std::filesystem::path& out_dir,
                      const experiments::FixValidation& validation) {
  std::ostringstream json;
  experiments::write_validation_json(json, validation);
  write_text(out_dir / "validation.json", json.str());
}

void print_validation(const experiments::FixValidation& validation) {
  experiments::print_fix_verdicts(std::cout, validation.verdicts);
  fmt::print("\nHow fast every route is back near the no-cause run (mean of the replications):\n");
  for (std::size_t f = 0; f < validation.verdicts.size(); ++f) {
    const auto& recovery = validation.recovery_s[f];
    fmt::print("  {:<28} {}\n", validation.verdicts[f].fix,
               recovery ? fmt::format("{:g} s after the fix", *recovery)
                        : std::string("not by the end of the run"));
  }
  bool any_shift = false;
  for (std::size_t f = 0; f < validation.verdicts.size(); ++f) {
    for (const auto& shift : validation.load_shifts[f]) {
      if (!any_shift) {
        fmt::print("\nLoad a fix adds to a dependency (request rate after the fix):\n");
        any_shift = true;
      }
      fmt::print("  {:<28} {:<24} {:.1f} req/s (no cause {:.1f}, cause alone {:.1f})\n",
                 validation.verdicts[f].fix, shift.service, shift.fix_rps, shift.no_cause_rps,
                 shift.cause_rps);
    }
  }
  for (std::size_t f = 0; f < validation.verdicts.size(); ++f) {
    const auto& canary = validation.canary_checks[f];
    if (!canary) continue;
    fmt::print(
        "\nCanary stage of {} ({} instance(s) of each service it changes, {:g}-{:g} s): {}\n",
        validation.verdicts[f].fix, canary->instances, canary->from_s, canary->to_s,
        canary->finding);
  }
  for (const auto& recommendation : validation.recommendations) {
    fmt::print("\n");
    experiments::print_recommendation(std::cout, recommendation);
  }
  fmt::print("\nDoppel recommends; it changes nothing in production.\n");
}

void add_fix_sections(report::ReportInput& report, const std::vector<experiments::Fix>& fixes,
                      const experiments::FixValidation& validation) {
  for (std::size_t f = 0; f < fixes.size(); ++f) {
    report::FixSection section;
    section.verdict = validation.verdicts[f];
    section.recommendation = validation.recommendations[f];
    section.load_shifts = validation.load_shifts[f];
    section.canary = validation.canary_checks[f];
    for (const auto& [metric, title, unit] :
         {std::tuple{"all_routes_err", "error rate, every route", "share"},
          std::tuple{"all_routes_lat_99", "p99 latency, every route", "ms"}}) {
      report::LineChart chart;
      chart.title = fmt::format("{}: {}", fixes[f].name, title);
      chart.y_label = unit;
      const auto add = [&](const experiments::ArmRuns& arm, const std::string& label, bool dashed) {
        const auto found = arm.mean_series.find(metric);
        if (found != arm.mean_series.end()) chart.curves.push_back({label, found->second, dashed});
      };
      add(validation.no_cause, "no cause", true);
      add(validation.cause, "cause alone", false);
      add(validation.fixes[f], "cause + fix", false);
      section.charts.push_back(std::move(chart));
    }
    report.fixes.push_back(std::move(section));
  }
}

}  // namespace doppel::cli
