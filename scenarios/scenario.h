// Scenario: one fault-injection scenario — a topology, fake external
// services, a workload, and the invariants that must hold under the faults.
//
// A ScenarioDefinition describes it for `duro list` and makes a fresh
// Scenario per seed; the Scenario holds that seed's ground truth. The
// harness (harness.h) builds the cluster the shape asks for, calls setup(),
// draws the fault plan, runs chaos then quiet, and calls the checks:
//
//   class Provisioning final : public Scenario {
//     void setup(Harness& h) override {
//       h.registry().workflow("create_namespace", ...).activity("reserve_name", ...);
//       dns_ = &h.add_service<ResourceService>("dns", ...);
//       h.client("tenant", [this, &h](sdk::Client& client, sim::Env& env) { ... h.expect(run, ...); });
//     }
//     void check_safety(Checker& c) override { ... }   // after every change to a fake
//     void check_end(Harness& h, Checker& c) override { ... }  // after every workflow closed
//   };
//
// The harness itself checks what every scenario owes: each workflow the
// workload saw acknowledged (expect()) closes within `liveness_bound` of
// the quiet phase's start with the outcome expected of it, and every run it
// reached (children and continued runs included) has a well-formed history
// that replays cleanly against the registered code.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/server/server_options.h"
#include "scenarios/checker.h"
#include "sim/clock.h"

namespace duro::scenarios {

class Harness;

// The servers' defaults for scenarios: 8 shards.
inline engine::ServerOptions default_server_options() {
  engine::ServerOptions options;
  options.shard_count = 8;
  return options;
}

struct ScenarioShape {
  int servers = 3;
  int workers = 2;
  std::size_t worker_cache_size = 1000;
  // The servers' configuration; the harness fills in the store's address.
  // Scenarios that span days of simulated time lengthen the periodic work
  // (lease renewals, heartbeats): an idle cluster's cost is mostly that.
  engine::ServerOptions server = default_server_options();
  // The workers' poll RPC timeout: above server.long_poll_wait.
  sim::Duration worker_poll_timeout = std::chrono::seconds{30};
  // Faults happen during [0, chaos); then the quiet phase, in which every
  // acknowledged workflow must close within liveness_bound.
  sim::Duration chaos = std::chrono::minutes{10};
  sim::Duration liveness_bound = std::chrono::minutes{30};
  std::string default_profile = "chaos";
  // How many nodes of the cluster the nemesis may have down at once (the
  // profile's own limit applies too).
  std::size_t down_max = 2;
};

class Scenario {
 public:
  virtual ~Scenario() = default;
  // Registers the workflows and activities, adds the fakes, starts the
  // workload's clients. Runs before the simulation starts.
  virtual void setup(Harness& harness) = 0;
  // Safety: runs after every change to a fake's state, and once at the
  // end. Reads ground truth only; must not suspend.
  virtual void check_safety(Checker& checker) { (void)checker; }
  // At the end, once every expected workflow closed (or the bound passed),
  // from a fiber of the client node: final invariants (no orphaned
  // resources, outcomes consistent with the fakes). May call the cluster.
  virtual void check_end(Harness& harness, Checker& checker) = 0;
};

struct ScenarioDefinition {
  std::string name;
  std::string summary;
  // One line per invariant, "name: what it says"; the checks use the names.
  std::vector<std::string> invariants;
  ScenarioShape shape;
  std::function<std::unique_ptr<Scenario>()> make;
};

}  // namespace duro::scenarios
