// The simulated network: datagrams of real bytes between node endpoints.
//
// A process binds a Socket to a port of its node and sends byte strings to
// other endpoints (address, port). What crosses the network is bytes, so a
// duplicated or reordered message is exactly what a receiver would see on a
// real wire. Delivery is decided per message, from the network's own random
// stream:
//
//   latency  = base + exponential jitter
//              + (rarely) an exponential spike
//              + (with the reorder probability) an extra exponential delay
//   lost       with the loss probability
//   duplicated with the duplication probability (the copy draws its own
//              latency, so copies may also arrive out of order)
//
// Faults the network adds on top, as a real one suffers them:
//   partition  any directed set of links cut: halves, one node isolated, a
//              bridge (two sides that both reach a third but not each
//              other), or one-way. A message is dropped if its link is cut
//              when it is sent OR when it would arrive: no message crosses a
//              partition while it lasts.
//   clog       everything into or out of a node is held until a time, then
//              delivered (a long GC pause, a saturated NIC).
//   crashes    a message whose sender or receiver crashed (or restarted)
//              while it was in flight is dropped, as a reset connection
//              drops its unacknowledged bytes.
//
// A message to an endpoint nobody listens on, or to a socket whose bounded
// inbox is full, is dropped and counted. Senders never block. Wire
// corruption is not modelled: TCP and TLS checksums make it vanishingly rare
// next to loss and partitions; disk corruption is (see disk.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "sim/channel.h"
#include "sim/random.h"
#include "sim/result.h"
#include "sim/simulator.h"

namespace duro::sim {

struct Endpoint {
  Address address;
  std::uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
  auto operator<=>(const Endpoint&) const = default;
};
std::string to_string(Endpoint endpoint);  // "10.0.0.3:7000"

struct Packet {
  Endpoint from;
  Endpoint to;
  std::string payload;
};

struct NetworkOptions {
  Duration latency_base = std::chrono::microseconds{200};
  Duration latency_jitter_mean = std::chrono::microseconds{100};
  double spike_probability = 0.001;
  Duration spike_mean = std::chrono::milliseconds{50};
  double loss_probability = 0.0;
  double duplicate_probability = 0.0;
  double reorder_probability = 0.0;
  Duration reorder_delay_mean = std::chrono::milliseconds{2};
  std::size_t payload_bytes_max = 16 << 20;
  std::size_t in_flight_max = 1 << 20;
  std::size_t socket_queue_max = 4096;  // Per socket; beyond it, drops.
};

struct NetworkStats {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t dropped_loss = 0;
  std::uint64_t dropped_partition = 0;
  std::uint64_t dropped_crash = 0;
  std::uint64_t dropped_no_listener = 0;
  std::uint64_t dropped_queue_full = 0;
  std::uint64_t dropped_in_flight_max = 0;  // The network's own bound.
};

class Network;
class RpcServer;

// A digest of a message's bytes, mixed into the trace hash with the event
// that delivers them. Not cryptographic: it only tells runs apart.
std::uint64_t payload_digest(std::string_view payload) noexcept;

// A bound port. Owned by the process that bound it: destroying it (a crash
// destroys the process) unbinds the port and drops what was queued.
class Socket {
 public:
  ~Socket();
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  Endpoint endpoint() const noexcept { return endpoint_; }
  NodeId node() const noexcept { return node_; }

  // Queues `payload` for delivery to `to`. Never blocks; the network may
  // still lose it. kInvalidArgument if the payload is over the size limit.
  Result<void> send(Endpoint to, std::string payload);

  // The next packet, waiting until the deadline (kTimeout).
  Result<Packet> receive(TimePoint deadline = TimePoint::max()) { return inbox_.receive(deadline); }
  Result<Packet> receive_for(Duration timeout) { return inbox_.receive_for(timeout); }
  std::size_t queued() const noexcept { return inbox_.size(); }

  // The RPC server answering on this socket (sim/rpc.h), set while it runs:
  // a caller on the same node hands it requests directly, not through the
  // network, as one process calls itself.
  RpcServer* rpc_server() const noexcept { return rpc_server_; }
  void set_rpc_server(RpcServer* server) noexcept { rpc_server_ = server; }

