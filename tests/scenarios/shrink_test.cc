// Shrinking: the delta-debugging shrinker against a known cause (it finds
// exactly the faults the failure needs, with their windows shortened, and
// respects its budget), then `duro shrink` on a scenario whose invariant
// breaks under one outage among a drawn plan's many faults, and `duro
// regress` on the failure it keeps.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/plan_shrinker.h"
#include "scenarios/fakes/resource_service.h"
#include "scenarios/fakes/service_call.h"
#include "scenarios/harness.h"
#include "sim/nemesis.h"
#include "tests/scenarios/cli_runner.h"

namespace duro::cli {
namespace shrink_test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

sim::FaultPlan drawn_plan(std::uint64_t seed) {
  sim::FaultTopology topology;
  topology.crashable = {"store", "server-1", "server-2", "worker-1"};
  topology.with_disks = {"store"};
  topology.services = {"cloud-api", "dns"};
  topology.chaos = 10min;
  return sim::draw_fault_plan(seed, sim::fault_profile("chaos").value(), topology);
}

bool is_outage_of(const sim::FaultAction& action, const std::string& service, sim::Duration at_least) {
  return action.kind == sim::FaultKind::kOutage && action.service == service && action.duration >= at_least;
}

bool is_crash_of(const sim::FaultAction& action, const std::string& node) {
  return action.kind == sim::FaultKind::kCrash && action.nodes == std::vector<std::string>{node};
}

// The failure needs a crash of server-2 and an outage of cloud-api of at
// least 10 s, whatever else happens.
bool needs_both(const sim::FaultPlan& plan) {
  bool crash = false;
  bool outage = false;
  for (const sim::FaultAction& action : plan.actions) {
    crash = crash || is_crash_of(action, "server-2");
    outage = outage || is_outage_of(action, "cloud-api", 10s);
  }
  return crash && outage;
}

sim::FaultPlan plan_with_the_cause(std::uint64_t seed) {
  sim::FaultPlan plan = drawn_plan(seed);
  sim::FaultAction crash;
  crash.at = 100s;
  crash.kind = sim::FaultKind::kCrash;
  crash.nodes = {"server-2"};
  sim::FaultAction outage;
  outage.at = 200s;
  outage.kind = sim::FaultKind::kOutage;
  outage.service = "cloud-api";
  outage.duration = 160s;
  plan.actions.push_back(crash);
  plan.actions.push_back(outage);
  std::stable_sort(plan.actions.begin(), plan.actions.end(),
                   [](const sim::FaultAction& a, const sim::FaultAction& b) { return a.at < b.at; });
  EXPECT_TRUE(plan.validate().ok());
  return plan;
}

PlanBatchTest test_with(bool (*fails)(const sim::FaultPlan&)) {
  return [fails](const std::vector<sim::FaultPlan>& batch) {
    std::vector<bool> result;
    for (const sim::FaultPlan& plan : batch) result.push_back(fails(plan));
    return result;
  };
}

TEST(PlanShrinker, FindsExactlyTheFaultsTheFailureNeedsAndShortensThem) {
  for (std::uint64_t seed = 1; seed <= 10; seed++) {
    const sim::FaultPlan plan = plan_with_the_cause(seed);
    ASSERT_GT(plan.actions.size(), 5u) << "a drawn chaos plan has many faults";
    ShrinkOptions options;
    options.halvings = 10;
    const ShrinkResult result = shrink_plan(plan, test_with(&needs_both), options);
    ASSERT_TRUE(needs_both(result.plan));
    ASSERT_EQ(result.plan.actions.size(), 2u) << result.plan.to_text();
    EXPECT_FALSE(result.budget_spent);
    // The outage kept (ours or a drawn one of at least 10 s) is halved
    // while it still fails: it ends under twice the 10 s it needs.
    for (const sim::FaultAction& action : result.plan.actions) {
      if (action.kind == sim::FaultKind::kOutage) {
        EXPECT_GE(action.duration, 10s);
        EXPECT_LT(action.duration, 20s);
      }
    }
    EXPECT_LT(result.runs, 100u) << "seed " << seed;
  }
}

TEST(PlanShrinker, AFailureThatNeedsNoFaultShrinksToTheEmptyPlanInOneRun) {
  const ShrinkResult result =
      shrink_plan(drawn_plan(3), test_with([](const sim::FaultPlan&) { return true; }), ShrinkOptions{});
  EXPECT_TRUE(result.plan.actions.empty());
  EXPECT_EQ(result.runs, 1u);
}

TEST(PlanShrinker, StopsAtItsBudgetWithAPlanThatStillFails) {
  ShrinkOptions options;
  options.runs_max = 5;
  const sim::FaultPlan plan = plan_with_the_cause(4);
  const ShrinkResult result = shrink_plan(plan, test_with(&needs_both), options);
  EXPECT_TRUE(result.budget_spent);
  EXPECT_LE(result.runs, 5u);
  EXPECT_TRUE(needs_both(result.plan));
  EXPECT_LE(result.plan.actions.size(), plan.actions.size());
}

// The workload reads a service every 10 s through the chaos phase; the
// invariant says it never found the service down. A scripted outage
// breaks it; the drawn faults around it do not matter.
class Fragile final : public scenarios::Scenario {
 public:
  explicit Fragile(bool fixed) : fixed_(fixed) {}

