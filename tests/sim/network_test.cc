#include "sim/network.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

constexpr std::uint16_t kPort = 7000;

// A world of `nodes` nodes, each with a socket on kPort and a daemon fiber
// recording what arrives.
class NetworkWorld {
 public:
  struct Arrival {
    std::string payload;
    NodeId at;
    TimePoint time;
  };

  NetworkWorld(std::size_t nodes, NetworkOptions options, std::uint64_t seed = 1)
      : sim({.seed = seed}), network(sim, options, sim.random().fork("network")) {
    for (std::size_t i = 0; i < nodes; i++) {
      ids.push_back(sim.add_node("n" + std::to_string(i), [this](NodeId node) { return boot(node); }));
    }
  }

  struct Process final : sim::Process {
    std::unique_ptr<Socket> socket;
  };

  std::unique_ptr<sim::Process> boot(NodeId node) {
    auto process = std::make_unique<Process>();
    process->socket = std::move(network.bind(node, kPort).value());
    Socket* socket = process->socket.get();
    sim.spawn(node, "receiver", [this, socket, node] {
      for (;;) {
        Result<Packet> packet = socket->receive();
        if (!packet.ok()) return;
        arrivals.push_back(Arrival{packet.value().payload, node, sim.now()});
      }
    }, {.daemon = true});
    return process;
  }

  Socket& socket(NodeId node) { return *static_cast<Process*>(sim.process(node))->socket; }

  // Sends `payload` from `from` to `to` at the current time, from a fiber.
  void send_at(TimePoint when, NodeId from, NodeId to, std::string payload) {
    sim.schedule_at(when, [this, from, to, payload = std::move(payload)]() mutable {
      if (!sim.is_up(from)) return;
      ASSERT_TRUE(socket(from).send(network.endpoint(to, kPort), std::move(payload)).ok());
    });
  }

  Simulator sim;
  Network network;
  std::vector<NodeId> ids;
  std::vector<Arrival> arrivals;
};

NetworkOptions quiet_network() {
  NetworkOptions options;
  options.spike_probability = 0;
  return options;
}

TEST(Network, WithoutFaultsEveryMessageArrivesExactlyOnce) {
  NetworkWorld world(5, NetworkOptions{});  // Default: jitter and rare spikes, no loss.
  std::multiset<std::string> sent;
  Random random(3);
  for (int i = 0; i < 2000; i++) {
    const NodeId from = world.ids[random.uniform(5)];
    const NodeId to = world.ids[random.uniform(5)];
    const std::string payload = "m" + std::to_string(i);
    sent.insert(payload);
    world.send_at(world.sim.now() + std::chrono::milliseconds{random.uniform(1000)}, from, to, payload);
  }
  EXPECT_EQ(world.sim.run().reason, StopReason::kQuiescent);
  std::multiset<std::string> received;
  for (const auto& arrival : world.arrivals) received.insert(arrival.payload);
  EXPECT_EQ(received, sent);
  EXPECT_EQ(world.network.stats().delivered, 2000u);
  EXPECT_EQ(world.network.in_flight(), 0u);
}

TEST(Network, LatencyIsAtLeastTheBase) {
  NetworkOptions options = quiet_network();
  options.latency_base = 3ms;
  NetworkWorld world(2, options);
  world.send_at(world.sim.now(), world.ids[0], world.ids[1], "x");
  (void)world.sim.run();
  ASSERT_EQ(world.arrivals.size(), 1u);
  EXPECT_GE(world.arrivals[0].time - kDefaultStartTime, 3ms);
  EXPECT_LT(world.arrivals[0].time - kDefaultStartTime, 10ms);
}

TEST(Network, LossAndDuplicationMatchTheirRates) {
  NetworkOptions options = quiet_network();
  options.loss_probability = 0.1;
  options.duplicate_probability = 0.05;
  NetworkWorld world(2, options);
  constexpr int kMessages = 20'000;
  for (int i = 0; i < kMessages; i++) {
    world.send_at(world.sim.now() + std::chrono::microseconds{i * 10}, world.ids[0], world.ids[1], std::to_string(i));
  }
  (void)world.sim.run();
  std::map<std::string, int> copies;
  for (const auto& arrival : world.arrivals) copies[arrival.payload]++;
  int lost = 0;
  int duplicated = 0;
  for (int i = 0; i < kMessages; i++) {
    const int count = copies[std::to_string(i)];
    ASSERT_LE(count, 2);
    lost += count == 0 ? 1 : 0;
    duplicated += count == 2 ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(lost) / kMessages, 0.1, 0.01);
  EXPECT_NEAR(static_cast<double>(duplicated) / kMessages, 0.9 * 0.05, 0.006);
}