 private:
  friend class Network;
  Socket(Network* network, NodeId node, Endpoint endpoint, std::size_t queue_max)
      : network_(network), node_(node), endpoint_(endpoint), inbox_(queue_max) {}

  Network* network_;
  NodeId node_;
  Endpoint endpoint_;
  Channel<Packet> inbox_;
  RpcServer* rpc_server_ = nullptr;
};

class Network {
 public:
  Network(Simulator& sim, NetworkOptions options, Random random);
  ~Network();
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  Simulator& sim() noexcept { return sim_; }
  NetworkOptions& options() noexcept { return options_; }
  const NetworkStats& stats() const noexcept { return stats_; }
  std::size_t in_flight() const noexcept { return in_flight_count_; }

  // Binds `port` on `node` (which must be up). kAlreadyExists if taken.
  Result<std::unique_ptr<Socket>> bind(NodeId node, std::uint16_t port);
  // The socket bound at `endpoint`, or nullptr.
  Socket* bound(Endpoint endpoint) const noexcept {
    const auto found = sockets_.find(endpoint);
    return found == sockets_.end() ? nullptr : found->second;
  }
  // A fresh block of 2^32 ids, unique for the whole run (crashes
  // included): RPC clients number their calls from one.
  std::uint64_t next_id_block() noexcept { return ++id_blocks_ << 32; }

  // The endpoint of `port` on `node`.
  Endpoint endpoint(NodeId node, std::uint16_t port) const {
    return Endpoint{sim_.node_address(node), port};
  }

  // --- Faults ------------------------------------------------------------

  // Cuts every link from a node in `a` to a node in `b`, and back unless
  // `one_way`. Cuts accumulate until heal().
  void partition(std::span<const NodeId> a, std::span<const NodeId> b, bool one_way = false);
  // Cuts `node` off from every other node, both ways.
  void isolate(NodeId node);
  void heal();
  bool is_cut(NodeId from, NodeId to) const noexcept;
  bool partitioned() const noexcept { return cut_links_ > 0; }

  // Holds all traffic into and out of `node` until `until`: messages that
  // would arrive meanwhile wait, and arrive when it clears.
  void clog(NodeId node, TimePoint until);
  // Clears every clog now; held messages are delivered at once.
  void unclog_all();

 private:
  friend class Socket;

  static constexpr std::uint32_t kNoSlot = UINT32_MAX;

  struct InFlight {
    Packet packet;
    NodeId from_node = kNoNode;
    NodeId to_node = kNoNode;
    std::uint32_t from_incarnation = 0;
    std::uint32_t to_incarnation = 0;
    // Bumped when the delivery is rescheduled, so the superseded delivery
    // event finds a different generation and does nothing.
    std::uint32_t generation = 0;
    bool live = false;
    bool held = false;  // Waiting for a clog to clear.
  };

  void send_from(Socket& socket, Endpoint to, std::string&& payload);
  void launch(std::uint32_t index, TimePoint at);
  void deliver(std::uint32_t index, std::uint32_t generation);
  // kNoSlot when the network's bound is reached (the message is dropped).
  std::uint32_t allocate_in_flight();
  void release_in_flight(std::uint32_t index);
  Duration draw_latency();
  TimePoint clogged_until(NodeId node) const noexcept;
  void ensure_nodes(std::size_t count);
  void unbind(const Socket& socket) noexcept;

  Simulator& sim_;
  NetworkOptions options_;
  Random random_;
  NetworkStats stats_;
  // Bound sockets by endpoint; ordered, so nothing depends on hashing.
  std::map<Endpoint, Socket*> sockets_;
  std::vector<InFlight> in_flight_;
  std::vector<std::uint32_t> free_in_flight_;
  std::size_t in_flight_count_ = 0;
  std::uint64_t id_blocks_ = 0;
  // cut_[from * nodes_known_ + to] != 0 when that directed link is cut.
  std::vector<std::uint8_t> cut_;
  std::size_t cut_links_ = 0;
  std::size_t nodes_known_ = 0;
  std::vector<TimePoint> clogged_until_;
};

}  // namespace duro::sim
