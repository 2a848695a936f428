#include "sim/rpc.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

struct Add {
  std::int64_t a = 0;
  std::int64_t b = 0;
};
struct Sum {
  std::int64_t value = 0;
};
struct Slow {
  std::int64_t millis = 0;
};
DURO_CODEC_FIELDS(Add, a, b);
DURO_CODEC_FIELDS(Sum, value);
DURO_CODEC_FIELDS(Slow, millis);

constexpr std::uint16_t kServerPort = 7000;
constexpr std::uint16_t kClientPort = 7001;

struct ServerProcess final : Process {
  std::unique_ptr<RpcServer> server;
  int handled = 0;
  // Answers of the deferred method "later", with the sums they will carry.
  // Declared after the server: they go first.
  std::vector<std::pair<std::int64_t, RpcServer::Answer>> held;

  void answer_held() {
    for (auto& [sum, answer] : held) answer.reply(Sum{sum});
    held.clear();
  }
};

class RpcWorld {
 public:
  explicit RpcWorld(NetworkOptions options = quiet(), RpcServerOptions server_options = {})
      : sim({.seed = 3}), network(sim, options, Random(3)), server_options_(server_options) {
    server = sim.add_node("server", [this](NodeId node) { return boot_server(node); });
    client = sim.add_node("client");
  }

  static NetworkOptions quiet() {
    NetworkOptions options;
    options.spike_probability = 0;
    return options;
  }

  std::unique_ptr<Process> boot_server(NodeId node) {
    auto process = std::make_unique<ServerProcess>();
    process->server = std::make_unique<RpcServer>(network, node, kServerPort, server_options_);
    ServerProcess* self = process.get();
    process->server->handle<Add, Sum>("add", [self](const Add& add) -> Result<Sum> {
      self->handled++;
      return Sum{add.a + add.b};
    });
    process->server->handle<Add, Sum>("fail", [](const Add&) -> Result<Sum> {
      return Error{ErrorCode::kApplication, "quota exceeded"};
    });
    process->server->handle<Slow, Sum>("slow", [this, self](const Slow& slow) -> Result<Sum> {
      this_fiber::sleep_for(std::chrono::milliseconds{slow.millis});
      slow_done++;
      self->handled++;
      return Sum{slow.millis};
    });
    // Answers later, from whoever calls answer_held(); keeps no fiber.
    process->server->handle_deferred("later", [self](std::string_view payload, RpcServer::Answer answer) {
      Result<Add> add = decode<Add>(payload);
      if (!add.ok()) return answer.fail(add.error());
      if (add.value().a < 0) return answer.fail(Error{ErrorCode::kInvalidArgument, "negative"});
      self->handled++;
      self->held.emplace_back(add.value().a + add.value().b, std::move(answer));
    });
    process->server->handle_deferred("waits", [](std::string_view, RpcServer::Answer answer) {
      this_fiber::sleep_for(1ms);  // Not allowed here.
      answer.reply(Sum{0});
    });
    process->server->start();
    return process;
  }

  ServerProcess& server_process() { return *static_cast<ServerProcess*>(sim.process(server)); }
  Endpoint server_endpoint() { return network.endpoint(server, kServerPort); }

  // Runs `fn(client)` in a fiber on the client node with a fresh RpcClient.
  template <typename Fn>
  void in_client(Fn fn) {
    sim.spawn(client, "caller", [this, fn]() mutable {
      RpcClient rpc(network, client, kClientPort);
      fn(rpc);
    });
    (void)sim.run();
  }

  Simulator sim;
  Network network;
  RpcServerOptions server_options_;
  int slow_done = 0;  // "slow" requests finished, across crashes.
  NodeId server = kNoNode;
  NodeId client = kNoNode;
};

TEST(Rpc, RoundTrip) {
  RpcWorld world;
  bool checked = false;
  world.in_client([&](RpcClient& rpc) {
    Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "add", Add{40, 2}, 1s);
    ASSERT_TRUE(sum.ok()) << to_string(sum.error());
    EXPECT_EQ(sum.value().value, 42);
    EXPECT_EQ(rpc.pending(), 0u);
    checked = true;
  });
  EXPECT_TRUE(checked);
  EXPECT_EQ(world.server_process().handled, 1);
}

