// The harness: what it checks for every scenario (liveness, outcomes,
// histories that replay), that a seed is a function of its number, and
// that the built-in scenarios are registered with their invariants.
#include "scenarios/harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/sdk/activity_context.h"
#include "engine/sdk/workflow_context.h"
#include "scenarios/registry.h"
#include "sim/nemesis.h"

namespace duro::scenarios {
namespace {

using namespace std::chrono_literals;

enum class Flaw { kNone, kWrongExpectation, kNeverCloses };

// One workflow: an activity that upper-cases its input. The workload starts
// it and expects "HELLO" back.
class Shout final : public Scenario {
 public:
  explicit Shout(Flaw flaw, std::vector<sim::FaultAction> scripted = {}) : flaw_(flaw), scripted_(std::move(scripted)) {}

  void setup(Harness& harness) override {
    for (const sim::FaultAction& action : scripted_) {
      // A partition in the list is held until one minute later.
      if (action.kind == sim::FaultKind::kPartition) {
        harness.script_partition(action, action.at + 1min);
      } else {
        harness.script(action);
      }
    }
    harness.registry().activity("shout", [](sdk::ActivityContext&, const std::string& text) {
      std::string loud = text;
      std::transform(loud.begin(), loud.end(), loud.begin(), [](unsigned char c) { return std::toupper(c); });
      return loud;
    });
    const Flaw flaw = flaw_;
    harness.registry().workflow("shout", [flaw](sdk::WorkflowContext& ctx, const std::string& text) {
      sdk::ActivityOptions options;
      options.start_to_close = 10s;
      std::string loud = ctx.activity<std::string>("shout", text, options);
      if (flaw == Flaw::kNeverCloses) ctx.wait_signal<std::string>("never-sent");
      return loud;
    });
    harness.client("caller", [&harness, flaw](sdk::Client& client, sim::Env&) {
      for (int i = 0; i < 3; i++) {
        auto run = client.start("shout", "shout-" + std::to_string(i), std::string("hello"));
        if (!run.ok()) continue;
        const std::string expected = flaw == Flaw::kWrongExpectation ? "nope" : "HELLO";
        harness.expect(run.value(), "shout", [expected](const sdk::WorkflowOutcome<sdk::Payload>& outcome) {
          if (!outcome.completed() || !outcome.value) return std::string("it completes");
          const std::string got = sdk::from_payload<std::string>(*outcome.value);
          return got == expected ? std::string() : "it said " + got;
        });
      }
    });
  }
  void check_end(Harness& harness, Checker& checker) override {
    checker.check(harness.outcome("shout-0") != nullptr, "seen", "the outcome of shout-0 is known");
  }