  void setup(scenarios::Harness& harness) override {
    service_ = &harness.add_service<scenarios::ResourceService>("svc", scenarios::FailureModel{});
    sim::FaultAction outage;
    outage.at = 90s;
    outage.kind = sim::FaultKind::kOutage;
    outage.service = "svc";
    outage.duration = 40s;
    harness.script(outage);
    harness.client("reader", [&harness](sdk::Client&, sim::Env& env) {
      for (int i = 0; i < 18; i++) {
        try {
          (void)scenarios::call_service<scenarios::ResourceReply>(env, harness.address_of("svc"), "get",
                                                                  scenarios::ResourceGet{"k"}, 5s);
        } catch (const scenarios::ServiceUnavailable&) {
        }
        env.sleep_for(10s);
      }
    });
  }
  void check_end(scenarios::Harness&, scenarios::Checker& checker) override {
    if (fixed_) return;
    checker.check(service_->stats().outage_rejections == 0, "never-down", "the reader found svc down {} time(s)",
                  service_->stats().outage_rejections);
  }

 private:
  bool fixed_;
  scenarios::ResourceService* service_ = nullptr;
};

scenarios::ScenarioRegistry registry_with(bool fixed) {
  scenarios::ScenarioDefinition definition;
  definition.name = "fragile";
  definition.summary = "a test scenario";
  definition.invariants = {"never-down: the reader never finds svc down"};
  definition.shape.chaos = 3min;
  definition.shape.liveness_bound = 5min;
  definition.make = [fixed] { return std::make_unique<Fragile>(fixed); };
  scenarios::ScenarioRegistry registry;
  registry.add(std::move(definition));
  return registry;
}

using testing::CliResult;

CliResult run_cli(bool fixed, std::vector<std::string> args) {
  return testing::run_cli(registry_with(fixed), std::move(args));
}

TEST(ShrinkCli, ShrinksADrawnPlanToTheOneOutageAndKeepsItAsARegressionCase) {
  const std::string dir = ::testing::TempDir() + "/shrink_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string out = dir + "/fragile.plan";
  const CliResult shrunk = run_cli(false, {"shrink", "fragile", "--seed", "2", "--jobs", "2", "--out", out, "--keep",
                                           dir + "/failures"});
  ASSERT_EQ(shrunk.exit_code, 0) << shrunk.out;
  EXPECT_NE(shrunk.out.find("duro repro fragile --seed 2 --fault-plan " + out), std::string::npos) << shrunk.out;
  sim::Result<sim::FaultPlan> plan = sim::read_fault_plan_file(out);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan.value().actions.size(), 1u) << plan.value().to_text() << shrunk.out;
  EXPECT_EQ(plan.value().actions.front().kind, sim::FaultKind::kOutage);
  EXPECT_EQ(plan.value().actions.front().service, "svc");

  // The shrunk plan reproduces the failure.
  EXPECT_EQ(run_cli(false, {"repro", "fragile", "--seed", "2", "--fault-plan", out}).exit_code, 1);
  // Kept: it fails while the bug is there, and passes once it is fixed.
  EXPECT_EQ(run_cli(false, {"regress", dir + "/failures", "--jobs", "1"}).exit_code, 1);
  const CliResult fixed = run_cli(true, {"regress", dir + "/failures", "--jobs", "1"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out;
  EXPECT_NE(fixed.out.find("1 pass, 0 fail"), std::string::npos) << fixed.out;
}

TEST(ShrinkCli, APassingSeedOrABadFileIsBadInput) {
  EXPECT_EQ(run_cli(true, {"shrink", "fragile", "--seed", "1", "--jobs", "1"}).exit_code, 2) << "nothing to shrink";
  EXPECT_EQ(run_cli(false, {"shrink", "nope", "--seed", "1"}).exit_code, 2);
  const std::string dir = ::testing::TempDir() + "/shrink_test_bad";
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream bad(dir + "/x.failure");
    bad << "{\"format\": 1, \"scenario\": \"fragile\"}";
  }
  EXPECT_EQ(run_cli(false, {"regress", dir}).exit_code, 2);
  fs::remove(dir + "/x.failure");
  EXPECT_EQ(run_cli(false, {"regress", dir}).exit_code, 0) << "no kept failure yet";
}

}  // namespace shrink_test
}  // namespace duro::cli
