#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/future.h"
#include "sim/simulator.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

// Records destructions, in order, into a log shared with the test.
struct DestructionLog {
  std::vector<std::string> entries;
};

struct Guard {
  DestructionLog* log;
  std::string name;
  ~Guard() { log->entries.push_back(name); }
};

struct LoggedProcess final : Process {
  LoggedProcess(DestructionLog* log, std::string name) : guard{log, std::move(name)} {}
  Guard guard;
};

RC_GTEST_PROP(NodeProperty, CrashUnwindsEveryFiberOfTheNodeAndNoOther,
              (std::uint64_t seed, std::vector<std::uint8_t> fibers_per_node, std::uint8_t victim_pick,
               std::uint16_t crash_at_ms)) {
  RC_PRE(!fibers_per_node.empty() && fibers_per_node.size() <= 6);
  DestructionLog log;  // Outlives the simulator, whose destructor logs.
  Random random(seed);
  Simulator sim({.seed = seed});
  std::vector<NodeId> nodes;
  // Fibers each sleep a random time up to 2 s (or forever); whether one is
  // alive at the crash is known only at run time, so each records it.
  std::map<std::string, bool> alive;
  std::map<std::string, bool> sleeps_forever;
  for (std::size_t n = 0; n < fibers_per_node.size(); n++) {
    const std::string node_name = "node" + std::to_string(n);
    const int fibers = fibers_per_node[n] % 20;
    nodes.push_back(sim.add_node(node_name, [&, node_name, fibers](NodeId node) {
      for (int f = 0; f < fibers; f++) {
        const std::string name = node_name + "/f" + std::to_string(f);
        const bool forever = random.chance(1, 4);
        const Duration sleep = std::chrono::milliseconds{random.uniform(2000)};
        alive[name] = true;
        sim.spawn(node, name, [&, name, forever, sleep] {
          Guard guard{&log, name};
          this_fiber::sleep_for(forever ? Duration{1000h} : sleep);
          alive[name] = false;
        });
        sleeps_forever[name] = forever;
      }
      return std::make_unique<LoggedProcess>(&log, node_name + "/process");
    }));
  }
  const NodeId victim = nodes[victim_pick % nodes.size()];
  const std::string victim_prefix = "node" + std::to_string(victim) + "/";
  std::vector<std::string> expected_unwound;
  sim.schedule_after(std::chrono::milliseconds{crash_at_ms % 2500}, [&] {
    for (const auto& [name, is_alive] : alive) {
      if (is_alive && name.starts_with(victim_prefix)) expected_unwound.push_back(name);
    }
    log.entries.clear();
    sim.crash(victim);
    // Everything destroyed by the crash: the victim's live fibers, then its
    // process, nothing else.
    RC_ASSERT(!log.entries.empty());
    RC_ASSERT(log.entries.back() == victim_prefix + "process");
    std::vector<std::string> unwound(log.entries.begin(), log.entries.end() - 1);
    std::sort(unwound.begin(), unwound.end());
    RC_ASSERT(unwound == expected_unwound);
    RC_ASSERT(sim.fibers_on(victim) == 0u);
    RC_ASSERT(!sim.is_up(victim));
    RC_ASSERT(sim.process(victim) == nullptr);
  });
  (void)sim.run({.until = kDefaultStartTime + 3s});
  // Every other node's fibers ran on to their own end.
  for (const auto& [name, is_alive] : alive) {
    if (!name.starts_with(victim_prefix)) RC_ASSERT(is_alive == sleeps_forever[name]);
  }
  for (NodeId node : nodes) {
    if (node != victim) RC_ASSERT(sim.is_up(node));
  }
}

TEST(Node, CrashUnwindsOldestFiberFirstThenDestroysTheProcess) {
  DestructionLog log;
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("db", [&](NodeId self) {
    for (const char* name : {"first", "second", "third"}) {
      sim.spawn(self, name, [&log, name] {
        Guard guard{&log, name};
        this_fiber::sleep_for(1h);
      });
    }
    return std::make_unique<LoggedProcess>(&log, "process");
  });
  (void)sim.run_for(1s);
  sim.crash(node);
  EXPECT_EQ(log.entries, (std::vector<std::string>{"first", "second", "third", "process"}));
}

