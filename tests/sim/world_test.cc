#include "sim/world.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "sim/nemesis.h"
#include "sim/rpc.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::uint16_t kPort = 7000;

struct Ping {
  std::uint64_t value = 0;
};
DURO_CODEC_FIELDS(Ping, value);

// Every node serves "ping", pings random peers, and appends what it hears
// to a log file on its disk, fsyncing every few entries: traffic and I/O
// for the faults to hit.
struct PingProcess final : Process {
  std::unique_ptr<RpcServer> server;
  std::unique_ptr<RpcClient> client;
};

std::unique_ptr<Process> boot_pinger(World& world, Env& env, TimePoint stop_at) {
  auto process = std::make_unique<PingProcess>();
  process->server = std::make_unique<RpcServer>(env.network(), env.node(), kPort);
  process->server->handle<Ping, Ping>("ping", [](const Ping& ping) -> Result<Ping> { return Ping{ping.value + 1}; });
  process->server->start();
  process->client = std::make_unique<RpcClient>(env.network(), env.node(), kPort + 1);
  RpcClient* client = process->client.get();
  env.spawn("pinger", [&world, &env, client, stop_at] {
    const std::string log = "log";
    if (!env.disk().exists(log)) (void)env.disk().create(log);
    for (std::uint64_t i = 0; world.sim().now() < stop_at; i++) {
      env.sleep_for(std::chrono::milliseconds{10 + env.random().uniform(90)});
      const NodeId peer = static_cast<NodeId>(env.random().uniform(world.sim().node_count()));
      Result<Ping> reply = client->call<Ping>(world.network().endpoint(peer, kPort), "ping", Ping{i}, 200ms);
      if (reply.ok()) (void)env.disk().append(log, std::to_string(reply.value().value) + "\n");
      if (i % 8 == 0) (void)env.disk().fsync(log);
    }
  });
  return process;
}

struct PingWorld {
  explicit PingWorld(std::uint64_t seed, int nodes = 4) : world({.seed = seed}) {
    for (int i = 0; i < nodes; i++) {
      world.add_node("n" + std::to_string(i),
                     [this](Env& env) { return boot_pinger(world, env, kDefaultStartTime + 50s); });
    }
  }
  FaultTopology topology(Duration chaos) const {
    FaultTopology topology;
    for (int i = 0; i < 4; i++) {
      topology.crashable.push_back("n" + std::to_string(i));
      topology.with_disks.push_back("n" + std::to_string(i));
    }
    topology.services = {"cloud-api"};
    topology.chaos = chaos;
    return topology;
  }
  World world;
};

FaultPlan parse_plan(std::string_view text) {
  Result<FaultPlan> plan = FaultPlan::parse(text);
  EXPECT_TRUE(plan.ok()) << to_string(plan.error());
  return plan.ok() ? plan.value() : FaultPlan{};
}

TEST(World, AppliesEachKindOfFaultAtItsTime) {
  PingWorld ping(1);
  World& world = ping.world;
  const FaultPlan plan = parse_plan(
      "# duro fault plan v1\n"
      "seed 1\nprofile manual\nchaos 40s\n"
      "at 1s crash n1\n"
      "at 2s crash n1\n"
      "at 3s restart n1\n"
      "at 4s partition n0 | n2,n3\n"
      "at 6s heal\n"
      "at 7s clog n2 for 2s\n"
      "at 8s clock-jump n3 -30s\n"
      "at 9s disk-errors n0 for 5s p=0.5\n"
      "at 10s disk-corruption n0 for 2s p=0.25\n"
      "at 11s outage cloud-api for 3s\n"
      "at 20s crash n2\n");
  ASSERT_TRUE(world.apply(plan).ok());
  const Duration n3_offset = world.clock(3).offset();
  struct Probe {
    Duration at;
    std::function<void()> check;
  };
  const std::vector<Probe> probes = {
      {1500ms, [&] { EXPECT_FALSE(world.sim().is_up(1)); }},
      {3500ms, [&] { EXPECT_TRUE(world.sim().is_up(1)); }},
      {5s, [&] {
         EXPECT_TRUE(world.network().is_cut(0, 2));
         EXPECT_TRUE(world.network().is_cut(3, 0));
         EXPECT_FALSE(world.network().is_cut(2, 3));
       }},
      {6500ms, [&] { EXPECT_FALSE(world.network().partitioned()); }},
      {8500ms, [&] { EXPECT_EQ(world.clock(3).offset(), n3_offset - 30s); }},
      {10500ms, [&] {
         EXPECT_EQ(world.disk(0).io_error_probability(), 0.5);
         EXPECT_EQ(world.disk(0).corruption_probability(), 0.25);
       }},
      {12500ms, [&] {
         EXPECT_EQ(world.disk(0).corruption_probability(), 0.0);
         EXPECT_EQ(world.disk(0).io_error_probability(), 0.5);
         EXPECT_TRUE(world.in_outage("cloud-api"));
         EXPECT_FALSE(world.in_outage("dns"));
       }},
      {14500ms, [&] {
         EXPECT_EQ(world.disk(0).io_error_probability(), 0.0);
         EXPECT_FALSE(world.in_outage("cloud-api"));
       }},
      {30s, [&] { EXPECT_FALSE(world.sim().is_up(2)); }},
      {41s, [&] {
         EXPECT_EQ(world.phase(), Phase::kQuiet);
         EXPECT_TRUE(world.sim().is_up(2)) << "the quiet phase restarts crashed nodes";
       }},
  };
  int probed = 0;
  for (const Probe& probe : probes) {
    world.sim().schedule_at(kDefaultStartTime + probe.at, [&, &check = probe.check] {
      check();
      probed++;
    });
  }
  (void)world.run();
  EXPECT_EQ(probed, static_cast<int>(probes.size()));
  EXPECT_EQ(world.quiet_since(), kDefaultStartTime + 40s);
  ASSERT_EQ(world.fault_log().size(), plan.actions.size());
  EXPECT_EQ(world.fault_log()[1].outcome, "skipped: already down");
  EXPECT_EQ(world.disk(1).stats().crashes, 1u) << "a crash settles the node's disk";
}