TEST(Rpc, ErrorsTravelBackWithTheirCode) {
  RpcWorld world;
  world.in_client([&](RpcClient& rpc) {
    Result<Sum> failed = rpc.call<Sum>(world.server_endpoint(), "fail", Add{}, 1s);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, ErrorCode::kApplication);
    EXPECT_EQ(failed.error().message, "quota exceeded");
    Result<Sum> unknown = rpc.call<Sum>(world.server_endpoint(), "nope", Add{}, 1s);
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
    // A request of the wrong type does not decode on the server.
    Result<Sum> garbled = rpc.call<Sum>(world.server_endpoint(), "add", std::string("not an Add"), 1s);
    ASSERT_FALSE(garbled.ok());
    EXPECT_EQ(garbled.error().code, ErrorCode::kDecode);
  });
}

TEST(RpcFrame, TheHeaderRoundTripsAndThePayloadIsTheRest) {
  std::string frame;
  append_rpc_header(frame, RpcHeader{.kind = RpcHeader::kRequest, .id = 77, .method = "add", .budget_ns = 5});
  const std::size_t header_bytes = frame.size();
  frame += "payload bytes";
  RpcHeader header;
  Result<std::size_t> offset = read_rpc_header(frame, header);
  ASSERT_TRUE(offset.ok()) << to_string(offset.error());
  EXPECT_EQ(offset.value(), header_bytes);
  EXPECT_EQ(header.kind, RpcHeader::kRequest);
  EXPECT_EQ(header.id, 77U);
  EXPECT_EQ(header.method, "add");
  EXPECT_EQ(header.budget_ns, 5);
  EXPECT_EQ(std::string_view(frame).substr(offset.value()), "payload bytes");
  // Every strict prefix of the header is refused, as is an unknown kind.
  for (std::size_t size = 0; size < header_bytes; size++) {
    EXPECT_FALSE(read_rpc_header(std::string_view(frame).substr(0, size), header).ok()) << size;
  }
  std::string unknown_kind = frame;
  unknown_kind[0] = '\x02';
  EXPECT_FALSE(read_rpc_header(unknown_kind, header).ok());
}

TEST(Rpc, FramesThatDoNotDecodeAreCountedAndTheServerGoesOn) {
  RpcWorld world;
  std::string reply_frame;
  append_rpc_header(reply_frame, RpcHeader{.kind = RpcHeader::kResponse, .id = 1});
  std::string truncated;
  append_rpc_header(truncated, RpcHeader{.kind = RpcHeader::kRequest, .id = 2, .method = "add"});
  truncated.resize(truncated.size() - 2);
  const std::vector<std::string> bad = {"", "\xff\xff\xff", reply_frame, truncated};
  bool called = false;
  world.in_client([&](RpcClient& rpc) {
    Result<std::unique_ptr<Socket>> raw = world.network.bind(world.client, kClientPort + 1);
    ASSERT_TRUE(raw.ok());
    for (const std::string& bytes : bad) ASSERT_TRUE(raw.value()->send(world.server_endpoint(), bytes).ok());
    this_fiber::sleep_for(100ms);
    Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "add", Add{1, 2}, 1s);
    ASSERT_TRUE(sum.ok()) << to_string(sum.error());
    EXPECT_EQ(sum.value().value, 3);
    called = true;
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(world.server_process().server->stats().undecodable, bad.size());
  EXPECT_EQ(world.server_process().server->stats().requests, 1U);
}

TEST(Rpc, NoAnswerIsATimeoutAndALateReplyIsDropped) {
  RpcWorld world;
  world.in_client([&](RpcClient& rpc) {
    const TimePoint start = world.sim.now();
    Result<Sum> late = rpc.call<Sum>(world.server_endpoint(), "slow", Slow{500}, 100ms);
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().code, ErrorCode::kTimeout);
    EXPECT_EQ(world.sim.now() - start, 100ms);
    EXPECT_EQ(rpc.pending(), 0u);
    // The slow reply arrives later and must not answer this next call.
    Result<Sum> next = rpc.call<Sum>(world.server_endpoint(), "add", Add{1, 1}, 2s);
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(next.value().value, 2);
    this_fiber::sleep_for(1s);
  });
  EXPECT_EQ(world.server_process().handled, 2);
}