TEST(Node, RestartBootsAFreshIncarnation) {
  Simulator sim({.seed = 1});
  int boots = 0;
  std::vector<std::uint32_t> seen_incarnations;
  const NodeId node = sim.add_node("svc", [&](NodeId self) {
    boots++;
    sim.spawn(self, "main", [&, self] { seen_incarnations.push_back(sim.incarnation(self)); });
    return std::unique_ptr<Process>();
  });
  EXPECT_EQ(sim.incarnation(node), 1u);
  (void)sim.run();
  sim.crash(node);
  EXPECT_FALSE(sim.is_up(node));
  sim.restart(node);
  EXPECT_TRUE(sim.is_up(node));
  (void)sim.run();
  EXPECT_EQ(boots, 2);
  EXPECT_EQ(seen_incarnations, (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(sim.node_name(node), "svc");
  EXPECT_EQ(to_string(sim.node_address(node)), "10.0.0.1");
}

TEST(Node, CallbacksOfACrashedIncarnationAreDropped) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("svc");
  std::vector<std::string> ran;
  sim.schedule_after(1s, [&] { ran.push_back("before crash"); }, node);
  sim.schedule_after(5s, [&] { ran.push_back("old incarnation (must drop)"); }, node);
  sim.schedule_after(5s, [&] { ran.push_back("unowned"); });
  sim.schedule_after(2s, [&] {
    sim.crash(node);
    sim.restart(node);
    sim.schedule_after(1s, [&] { ran.push_back("new incarnation"); }, node);
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(ran, (std::vector<std::string>{"before crash", "new incarnation", "unowned"}));
}

TEST(Node, CrashFromAFiberTakesEffectBeforeItReturns) {
  Simulator sim({.seed = 1});
  const NodeId victim = sim.add_node("victim");
  const NodeId nemesis = sim.add_node("nemesis");
  bool victim_unwound = false;
  sim.spawn(victim, "work", [&] {
    struct Flag {
      bool* flag;
      ~Flag() { *flag = true; }
    } flag{&victim_unwound};
    this_fiber::sleep_for(1h);
  });
  bool checked = false;
  sim.spawn(nemesis, "nemesis", [&] {
    this_fiber::sleep_for(1s);
    sim.crash(victim);
    EXPECT_FALSE(sim.is_up(victim));
    EXPECT_TRUE(victim_unwound);
    EXPECT_EQ(sim.now(), kDefaultStartTime + 1s);
    checked = true;
  });
  (void)sim.run();
  EXPECT_TRUE(checked);
}

TEST(Node, AFiberCrashingItsOwnNodeDies) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("self-destruct");
  bool after = false;
  sim.spawn(node, "suicidal", [&] {
    sim.crash(this_fiber::node());
    after = true;
  });
  EXPECT_EQ(sim.run().reason, StopReason::kQuiescent);
  EXPECT_FALSE(after);
  EXPECT_FALSE(sim.is_up(node));
}

TEST(Node, CrashBreaksThePromisesItsProcessHeld) {
  struct Holder final : Process {
    std::vector<Promise<int>> pending;
  };
  Simulator sim({.seed = 1});
  const NodeId server = sim.add_node("server", [](NodeId) { return std::make_unique<Holder>(); });
  const NodeId client = sim.add_node("client");
  Result<int> outcome = Error{ErrorCode::kApplication, "not set"};
  sim.spawn(client, "caller", [&] {
    auto* holder = static_cast<Holder*>(sim.process(server));
    Future<int> reply = holder->pending.emplace_back().future();
    outcome = reply.get_for(1h);
  });
  sim.schedule_after(10s, [&] { sim.crash(server); });
  (void)sim.run();
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.error().code, ErrorCode::kBrokenPromise);
  EXPECT_EQ(sim.now(), kDefaultStartTime + 10s);
}

TEST(NodeDeathTest, SpawnOnADownNodeAsserts) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("n");
  sim.crash(node);
  EXPECT_DEATH(sim.spawn(node, "f", [] {}), "spawn\\(\\) on a node that is down");
}


TEST(Node, CrashFromAFiberIsDoneOnReturnEvenWithShuffledTies) {
  for (std::uint64_t seed = 1; seed <= 20; seed++) {
    Simulator sim({.seed = seed, .shuffle_ties = true});
    const NodeId victim = sim.add_node("victim");
    const NodeId nemesis = sim.add_node("nemesis");
    for (int i = 0; i < 5; i++) sim.spawn(victim, "busy", [] { for (;;) this_fiber::yield(); });
    bool down_on_return = false;
    sim.spawn(nemesis, "nemesis", [&] {
      for (int i = 0; i < 3; i++) this_fiber::yield();
      sim.crash(victim);
      down_on_return = !sim.is_up(victim);
    });
    (void)sim.run();
    EXPECT_TRUE(down_on_return) << "seed " << seed;
  }
}

TEST(Address, ParsesWhatItPrintsAndRefusesTheRest) {
  const Address address{(10u << 24) | (0u << 16) | (3u << 8) | 200u};
  ASSERT_EQ(parse_address(to_string(address)), address);
  EXPECT_EQ(parse_address("255.255.255.255"), Address{0xFFFFFFFFu});
  for (const char* bad : {"", "10.0.0", "10.0.0.3.4", "10.0.0.256", "10..0.3", "a.b.c.d", "10.0.0.3 ", "1000.0.0.1"}) {
    EXPECT_FALSE(parse_address(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace duro::sim