TEST(Network, ReorderingDelaysSomeMessagesPastLaterOnes) {
  NetworkOptions options = quiet_network();
  options.latency_jitter_mean = Duration{0};
  NetworkWorld in_order(2, options);
  options.reorder_probability = 0.2;
  NetworkWorld reordered(2, options);
  for (NetworkWorld* world : {&in_order, &reordered}) {
    for (int i = 0; i < 500; i++) {
      world->send_at(world->sim.now() + std::chrono::microseconds{i * 100}, world->ids[0], world->ids[1], std::to_string(i));
    }
    (void)world->sim.run();
  }
  auto inversions = [](const NetworkWorld& world) {
    int count = 0;
    for (std::size_t i = 1; i < world.arrivals.size(); i++) {
      count += std::stoi(world.arrivals[i].payload) < std::stoi(world.arrivals[i - 1].payload) ? 1 : 0;
    }
    return count;
  };
  EXPECT_EQ(inversions(in_order), 0);
  EXPECT_GT(inversions(reordered), 20);
  EXPECT_EQ(reordered.arrivals.size(), 500u);
}

RC_GTEST_PROP(NetworkProperty, NoMessageCrossesAPartitionWhileItLasts,
              (std::uint64_t seed, std::vector<bool> side, bool one_way)) {
  RC_PRE(side.size() >= 2 && side.size() <= 8);
  NetworkWorld world(side.size(), NetworkOptions{}, seed);
  std::vector<NodeId> a;
  std::vector<NodeId> b;
  for (std::size_t i = 0; i < side.size(); i++) (side[i] ? a : b).push_back(world.ids[i]);
  const TimePoint start = world.sim.now();
  const TimePoint cut_at = start + 100ms;
  const TimePoint heal_at = start + 300ms;
  world.sim.schedule_at(cut_at, [&] { world.network.partition(a, b, one_way); });
  world.sim.schedule_at(heal_at, [&] { world.network.heal(); });
  // Every ordered pair sends a message every 10 ms, before, during and after.
  struct Sent {
    NodeId from;
    NodeId to;
    TimePoint at;
  };
  std::map<std::string, Sent> sent;
  for (int tick = 0; tick < 50; tick++) {
    for (NodeId from : world.ids) {
      for (NodeId to : world.ids) {
        const std::string payload = std::to_string(tick) + "/" + std::to_string(from) + "/" + std::to_string(to);
        const TimePoint at = start + std::chrono::milliseconds{tick * 10};
        sent[payload] = Sent{from, to, at};
        world.send_at(at, from, to, payload);
      }
    }
  }
  (void)world.sim.run();
  auto crosses = [&](NodeId from, NodeId to) {
    const bool from_a = std::find(a.begin(), a.end(), from) != a.end();
    const bool to_a = std::find(a.begin(), a.end(), to) != a.end();
    return from_a != to_a && (!one_way || from_a);
  };
  std::set<std::string> arrived;
  for (const auto& arrival : world.arrivals) {
    const Sent& message = sent.at(arrival.payload);
    RC_ASSERT(arrival.at == message.to);
    arrived.insert(arrival.payload);
    if (crosses(message.from, message.to)) {
      // Neither sent nor arrived while the partition stood.
      RC_ASSERT(!(arrival.time >= cut_at && arrival.time < heal_at));
      RC_ASSERT(!(message.at >= cut_at && message.at < heal_at));
    }
  }
  // Links never cut lose nothing.
  for (const auto& [payload, message] : sent) {
    if (!crosses(message.from, message.to)) RC_ASSERT(arrived.contains(payload));
  }
}

TEST(Network, OneWayPartitionCutsOnlyOneDirection) {
  NetworkWorld world(2, quiet_network());
  const NodeId a[] = {world.ids[0]};
  const NodeId b[] = {world.ids[1]};
  world.network.partition(a, b, /*one_way=*/true);
  EXPECT_TRUE(world.network.is_cut(world.ids[0], world.ids[1]));
  EXPECT_FALSE(world.network.is_cut(world.ids[1], world.ids[0]));
  world.send_at(world.sim.now(), world.ids[0], world.ids[1], "a->b");
  world.send_at(world.sim.now(), world.ids[1], world.ids[0], "b->a");
  (void)world.sim.run();
  ASSERT_EQ(world.arrivals.size(), 1u);
  EXPECT_EQ(world.arrivals[0].payload, "b->a");
}