// One process calling itself: a caller on the server's node hands the
// request over directly, so neither loss nor a partition nor a clog of the
// node touches it, and no message is sent; the deadline, the handler's
// errors, the concurrency bound and the trace hash still apply.
TEST(Rpc, ACallerOnTheServersNodeIsServedWithoutTheNetwork) {
  NetworkOptions lossy = RpcWorld::quiet();
  lossy.loss_probability = 1.0;
  RpcWorld world(lossy, RpcServerOptions{.concurrent_max = 1});
  world.network.isolate(world.server);
  world.network.clog(world.server, world.sim.now() + 1h);
  bool checked = false;
  world.sim.spawn(world.server, "local-caller", [&] {
    RpcClient rpc(world.network, world.server, kClientPort);
    Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "add", Add{40, 2}, 1s);
    ASSERT_TRUE(sum.ok()) << to_string(sum.error());
    EXPECT_EQ(sum.value().value, 42);
    Result<Sum> failed = rpc.call<Sum>(world.server_endpoint(), "fail", Add{}, 1s);
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.error().code, ErrorCode::kApplication);
    EXPECT_EQ(failed.error().message, "quota exceeded");
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "nope", Add{}, 1s).error().code, ErrorCode::kNotFound);
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "add", std::string("not an Add"), 1s).error().code,
              ErrorCode::kDecode);
    // The caller's deadline holds while the handler runs on; a second
    // request meanwhile is over the bound of one.
    const TimePoint start = world.sim.now();
    Result<Sum> late = rpc.call<Sum>(world.server_endpoint(), "slow", Slow{500}, 100ms);
    ASSERT_FALSE(late.ok());
    EXPECT_EQ(late.error().code, ErrorCode::kTimeout);
    EXPECT_EQ(world.sim.now() - start, 100ms);
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "add", Add{1, 1}, 1s).error().code, ErrorCode::kOverloaded);
    this_fiber::sleep_for(1s);
    EXPECT_EQ(world.server_process().server->running(), 0U);
    checked = true;
  });
  (void)world.sim.run_for(10s);
  EXPECT_TRUE(checked);
  EXPECT_EQ(world.network.stats().sent, 0U);
  const RpcServerStats& stats = world.server_process().server->stats();
  EXPECT_EQ(stats.requests, 6U);
  EXPECT_EQ(stats.direct, 6U);
  EXPECT_EQ(stats.rejected_overloaded, 1U);
  EXPECT_EQ(world.server_process().handled, 2) << "add, then the slow request after its caller gave up";
}

