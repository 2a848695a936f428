#include "sim/random.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

namespace duro::sim {
namespace {

TEST(Random, SplitMix64MatchesReferenceOutputs) {
  // Vigna's splitmix64.c from state 0.
  std::uint64_t state = 0;
  EXPECT_EQ(splitmix64(state), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(splitmix64(state), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(splitmix64(state), 0x06C45D188009454FULL);
}

TEST(Random, Xoshiro256StarStarMatchesReferenceOutputs) {
  // The reference xoshiro256** from state {1, 2, 3, 4}.
  Random random = Random::from_state(1, 2, 3, 4);
  EXPECT_EQ(random.next(), 11520ULL);
  EXPECT_EQ(random.next(), 0ULL);
  EXPECT_EQ(random.next(), 1509978240ULL);
  EXPECT_EQ(random.next(), 1215971899390074240ULL);
}

TEST(Random, SeededStreamIsStableAcrossBuildsAndPlatforms) {
  // Golden values, recorded once from this implementation (whose parts are
  // checked against the reference generators above). Every recorded seed
  // and fault plan depends on them: a change here must be deliberate.
  Random random(42);
  EXPECT_EQ(random.next(), 0x15780B2E0C2EC716ULL);
  EXPECT_EQ(random.next(), 0x6104D9866D113A7EULL);
  EXPECT_EQ(random.next(), 0xAE17533239E499A1ULL);
  EXPECT_EQ(Random(42).fork("node/n1").next(), 0x09B34499B237928EULL);
  EXPECT_EQ(Random(42).uniform(1000), 83u);
  // Exact, not near: the distributions use only correctly rounded IEEE
  // operations, so this double is the same bit pattern everywhere.
  EXPECT_EQ(Random(42).exponential(1.0), 0.087589330583417585);
}

TEST(Random, ForkIsPureAndDoesNotAdvanceTheParent) {
  Random parent(7);
  Random reference(7);
  Random a = parent.fork("network");
  Random b = parent.fork("network");
  Random c = parent.fork("disk");
  EXPECT_EQ(parent.next(), reference.next()) << "fork() drew from the parent";
  const std::uint64_t a1 = a.next();
  EXPECT_EQ(a1, b.next()) << "same label, different stream";
  EXPECT_NE(a1, c.next()) << "different labels, same stream";
  EXPECT_NE(Random(7).fork(1).next(), Random(7).fork(2).next());
  EXPECT_NE(Random(7).fork("x").next(), Random(8).fork("x").next());
}

RC_GTEST_PROP(RandomProperty, UniformStaysBelowBound, (std::uint64_t seed, std::uint64_t bound)) {
  RC_PRE(bound > 0);
  Random random(seed);
  for (int i = 0; i < 64; i++) RC_ASSERT(random.uniform(bound) < bound);
}

RC_GTEST_PROP(RandomProperty, UniformRangeIsInclusive, (std::uint64_t seed, std::int64_t a, std::int64_t b)) {
  const std::int64_t low = std::min(a, b);
  const std::int64_t high = std::max(a, b);
  Random random(seed);
  for (int i = 0; i < 64; i++) {
    const std::int64_t value = random.uniform_range(low, high);
    RC_ASSERT(value >= low);
    RC_ASSERT(value <= high);
  }
}

TEST(Random, UniformRangeReachesBothEnds) {
  Random random(3);
  bool saw_low = false;
  bool saw_high = false;
  for (int i = 0; i < 1000; i++) {
    const std::int64_t value = random.uniform_range(-2, 2);
    saw_low |= value == -2;
    saw_high |= value == 2;
  }
  EXPECT_TRUE(saw_low);
  EXPECT_TRUE(saw_high);
  EXPECT_EQ(random.uniform_range(5, 5), 5);
}

TEST(Random, UniformIsUnbiasedOverSmallBounds) {
  // Chi-square over 6 buckets, 5 degrees of freedom: 20.5 is p = 0.001.
  Random random(11);
  constexpr int kDraws = 600'000;
  std::array<int, 6> counts{};
  for (int i = 0; i < kDraws; i++) counts[random.uniform(6)]++;
  double chi_square = 0;
  for (const int count : counts) {
    const double expected = kDraws / 6.0;
    chi_square += (count - expected) * (count - expected) / expected;
  }
  EXPECT_LT(chi_square, 20.5);
}

TEST(Random, UniformHasNoModuloBiasForLargeBounds) {
  // bound = 3/4 of 2^64: `next() % bound` would return values below 2^62
  // half the time; the unbiased answer is a third of the time.
  Random random(12);
  const std::uint64_t bound = (1ULL << 63) + (1ULL << 62);
  constexpr int kDraws = 300'000;
  int low = 0;
  for (int i = 0; i < kDraws; i++) low += random.uniform(bound) < (1ULL << 62) ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(low) / kDraws, 1.0 / 3.0, 0.005);
}

TEST(Random, UniformDoubleIsInUnitInterval) {
  Random random(13);
  double sum = 0;
  constexpr int kDraws = 200'000;
  for (int i = 0; i < kDraws; i++) {
    const double value = random.uniform_double();
    ASSERT_GE(value, 0.0);
    ASSERT_LT(value, 1.0);
    sum += value;
  }
  EXPECT_NEAR(sum / kDraws, 0.5, 0.005);
}

TEST(Random, BernoulliMatchesItsProbability) {
  Random random(14);
  constexpr int kDraws = 200'000;
  for (const double p : {0.01, 0.3, 0.5, 0.9}) {
    int hits = 0;
    for (int i = 0; i < kDraws; i++) hits += random.bernoulli(p) ? 1 : 0;
    EXPECT_NEAR(static_cast<double>(hits) / kDraws, p, 0.006) << "p = " << p;
  }
  EXPECT_FALSE(random.bernoulli(0.0));
  EXPECT_TRUE(random.bernoulli(1.0));
  EXPECT_FALSE(random.bernoulli(std::nan("")));
}

TEST(Random, ChanceIsExact) {
  Random random(15);
  constexpr int kDraws = 200'000;
  int hits = 0;
  for (int i = 0; i < kDraws; i++) hits += random.chance(1, 4) ? 1 : 0;
  EXPECT_NEAR(static_cast<double>(hits) / kDraws, 0.25, 0.005);
}

TEST(Random, ExponentialHasItsMeanAndVariance) {
  Random random(16);
  constexpr int kDraws = 400'000;
  const double mean = 250.0;
  double sum = 0;
  double sum_squares = 0;
  for (int i = 0; i < kDraws; i++) {
    const double value = random.exponential(mean);
    ASSERT_GE(value, 0.0);
    ASSERT_TRUE(std::isfinite(value));
    sum += value;
    sum_squares += value * value;
  }
  const double sample_mean = sum / kDraws;
  const double variance = sum_squares / kDraws - sample_mean * sample_mean;
  EXPECT_NEAR(sample_mean, mean, mean * 0.01);
  EXPECT_NEAR(variance, mean * mean, mean * mean * 0.03);
}

TEST(Random, DeterministicLogAgreesWithTheLibrary) {
  Random random(17);
  for (int i = 0; i < 100'000; i++) {
    // Magnitudes from 1e-300 to 1e300.
    const double x = std::ldexp(1.0 + random.uniform_double(), static_cast<int>(random.uniform_range(-990, 990)));
    const double expected = std::log(x);
    ASSERT_NEAR(deterministic_log(x), expected, std::abs(expected) * 4e-16 + 4e-16) << "x = " << x;
  }
  EXPECT_EQ(deterministic_log(1.0), 0.0);
}

TEST(Random, ShuffleIsAUniformPermutation) {
  Random random(18);
  std::map<std::array<int, 3>, int> seen;
  constexpr int kDraws = 60'000;
  for (int i = 0; i < kDraws; i++) {
    std::array<int, 3> items{0, 1, 2};
    random.shuffle(std::span<int>(items));
    seen[items]++;
  }
  ASSERT_EQ(seen.size(), 6u);
  for (const auto& [permutation, count] : seen) EXPECT_NEAR(count, kDraws / 6, 400);
}

RC_GTEST_PROP(RandomProperty, ShuffleKeepsEveryElement, (std::uint64_t seed, std::vector<int> items)) {
  std::vector<int> shuffled = items;
  Random random(seed);
  random.shuffle(std::span<int>(shuffled));
  std::sort(items.begin(), items.end());
  std::sort(shuffled.begin(), shuffled.end());
  RC_ASSERT(items == shuffled);
}

TEST(Random, PickChoosesEveryElement) {
  Random random(19);
  std::array<int, 4> items{10, 20, 30, 40};
  std::map<int, int> counts;
  for (int i = 0; i < 40'000; i++) counts[random.pick(std::span<int>(items))]++;
  ASSERT_EQ(counts.size(), 4u);
  for (const auto& [value, count] : counts) EXPECT_NEAR(count, 10'000, 400);
}

}  // namespace
}  // namespace duro::sim
