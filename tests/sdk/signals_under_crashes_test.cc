// Signals and queries while the nemesis crashes and partitions servers and
// workers: every signal a client saw acknowledged reaches the workflow's
// handler exactly once — none lost when a worker dies with the run in its
// cache, none applied twice when a client retries after a lost reply or a
// task is replayed — and queries answer from a consistent state.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/history/history_validator.h"
#include "engine/sdk/registry.h"
#include "engine/sdk/replayer.h"
#include "engine/testing/sdk_cluster.h"
#include "sim/nemesis.h"
#include "sim/sanitizer.h"

namespace duro::sdk {
namespace {

using namespace std::chrono_literals;
using engine::testing::SdkCluster;
using engine::testing::TestClient;

constexpr std::int64_t kSignals = 20;

// Collects `count` signals through a handler; answers "count" queries.
std::vector<std::int64_t> collector(WorkflowContext& ctx, const std::int64_t& count) {
  std::vector<std::int64_t> items;
  ctx.on_signal<std::int64_t>("item", [&](const std::int64_t& item) { items.push_back(item); });
  ctx.on_query<std::int64_t>("count", [&] { return static_cast<std::int64_t>(items.size()); });
  ctx.await([&] { return static_cast<std::int64_t>(items.size()) >= count; });
  // A moment for duplicates, if any were coming, to arrive and be seen.
  ctx.sleep(1min);
  return items;
}

struct SeedOutcome {
  int workflows = 0;
  int checked = 0;
  int queries_answered = 0;
  int crashes = 0;
  std::vector<std::string> problems;
};

SeedOutcome run_seed(std::uint64_t seed) {
  constexpr sim::Duration kChaos = 10min;
  constexpr sim::Duration kLivenessBound = 30min;
  Registry registry;
  registry.workflow("collector", collector);
  SdkCluster cluster(registry, {.seed = seed, .servers = 3, .workers = 2});
  sim::Result<sim::FaultProfile> profile = sim::fault_profile("chaos");
  EXPECT_TRUE(profile.ok());
  profile.value().disk_corruption.enabled = false;  // A corrupt store refuses to serve, by design.
  const sim::FaultPlan plan = sim::draw_fault_plan(
      seed, profile.value(),
      sim::FaultTopology{{"server-1", "server-2", "server-3", "worker-1", "worker-2"}, {"store"}, {}, kChaos});
  EXPECT_TRUE(cluster.world.apply(plan).ok());
  const sim::TimePoint quiet_at = cluster.world.sim().now() + kChaos;
  const sim::TimePoint live_by = quiet_at + kLivenessBound;

  SeedOutcome outcome;
  for (int w = 0; w < 3; w++) {
    cluster.on_client([&, w](sim::Env& env, TestClient& client) {
      const std::string workflow_id = "collector-" + std::to_string(seed) + "-" + std::to_string(w);
      auto started = SdkCluster::start(client, env, workflow_id, "collector", to_payload(kSignals), kChaos);
      if (!started.ok()) return;  // Not acknowledged: not owed anything.
      outcome.workflows++;
      for (std::int64_t i = 0; i < kSignals; i++) {
        env.sleep_for(std::chrono::seconds{static_cast<std::int64_t>(env.random().uniform(30))});
        engine::SignalWorkflowExecutionRequest signal{"item/" + workflow_id + "/" + std::to_string(i),
                                                      {workflow_id, started.value()}, "item", to_payload(i), "client"};
        if (!client.signal(signal, live_by).ok()) {
          outcome.problems.push_back(workflow_id + ": signal " + std::to_string(i) + " never acknowledged");
          return;
        }
        if (i % 5 == 4) {
          auto answer = client.call<engine::QueryWorkflowReply>(
              engine::method::kQueryWorkflow, engine::QueryWorkflowRequest{{workflow_id, ""}, "count", {}},
              env.sim().deadline_after(30s));
          if (answer.ok() && !answer.value().failure) {
            const auto count = from_payload<std::int64_t>(answer.value().result);
            outcome.queries_answered++;
            if (count < 0 || count > i + 1) {
              outcome.problems.push_back(workflow_id + ": query saw " + std::to_string(count) + " signals after " +
                                         std::to_string(i + 1) + " were sent");
            }
          }
        }
      }
      auto result = client.wait_result({workflow_id, started.value()}, live_by);
      if (!result.ok() || result.value().status != engine::WorkflowStatus::kCompleted) {
        outcome.problems.push_back(workflow_id + ": did not complete within the bound");
        return;
      }
      auto items = from_payload<std::vector<std::int64_t>>(
          result.value().close_event->as<engine::WorkflowExecutionCompleted>()->result);
      std::vector<std::int64_t> sorted = items;
      std::sort(sorted.begin(), sorted.end());
      std::vector<std::int64_t> expected(kSignals);
      for (std::int64_t i = 0; i < kSignals; i++) expected[static_cast<std::size_t>(i)] = i;
      if (sorted != expected) {
        std::string got;
        for (std::int64_t item : items) got += std::to_string(item) + " ";
        outcome.problems.push_back(workflow_id + ": the handler saw " + got + "(each of 0.." +
                                   std::to_string(kSignals - 1) + " exactly once expected)");
        return;
      }
      auto history = client.history({workflow_id, started.value()}, live_by + 10min);
      if (!history.ok()) {
        outcome.problems.push_back(workflow_id + ": history unreadable");
        return;
      }
      for (const std::string& violation : engine::validate_history(history.value())) {
        outcome.problems.push_back(workflow_id + ": " + violation);
      }
      Replayer replayer(registry);
      ReplayResult replay = replayer.replay(history.value().events, workflow_id, started.value());
      if (!replay.ok) outcome.problems.push_back(workflow_id + " does not replay: " + replay.message);
      outcome.checked++;
    });
  }
  cluster.world.run({.until = live_by + 15min});
  for (const sim::AppliedFault& fault : cluster.world.fault_log()) {
    if (fault.outcome == "applied" && fault.action.kind == sim::FaultKind::kCrash) outcome.crashes++;
  }
  return outcome;
}

TEST(SignalsUnderCrashes, EveryAcknowledgedSignalReachesTheHandlerExactlyOnce) {
  // DURO_SDK_SIGNAL_SEEDS / DURO_SDK_SIGNAL_SEED_BASE widen the sweep.
  const char* seeds_env = std::getenv("DURO_SDK_SIGNAL_SEEDS");
  const char* base_env = std::getenv("DURO_SDK_SIGNAL_SEED_BASE");
  const std::uint64_t seeds =
      seeds_env ? std::strtoull(seeds_env, nullptr, 10) : (sim::sanitizer::kAddressSanitizer ? 3 : 20);
  const std::uint64_t base = base_env ? std::strtoull(base_env, nullptr, 10) : 500;
  int workflows = 0;
  int queries = 0;
  int crashes = 0;
  for (std::uint64_t seed = base; seed < base + seeds; seed++) {
    const SeedOutcome outcome = run_seed(seed);
    for (const std::string& problem : outcome.problems) ADD_FAILURE() << "seed " << seed << ": " << problem;
    EXPECT_EQ(outcome.checked, outcome.workflows) << "seed " << seed;
    workflows += outcome.workflows;
    queries += outcome.queries_answered;
    crashes += outcome.crashes;
  }
  // Not vacuous.
  EXPECT_GT(workflows, 0);
  EXPECT_GT(queries, 0);
  EXPECT_GT(crashes, 0);
  std::printf("%llu seeds: %d workflows, %d queries answered, %d crashes\n", static_cast<unsigned long long>(seeds),
              workflows, queries, crashes);
}

}  // namespace
}  // namespace duro::sdk