// With local_calls_inline, the handler runs in the caller's fiber: no
// handler fiber is started, and the caller waits for the handler to return
// and takes its result, however late. The concurrency bound and the
// handler's errors still apply.
TEST(Rpc, AnInlineDirectCallRunsItsHandlerInTheCallersFiber) {
  RpcWorld world(RpcWorld::quiet(), RpcServerOptions{.concurrent_max = 2, .local_calls_inline = true});
  bool checked = false;
  world.sim.spawn(world.server, "local-caller", [&] {
    RpcClient rpc(world.network, world.server, kClientPort);
    Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "add", Add{40, 2}, 1s);
    ASSERT_TRUE(sum.ok()) << to_string(sum.error());
    EXPECT_EQ(sum.value().value, 42);
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "fail", Add{}, 1s).error().message, "quota exceeded");
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "add", std::string("not an Add"), 1s).error().code,
              ErrorCode::kDecode);
    // A handler that waits keeps its caller past the caller's timeout.
    const TimePoint start = world.sim.now();
    Result<Sum> late = rpc.call<Sum>(world.server_endpoint(), "slow", Slow{500}, 100ms);
    ASSERT_TRUE(late.ok()) << to_string(late.error());
    EXPECT_EQ(late.value().value, 500);
    EXPECT_EQ(world.sim.now() - start, 500ms);
    EXPECT_TRUE(rpc.call<Sum>(world.server_endpoint(), "slow", Slow{100}, 100ms).ok());
    EXPECT_EQ(world.server_process().server->running(), 0U);
    checked = true;
  });
  // While one inline call waits in "slow", the bound of two leaves room for
  // one more; a third is rejected.
  world.sim.spawn(world.server, "crowd", [&] {
    this_fiber::sleep_for(1s);
    RpcClient rpc(world.network, world.server, kClientPort + 1);
    const std::size_t fibers_before = world.sim.fibers_live();
    world.sim.spawn(world.server, "waiter", [&] {
      RpcClient other(world.network, world.server, kClientPort + 2);
      EXPECT_TRUE(other.call<Sum>(world.server_endpoint(), "slow", Slow{300}, 1s).ok());
    });
    this_fiber::sleep_for(10ms);
    EXPECT_EQ(world.server_process().server->running(), 1U) << "an inline handler is a running request";
    EXPECT_EQ(world.sim.fibers_live(), fibers_before + 2) << "the waiter and its client's receiver: no handler fiber";
    world.sim.spawn(world.server, "second", [&] {
      RpcClient other(world.network, world.server, kClientPort + 3);
      EXPECT_TRUE(other.call<Sum>(world.server_endpoint(), "slow", Slow{100}, 1s).ok());
    });
    this_fiber::sleep_for(10ms);
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "add", Add{1, 1}, 1s).error().code, ErrorCode::kOverloaded);
  });
  (void)world.sim.run_for(10s);
  EXPECT_TRUE(checked);
  EXPECT_EQ(world.network.stats().sent, 0U);
  const RpcServerStats& stats = world.server_process().server->stats();
  EXPECT_EQ(stats.direct, stats.requests);
  EXPECT_EQ(stats.rejected_overloaded, 1U);
  EXPECT_EQ(stats.undecodable, 1U);
  EXPECT_EQ(world.server_process().handled, 5) << "add, both slow calls of the first caller, and the crowd's two";
}

// A crash while an inline handler waits unwinds handler and caller as one
// stack; the server is left with nothing running and comes back whole.
TEST(Rpc, ACrashUnwindsAnInlineHandlerWithItsCaller) {
  RpcWorld world(RpcWorld::quiet(), RpcServerOptions{.local_calls_inline = true});
  bool returned = false;
  int slow_done_before_crash = -1;
  world.sim.schedule_after(99ms, [&] { slow_done_before_crash = world.slow_done; });
  world.sim.spawn(world.server, "local-caller", [&] {
    RpcClient rpc(world.network, world.server, kClientPort);
    (void)rpc.call<Sum>(world.server_endpoint(), "slow", Slow{500}, 1s);
    returned = true;
  });
  world.sim.schedule_after(100ms, [&] { world.sim.crash(world.server); });
  world.sim.schedule_after(200ms, [&] { world.sim.restart(world.server); });
  Result<Sum> after = Error{ErrorCode::kKilled, "not called"};
  world.sim.schedule_after(300ms, [&] {
    world.sim.spawn(world.server, "local-caller", [&] {
      RpcClient rpc(world.network, world.server, kClientPort);
      after = rpc.call<Sum>(world.server_endpoint(), "add", Add{5, 5}, 1s);
    });
  });
  (void)world.sim.run_for(2s);
  EXPECT_FALSE(returned) << "the caller died with its handler";
  ASSERT_TRUE(after.ok()) << to_string(after.error());
  EXPECT_EQ(after.value().value, 10);
  EXPECT_EQ(slow_done_before_crash, 0);
  EXPECT_EQ(world.slow_done, 0) << "the slow request never finished";
  EXPECT_EQ(world.server_process().server->running(), 0U);
}

