// The determinism contract (DESIGN.md §2): the same seed gives the same run,
// bit for bit — in one process and across processes — and different seeds
// give different runs.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "sim/demo/message_storm.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

demo::StormOptions workload(std::uint64_t seed) {
  // Over 1,000 fibers (4 nodes x 250 clients, plus RPC servers, handlers
  // and restarts), random sleeps, futures passed between fibers, and the
  // chaos profile's crashes, restarts, partitions and disk faults.
  demo::StormOptions options;
  options.seed = seed;
  options.profile = "chaos";
  options.nodes = 4;
  options.clients_per_node = 250;
  options.chaos = 30s;
  options.quiet = 25s;
  return options;
}

TEST(Determinism, WorkloadIsLargeAndChecksItself) {
  const demo::StormReport report = demo::run_message_storm(workload(1));
  EXPECT_EQ(report.failure, "");
  EXPECT_GE(report.fibers_spawned, 1000u);
  EXPECT_GT(report.faults, 3u);
  EXPECT_GT(report.crashes, 0u);
  EXPECT_GT(report.replies, 10'000u);
  EXPECT_GT(report.abandoned, 0u) << "crashes never interrupted a call";
  EXPECT_GT(report.timeouts, 0u) << "no call ever timed out";
}

TEST(Determinism, SameSeedSameTraceTwiceInOneProcess) {
  const demo::StormReport first = demo::run_message_storm(workload(42));
  const demo::StormReport second = demo::run_message_storm(workload(42));
  EXPECT_EQ(first.run.trace_hash, second.run.trace_hash);
  EXPECT_EQ(first.run.events_executed, second.run.events_executed);
  EXPECT_EQ(first.run.time, second.run.time);
  EXPECT_EQ(first.calls, second.calls);
  EXPECT_EQ(first.plan_text, second.plan_text);
  EXPECT_EQ(first.crashes, second.crashes);
}

TEST(Determinism, DifferentSeedsDifferentTraces) {
  const std::uint64_t a = demo::run_message_storm(workload(1)).run.trace_hash;
  const std::uint64_t b = demo::run_message_storm(workload(2)).run.trace_hash;
  const std::uint64_t c = demo::run_message_storm(workload(3)).run.trace_hash;
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
}

TEST(Determinism, ShuffledTiesAreDeterministicToo) {
  demo::StormOptions options = workload(7);
  options.shuffle_ties = true;
  const std::uint64_t shuffled = demo::run_message_storm(options).run.trace_hash;
  EXPECT_EQ(demo::run_message_storm(options).run.trace_hash, shuffled);
  EXPECT_NE(demo::run_message_storm(workload(7)).run.trace_hash, shuffled);
}

TEST(Determinism, ReplayingThePrintedPlanReproducesTheRun) {
  // The plan text a run prints is enough to replay its faults exactly: the
  // basis of shrinking a failure by editing the plan.
  const demo::StormReport drawn = demo::run_message_storm(workload(9));
  ASSERT_GT(drawn.faults, 0u);
  demo::StormOptions options = workload(9);
  Result<FaultPlan> plan = FaultPlan::parse(drawn.plan_text);
  ASSERT_TRUE(plan.ok()) << to_string(plan.error());
  options.plan = plan.value();
  const demo::StormReport replayed = demo::run_message_storm(options);
  EXPECT_EQ(replayed.run.trace_hash, drawn.run.trace_hash);
  // And an edited plan changes the run.
  options.plan->actions.pop_back();
  EXPECT_NE(demo::run_message_storm(options).run.trace_hash, drawn.run.trace_hash);
}

// Run as a child process by the test below: prints the trace hash of the
// seed named in DURO_DETERMINISM_CHILD_SEED.
TEST(Determinism, ChildProcessPrintsTraceHash) {
  const char* seed = std::getenv("DURO_DETERMINISM_CHILD_SEED");
  if (seed == nullptr) GTEST_SKIP() << "runs only as the child of SameSeedSameTraceAcrossProcesses";
  const demo::StormReport report = demo::run_message_storm(workload(std::strtoull(seed, nullptr, 10)));
  std::printf("trace_hash=%016llx\n", static_cast<unsigned long long>(report.run.trace_hash));
}

std::string child_trace_hash(std::uint64_t seed) {
  // /proc/self/exe inside the shell would be the shell: resolve it here.
  char self[4096];
  const ssize_t length = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0) return "readlink failed";
  self[length] = '\0';
  const std::string resolved = "DURO_DETERMINISM_CHILD_SEED=" + std::to_string(seed) + " '" + self +
                               "' --gtest_filter=Determinism.ChildProcessPrintsTraceHash 2>&1";
  FILE* pipe = ::popen(resolved.c_str(), "r");
  if (pipe == nullptr) return "popen failed";
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) output += buffer;
  const int status = ::pclose(pipe);
  if (status != 0) return "child failed: " + output;
  const std::size_t at = output.find("trace_hash=");
  if (at == std::string::npos) return "no hash in: " + output;
  return output.substr(at + 11, 16);
}

TEST(Determinism, SameSeedSameTraceAcrossProcesses) {
  const std::uint64_t seed = 42;
  char expected[17];
  std::snprintf(expected, sizeof(expected), "%016llx",
                static_cast<unsigned long long>(demo::run_message_storm(workload(seed)).run.trace_hash));
  EXPECT_EQ(child_trace_hash(seed), expected);
  EXPECT_EQ(child_trace_hash(seed), expected);
}

}  // namespace
}  // namespace duro::sim
