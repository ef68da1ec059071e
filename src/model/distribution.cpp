#include "doppel/model/distribution.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

namespace doppel::model {

namespace {
// SplitMix64: turns (seed, run, name hash) into well-spread engine seeds.
std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// FNV-1a: a name hash fixed by its definition, not by std::hash's implementation.
std::uint64_t fnv1a(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}
}  // namespace

RandomStream RandomStream::for_component(std::uint64_t seed, std::uint64_t run,
                                         std::string_view component) {
  return RandomStream(
      splitmix64(splitmix64(seed) ^ splitmix64(run + 0x5851f42d4c957f2dULL) ^ fnv1a(component)));
}

double RandomStream::uniform() {
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

double RandomStream::exponential(double mean) {
  return -mean * std::log1p(-uniform());
}

double RandomStream::standard_normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_normal_;
  }
  // Box-Muller; 1 - uniform() is in (0, 1], so the log is finite.
  const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));
  const double angle = 2.0 * std::numbers::pi * uniform();
  spare_normal_ = radius * std::sin(angle);
  has_spare_ = true;
  return radius * std::cos(angle);
}

std::uint64_t RandomStream::below(std::uint64_t n) {
  if (n <= 1) return 0;
  // Rejection keeps it unbiased.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x = 0;
  do {
    x = engine_();
  } while (x >= limit);
  return x % n;
}

Distribution Distribution::constant(double ms) {
  Distribution d;
  d.kind = Kind::constant;
  d.value_ms = ms;
  return d;
}

Distribution Distribution::exponential(double mean_ms) {
  Distribution d;
  d.kind = Kind::exponential;
  d.mean_ms = mean_ms;
  return d;
}

Distribution Distribution::lognormal(double median_ms, double sigma) {
  Distribution d;
  d.kind = Kind::lognormal;
  d.median_ms = median_ms;
  d.sigma = sigma;
  return d;
}

Distribution Distribution::empirical(std::vector<HistogramBucket> buckets) {
  Distribution d;
  d.kind = Kind::empirical;
  d.buckets = std::move(buckets);
  return d;
}

namespace {
double empirical_total(const std::vector<HistogramBucket>& buckets) {
  return std::accumulate(buckets.begin(), buckets.end(), 0.0,
                         [](double acc, const HistogramBucket& b) { return acc + b.weight; });
}

// Inverse CDF of a histogram whose mass is uniform inside each bucket.
double empirical_quantile(const std::vector<HistogramBucket>& buckets, double q) {
  if (buckets.empty()) return 0.0;
  const double total = empirical_total(buckets);
  if (total <= 0.0) return 0.0;
  double target = q * total;
  double lower = 0.0;
  for (const auto& b : buckets) {
    if (target <= b.weight && b.weight > 0.0) {
      return lower + (b.upper_ms - lower) * (target / b.weight);
    }
    target -= b.weight;
    lower = b.upper_ms;
  }
  return buckets.back().upper_ms;
}
}  // namespace

double Distribution::sample(RandomStream& rng) const {
  switch (kind) {
    case Kind::constant:
      return value_ms;
    case Kind::exponential:
      return rng.exponential(mean_ms);
    case Kind::lognormal:
      return median_ms * std::exp(sigma * rng.standard_normal());
    case Kind::empirical:
      return empirical_quantile(buckets, rng.uniform());
  }
  return 0.0;
}

double Distribution::mean() const {
  switch (kind) {
    case Kind::constant:
      return value_ms;
    case Kind::exponential:
      return mean_ms;
    case Kind::lognormal:
      return median_ms * std::exp(0.5 * sigma * sigma);
    case Kind::empirical: {
      const double total = empirical_total(buckets);
      if (total <= 0.0) return 0.0;
      double sum = 0.0;
      double lower = 0.0;
      for (const auto& b : buckets) {
        sum += b.weight * 0.5 * (lower + b.upper_ms);
        lower = b.upper_ms;
      }
      return sum / total;
    }
  }
  return 0.0;
}

namespace {
// Acklam's rational approximation of the standard normal inverse CDF (rel. error < 1.2e-9).
double normal_quantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  if (p <= 0.0) return -INFINITY;
  if (p >= 1.0) return INFINITY;
  constexpr double low = 0.02425;
  if (p < low) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - low) {
    const double q = std::sqrt(-2 * std::log(1 - p));
    return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double q = p - 0.5;
  const double r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}
}  // namespace

double Distribution::quantile(double q) const {
  q = std::clamp(q, 0.0, 1.0);
  switch (kind) {
    case Kind::constant:
      return value_ms;
    case Kind::exponential:
      return q >= 1.0 ? INFINITY : -mean_ms * std::log1p(-q);
    case Kind::lognormal:
      return median_ms * std::exp(sigma * normal_quantile(q));
    case Kind::empirical:
      return empirical_quantile(buckets, q);
  }
  return 0.0;
}

Distribution Distribution::scaled(double factor) const {
  Distribution d = *this;
  d.value_ms *= factor;
  d.mean_ms *= factor;
  d.median_ms *= factor;
  for (auto& b : d.buckets) b.upper_ms *= factor;
  return d;
}

std::string_view to_string(Distribution::Kind kind) {
  switch (kind) {
    case Distribution::Kind::constant:
      return "constant";
    case Distribution::Kind::exponential:
      return "exponential";
    case Distribution::Kind::lognormal:
      return "lognormal";
    case Distribution::Kind::empirical:
      return "empirical";
  }
  return "unknown";
}

}  // namespace doppel::model
