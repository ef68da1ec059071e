// A one-line progress bar on stderr, shown only on a terminal and only once a job has taken
// more than a second (short runs stay silent).
#pragma once

#include <chrono>
#include <string>

namespace doppel::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // fraction in [0, 1]; `detail` is printed after the bar (e.g. "12.3 cases/s, ETA 40 s").
  void update(double fraction, const std::string& detail = {});
  void finish();

 private:
  std::string label_;
  std::chrono::steady_clock::time_point start_;
  bool enabled_;
  bool shown_ = false;
};

}  // namespace doppel::cli