// Cancelling the caller of an inline handler (a shard stopping its fibers)
// does not cut the handler short: it finishes, as a handler fiber would,
// and the cancel unwinds the caller at its next wait.
TEST(Rpc, ACancelledCallerLetsItsInlineHandlerFinish) {
  RpcWorld world(RpcWorld::quiet(), RpcServerOptions{.local_calls_inline = true});
  bool returned = false;
  bool unwound_at_next_wait = true;
  const FiberHandle caller = world.sim.spawn(world.server, "local-caller", [&] {
    RpcClient rpc(world.network, world.server, kClientPort);
    Result<Sum> slow = rpc.call<Sum>(world.server_endpoint(), "slow", Slow{500}, 1s);
    returned = slow.ok();
    this_fiber::sleep_for(1ms);
    unwound_at_next_wait = false;
  });
  world.sim.schedule_after(100ms, [&] {
    world.sim.spawn(world.server, "canceller", [&] { caller.cancel(); });
  });
  (void)world.sim.run_for(2s);
  EXPECT_TRUE(caller.done());
  EXPECT_EQ(world.slow_done, 1) << "the handler ran to its end";
  EXPECT_TRUE(returned) << "with its result in the caller's hands";
  EXPECT_TRUE(unwound_at_next_wait);
  EXPECT_EQ(world.server_process().server->running(), 0U);
}

// The trace hash covers what a direct call hands its handler, as it covers
// a message's bytes.
TEST(Rpc, ADirectCallsRequestBytesAreInTheTraceHash) {
  for (const bool inline_calls : {false, true}) {
    const auto hash_after = [inline_calls](std::int64_t b) {
      RpcWorld world(RpcWorld::quiet(), RpcServerOptions{.local_calls_inline = inline_calls});
      world.sim.spawn(world.server, "local-caller", [&] {
        RpcClient rpc(world.network, world.server, kClientPort);
        ASSERT_TRUE(rpc.call<Sum>(world.server_endpoint(), "add", Add{1, b}, 1s).ok());
      });
      (void)world.sim.run_for(1s);
      EXPECT_EQ(world.network.stats().sent, 0U);
      return world.sim.trace_hash();
    };
    EXPECT_EQ(hash_after(2), hash_after(2)) << "inline: " << inline_calls;
    EXPECT_NE(hash_after(2), hash_after(3)) << "inline: " << inline_calls;
  }
}

// So does what a direct call hands a deferred method, which no fiber
// starts for.
TEST(Rpc, ADirectCallToADeferredMethodPutsItsRequestBytesInTheTraceHash) {
  const auto hash_after = [](std::int64_t b) {
    RpcWorld world;
    world.sim.spawn(world.server, "local-caller", [&] {
      RpcClient rpc(world.network, world.server, kClientPort);
      // Never answered: the request's bytes are all that differ.
      EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "later", Add{1, b}, 100ms).error().code, ErrorCode::kTimeout);
    });
    (void)world.sim.run_for(1s);
    EXPECT_EQ(world.server_process().held.size(), 1U);
    return world.sim.trace_hash();
  };
  EXPECT_EQ(hash_after(2), hash_after(2));
  EXPECT_NE(hash_after(2), hash_after(3));
}

// A deferred method's handler keeps the answer, not a fiber: the request
// counts as running until the answer goes, from another fiber, later.
TEST(Rpc, ADeferredMethodAnswersLaterWithoutAWaitingFiber) {
  RpcWorld world;
  bool checked = false;
  world.sim.spawn(world.server, "answerer", [&] {
    this_fiber::sleep_for(200ms);
    ServerProcess& server = world.server_process();
    EXPECT_EQ(server.held.size(), 1U);
    EXPECT_EQ(server.server->running(), 1U) << "a held answer is a running request";
    // Only this fiber and the loops: no handler fiber waits with the answer.
    EXPECT_EQ(world.sim.fibers_live(), 4U);
    server.answer_held();
    EXPECT_EQ(server.server->running(), 0U);
  });
  world.in_client([&](RpcClient& rpc) {
    const TimePoint start = world.sim.now();
    Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "later", Add{40, 2}, 1s);
    ASSERT_TRUE(sum.ok()) << to_string(sum.error());
    EXPECT_EQ(sum.value().value, 42);
    EXPECT_GE(world.sim.now() - start, 200ms);
    // Failing at once, and a request that does not decode.
    Result<Sum> refused = rpc.call<Sum>(world.server_endpoint(), "later", Add{-1, 0}, 1s);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(refused.error().message, "negative");
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "later", std::string("not an Add"), 1s).error().code,
              ErrorCode::kDecode);
    checked = true;
  });
  EXPECT_TRUE(checked);
  EXPECT_EQ(world.server_process().server->running(), 0U);
}

