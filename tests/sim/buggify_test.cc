// Buggify (sim/buggify.h): off outside simulation; inside, a pure function
// of the seed, with the configured rates.
#include "sim/buggify.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace duro::sim {
namespace {

// Options under which every site is active and fires every time.
BuggifyOptions always() {
  return BuggifyOptions{.enabled_probability = 1, .site_active_probability = 1, .fire_probability = 1};
}

// A buggify point in ordinary code, as the engine writes one.
bool rare_path() { return DURO_BUGGIFY; }
bool rare_path_with(double p) { return DURO_BUGGIFY_WITH_PROB(p); }

TEST(Buggify, IsFalseWithNoBuggifyInstalled) {
  ASSERT_EQ(Buggify::current_or_null(), nullptr);
  for (int i = 0; i < 1000; i++) {
    ASSERT_FALSE(rare_path());
    ASSERT_FALSE(rare_path_with(1.0));
  }
}

TEST(Buggify, ScopesInstallNestAndRestore) {
  Buggify outer(1, always());
  Buggify inner(2, always());
  {
    Buggify::Scope outer_scope(outer);
    EXPECT_EQ(Buggify::current_or_null(), &outer);
    EXPECT_TRUE(rare_path());
    {
      Buggify::Scope inner_scope(inner);
      EXPECT_EQ(Buggify::current_or_null(), &inner);
      EXPECT_TRUE(rare_path());
    }
    EXPECT_EQ(Buggify::current_or_null(), &outer);
    EXPECT_TRUE(rare_path());
  }
  EXPECT_EQ(Buggify::current_or_null(), nullptr);
  EXPECT_FALSE(rare_path());
  // Each counted its own evaluations.
  ASSERT_EQ(outer.report().size(), 1u);
  EXPECT_EQ(outer.report()[0].evaluations, 2u);
  EXPECT_EQ(inner.report()[0].evaluations, 1u);
}

TEST(Buggify, ADisabledSeedNeverFires) {
  Buggify buggify(5, BuggifyOptions{.enabled_probability = 0, .site_active_probability = 1, .fire_probability = 1});
  Buggify::Scope scope(buggify);
  EXPECT_FALSE(buggify.enabled());
  for (int i = 0; i < 100; i++) {
    EXPECT_FALSE(rare_path());
    EXPECT_FALSE(buggify.evaluate("engine/x.cc", static_cast<std::uint32_t>(i)));
  }
  EXPECT_TRUE(buggify.report().empty()) << "a disabled buggify tracks nothing";
}

TEST(Buggify, IsEnabledForTheConfiguredFractionOfSeeds) {
  for (const double fraction : {0.1, 0.25, 0.5}) {
    int enabled = 0;
    constexpr int kSeeds = 4000;
    for (std::uint64_t seed = 0; seed < kSeeds; seed++) {
      enabled += Buggify(seed, {.enabled_probability = fraction}).enabled();
    }
    // Binomial standard deviation is at most 32 here; allow about 4.
    EXPECT_NEAR(enabled, fraction * kSeeds, 130) << "fraction " << fraction;
  }
}

TEST(Buggify, ActivatesTheConfiguredFractionOfSites) {
  for (const double fraction : {0.1, 0.25, 0.75}) {
    Buggify buggify(11, {.enabled_probability = 1, .site_active_probability = fraction});
    int active = 0;
    constexpr int kSites = 8000;
    for (int line = 1; line <= kSites; line++) active += buggify.site_active("engine/store.cc", line);
    EXPECT_NEAR(active, fraction * kSites, 160) << "fraction " << fraction;
  }
}

TEST(Buggify, ActiveSitesFireAtTheConfiguredRate) {
  for (const double fire : {0.05, 0.25, 0.9}) {
    Buggify buggify(3, {.enabled_probability = 1, .site_active_probability = 1, .fire_probability = fire});
    int fires = 0;
    constexpr int kEvaluations = 20'000;
    for (int i = 0; i < kEvaluations; i++) fires += buggify.evaluate("engine/store.cc", 7);
    EXPECT_NEAR(fires, fire * kEvaluations, 300) << "fire probability " << fire;
    const std::vector<BuggifySiteReport> report = buggify.report();
    ASSERT_EQ(report.size(), 1u);
    EXPECT_EQ(report[0].evaluations, static_cast<std::uint64_t>(kEvaluations));
    EXPECT_EQ(report[0].fires, static_cast<std::uint64_t>(fires));
  }
}

TEST(Buggify, WithProbOverridesTheFireRateButNotActivation) {
  Buggify buggify(3, {.enabled_probability = 1, .site_active_probability = 1, .fire_probability = 1});
  Buggify::Scope scope(buggify);
  int fires = 0;
  for (int i = 0; i < 10'000; i++) fires += rare_path_with(0.1);
  EXPECT_NEAR(fires, 1000, 150);
  for (int i = 0; i < 100; i++) EXPECT_FALSE(rare_path_with(0.0));

  Buggify inactive(3, {.enabled_probability = 1, .site_active_probability = 0, .fire_probability = 1});
  Buggify::Scope inner(inactive);
  for (int i = 0; i < 100; i++) EXPECT_FALSE(rare_path_with(1.0)) << "an inactive site fired";
}

RC_GTEST_PROP(BuggifyProperty, SiteActivationDoesNotDependOnEvaluationOrder,
              (std::uint64_t seed, std::vector<std::uint16_t> lines)) {
  const BuggifyOptions options{.enabled_probability = 1, .site_active_probability = 0.5, .fire_probability = 0.5};
  Buggify forward(seed, options);
  Buggify backward(seed, options);
  Buggify untouched(seed, options);
  for (const std::uint16_t line : lines) (void)forward.evaluate("sim/a.cc", line);
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) (void)backward.evaluate("sim/a.cc", *it);
  std::vector<BuggifySiteReport> forward_report = forward.report();
  std::vector<BuggifySiteReport> backward_report = backward.report();
  RC_ASSERT(forward_report.size() == backward_report.size());
  for (std::size_t i = 0; i < forward_report.size(); i++) {
    RC_ASSERT(forward_report[i].site == backward_report[i].site);
    RC_ASSERT(forward_report[i].active == backward_report[i].active);
  }
  for (const std::uint16_t line : lines) {
    RC_ASSERT(forward.site_active("sim/a.cc", line) == untouched.site_active("sim/a.cc", line));
  }
}

TEST(Buggify, IsAPureFunctionOfTheSeed) {
  auto run = [](std::uint64_t seed) {
    Buggify buggify(seed, {.enabled_probability = 1, .site_active_probability = 0.5, .fire_probability = 0.5});
    std::string fired;
    for (std::uint32_t i = 0; i < 2000; i++) fired += buggify.evaluate("engine/shard.cc", i % 40) ? '1' : '0';
    return fired;
  };
  EXPECT_EQ(run(17), run(17));
  EXPECT_NE(run(17), run(18));
  // Which sites are active differs between seeds, too.
  int differing = 0;
  Buggify a(17, {.enabled_probability = 1, .site_active_probability = 0.5});
  Buggify b(18, {.enabled_probability = 1, .site_active_probability = 0.5});
  for (std::uint32_t line = 0; line < 100; line++) {
    differing += a.site_active("x.cc", line) != b.site_active("x.cc", line);
  }
  EXPECT_GT(differing, 25);
  EXPECT_LT(differing, 75);
}

TEST(Buggify, ASiteIsNamedByTheLastTwoPartsOfItsPath) {
  EXPECT_EQ(Buggify::site_file("/home/ann/duro/engine/store.cc"), "engine/store.cc");
  EXPECT_EQ(Buggify::site_file("/ci/build-7/src/engine/store.cc"), "engine/store.cc");
  EXPECT_EQ(Buggify::site_file("store.cc"), "store.cc");
  EXPECT_EQ(Buggify::site_file("engine/store.cc"), "engine/store.cc");
  // So a seed activates the same sites in every checkout...
  Buggify buggify(9, {.enabled_probability = 1, .site_active_probability = 0.5});
  for (std::uint32_t line = 0; line < 64; line++) {
    EXPECT_EQ(buggify.site_active("/home/ann/duro/engine/store.cc", line),
              buggify.site_active("/ci/build-7/src/engine/store.cc", line));
  }
  // ...while different files are different sites.
  int differing = 0;
  for (std::uint32_t line = 0; line < 64; line++) {
    differing += buggify.site_active("engine/store.cc", line) != buggify.site_active("engine/shard.cc", line);
  }
  EXPECT_GT(differing, 10);
}

TEST(Buggify, ReportIsSortedCountedAndBounded) {
  Buggify buggify(1, {.enabled_probability = 1, .site_active_probability = 1, .fire_probability = 1, .sites_max = 3});
  (void)buggify.evaluate("b/z.cc", 10);
  (void)buggify.evaluate("b/z.cc", 9);
  (void)buggify.evaluate("a/y.cc", 100);
  (void)buggify.evaluate("b/z.cc", 10);
  // A fourth site is past the bound: still decided, but not tracked.
  EXPECT_TRUE(buggify.evaluate("c/w.cc", 1));
  EXPECT_TRUE(buggify.evaluate("c/w.cc", 1));
  const std::vector<BuggifySiteReport> report = buggify.report();
  EXPECT_EQ(report, (std::vector<BuggifySiteReport>{
                        {.site = "a/y.cc:100", .active = true, .evaluations = 1, .fires = 1},
                        {.site = "b/z.cc:9", .active = true, .evaluations = 1, .fires = 1},
                        {.site = "b/z.cc:10", .active = true, .evaluations = 2, .fires = 2},
                    }));
  EXPECT_EQ(buggify.untracked_evaluations(), 2u);
}

TEST(Buggify, MacroSitesAreNamedByFileAndLine) {
  Buggify buggify(1, always());
  Buggify::Scope scope(buggify);
  const std::uint32_t line = __LINE__ + 1;
  const bool fired = DURO_BUGGIFY;
  EXPECT_TRUE(fired);
  const std::vector<BuggifySiteReport> report = buggify.report();
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].site, fmt::format("sim/buggify_test.cc:{}", line));
}

}  // namespace
}  // namespace duro::sim
