// The nemesis: draws a fault plan from a seed.
//
// A fault profile says which kinds of fault a run suffers and how hard; the
// topology says who can suffer them; the seed says exactly what happens
// when. draw_fault_plan() is a pure function of the three, so a failing
// seed reproduces its faults, and the plan it printed can be edited and
// replayed instead (sim/fault_plan.h).
//
//   Result<FaultProfile> profile = fault_profile("chaos");
//   FaultTopology topology{.crashable = {"server-0", "server-1"},
//                          .with_disks = {"store-0"},
//                          .services = {"cloud-api"},
//                          .chaos = std::chrono::minutes{10}};
//   FaultPlan plan = draw_fault_plan(seed, profile.value(), topology);
//
// Each kind of fault draws from its own stream, forked from the seed by the
// kind's name, so turning one kind on or off does not move any other kind's
// faults: a failure found with partitions and crashes keeps its crashes
// when partitions are turned off.
//
// The plan keeps to these rules (tests/sim/nemesis_test.cc checks them):
//   - every time is inside the chaos phase [0, chaos), and so is the end of
//     every clog, disk fault and outage;
//   - only an up node crashes; a crashed node restarts after a drawn
//     downtime, or stays down until the quiet phase if that comes first;
//   - never more than `down_max` nodes are down at once;
//   - every partition is followed by a heal inside the chaos phase, and
//     partitions do not overlap (a heal heals them all);
//   - a node or service has at most one clog, disk fault of each kind, or
//     outage at a time;
//   - disk corruption only when the profile enables it.
//
// Swarm testing (Groce et al., as TigerBeetle's simulator uses it): with
// `swarm`, each seed first draws which kinds are on (each with probability
// 1/2, at least one) and how hard (each kind's rate scaled by 1/4 to 4),
// because a run with every fault at once can mask the bug that needs one
// kind of fault undisturbed for a long time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sim/clock.h"
#include "sim/fault_plan.h"
#include "sim/result.h"

namespace duro::sim {

// How one kind of fault happens. Faults of a kind come as a Poisson process
// (exponential gaps with mean `interval_mean`); each lasts a duration drawn
// uniformly from [duration_min, duration_max]: a crash's downtime, how long
// a partition stands before its heal, a clog, a disk fault or an outage.
// For clock jumps it is the size of the jump instead (sign drawn apart).
// Disk faults draw their per-operation probability uniformly from
// [probability_min, probability_max], in steps of 1/10,000 so the plan text
// stays short.
struct FaultRate {
  bool enabled = false;
  Duration interval_mean{};
  Duration duration_min{};
  Duration duration_max{};
  double probability_min = 0;
  double probability_max = 0;

  bool operator==(const FaultRate&) const = default;
};

struct FaultProfile {
  std::string name{};
  FaultRate crash;            // Each crash brings its restart.
  FaultRate partition;        // Each partition brings its heal.
  FaultRate clog;
  FaultRate clock_jump;
  FaultRate disk_errors;
  FaultRate disk_corruption;  // Only `disk`, `chaos` and some swarm draws.
  FaultRate outage;
  // How many nodes may be down at once. A scenario with three replicas
  // that must keep a majority sets 1.
  std::size_t down_max = 1;
  // The chance that a partition cuts one direction only.
  double one_way_probability = 0;
  // Draw which kinds are on, and how hard, per seed (see above).
  bool swarm = false;

  // Empty if the profile can be drawn from; otherwise why not. Enabled
  // kinds need interval_mean > 0, 0 < duration_min <= duration_max (at
  // least 1 ms: plans are drawn in milliseconds), and disk kinds
  // 0 < probability_min <= probability_max <= 1 (at least 1/10,000).
  std::string invalid_reason() const;

  bool operator==(const FaultProfile&) const = default;
};

// Who can suffer faults. Names must be valid plan names
// (invalid_name_reason), with no duplicates within a list. Partitions cut
// among the union of `crashable` and `with_disks` (in that order, first
// appearance kept).
struct FaultTopology {
  std::vector<std::string> crashable{};   // nodes that may crash/restart, clog, jump clocks
  std::vector<std::string> with_disks{};  // nodes whose disks may fail/corrupt
  std::vector<std::string> services{};    // external services that can have outages
  Duration chaos{};                       // length of the chaos phase
};

// The built-in profiles, by name (docs/faults.md has the table):
//   none        no faults: a baseline, and a check of the checkers.
//   mild        rare faults of most kinds; at most one node down; no
//               corruption, no clock jumps. For every-commit CI.
//   partitions  partitions (some one-way) and clogs.
//   crashes     crashes and restarts, up to two nodes down.
//   disk        disk errors and corruption, with crashes for torn writes.
//   chaos       everything, often.
//   swarm       per seed, a random subset of `chaos`, each kind scaled.
// Unknown names: Error{kNotFound, "unknown fault profile 'x' (known: ...)"}.
Result<FaultProfile> fault_profile(std::string_view name);
std::vector<std::string_view> fault_profile_names();

// For a swarm profile, the concrete profile `seed` draws: which kinds are
// on and at what rate (named "swarm"). Any other profile comes back as it
// is. draw_fault_plan() draws this first; reports use it to say which kinds
// a seed had.
FaultProfile resolve_fault_profile(std::uint64_t seed, const FaultProfile& profile);

// The plan for one run; see the rules above. Asserts that the profile and
// the topology are valid.
FaultPlan draw_fault_plan(std::uint64_t seed, const FaultProfile& profile, const FaultTopology& topology);

// Bounds on a drawn plan: each kind draws at most this many faults (a crash
// and its restart, a partition and its heal, count as one), so a plan holds
// at most 2 * 7 * this many actions, below kFaultPlanActionsMax.
inline constexpr std::size_t kNemesisFaultsPerKindMax = 512;

}  // namespace duro::sim
