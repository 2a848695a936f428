// A message storm: the simulated world's demonstration workload.
//
// Worker nodes serve a "work" RPC that takes a little time and appends a
// record to a log on the node's disk, fsyncing now and then; thousands of
// client fibers on every node call random workers over the simulated
// network and wait for the reply with a deadline. A fault plan drawn from
// the seed and a profile (sim/nemesis.h) crashes and restarts nodes, cuts
// and heals the network, clogs nodes, jumps clocks and fails disks during
// the chaos phase; then the quiet phase heals everything.
//
// The storm checks itself against ground truth kept outside the nodes:
//   - every reply is the right function of its request;
//   - every call a client started is accounted for exactly once (answered,
//     failed with a network or server error, or abandoned because the
//     client's own node crashed: counted by a destructor as it unwinds);
//   - durability: after a restart, a node's log is at least as long as it
//     was at its last successful fsync (unless an injected corruption may
//     have lost a write, which only a checksum could catch);
//   - liveness: in the quiet phase, after a grace period, every node's
//     clients get answers again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sim/clock.h"
#include "sim/fault_plan.h"
#include "sim/simulator.h"

namespace duro::sim::demo {

struct StormOptions {
  std::uint64_t seed = 1;
  std::string profile = "chaos";  // A fault profile name (sim/nemesis.h).
  int nodes = 6;
  int clients_per_node = 100;
  Duration chaos = std::chrono::minutes{2};
  Duration quiet = std::chrono::seconds{40};
  Duration grace = std::chrono::seconds{15};  // For restarts to settle.
  Duration think_mean = std::chrono::milliseconds{500};
  Duration service_mean = std::chrono::milliseconds{5};
  Duration call_timeout = std::chrono::seconds{1};
  bool shuffle_ties = false;
  TraceLog* trace_log = nullptr;
  // Replay this plan instead of drawing one from the seed and profile: how
  // a failure is shrunk (docs/faults.md). Its chaos length wins.
  std::optional<FaultPlan> plan;
};

struct StormReport {
  RunResult run;
  std::string plan_text;  // The fault plan, in its file format.
  std::uint64_t faults = 0;
  std::uint64_t calls = 0;
  std::uint64_t replies = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t rejected = 0;   // Overloaded, or another server-side error.
  std::uint64_t abandoned = 0;  // The client's own node crashed mid-call.
  std::uint64_t wrong_replies = 0;
  std::uint64_t crashes = 0;
  std::uint64_t messages = 0;
  std::uint64_t fsyncs = 0;
  std::uint64_t fibers_spawned = 0;
  // Empty when every check held; otherwise what failed.
  std::string failure;
};

StormReport run_message_storm(const StormOptions& options);

}  // namespace duro::sim::demo
