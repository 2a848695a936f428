// Harness: one seed of one scenario — the simulated cluster, the fakes, the
// workload, the fault plan, and the checks every scenario owes.
//
// The cluster: a store node, `servers` server nodes and `workers` SDK
// worker nodes serving the scenario's registry, a fake per add_service()
// (each on its own node, named after the service), and a client node that
// the nemesis leaves alone (the workload's clients, and the checks, run
// there). The fault plan is drawn from the seed over the store, servers and
// workers (crashes, partitions, clogs, clock jumps), the store's disk, and
// the fakes (outages).
//
// A seed's timeline: the workload starts once the servers had time to take
// their shards; faults happen during [0, chaos); at quiet_at() the quiet
// phase begins and everything is healed and restarted; by live_by() every
// expected workflow must be closed. The checks then read every history and
// the fakes, and the run ends.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/history/history_file.h"
#include "engine/sdk/client.h"
#include "engine/worker/worker.h"
#include "engine/sdk/registry.h"
#include "scenarios/checker.h"
#include "scenarios/fakes/fake_service.h"
#include "scenarios/scenario.h"
#include "sim/fault_plan.h"
#include "sim/nemesis.h"
#include "sim/trace.h"
#include "sim/world.h"

namespace duro::scenarios {

struct SeedOptions {
  std::uint64_t seed = 1;
  // The fault profile; ignored when `plan` is given.
  sim::FaultProfile profile{};
  // Replays this plan instead of drawing one (a shrunk or edited plan).
  std::optional<sim::FaultPlan> plan{};
  sim::TraceLog* trace = nullptr;
  // When set, every closed run the checks read (expected workflows, their
  // children and continued runs) is appended here, as a history file
  // without a build id (`duro run --record-histories`).
  std::vector<engine::HistoryFile>* histories = nullptr;
  // `duro fuzz`: workers evict cached runs at random points and run on
  // skewed clocks, servers hold arrivals so that they land at every legal
  // point around workflow tasks (engine/server/delivery_fuzz.h), and
  // every closed run is also replayed by a fresh
  // replayer cut at its workflow-task boundaries, with the heap disturbed
  // first (so code whose behaviour hangs on addresses shows it). What
  // differs is reported in SeedReport::findings. All of it drawn from the
  // seed: a finding reproduces from the seed alone.
  bool fuzz = false;
};

// Nondeterminism `duro fuzz` found in a workflow type's code in one seed.
struct FuzzFinding {
  std::string workflow_type;
  // "replay": a fresh replay cut at a workflow-task boundary diverged;
  // "task-failure": a workflow task failed during the run (nondeterminism,
  // an SDK call from the wrong place, an exception escaping the code);
  // "guard": the code called the real clock, randomness, threads or I/O
  // (added by the CLI's determinism guard).
  std::string kind;
  std::string message;
};
DURO_CODEC_FIELDS(FuzzFinding, workflow_type, kind, message);

// What one seed did, and whether every invariant held.
struct SeedReport {
  std::string scenario;
  std::uint64_t seed = 0;
  std::string profile;
  bool passed = false;
  std::vector<Violation> violations;  // The first Checker::kKeptMax.
  std::uint64_t violations_total = 0;
  std::string fault_plan;             // Its text form (sim/fault_plan.h).
  std::uint64_t faults_applied = 0;
  std::uint64_t trace_hash = 0;
  std::int64_t simulated_ns = 0;      // Virtual time the run covered.
  std::uint64_t events = 0;           // Simulator events executed.
  std::uint64_t workflows = 0;        // Expected workflows checked.
  std::uint64_t runs_replayed = 0;    // Runs whose history was validated and replayed.
  std::uint64_t checks = 0;
  double wall_seconds = 0;
  std::vector<FuzzFinding> findings;  // With SeedOptions::fuzz.
};
DURO_CODEC_FIELDS(SeedReport, scenario, seed, profile, passed, violations, violations_total, fault_plan,
                  faults_applied, trace_hash, simulated_ns, events, workflows, runs_replayed, checks, wall_seconds,
                  findings);

class Harness {
 public:
  // The outcome a workflow must have: "" if `outcome` is right, else what
  // is wrong with it.
  using OutcomeCheck = std::function<std::string(const sdk::WorkflowOutcome<sdk::Payload>& outcome)>;

  Harness(const ScenarioDefinition& definition, std::uint64_t seed);
  ~Harness();
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  // --- For setup() ------------------------------------------------------

  sdk::Registry& registry() noexcept { return registry_; }
  sim::World& world() noexcept { return world_; }
  std::uint64_t seed() const noexcept { return seed_; }
  // The scenario's own stream, for the workload's shape.
  sim::Random& random() noexcept { return random_; }
  const ScenarioShape& shape() const noexcept { return definition_.shape; }

