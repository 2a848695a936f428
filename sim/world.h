// The World: a simulator with a network, a disk and a clock per node, and
// the fault plan that breaks them.
//
//   sim::World world({.seed = 42});
//   sim::NodeId store = world.add_node("store-0", [](sim::Env& env) { return boot_store(env); });
//   ...
//   sim::FaultPlan plan = sim::draw_fault_plan(42, profile, world.fault_topology(...));
//   world.apply(plan);                          // chaos for plan.chaos, then quiet
//   sim::RunResult result = world.run_for(plan.chaos + quiet);
//
// A run has two phases (DESIGN.md §3). During the chaos phase the plan's
// actions fire at their times: crashes and restarts, partitions and heals,
// clogs, clock jumps, disk error and corruption windows, external-service
// outages. At `plan.chaos` the quiet phase begins: partitions heal, clogs
// clear, disk faults and outages stop, and every crashed node restarts. From
// then on nothing is injected, so liveness — every workflow completes
// within a bound after the quiet began — can be checked.
//
// Every applied action is logged with its outcome (an action that no longer
// makes sense, such as crashing a node that is already down, is skipped and
// said so), so a failure report can show what the nemesis did.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sim/buggify.h"
#include "sim/disk.h"
#include "sim/env.h"
#include "sim/fault_plan.h"
#include "sim/local_clock.h"
#include "sim/network.h"
#include "sim/simulator.h"

namespace duro::sim {

struct WorldOptions {
  std::uint64_t seed = 0;
  bool shuffle_ties = false;
  NetworkOptions network{};
  DiskOptions disk{};
  BuggifyOptions buggify{};
  // Each node's clock starts off true time by up to this, either way, and
  // drifts by up to clock_drift_ppb_max (50 ppm: an ordinary crystal).
  Duration clock_offset_max = std::chrono::milliseconds{50};
  std::int64_t clock_drift_ppb_max = 50'000;
  std::size_t fibers_max = 1 << 20;
};

enum class Phase : std::uint8_t { kChaos, kQuiet };

struct AppliedFault {
  TimePoint at;
  FaultAction action;
  std::string outcome;  // "applied", or why it was skipped.
};

class World {
 public:
  using BootFn = std::function<std::unique_ptr<Process>(Env& env)>;

  explicit World(WorldOptions options);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  Simulator& sim() noexcept { return *sim_; }
  Network& network() noexcept { return *network_; }
  Buggify& buggify() noexcept { return *buggify_; }
  const WorldOptions& options() const noexcept { return options_; }

  // Adds a node with its own disk and clock, and boots it.
  NodeId add_node(std::string name, BootFn boot);
  Env& env(NodeId node);
  Disk& disk(NodeId node) { return env(node).disk(); }
  LocalClock& clock(NodeId node) { return env(node).clock(); }
  // kNoNode if there is none by that name.
  NodeId node_named(std::string_view name) const;

  // --- Faults ---------------------------------------------------------

  // Schedules the plan's actions and the quiet phase at plan.chaos (both
  // measured from the simulation's start). Refuses a plan that names a
  // node this world does not have: Error{kInvalidArgument}, naming it.
  Result<void> apply(const FaultPlan& plan);
  // Ends the chaos now: heals, clears, restarts (idempotent).
  void begin_quiet();
  Phase phase() const noexcept { return phase_; }
  TimePoint quiet_since() const noexcept { return quiet_since_; }
  const std::vector<AppliedFault>& fault_log() const noexcept { return fault_log_; }

  // True while an outage of `service` is in force: the fakes of external
  // services ask this and fail every call meanwhile.
  bool in_outage(std::string_view service) const;

  // --- Running ----------------------------------------------------------

  // Runs the simulation with buggify installed for this world's seed.
  RunResult run(RunLimits limits = {});
  RunResult run_for(Duration duration) { return run({.until = sim_->now() + duration}); }

 private:
  void apply_action(const FaultAction& action);
  void log(const FaultAction& action, std::string outcome);
  std::vector<NodeId> resolve(const std::vector<std::string>& names) const;
  // Disk fault windows may overlap in a hand-edited plan: the strongest
  // open window of each kind is in force.
  struct DiskWindow {
    NodeId node;
    FaultKind kind;
    TimePoint until;
    double probability;
  };
  void refresh_disk_faults(NodeId node);

  WorldOptions options_;
  std::unique_ptr<Simulator> sim_;  // Destroyed first: processes own sockets.
  std::unique_ptr<Network> network_;
  std::unique_ptr<Buggify> buggify_;
  std::vector<std::unique_ptr<Disk>> disks_;
  std::vector<std::unique_ptr<LocalClock>> clocks_;
  std::vector<std::unique_ptr<Env>> envs_;
  std::map<std::string, NodeId, std::less<>> names_;
  std::map<std::string, TimePoint, std::less<>> outage_until_;
  std::vector<DiskWindow> disk_windows_;  // Open ones; bounded by the plan.
  std::vector<AppliedFault> fault_log_;
  Phase phase_ = Phase::kChaos;
  TimePoint quiet_since_ = TimePoint::max();
};

}  // namespace duro::sim