TEST(Network, IsolateCutsANodeOffBothWays) {
  NetworkWorld world(3, quiet_network());
  world.network.isolate(world.ids[1]);
  for (NodeId from : world.ids) {
    for (NodeId to : world.ids) world.send_at(world.sim.now(), from, to, std::to_string(from) + ">" + std::to_string(to));
  }
  (void)world.sim.run();
  for (const auto& arrival : world.arrivals) {
    const bool touches_isolated = arrival.payload.find('1') != std::string::npos;
    EXPECT_TRUE(!touches_isolated || arrival.payload == "1>1") << arrival.payload;
  }
  EXPECT_EQ(world.arrivals.size(), 5u);  // 0>0 0>2 2>0 2>2 1>1
}

TEST(Network, ClogHoldsTrafficUntilItClears) {
  NetworkWorld world(2, quiet_network());
  const TimePoint clear_at = world.sim.now() + 5s;
  world.network.clog(world.ids[1], clear_at);
  world.send_at(world.sim.now(), world.ids[0], world.ids[1], "held");
  (void)world.sim.run();
  ASSERT_EQ(world.arrivals.size(), 1u);
  EXPECT_GE(world.arrivals[0].time, clear_at);
  EXPECT_LT(world.arrivals[0].time, clear_at + 10ms);
}

TEST(Network, MessagesInFlightToOrFromACrashedNodeAreDropped) {
  NetworkOptions options = quiet_network();
  options.latency_base = 10ms;
  NetworkWorld world(3, options);
  const NodeId sender = world.ids[0];
  const NodeId receiver = world.ids[1];
  const NodeId bystander = world.ids[2];
  world.send_at(world.sim.now(), sender, receiver, "to-crashing-receiver");
  world.send_at(world.sim.now(), sender, bystander, "from-crashing-sender");
  world.sim.schedule_after(5ms, [&] {
    world.sim.crash(receiver);
    world.sim.restart(receiver);  // Back before the message lands: still dropped.
  });
  world.sim.schedule_after(5ms, [&] { world.sim.crash(sender); });
  (void)world.sim.run();
  EXPECT_TRUE(world.arrivals.empty());
  EXPECT_EQ(world.network.stats().dropped_crash, 2u);
  // The restarted receiver rebound its port and hears new traffic.
  world.send_at(world.sim.now(), bystander, receiver, "after-restart");
  (void)world.sim.run();
  ASSERT_EQ(world.arrivals.size(), 1u);
  EXPECT_EQ(world.arrivals[0].payload, "after-restart");
}

TEST(Network, NobodyListeningAndFullQueuesDrop) {
  NetworkOptions options = quiet_network();
  options.socket_queue_max = 4;
  Simulator sim({.seed = 1});
  Network network(sim, options, Random(1));
  const NodeId a = sim.add_node("a");
  const NodeId b = sim.add_node("b");
  auto sender = std::move(network.bind(a, 1).value());
  auto receiver = std::move(network.bind(b, 2).value());  // Never reads.
  EXPECT_EQ(network.bind(b, 2).error().code, ErrorCode::kAlreadyExists);
  sim.spawn(a, "sender", [&] {
    for (int i = 0; i < 10; i++) ASSERT_TRUE(sender->send(network.endpoint(b, 2), "x").ok());
    ASSERT_TRUE(sender->send(network.endpoint(b, 9), "nobody").ok());
  });
  (void)sim.run();
  EXPECT_EQ(receiver->queued(), 4u);
  EXPECT_EQ(network.stats().dropped_queue_full, 6u);
  EXPECT_EQ(network.stats().dropped_no_listener, 1u);
}

TEST(Network, SameSeedSameTrace) {
  auto run = [](std::uint64_t seed) {
    NetworkOptions options;
    options.loss_probability = 0.05;
    options.duplicate_probability = 0.05;
    options.reorder_probability = 0.1;
    NetworkWorld world(4, options, seed);
    Random random(seed);
    for (int i = 0; i < 300; i++) {
      world.send_at(world.sim.now() + std::chrono::milliseconds{random.uniform(100)}, world.ids[random.uniform(4)],
                    world.ids[random.uniform(4)], std::to_string(i));
    }
    return world.sim.run().trace_hash;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}


TEST(Network, ClearingClogsReleasesHeldMessagesAtOnce) {
  NetworkWorld world(2, quiet_network());
  world.network.clog(world.ids[1], world.sim.now() + 1h);
  world.send_at(world.sim.now(), world.ids[0], world.ids[1], "held");
  world.sim.schedule_after(1s, [&] { world.network.unclog_all(); });
  (void)world.sim.run();
  ASSERT_EQ(world.arrivals.size(), 1u);
  EXPECT_EQ(world.arrivals[0].time, kDefaultStartTime + 1s);
}

}  // namespace
}  // namespace duro::sim
