#include "cli/progress_bar.hpp"

#include <algorithm>
#include <cstdio>
#include <unistd.h>

#include <fmt/format.h>

namespace doppel::cli {

ProgressBar::ProgressBar(std::string label)
    : label_(std::move(label)),
      start_(std::chrono::steady_clock::now()),
      enabled_(isatty(fileno(stderr)) != 0) {}

ProgressBar::~ProgressBar() {
  finish();
}

void ProgressBar::update(double fraction, const std::string& detail) {
  if (!enabled_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (!shown_ && elapsed < 1.0) return;
  shown_ = true;
  fraction = std::clamp(fraction, 0.0, 1.0);
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string eta;
  if (fraction > 0.0 && fraction < 1.0) {
    eta = fmt::format(", ETA {:.0f} s", elapsed * (1.0 - fraction) / fraction);
  }
  fmt::print(stderr, "\r{} [{}{}] {:3.0f}% {}{}\x1b[K", label_, std::string(filled, '#'),
             std::string(kWidth - filled, '.'), fraction * 100.0, detail, eta);
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (shown_) fmt::print(stderr, "\r\x1b[K");
  shown_ = false;
  enabled_ = false;
}

}  // namespace doppel::cli
