#include "doppel/model/distribution.hpp"

#include <cmath>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

namespace doppel::model {
namespace {

constexpr int kSamples = 200'000;

struct Moments {
  double mean = 0.0;
  double sd = 0.0;
};

Moments sample_moments(const Distribution& d, RandomStream& rng, int n = kSamples) {
  double sum = 0.0;
  double sum_sq = 0.0;
  for (int i = 0; i < n; ++i) {
    const double x = d.sample(rng);
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / n;
  return {mean, std::sqrt(std::max(0.0, sum_sq / n - mean * mean))};
}

// The sample mean must land within 5 standard errors of the true mean: a wrong formula fails,
// chance essentially never does (and the seed is fixed anyway).
void expect_mean_near(const Distribution& d, double true_mean, std::uint64_t seed) {
  RandomStream rng(seed);
  const Moments m = sample_moments(d, rng);
  const double standard_error = m.sd / std::sqrt(static_cast<double>(kSamples));
  EXPECT_NEAR(m.mean, true_mean, 5.0 * standard_error + 1e-12) << to_string(d.kind);
  EXPECT_NEAR(d.mean(), true_mean, 1e-9 * std::max(1.0, true_mean)) << to_string(d.kind);
}

double fraction_below(const Distribution& d, double bound, std::uint64_t seed) {
  RandomStream rng(seed);
  int below = 0;
  for (int i = 0; i < kSamples; ++i) below += d.sample(rng) <= bound ? 1 : 0;
  return static_cast<double>(below) / kSamples;
}

TEST(Distribution, ConstantAlwaysGivesItsValue) {
  const Distribution d = Distribution::constant(3.25);
  RandomStream rng(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(d.sample(rng), 3.25);
  EXPECT_EQ(d.mean(), 3.25);
  EXPECT_EQ(d.quantile(0.0), 3.25);
  EXPECT_EQ(d.quantile(0.99), 3.25);
}

TEST(Distribution, SampleMeansMatchEachKind) {
  expect_mean_near(Distribution::exponential(5.0), 5.0, 11);
  expect_mean_near(Distribution::lognormal(2.0, 0.5), 2.0 * std::exp(0.125), 12);
  // Uniform inside each bucket: (0.5 * 10 + 1.5 * 60 + 3 * 30) / 100.
  expect_mean_near(Distribution::empirical({{1.0, 10.0}, {2.0, 60.0}, {4.0, 30.0}}), 1.85, 13);
}

TEST(Distribution, SampleSpreadMatchesTheory) {
  RandomStream rng(21);
  EXPECT_NEAR(sample_moments(Distribution::exponential(4.0), rng).sd, 4.0, 0.05);
  const double sigma = 0.5;
  const double mean = 2.0 * std::exp(sigma * sigma / 2);
  EXPECT_NEAR(sample_moments(Distribution::lognormal(2.0, sigma), rng).sd,
              mean * std::sqrt(std::exp(sigma * sigma) - 1), 0.02);
}

TEST(Distribution, ClosedFormQuantiles) {
  EXPECT_NEAR(Distribution::exponential(10.0).quantile(0.5), 10.0 * std::log(2.0), 1e-12);
  EXPECT_NEAR(Distribution::exponential(10.0).quantile(0.99), 10.0 * std::log(100.0), 1e-9);
  EXPECT_TRUE(std::isinf(Distribution::exponential(10.0).quantile(1.0)));
  EXPECT_NEAR(Distribution::lognormal(3.0, 0.7).quantile(0.5), 3.0, 1e-8);
  // One standard deviation above the median in log space: Phi(1) = 0.841344746.
  EXPECT_NEAR(Distribution::lognormal(3.0, 0.7).quantile(0.841344746), 3.0 * std::exp(0.7), 1e-6);
  EXPECT_NEAR(Distribution::lognormal(3.0, 0.7).quantile(0.01), 3.0 * std::exp(-0.7 * 2.326348),
              1e-4);
}

TEST(Distribution, EmpiricalQuantilesInterpolateInsideBuckets) {
  const Distribution d = Distribution::empirical({{1.0, 10.0}, {2.0, 60.0}, {4.0, 30.0}});
  EXPECT_DOUBLE_EQ(d.quantile(0.0), 0.0);
  EXPECT_DOUBLE_EQ(d.quantile(0.05), 0.5);
  EXPECT_DOUBLE_EQ(d.quantile(0.1), 1.0);
  EXPECT_DOUBLE_EQ(d.quantile(0.4), 1.5);
  EXPECT_DOUBLE_EQ(d.quantile(0.85), 3.0);
  EXPECT_DOUBLE_EQ(d.quantile(1.0), 4.0);
  // Out-of-range q is clamped rather than extrapolated.
  EXPECT_DOUBLE_EQ(d.quantile(1.5), 4.0);
  EXPECT_DOUBLE_EQ(Distribution::empirical({}).quantile(0.5), 0.0);
}

TEST(Distribution, SamplesFollowTheQuantileFunction) {
  const std::vector<Distribution> kinds = {
      Distribution::exponential(5.0), Distribution::lognormal(2.0, 0.5),
      Distribution::empirical({{1.0, 10.0}, {2.0, 60.0}, {4.0, 30.0}})};
  std::uint64_t seed = 100;
  for (const auto& d : kinds) {
    for (double q : {0.1, 0.5, 0.9, 0.99}) {
      // Binomial standard error of a share near q over kSamples draws is below 0.0012.
      EXPECT_NEAR(fraction_below(d, d.quantile(q), ++seed), q, 0.006)
          << to_string(d.kind) << " q=" << q;
    }
  }
}

TEST(Distribution, ScaledMultipliesEveryKind) {
  EXPECT_DOUBLE_EQ(Distribution::constant(2.0).scaled(3.0).mean(), 6.0);
  EXPECT_DOUBLE_EQ(Distribution::exponential(2.0).scaled(3.0).mean(), 6.0);
  EXPECT_DOUBLE_EQ(Distribution::lognormal(2.0, 0.4).scaled(3.0).quantile(0.5), 6.0);
  EXPECT_DOUBLE_EQ(Distribution::lognormal(2.0, 0.4).scaled(3.0).sigma, 0.4);
  EXPECT_DOUBLE_EQ(Distribution::empirical({{1.0, 1.0}, {3.0, 1.0}}).scaled(2.0).quantile(1.0),
                   6.0);
}

TEST(RandomStream, EngineIsTheStandardMersenneTwister) {
  // The C++ standard fixes mt19937_64's 10000th output for the default seed 5489: the
  // sequences Doppel draws are the same with any standard library.
  RandomStream rng(5489);
  for (int i = 0; i < 9999; ++i) rng.next_u64();
  EXPECT_EQ(rng.next_u64(), 9981545732273789042ULL);
}

TEST(RandomStream, ForComponentIsDeterministic) {
  RandomStream a = RandomStream::for_component(42, 3, "checkout");
  RandomStream b = RandomStream::for_component(42, 3, "checkout");
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(a.next_u64(), b.next_u64());
}

TEST(RandomStream, SeedRunAndNameEachSelectADifferentStream) {
  const std::uint64_t base = RandomStream::for_component(42, 3, "checkout").next_u64();
  EXPECT_NE(RandomStream::for_component(43, 3, "checkout").next_u64(), base);
  EXPECT_NE(RandomStream::for_component(42, 4, "checkout").next_u64(), base);
  EXPECT_NE(RandomStream::for_component(42, 3, "checkouts").next_u64(), base);
  EXPECT_NE(RandomStream::for_component(42, 3, "").next_u64(), base);
}

TEST(RandomStream, StreamsOfDifferentNamesAreUncorrelated) {
  constexpr int n = 100'000;
  RandomStream a = RandomStream::for_component(7, 0, "cart");
  RandomStream b = RandomStream::for_component(7, 0, "carts");
  RandomStream c = RandomStream::for_component(7, 1, "cart");  // next run, same name
  double sab = 0.0;
  double sac = 0.0;
  for (int i = 0; i < n; ++i) {
    const double x = a.uniform() - 0.5;
    sab += x * (b.uniform() - 0.5);
    sac += x * (c.uniform() - 0.5);
  }
  // Correlation of independent uniforms: sd 1/sqrt(n) = 0.0032; uniform variance is 1/12.
  EXPECT_NEAR(sab / n * 12.0, 0.0, 0.016);
  EXPECT_NEAR(sac / n * 12.0, 0.0, 0.016);
}

TEST(RandomStream, UniformAndBelowStayInRange) {
  RandomStream rng(9);
  std::vector<int> counts(7, 0);
  for (int i = 0; i < 70'000; ++i) {
    const double u = rng.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    const auto k = rng.below(7);
    ASSERT_LT(k, 7u);
    ++counts[k];
  }
  for (int count : counts) EXPECT_NEAR(count, 10'000, 500);
  EXPECT_EQ(rng.below(0), 0u);
  EXPECT_EQ(rng.below(1), 0u);
}

TEST(RandomStream, StandardNormalHasUnitVariance) {
  RandomStream rng(5);
  double sum = 0.0;
  double sum_sq = 0.0;
  for (int i = 0; i < kSamples; ++i) {
    const double z = rng.standard_normal();
    sum += z;
    sum_sq += z * z;
  }
  EXPECT_NEAR(sum / kSamples, 0.0, 0.012);
  EXPECT_NEAR(sum_sq / kSamples, 1.0, 0.02);
}

}  // namespace
}  // namespace doppel::model