 private:
  Flaw flaw_;
  std::vector<sim::FaultAction> scripted_;
};

ScenarioDefinition shout(Flaw flaw, std::vector<sim::FaultAction> scripted = {}) {
  ScenarioDefinition definition;
  definition.name = "shout";
  definition.summary = "a test scenario";
  definition.shape.chaos = 2min;
  definition.shape.liveness_bound = 5min;
  definition.make = [flaw, scripted] { return std::make_unique<Shout>(flaw, scripted); };
  return definition;
}

SeedOptions options(std::uint64_t seed, const std::string& profile) {
  SeedOptions seed_options;
  seed_options.seed = seed;
  seed_options.profile = sim::fault_profile(profile).value();
  return seed_options;
}

bool has_violation(const SeedReport& report, const std::string& invariant) {
  return std::any_of(report.violations.begin(), report.violations.end(),
                     [&](const Violation& violation) { return violation.invariant == invariant; });
}

std::string violations(const SeedReport& report) {
  std::string text;
  for (const Violation& violation : report.violations) text += violation.invariant + ": " + violation.message + "\n";
  return text;
}

TEST(Harness, ACorrectScenarioPassesUnderChaosAndReplaysEveryRun) {
  const ScenarioDefinition definition = shout(Flaw::kNone);
  for (std::uint64_t seed = 1; seed <= 5; seed++) {
    const SeedReport report = run_seed(definition, options(seed, "chaos"));
    EXPECT_TRUE(report.passed) << "seed " << seed << "\n" << violations(report);
    EXPECT_EQ(report.workflows, 3u);
    EXPECT_EQ(report.runs_replayed, 3u);
    EXPECT_FALSE(report.fault_plan.empty());
  }
}

TEST(Harness, AWrongOutcomeIsAViolation) {
  const SeedReport report = run_seed(shout(Flaw::kWrongExpectation), options(1, "none"));
  EXPECT_FALSE(report.passed);
  EXPECT_TRUE(has_violation(report, "outcome")) << violations(report);
  EXPECT_NE(violations(report).find("it said HELLO"), std::string::npos) << violations(report);
}

TEST(Harness, AWorkflowThatNeverClosesBreaksLivenessAtTheBound) {
  const SeedReport report = run_seed(shout(Flaw::kNeverCloses), options(1, "none"));
  EXPECT_FALSE(report.passed);
  EXPECT_TRUE(has_violation(report, "liveness")) << violations(report);
  // Quiet begins after the chaos phase; the bound runs from there.
  EXPECT_GE(report.simulated_ns, std::chrono::nanoseconds(2min + 5min).count());
}

TEST(Harness, ASeedIsAFunctionOfItsNumber) {
  const ScenarioDefinition definition = shout(Flaw::kNone);
  const SeedReport a = run_seed(definition, options(7, "chaos"));
  const SeedReport b = run_seed(definition, options(7, "chaos"));
  const SeedReport c = run_seed(definition, options(8, "chaos"));
  EXPECT_EQ(a.trace_hash, b.trace_hash);
  EXPECT_EQ(a.fault_plan, b.fault_plan);
  EXPECT_EQ(a.events, b.events);
  EXPECT_NE(a.trace_hash, c.trace_hash);
}

sim::FaultAction crash_at(sim::Duration at, std::string node) {
  sim::FaultAction crash;
  crash.at = at;
  crash.kind = sim::FaultKind::kCrash;
  crash.nodes = {std::move(node)};
  return crash;
}

TEST(Harness, ScriptedFaultsJoinTheDrawnPlanAndAGivenPlanIsKeptAsItIs) {
  // Both workers crash for the whole chaos phase: the workflows wait, and
  // close once the quiet phase restarts them.
  const ScenarioDefinition definition = shout(Flaw::kNone, {crash_at(30s, "worker-1"), crash_at(30s, "worker-2")});
  const SeedReport report = run_seed(definition, options(3, "none"));
  EXPECT_TRUE(report.passed) << violations(report);
  EXPECT_EQ(report.faults_applied, 2u);
  EXPECT_NE(report.fault_plan.find("at 30s crash worker-1"), std::string::npos) << report.fault_plan;
  EXPECT_NE(report.fault_plan.find("at 30s crash worker-2"), std::string::npos) << report.fault_plan;
  // The printed plan replays as it is: the scripted faults are not added twice.
  SeedOptions replay = options(3, "none");
  replay.plan = sim::FaultPlan::parse(report.fault_plan).value();
  const SeedReport again = run_seed(definition, replay);
  EXPECT_EQ(again.faults_applied, 2u);
  EXPECT_EQ(again.trace_hash, report.trace_hash);
}

TEST(Harness, AHeldPartitionIsCutAgainAfterEveryDrawnHealInsideIt) {
  sim::FaultAction cut;
  cut.at = 20s;
  cut.kind = sim::FaultKind::kPartition;
  cut.nodes = {"worker-1"};
  const ScenarioDefinition definition = shout(Flaw::kNone, {cut});
  int heals_inside = 0;
  for (std::uint64_t seed = 1; seed <= 5; seed++) {
    const SeedReport report = run_seed(definition, options(seed, "partitions"));
    EXPECT_TRUE(report.passed) << violations(report);
    const sim::FaultPlan plan = sim::FaultPlan::parse(report.fault_plan).value();
    bool cut_now = false;
    for (std::size_t i = 0; i < plan.actions.size(); i++) {
      const sim::FaultAction& action = plan.actions[i];
      const bool inside = action.at >= 20s && action.at < 80s;
      if (action.kind == sim::FaultKind::kPartition && action.nodes == cut.nodes) cut_now = true;
      if (action.kind != sim::FaultKind::kHeal || !inside) continue;
      heals_inside++;
      // Right after the heal, at the same time: the partition again.
      ASSERT_LT(i + 1, plan.actions.size()) << report.fault_plan;
      EXPECT_EQ(plan.actions[i + 1].at, action.at) << report.fault_plan;
      EXPECT_EQ(plan.actions[i + 1].nodes, cut.nodes) << report.fault_plan;
    }
    EXPECT_TRUE(cut_now) << report.fault_plan;
    // And it ends with a heal of its own at 80 s.
    EXPECT_NE(report.fault_plan.find("at 1m20s heal"), std::string::npos) << report.fault_plan;
  }
  EXPECT_GT(heals_inside, 0) << "no seed drew a heal inside the held window: the test checked nothing";
}

TEST(Harness, APlanThatNamesAMissingNodeIsRefusedNotRun) {
  SeedOptions seed_options = options(1, "none");
  sim::FaultPlan plan;
  plan.profile = "manual";
  plan.chaos = 1min;
  sim::FaultAction crash;
  crash.at = 1s;
  crash.kind = sim::FaultKind::kCrash;
  crash.nodes = {"no-such-node"};
  plan.actions.push_back(crash);
  seed_options.plan = plan;
  const SeedReport report = run_seed(shout(Flaw::kNone), seed_options);
  EXPECT_FALSE(report.passed);
  EXPECT_TRUE(has_violation(report, "fault-plan")) << violations(report);
  EXPECT_NE(violations(report).find("no-such-node"), std::string::npos) << violations(report);
}

TEST(Registry, TheBuiltInScenariosAreRegisteredWithTheirInvariants) {
  ScenarioRegistry registry;
  add_builtin_scenarios(registry);
  ASSERT_NE(registry.find("namespace-provisioning"), nullptr);
  ASSERT_NE(registry.find("ring-rollout"), nullptr);
  EXPECT_EQ(registry.find("no-such-scenario"), nullptr);
  for (const ScenarioDefinition& definition : registry.all()) {
    EXPECT_FALSE(definition.invariants.empty()) << definition.name;
    EXPECT_FALSE(definition.summary.empty()) << definition.name;
    EXPECT_TRUE(sim::fault_profile(definition.shape.default_profile).ok()) << definition.name;
  }
}

TEST(Registry, NamesAreUnique) {
  ScenarioRegistry registry;
  registry.add(shout(Flaw::kNone));
  EXPECT_DEATH(registry.add(shout(Flaw::kNone)), "two scenarios with one name");
}

}  // namespace
}  // namespace duro::scenarios
