// What diagnose, validate and the demo show and write: tables on the terminal, the JSON
// files and report.html, so the three tell the story the same way.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "doppel/experiments/fix_validation.hpp"
#include "doppel/experiments/simulated_diagnosis.hpp"
#include "doppel/model/topology.hpp"
#include "doppel/report/html_report.hpp"

namespace doppel::cli {

class ProgressBar;

// Feeds a progress bar from a batch of simulations: done / total, and their rate.
std::function<void(std::size_t, std::size_t)> simulation_progress(ProgressBar& bar);

// diagnosis.json in out_dir; the ranked causes and leaders on stdout.
void write_diagnosis(const std::filesystem::path& out_dir,
                     const experiments::SimulatedDiagnosis& diagnosis);
void print_diagnosis(const experiments::SimulatedDiagnosis& diagnosis, std::size_t candidates);

// validation.json in out_dir; verdicts and recommendations on stdout.
void write_validation(const std::filesystem::path& out_dir,
                      const experiments::FixValidation& validation);
void print_validation(const experiments::FixValidation& validation);

// The report's fix sections: verdict, recommendation, and error rate and p99 over time for
// no cause, the cause alone and the cause with the fix.
void add_fix_sections(report::ReportInput& report, const std::vector<experiments::Fix>& fixes,
                      const experiments::FixValidation& validation);

}  // namespace doppel::cli