TEST(World, QuietPhaseHealsEverythingThatIsStillBroken) {
  PingWorld ping(2);
  World& world = ping.world;
  const FaultPlan plan = parse_plan(
      "# duro fault plan v1\nseed 2\nprofile manual\nchaos 10s\n"
      "at 1s crash n0\nat 2s partition n1 -> n2\nat 3s disk-errors n3 for 6s p=1\nat 4s clog n1 for 5s\n");
  ASSERT_TRUE(world.apply(plan).ok());
  bool checked = false;
  world.sim().schedule_at(kDefaultStartTime + 10s + 1ns, [&] {
    EXPECT_TRUE(world.sim().is_up(0));
    EXPECT_FALSE(world.network().partitioned());
    EXPECT_EQ(world.disk(3).io_error_probability(), 0.0);
    checked = true;
  });
  (void)world.run();
  EXPECT_TRUE(checked);
}

TEST(World, OverlappingDiskWindowsKeepTheStrongestOpenOne) {
  PingWorld ping(4);
  World& world = ping.world;
  const FaultPlan plan = parse_plan(
      "# duro fault plan v1\nseed 4\nprofile manual\nchaos 20s\n"
      "at 1s disk-errors n0 for 10s p=0.3\nat 2s disk-errors n0 for 2s p=0.9\n");
  ASSERT_TRUE(world.apply(plan).ok());
  std::vector<double> seen;
  for (const Duration at : {Duration{1500ms}, Duration{3s}, Duration{5s}, Duration{12s}}) {
    world.sim().schedule_at(kDefaultStartTime + at, [&] { seen.push_back(world.disk(0).io_error_probability()); });
  }
  (void)world.run();
  EXPECT_EQ(seen, (std::vector<double>{0.3, 0.9, 0.3, 0.0}));
}

TEST(World, RefusesAPlanNamingAnUnknownNode) {
  PingWorld ping(3);
  const FaultPlan plan = parse_plan("# duro fault plan v1\nseed 3\nprofile manual\nchaos 10s\nat 1s crash store-9\n");
  Result<void> applied = ping.world.apply(plan);
  ASSERT_FALSE(applied.ok());
  EXPECT_EQ(applied.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(applied.error().message.find("store-9"), std::string::npos) << applied.error().message;
}

std::uint64_t chaos_run(std::uint64_t seed, std::string_view profile_name, FaultPlan* plan_out = nullptr) {
  PingWorld ping(seed);
  const FaultProfile profile = fault_profile(profile_name).value();
  const FaultPlan plan = draw_fault_plan(seed, profile, ping.topology(30s));
  if (plan_out != nullptr) *plan_out = plan;
  EXPECT_TRUE(ping.world.apply(plan).ok());
  return ping.world.run().trace_hash;
}

TEST(World, SameSeedAndProfileGiveTheSamePlanAndTrace) {
  FaultPlan first_plan;
  FaultPlan second_plan;
  const std::uint64_t first = chaos_run(11, "chaos", &first_plan);
  const std::uint64_t second = chaos_run(11, "chaos", &second_plan);
  EXPECT_EQ(first_plan, second_plan);
  EXPECT_FALSE(first_plan.actions.empty());
  EXPECT_EQ(first, second);
  EXPECT_NE(chaos_run(12, "chaos"), first);
  EXPECT_NE(chaos_run(11, "none"), first);
}

TEST(World, EveryProfileRunsToQuiescenceWithItsFaultsApplied) {
  for (const std::string_view name : fault_profile_names()) {
    for (std::uint64_t seed = 1; seed <= 3; seed++) {
      PingWorld ping(seed);
      const FaultPlan plan = draw_fault_plan(seed, fault_profile(name).value(), ping.topology(30s));
      ASSERT_TRUE(ping.world.apply(plan).ok());
      const RunResult result = ping.world.run();
      EXPECT_EQ(result.reason, StopReason::kQuiescent) << name << " seed " << seed << "\n" << result.deadlock_report;
      EXPECT_EQ(ping.world.fault_log().size(), plan.actions.size()) << name;
      for (NodeId node = 0; node < 4; node++) EXPECT_TRUE(ping.world.sim().is_up(node)) << name;
    }
  }
}

}  // namespace
}  // namespace duro::sim
