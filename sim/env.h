// Env: everything a node's process may take from the outside world.
//
// Engine code running on a node reaches time, timers, randomness, the
// network, its disk and new tasks only through its Env, never through the
// host (no system_clock, rand(), threads, sockets or files: DESIGN.md §1).
// That is what makes a simulation total, and it is the seam where a
// real-time, real-socket backend can stand in later without touching engine
// code (LevelDB's Env; FoundationDB's Net2/Sim2).
//
// The World builds one Env per node; it outlives crashes (like the machine),
// while the random stream is re-forked at every boot so a restarted process
// draws differently from its previous incarnation, yet reproducibly.
#pragma once

#include <string>
#include <utility>

#include "sim/disk.h"
#include "sim/local_clock.h"
#include "sim/network.h"
#include "sim/random.h"
#include "sim/simulator.h"

namespace duro::sim {

class Env {
 public:
  Env(Simulator& sim, NodeId node, Network& network, Disk& disk, LocalClock& clock)
      : sim_(sim), node_(node), network_(network), disk_(disk), clock_(clock), random_(0) {}
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;

  NodeId node() const noexcept { return node_; }
  const std::string& name() const { return sim_.node_name(node_); }
  Address address() const { return sim_.node_address(node_); }
  std::uint32_t incarnation() const { return sim_.incarnation(node_); }

  // This node's clock (offset, drift and jumps included): for leases,
  // timeouts and timestamps, as a real server reads its system clock.
  TimePoint now() const noexcept { return clock_.now(); }
  LocalClock& clock() noexcept { return clock_; }

  // Timers run on the machine's monotonic time, unaffected by clock jumps.
  void sleep_for(Duration duration) const { this_fiber::sleep_for(duration); }

  // This incarnation's random stream.
  Random& random() noexcept { return random_; }
  Network& network() noexcept { return network_; }
  Disk& disk() noexcept { return disk_; }
  Simulator& sim() noexcept { return sim_; }

  // Starts a task (a fiber) on this node.
  template <typename Fn>
  FiberHandle spawn(std::string name, Fn&& fn, SpawnOptions options = {}) {
    return sim_.spawn(node_, std::move(name), std::forward<Fn>(fn), options);
  }

 private:
  friend class World;

  Simulator& sim_;
  NodeId node_;
  Network& network_;
  Disk& disk_;
  LocalClock& clock_;
  Random random_;
};

}  // namespace duro::sim