// Dropped unsent (the server died with it): a caller over the network
// hears nothing and times out; one on the node learns at once.
TEST(Rpc, ADeferredAnswerDroppedUnsentIsATimeoutOrABrokenPromise) {
  RpcWorld world;
  world.sim.spawn(world.server, "dropper", [&] {
    this_fiber::sleep_for(100ms);
    ServerProcess& server = world.server_process();
    EXPECT_EQ(server.held.size(), 2U);
    server.held.clear();
    EXPECT_EQ(server.server->running(), 0U);
  });
  std::optional<ErrorCode> remote;
  std::optional<ErrorCode> local;
  world.sim.spawn(world.client, "remote", [&] {
    RpcClient rpc(world.network, world.client, kClientPort);
    remote = rpc.call<Sum>(world.server_endpoint(), "later", Add{1, 1}, 1s).error().code;
  });
  world.sim.spawn(world.server, "local", [&] {
    RpcClient rpc(world.network, world.server, kClientPort);
    const TimePoint start = world.sim.now();
    local = rpc.call<Sum>(world.server_endpoint(), "later", Add{1, 1}, 1s).error().code;
    EXPECT_LT(world.sim.now() - start, 1s);
  });
  (void)world.sim.run_for(5s);
  EXPECT_EQ(remote, ErrorCode::kTimeout);
  EXPECT_EQ(local, ErrorCode::kBrokenPromise);
}

// On the server's node: answered at once, the caller does not wait; a
// caller that gave up before the answer leaves it nowhere to land, and the
// answer still ends its running request.
TEST(Rpc, ADirectCallToADeferredMethodIsAnsweredInItsCallersFrame) {
  RpcWorld world;
  bool checked = false;
  world.sim.spawn(world.server, "local-caller", [&] {
    RpcClient rpc(world.network, world.server, kClientPort);
    ServerProcess& server = world.server_process();
    // Answered before the call waits: a refusal.
    const TimePoint start = world.sim.now();
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "later", Add{-1, 0}, 1s).error().code,
              ErrorCode::kInvalidArgument);
    EXPECT_EQ(world.sim.now(), start);
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "later", std::string("not an Add"), 1s).error().code,
              ErrorCode::kDecode);
    EXPECT_EQ(server.server->stats().undecodable, 1U);
    // Held past the caller's deadline, then sent into the void.
    EXPECT_EQ(rpc.call<Sum>(world.server_endpoint(), "later", Add{1, 1}, 100ms).error().code, ErrorCode::kTimeout);
    EXPECT_EQ(server.held.size(), 1U);
    EXPECT_EQ(server.server->running(), 1U);
    server.answer_held();
    EXPECT_EQ(server.server->running(), 0U);
    // And one answered while its caller waits.
    world.sim.spawn(world.server, "answerer", [&] {
      this_fiber::sleep_for(50ms);
      world.server_process().answer_held();
    });
    Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "later", Add{40, 2}, 1s);
    ASSERT_TRUE(sum.ok()) << to_string(sum.error());
    EXPECT_EQ(sum.value().value, 42);
    checked = true;
  });
  (void)world.sim.run_for(5s);
  EXPECT_TRUE(checked);
  EXPECT_EQ(world.network.stats().sent, 0U);
  EXPECT_EQ(world.server_process().server->stats().direct, 4U);
}

