// Delivery fuzzing (engine/server/delivery_fuzz.h): with the servers
// holding arrivals, an activity result, a timer firing and a signal that
// race each other land at every point where they legally can — each of
// them alone or with others, in every order — and every history that
// comes of it replays cleanly. Without holds the same race lands in only a
// few ways: the holds are what reach the rest.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "engine/sdk/registry.h"
#include "engine/sdk/replayer.h"
#include "engine/testing/sdk_cluster.h"
#include "sim/sanitizer.h"

namespace duro::sdk {
namespace delivery_fuzz_test {
namespace {

using namespace std::chrono_literals;
using engine::testing::SdkCluster;
using engine::testing::TestClient;

// An activity, a 5 ms timer and a signal, all in flight at once.
std::string race(WorkflowContext& ctx, const std::string&) {
  Future<std::string> activity = ctx.start_activity<std::string>("answer", std::string("a"), {.start_to_close = 10s});
  Future<void> timer = ctx.timer(20ms);
  std::string signal = ctx.wait_signal<std::string>("s");
  timer.get();
  return activity.get() + signal;
}

std::string answer(ActivityContext&, const std::string& input) { return input; }

// How the code saw the three events: '|' for each workflow task started,
// A, T and S for the activity's result, the timer and the signal, in
// history order. "S|A|T": the signal came with the start; the activity
// and the timer in tasks of their own.
std::string landing(const std::vector<engine::HistoryEvent>& events) {
  std::string out;
  for (const engine::HistoryEvent& event : events) {
    if (event.is<engine::WorkflowTaskStarted>()) out += '|';
    if (event.is<engine::ActivityTaskCompleted>()) out += 'A';
    if (event.is<engine::TimerFired>()) out += 'T';
    if (event.is<engine::WorkflowExecutionSignaled>()) out += 'S';
  }
  // The task that saw the last of them closed the workflow: nothing after.
  while (!out.empty() && out.back() == '|') out.pop_back();
  return out;
}

// Every legal landing: the signal may come before the first task starts
// (with the start) or after; the activity and the timer only after the
// first task, which schedules them. Later tasks each see at least one new
// event, in any order.
std::set<std::string> legal_landings() {
  std::set<std::string> out;
  // Splits `rest` (in this order) into non-empty batches after `prefix`.
  auto batches = [&](auto& self, const std::string& prefix, const std::string& rest) -> void {
    if (rest.empty()) {
      out.insert(prefix);
      return;
    }
    for (std::size_t n = 1; n <= rest.size(); n++) self(self, prefix + "|" + rest.substr(0, n), rest.substr(n));
  };
  for (const std::string first : {"", "S"}) {
    std::string rest = first.empty() ? "AST" : "AT";
    do {
      batches(batches, first, rest);
    } while (std::next_permutation(rest.begin(), rest.end()));
  }
  return out;
}

struct Landed {
  std::set<std::string> landings;
  std::vector<std::string> problems;
};

Landed run_seeds(std::uint64_t seeds, sim::Duration hold_max) {
  Registry registry;
  registry.workflow("race", race).activity("answer", answer);
  Landed landed;
  for (std::uint64_t seed = 1; seed <= seeds; seed++) {
    engine::ServerOptions server;
    server.fuzz_delivery_hold_max = hold_max;
    SdkCluster cluster(registry, {.seed = seed, .servers = 1, .workers = 1, .shard_count = 1, .server = server});
    cluster.on_client([&](sim::Env& env, TestClient& client) {
      const std::string id = "race-" + std::to_string(seed);
      auto started = SdkCluster::start(client, env, id, "race", to_payload(std::string()));
      if (!started.ok()) {
        landed.problems.push_back(id + ": not started");
        return;
      }
      engine::SignalWorkflowExecutionRequest signal{"signal/" + id, {id, started.value()}, "s",
                                                    to_payload(std::string("s")), "client"};
      if (!client.signal(signal, env.sim().deadline_after(1min)).ok()) landed.problems.push_back(id + ": signal");
      auto result = client.wait_result({id, started.value()}, env.sim().deadline_after(10min));
      if (!result.ok() || result.value().status != engine::WorkflowStatus::kCompleted) {
        landed.problems.push_back(id + ": did not complete");
        return;
      }
      auto history = client.history({id, started.value()}, env.sim().deadline_after(1min));
      if (!history.ok()) {
        landed.problems.push_back(id + ": no history");
        return;
      }
      landed.landings.insert(landing(history.value().events));
      Replayer replayer(registry);
      const ReplayResult replay = replayer.replay(history.value().events, id, started.value());
      if (!replay.ok) landed.problems.push_back(id + " does not replay: " + replay.message);
    });
    cluster.world.run_for(15min);
  }
  return landed;
}

TEST(DeliveryFuzz, ARaceOfAResultATimerAndASignalLandsInEveryLegalWay) {
  const std::set<std::string> legal = legal_landings();
  ASSERT_EQ(legal.size(), 28U);  // 4 with the signal first, 24 without.
  // The rarest ways need three holds to line up (measured: 28 of 28 in
  // 400 seeds, the rarest seen once); the sanitizer build, ten times
  // slower, runs the first 100 seeds and asks for half.
  const bool sanitized = sim::sanitizer::kAddressSanitizer;
  const std::uint64_t seeds = sanitized ? 100 : 600;
  const Landed fuzzed = run_seeds(seeds, 1s);
  for (const std::string& problem : fuzzed.problems) ADD_FAILURE() << problem;
  for (const std::string& seen : fuzzed.landings) EXPECT_TRUE(legal.contains(seen)) << "an illegal landing: " << seen;
  std::string missing;
  for (const std::string& way : legal) {
    if (!fuzzed.landings.contains(way)) missing += " " + way;
  }
  if (sanitized) {
    EXPECT_GE(fuzzed.landings.size(), legal.size() / 2) << "never landed as:" << missing;
  } else {
    EXPECT_TRUE(missing.empty()) << "never landed as:" << missing;
  }

  const Landed plain = run_seeds(50, 0s);
  EXPECT_TRUE(plain.problems.empty());
  EXPECT_LT(plain.landings.size(), legal.size() / 2) << "the race alone already lands in most ways";
  std::printf("%zu of %zu landings in %llu seeds with holds, %zu in 50 without\n", fuzzed.landings.size(),
              legal.size(), static_cast<unsigned long long>(seeds), plain.landings.size());
}

}  // namespace
}  // namespace delivery_fuzz_test
}  // namespace duro::sdk
