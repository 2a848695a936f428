// The network's per-message cost, against the references in sim_bench.cc.
//
//   BM_net_message  one message sent, carried by the network (one delivery
//                   event) and received by a waiting fiber (one wake-up).
//                   Target: <= 3 x BM_raw_queue_hold in the same run.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "sim/network.h"
#include "sim/rpc.h"

namespace {

using duro::sim::Network;
using duro::sim::NetworkOptions;
using duro::sim::NodeId;
using duro::sim::Packet;
using duro::sim::Random;
using duro::sim::Result;
using duro::sim::Simulator;
using duro::sim::Socket;

void BM_net_message(benchmark::State& state) {
  Simulator sim({.seed = 1});
  NetworkOptions options;
  options.spike_probability = 0;
  Network network(sim, options, Random(1));
  const NodeId a = sim.add_node("a");
  const NodeId b = sim.add_node("b");
  std::unique_ptr<Socket> sender = std::move(network.bind(a, 1).value());
  std::unique_ptr<Socket> receiver = std::move(network.bind(b, 1).value());
  std::uint64_t received = 0;
  sim.spawn(b, "receiver", [&] {
    for (;;) {
      Result<Packet> packet = receiver->receive();
      if (!packet.ok()) return;
      received++;
    }
  }, {.daemon = true});
  (void)sim.run();
  const auto to = receiver->endpoint();
  const std::string payload = "0123456789";  // Small: fits the string's inline buffer.
  for (auto _ : state) {
    (void)sender->send(to, payload);
    (void)sim.run();
  }
  if (received != static_cast<std::uint64_t>(state.iterations())) state.SkipWithError("messages were lost");
  state.SetItemsProcessed(state.iterations());
  // The receiver must go before the socket it reads from.
  sim.crash(b);
}
BENCHMARK(BM_net_message);

}  // namespace

namespace {

struct Echo {
  std::uint64_t value = 0;
};
DURO_CODEC_FIELDS(Echo, value);

//   BM_rpc_roundtrip  one typed call: encode, send, server fiber decodes and
//                     answers, reply routed back to the waiting caller.
void BM_rpc_roundtrip(benchmark::State& state) {
  Simulator sim({.seed = 1});
  NetworkOptions options;
  options.spike_probability = 0;
  Network network(sim, options, Random(1));
  const NodeId server_node = sim.add_node("server");
  const NodeId client_node = sim.add_node("client");
  duro::sim::RpcServer server(network, server_node, 1);
  server.handle<Echo, Echo>("echo", [](const Echo& echo) -> Result<Echo> { return Echo{echo.value + 1}; });
  server.start();
  bool failed = false;
  // The benchmark loop runs inside the client fiber: everything is on this
  // one thread, and each iteration is one whole round trip.
  sim.spawn(client_node, "client", [&] {
    duro::sim::RpcClient client(network, client_node, 2);
    std::uint64_t value = 0;
    for (auto _ : state) {
      Result<Echo> reply = client.call<Echo>(server.endpoint(), "echo", Echo{value}, std::chrono::seconds{1});
      if (!reply.ok() || reply.value().value != value + 1) failed = true;
      value++;
    }
  });
  (void)sim.run();
  if (failed) state.SkipWithError("a call failed");
  state.SetItemsProcessed(state.iterations());
  sim.crash(server_node);  // Server fibers go before the server object.
}
BENCHMARK(BM_rpc_roundtrip);

}  // namespace