// Held answers count against concurrent_max like running handlers.
TEST(Rpc, HeldDeferredAnswersCountAgainstTheConcurrencyBound) {
  RpcWorld world(RpcWorld::quiet(), RpcServerOptions{.concurrent_max = 2});
  world.sim.spawn(world.server, "answerer", [&] {
    this_fiber::sleep_for(500ms);
    world.server_process().answer_held();
  });
  std::vector<ErrorCode> refused;
  int ok = 0;
  for (int i = 0; i < 3; i++) {
    world.sim.spawn(world.client, "caller", [&world, &refused, &ok, i] {
      RpcClient rpc(world.network, world.client, static_cast<std::uint16_t>(kClientPort + i));
      this_fiber::sleep_for(std::chrono::milliseconds{10 * i});  // In order.
      Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "later", Add{i, 0}, 1s);
      if (sum.ok()) {
        EXPECT_EQ(sum.value().value, i);
        ok++;
      } else {
        refused.push_back(sum.error().code);
      }
    });
  }
  (void)world.sim.run();
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(refused, std::vector<ErrorCode>{ErrorCode::kOverloaded});
}

// A deferred handler runs in the receive loop's fiber: a wait there would
// stall every request behind it, so it is an assertion, naming the wait.
TEST(RpcDeathTest, ADeferredHandlerThatWaitsIsAnAssertion) {
  EXPECT_DEATH(
      {
        RpcWorld world;
        world.in_client([&](RpcClient& rpc) { (void)rpc.call<Sum>(world.server_endpoint(), "waits", Add{}, 1s); });
      },
      "a fiber waited \\('sleep'\\) in a deferred RPC handler, which must not suspend");
}

TEST(Rpc, PartitionedServerTimesOut) {
  RpcWorld world;
  world.network.isolate(world.server);
  world.in_client([&](RpcClient& rpc) {
    Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "add", Add{1, 2}, 300ms);
    ASSERT_FALSE(sum.ok());
    EXPECT_EQ(sum.error().code, ErrorCode::kTimeout);
  });
  EXPECT_EQ(world.server_process().handled, 0);
}

TEST(Rpc, ExcessConcurrentRequestsAreRejectedNotQueued) {
  RpcWorld world(RpcWorld::quiet(), RpcServerOptions{.concurrent_max = 2});
  std::vector<ErrorCode> outcomes;
  int ok = 0;
  for (int i = 0; i < 5; i++) {
    world.sim.spawn(world.client, "caller", [&world, &outcomes, &ok, i] {
      RpcClient rpc(world.network, world.client, static_cast<std::uint16_t>(kClientPort + i));
      Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "slow", Slow{100}, 1s);
      if (sum.ok()) {
        ok++;
      } else {
        outcomes.push_back(sum.error().code);
      }
    });
  }
  (void)world.sim.run();
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(outcomes, std::vector<ErrorCode>(3, ErrorCode::kOverloaded));
  EXPECT_EQ(world.server_process().server->stats().rejected_overloaded, 3u);
  EXPECT_EQ(world.server_process().server->running(), 0u);
}

TEST(Rpc, DuplicatedRequestsRunTwiceButAnswerOnce) {
  NetworkOptions options = RpcWorld::quiet();
  options.duplicate_probability = 1.0;
  RpcWorld world(options);
  world.in_client([&](RpcClient& rpc) {
    Result<Sum> sum = rpc.call<Sum>(world.server_endpoint(), "add", Add{2, 3}, 1s);
    ASSERT_TRUE(sum.ok());
    EXPECT_EQ(sum.value().value, 5);
    this_fiber::sleep_for(100ms);  // Let the duplicates land.
    EXPECT_EQ(rpc.pending(), 0u);
  });
  EXPECT_EQ(world.server_process().handled, 2) << "at-least-once: the duplicate ran too";
}

TEST(Rpc, ServerCrashMidRequestThenRestart) {
  RpcWorld world;
  world.sim.schedule_after(50ms, [&] { world.sim.crash(world.server); });
  world.sim.schedule_after(200ms, [&] { world.sim.restart(world.server); });
  std::vector<std::string> log;
  world.in_client([&](RpcClient& rpc) {
    Result<Sum> during = rpc.call<Sum>(world.server_endpoint(), "slow", Slow{100}, 150ms);
    log.push_back(during.ok() ? "ok" : error_code_name(during.error().code));
    this_fiber::sleep_for(100ms);
    Result<Sum> after = rpc.call<Sum>(world.server_endpoint(), "add", Add{5, 5}, 1s);
    log.push_back(after.ok() ? std::to_string(after.value().value) : error_code_name(after.error().code));
  });
  EXPECT_EQ(log, (std::vector<std::string>{"timeout", "10"}));
}

