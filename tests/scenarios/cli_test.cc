// The command line: bad usage and bad input get a message and exit code 2
// (never a crash, never a run); the seed pool reports a seed whose process
// died as a failed seed; the reports carry a repro line per failure.
#include "cli/cli.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/seed_pool.h"
#include "engine/sdk/client.h"
#include "scenarios/harness.h"
#include "cli/suite_report.h"
#include "sim/assert.h"

namespace duro::cli {
namespace {

int run_cli(std::vector<std::string> args) {
  scenarios::ScenarioRegistry registry;
  scenarios::add_builtin_scenarios(registry);
  args.insert(args.begin(), "duro");
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  return main(static_cast<int>(argv.size()), argv.data(), registry);
}

TEST(Cli, BadUsageAndBadInputExitWithTwo) {
  EXPECT_EQ(run_cli({}), 2) << "no command";
  EXPECT_EQ(run_cli({"frobnicate"}), 2) << "unknown command";
  EXPECT_EQ(run_cli({"run", "no-such-scenario"}), 2);
  EXPECT_EQ(run_cli({"run", "--faults", "no-such-profile"}), 2);
  EXPECT_EQ(run_cli({"run", "--seed-range", "9..3"}), 2);
  EXPECT_EQ(run_cli({"run", "--seed-range", "a..b"}), 2);
  EXPECT_EQ(run_cli({"run", "--seed-range", "1-3"}), 2);
  EXPECT_EQ(run_cli({"run", "--seeds", "0"}), 2);
  EXPECT_EQ(run_cli({"run", "--seeds", "3", "--seed-range", "1..3"}), 2);
  EXPECT_EQ(run_cli({"run", "--all", "namespace-provisioning"}), 2);
  EXPECT_EQ(run_cli({"run", "--jobs", "0"}), 2);
  EXPECT_EQ(run_cli({"repro", "namespace-provisioning"}), 2) << "no --seed";
  EXPECT_EQ(run_cli({"repro", "no-such-scenario", "--seed", "1"}), 2);
  EXPECT_EQ(run_cli({"check-determinism", "--faults", "nope"}), 2);
}

TEST(Cli, AMalformedFaultPlanFileIsBadInput) {
  const std::string path = ::testing::TempDir() + "/bad.plan";
  {
    std::ofstream out(path);
    out << "# duro fault plan v1\nthis is not a plan\n";
  }
  EXPECT_EQ(run_cli({"repro", "namespace-provisioning", "--seed", "1", "--fault-plan", path}), 2);
  EXPECT_EQ(run_cli({"repro", "namespace-provisioning", "--seed", "1", "--fault-plan", path + ".missing"}), 2);
}

TEST(Cli, ListSucceeds) { EXPECT_EQ(run_cli({"list"}), 0); }

// A scenario whose runs differ from one process to the next: its workload
// sleeps for as many microseconds as its process id.
class ProcessDependent final : public scenarios::Scenario {
 public:
  void setup(scenarios::Harness& harness) override {
    harness.client("drifter", [](sdk::Client&, sim::Env& env) {
      env.sleep_for(std::chrono::microseconds(::getpid()));
      env.sleep_for(std::chrono::seconds(1));
    });
  }
  void check_end(scenarios::Harness&, scenarios::Checker&) override {}
};

TEST(Cli, CheckDeterminismShowsTheFirstDivergentTraceEvent) {
  scenarios::ScenarioRegistry registry;
  scenarios::ScenarioDefinition definition;
  definition.name = "process-dependent";
  definition.summary = "differs between processes";
  definition.invariants = {"none: a test of the determinism check"};
  definition.shape.chaos = std::chrono::minutes{1};
  definition.shape.default_profile = "none";
  definition.make = [] { return std::make_unique<ProcessDependent>(); };
  registry.add(definition);
  std::vector<std::string> args = {"duro", "check-determinism", "process-dependent", "--seeds", "1", "--jobs", "1"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  ::testing::internal::CaptureStdout();
  const int code = main(static_cast<int>(argv.size()), argv.data(), registry);
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("NONDETERMINISTIC process-dependent seed 1"), std::string::npos) << out;
  EXPECT_NE(out.find("first divergent trace event: record"), std::string::npos) << out;
  EXPECT_NE(out.find("run 1: "), std::string::npos) << out;
  EXPECT_NE(out.find("run 2: "), std::string::npos) << out;
}

scenarios::SeedReport report_for(const SeedJob& job, bool passed) {
  scenarios::SeedReport report;
  report.scenario = job.scenario;
  report.seed = job.seed;
  report.profile = job.profile;
  report.passed = passed;
  report.simulated_ns = 1'000'000'000;
  if (!passed) {
    report.violations.push_back({{}, "one-record", "two cells hold acct/ns"});
    report.violations_total = 1;
  }
  return report;
}

TEST(SeedPool, EveryJobIsReportedOnceAndADeadWorkerIsAFailedSeed) {
  std::vector<SeedJob> jobs;
  for (std::uint64_t seed = 1; seed <= 12; seed++) jobs.push_back(SeedJob{"demo", seed, "chaos", std::nullopt});
  SeedPool pool(3, [](const SeedJob& job) {
    if (job.seed == 5) {
      std::fprintf(stderr, "assertion failed: the sky fell\n");
      std::abort();
    }
    return report_for(job, job.seed % 4 != 0);
  });
  std::map<std::uint64_t, scenarios::SeedReport> seen;
  pool.run(jobs, [&](const SeedJob& job, const scenarios::SeedReport& report) {
    EXPECT_EQ(job.seed, report.seed);
    EXPECT_TRUE(seen.emplace(job.seed, report).second) << "seed " << job.seed << " reported twice";
  });
  ASSERT_EQ(seen.size(), jobs.size());
  EXPECT_TRUE(seen.at(1).passed);
  EXPECT_FALSE(seen.at(4).passed);
  const scenarios::SeedReport& crashed = seen.at(5);
  EXPECT_FALSE(crashed.passed);
  ASSERT_EQ(crashed.violations.size(), 1u);
  EXPECT_EQ(crashed.violations[0].invariant, "crash");
  EXPECT_NE(crashed.violations[0].message.find("the sky fell"), std::string::npos) << crashed.violations[0].message;
  EXPECT_NE(crashed.violations[0].message.find("signal"), std::string::npos) << crashed.violations[0].message;
  EXPECT_EQ(crashed.profile, "chaos");
}

TEST(SuiteReport, TheReportsCarryARunnableReproLinePerFailure) {
  SuiteReport suite("duro", "");
  for (std::uint64_t seed = 1; seed <= 4; seed++) suite.add(report_for(SeedJob{"demo", seed, "swarm", std::nullopt}, seed != 3));
  EXPECT_FALSE(suite.passed());
  EXPECT_EQ(suite.seeds(), 4u);
  EXPECT_EQ(suite.failed(), 1u);
  ASSERT_EQ(suite.repro_lines().size(), 1u);
  EXPECT_EQ(suite.repro_lines()[0], "duro repro demo --seed 3 --faults swarm");

  const nlohmann::json json = nlohmann::json::parse(suite.json(2.0));
  ASSERT_EQ(json["scenarios"].size(), 1u);
  const nlohmann::json& demo = json["scenarios"][0];
  EXPECT_EQ(demo["seeds"], 4);
  EXPECT_EQ(demo["passed"], 3);
  EXPECT_DOUBLE_EQ(demo["simulated_seconds"].get<double>(), 4.0);
  ASSERT_EQ(demo["failed_seeds"].size(), 1u);
  EXPECT_EQ(demo["failed_seeds"][0]["repro"], "duro repro demo --seed 3 --faults swarm");

  const std::string junit = suite.junit(2.0);
  EXPECT_NE(junit.find("tests=\"4\" failures=\"1\""), std::string::npos) << junit;
  EXPECT_NE(junit.find("duro repro demo --seed 3 --faults swarm"), std::string::npos) << junit;
  const std::string table = suite.summary_table(2.0);
  EXPECT_NE(table.find("demo"), std::string::npos) << table;
}

}  // namespace
}  // namespace duro::cli