  // Adds a fake on a node of its own, named after it; the harness keeps it.
  template <typename Fake, typename... Args>
  Fake& add_service(Args&&... args) {
    auto fake = std::make_unique<Fake>(std::forward<Args>(args)...);
    Fake& ref = *fake;
    adopt_service(std::move(fake));
    return ref;
  }
  sim::Address address_of(std::string_view service) const;

  // Runs `body` in a fiber of the client node once the cluster is up, with
  // a client of the frontend of its own. The checks wait for every client
  // body to return (or for live_by()).
  void client(std::string name, std::function<void(sdk::Client& client, sim::Env& env)> body);
  // Records a workflow the workload saw acknowledged, and what its outcome
  // must be.
  void expect(const engine::WorkflowExecution& execution, std::string what, OutcomeCheck check);

  // Adds a fault to every plan this seed draws: a scenario's own outage,
  // partition or clock jump at a set time (a drawn plan's `heal` heals
  // scripted partitions too). It lands in the printed plan, so a repro
  // replays it and a shrink may remove it; a given plan (--fault-plan) is
  // used as it is. `at` counts from the run's start, inside the chaos phase.
  void script(sim::FaultAction action);
  // A partition that holds from action.at until `until`: the plan cuts it
  // again after every drawn heal in between, and heals at `until`. (A
  // region cut off for minutes stays cut off whatever else heals.)
  void script_partition(sim::FaultAction partition, sim::Duration until);

  sim::TimePoint quiet_at() const noexcept { return quiet_at_; }
  sim::TimePoint live_by() const noexcept { return live_by_; }
  Checker& checker() noexcept { return checker_; }
  // The most events any checked run's history has (after the checks read them).
  std::int64_t longest_history() const noexcept { return longest_history_; }
  // The outcome of an expected workflow, once the checks have it.
  const sdk::WorkflowOutcome<sdk::Payload>* outcome(std::string_view workflow_id) const;

  // --- For run_seed() -----------------------------------------------------

  // setup(), the fault plan, the run, the checks.
  SeedReport run(Scenario& scenario, const SeedOptions& options);

  // setup() alone, never run: for the workflow code it registers
  // (scenarios/workflow_catalog.h). The harness cannot run after it.
  void set_up_only(Scenario& scenario);

 private:
  struct Expectation {
    engine::WorkflowExecution execution;
    std::string what;
    OutcomeCheck check;
  };

  void adopt_service(std::unique_ptr<FakeService> fake);
  void finish(Scenario& scenario, sdk::Client& client, sim::Env& env);
  void check_histories(sdk::Client& client, sim::Env& env);
  // The fuzz checks of one run's history (SeedOptions::fuzz).
  void fuzz_history(const engine::WorkflowExecution& execution, const std::vector<engine::HistoryEvent>& events);
  void found(std::string workflow_type, std::string kind, std::string message);

  const ScenarioDefinition& definition_;
  std::uint64_t seed_;
  // Declared before the world, so they outlive it: workers hold the
  // registry, the fakes' nodes hold the fakes.
  sdk::Registry registry_;
  std::vector<std::unique_ptr<FakeService>> services_;
  sim::World world_;
  sim::Random random_;
  Checker checker_;
  Scenario* scenario_ = nullptr;
  sim::NodeId store_ = sim::kNoNode;
  std::vector<sim::NodeId> servers_;
  std::vector<sim::Address> server_addresses_;
  std::vector<sim::NodeId> workers_;
  sim::NodeId client_node_ = sim::kNoNode;
  std::map<std::string, sim::Address, std::less<>> service_addresses_;
  std::vector<Expectation> expectations_;
  std::vector<sim::FaultAction> scripted_;
  struct HeldPartition {
    sim::FaultAction partition;
    sim::Duration until{};
  };
  std::vector<HeldPartition> held_;
  std::map<std::string, sdk::WorkflowOutcome<sdk::Payload>, std::less<>> outcomes_;
  std::size_t clients_running_ = 0;
  std::uint16_t next_client_port_ = 7600;
  sim::TimePoint quiet_at_{};
  sim::TimePoint live_by_{};
  bool finished_ = false;
  std::uint64_t runs_replayed_ = 0;
  std::vector<engine::HistoryFile>* histories_ = nullptr;
  engine::ServerOptions server_options_;  // Read at each server's boot, like worker_options_.
  worker::WorkerOptions worker_options_;
  bool fuzz_ = false;
  sim::Random fuzz_random_;
  std::vector<FuzzFinding> findings_;
  std::int64_t longest_history_ = 0;
  bool in_safety_check_ = false;
};

}  // namespace duro::scenarios

namespace duro::scenarios {

// Runs one seed of `definition` and reports it.
SeedReport run_seed(const ScenarioDefinition& definition, const SeedOptions& options);

}  // namespace duro::scenarios
