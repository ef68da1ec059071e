// Probability distributions of durations (CPU cost, query cost, replication lag), and the
// seeded random streams that sample them.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace doppel::model {

// One independent random stream. std::mt19937_64's output sequence is fixed by the C++
// standard, unlike std's distributions, so every transform below is our own: the same seed
// gives the same numbers with any standard library.
class RandomStream {
 public:
  explicit RandomStream(std::uint64_t seed) : engine_(seed) {}
  // A stream for a named component of a run: independent of every other name, so adding a
  // component does not reshuffle the others' randomness.
  static RandomStream for_component(std::uint64_t seed, std::uint64_t run,
                                    std::string_view component);

  std::uint64_t next_u64() { return engine_(); }
  double uniform();  // [0, 1)
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  bool bernoulli(double p) { return uniform() < p; }
  double exponential(double mean);
  double standard_normal();
  std::uint64_t below(std::uint64_t n);  // uniform integer in [0, n)

 private:
  std::mt19937_64 engine_;
  double spare_normal_ = 0.0;
  bool has_spare_ = false;
};

struct HistogramBucket {
  double upper_ms = 0.0;  // values in (previous upper, upper], uniform inside
  double weight = 0.0;

  bool operator==(const HistogramBucket&) const = default;
};

// A duration distribution in milliseconds.
struct Distribution {
  enum class Kind { constant, exponential, lognormal, empirical };
  Kind kind = Kind::constant;
  double value_ms = 0.0;                 // constant
  double mean_ms = 0.0;                  // exponential
  double median_ms = 0.0;                // lognormal: exp(mu)
  double sigma = 0.0;                    // lognormal: sd of the log
  std::vector<HistogramBucket> buckets;  // empirical, ascending upper bounds

  static Distribution constant(double ms);
  static Distribution exponential(double mean_ms);
  static Distribution lognormal(double median_ms, double sigma);
  static Distribution empirical(std::vector<HistogramBucket> buckets);

  double sample(RandomStream& rng) const;
  double mean() const;
  // The q-quantile, q in [0, 1].
  double quantile(double q) const;
  // A copy with every value multiplied by factor (a slowdown, a faster index...).
  Distribution scaled(double factor) const;

  bool operator==(const Distribution&) const = default;
};

std::string_view to_string(Distribution::Kind kind);

}  // namespace doppel::model