TEST(Rpc, ClientDestroyedWhileItsReceiverWaitsIsSafe) {
  // The client's receive loop waits on the client's own socket; destroying
  // the client from a fiber must not leave that loop touching freed memory
  // (ASan checks).
  RpcWorld world;
  world.sim.spawn(world.client, "short-lived", [&] {
    for (int i = 0; i < 3; i++) {
      RpcClient rpc(world.network, world.client, kClientPort);
      (void)rpc.call<Sum>(world.server_endpoint(), "add", Add{i, i}, 1s);
    }
  });
  EXPECT_EQ(world.sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(world.server_process().handled, 3);
}

TEST(Rpc, CallsWaitingWhenTheirClientIsDestroyedEndAtOnceAsBrokenPromises) {
  RpcWorld world;
  std::unique_ptr<RpcClient> rpc;
  std::vector<ErrorCode> outcomes;
  world.sim.spawn(world.client, "owner", [&] { rpc = std::make_unique<RpcClient>(world.network, world.client, kClientPort); });
  for (int i = 0; i < 3; i++) {
    world.sim.schedule_after(1ms, [&, i] {
      world.sim.spawn(world.client, "caller", [&, i] {
        Result<Sum> reply = rpc->call<Sum>(world.server_endpoint(), "slow", Slow{1000 + i}, 5s);
        outcomes.push_back(reply.ok() ? ErrorCode::kNotFound : reply.error().code);
      });
    });
  }
  TimePoint destroyed_at{};
  world.sim.schedule_after(10ms, [&] {
    world.sim.spawn(world.client, "destroyer", [&] {
      EXPECT_EQ(rpc->pending(), 3u);
      destroyed_at = world.sim.now();
      rpc.reset();
    });
  });
  TimePoint last_outcome_at{};
  world.sim.spawn(world.client, "watcher", [&] {
    while (outcomes.size() < 3) this_fiber::sleep_for(1ms);
    last_outcome_at = world.sim.now();
  });
  EXPECT_EQ(world.sim.run().reason, StopReason::kQuiescent);
  EXPECT_EQ(outcomes, (std::vector<ErrorCode>(3, ErrorCode::kBrokenPromise)));
  EXPECT_LE(last_outcome_at - destroyed_at, 1ms) << "not at their 5 s timeout";
}

TEST(Rpc, CrashOfTheClientNodeUnwindsItsCalls) {
  RpcWorld world;
  bool returned = false;
  world.sim.spawn(world.client, "caller", [&] {
    RpcClient rpc(world.network, world.client, kClientPort);
    (void)rpc.call<Sum>(world.server_endpoint(), "slow", Slow{1000}, 5s);
    returned = true;
  });
  world.sim.schedule_after(10ms, [&] { world.sim.crash(world.client); });
  EXPECT_EQ(world.sim.run().reason, StopReason::kQuiescent);
  EXPECT_FALSE(returned);
  EXPECT_EQ(world.sim.fibers_on(world.client), 0u);
}


TEST(Rpc, ALateReplyNeverAnswersANewClientOnTheSamePort) {
  RpcWorld world;
  std::int64_t answer = -1;
  world.sim.spawn(world.client, "callers", [&] {
    {
      RpcClient first(world.network, world.client, kClientPort);
      Result<Sum> gave_up = first.call<Sum>(world.server_endpoint(), "slow", Slow{500}, 100ms);
      EXPECT_EQ(gave_up.error().code, ErrorCode::kTimeout);
    }
    // Same port, new client: the first call's reply (at 500 ms) must not
    // be taken for this call's (at 1,100 ms).
    RpcClient second(world.network, world.client, kClientPort);
    Result<Sum> sum = second.call<Sum>(world.server_endpoint(), "slow", Slow{1000}, 2s);
    ASSERT_TRUE(sum.ok());
    answer = sum.value().value;
  });
  (void)world.sim.run();
  EXPECT_EQ(answer, 1000);
}

}  // namespace
}  // namespace duro::sim
