// A message storm: the simulator kernel's demonstration workload.
//
// Nodes run server fibers that answer requests from a bounded inbox;
// thousands of client fibers on every node send requests to random nodes
// and wait for the reply (a future, with a timeout); a nemesis crashes
// random nodes and restarts them after a random downtime. Crashes break the
// promises held in the dead node's inbox and unwind the clients that lived
// on it, so every way a wait can end happens many times in one run.
//
// The storm checks itself: every reply is the right function of its
// request, and every request a client started is accounted for exactly once
// (answered, timed out, refused, broken, or abandoned because the client's
// own node crashed — counted by a destructor as the client unwinds).
#pragma once

#include <cstdint>
#include <string>

#include "sim/clock.h"
#include "sim/simulator.h"

namespace duro::sim::demo {

struct StormOptions {
  std::uint64_t seed = 1;
  int nodes = 8;
  int clients_per_node = 250;
  int servers_per_node = 4;
  Duration duration = std::chrono::minutes{10};  // Clients stop sending after this.
  Duration think_mean = std::chrono::milliseconds{500};
  Duration service_mean = std::chrono::milliseconds{5};
  Duration reply_timeout = std::chrono::seconds{2};
  Duration crash_interval_mean = std::chrono::seconds{30};
  bool crashes = true;
  bool shuffle_ties = false;
  TraceLog* trace_log = nullptr;
};

struct StormReport {
  RunResult run;
  std::uint64_t requests = 0;
  std::uint64_t replies = 0;
  std::uint64_t timeouts = 0;
  std::uint64_t refused = 0;    // Inbox full or target down.
  std::uint64_t broken = 0;     // The target crashed holding the request.
  std::uint64_t abandoned = 0;  // The client's own node crashed mid-request.
  std::uint64_t wrong_replies = 0;
  std::uint64_t crashes = 0;
  std::uint64_t restarts = 0;
  std::uint64_t fibers_spawned = 0;
  // Empty when every check held; otherwise what failed.
  std::string failure;
};

StormReport run_message_storm(const StormOptions& options);

}  // namespace duro::sim::demo
