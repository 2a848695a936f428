#include "scenarios/harness.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <span>
#include <set>
#include <utility>

#include "engine/history/history_validator.h"
#include "engine/sdk/replayer.h"
#include "engine/server/server_node.h"
#include "engine/store/store_service.h"
#include "engine/worker/worker.h"
#include "sim/assert.h"

namespace duro::scenarios {

using namespace std::chrono_literals;

namespace {

// The servers take their shards in the first seconds; clients start after.
constexpr sim::Duration kWarmUp = 3s;
// After live_by: time for the checks to read every history.
constexpr sim::Duration kChecksBound = 2h;
constexpr std::size_t kRunsCheckedMax = 100'000;
constexpr std::uint16_t kChecksPort = 7599;
// Fuzzing: at most this many fresh replays of one run (cut at its task
// boundaries), findings kept per workflow type and seed, and bytes of each.
constexpr std::size_t kReplayCutsMax = 50;
constexpr std::size_t kFindingsPerTypeMax = 3;
constexpr std::size_t kFindingBytesMax = 4000;
constexpr std::uint64_t kDisturbingBlocksMax = 64;

class NoProcess final : public sim::Process {};

std::string describe(const sdk::WorkflowOutcome<sdk::Payload>& outcome) {
  if (outcome.completed()) return "completed";
  return fmt::format("closed {} ({})", static_cast<int>(outcome.status),
                     outcome.failure ? outcome.failure->type + ": " + outcome.failure->message : "no failure");
}

}  // namespace

Harness::Harness(const ScenarioDefinition& definition, std::uint64_t seed)
    : definition_(definition),
      seed_(seed),
      world_({.seed = seed}),
      random_(sim::Random(seed).fork("scenario")),
      checker_(&world_.sim()),
      fuzz_random_(sim::Random(seed).fork("fuzz")) {
  const ScenarioShape& shape = definition_.shape;
  DURO_ASSERT(shape.servers > 0 && shape.workers > 0 && shape.server.shard_count > 0);
  DURO_ASSERT(shape.chaos > sim::Duration{0} && shape.liveness_bound > sim::Duration{0});
  store_ = world_.add_node("store", [](sim::Env& env) { return engine::store::boot_store(env); });
  server_options_ = shape.server;
  server_options_.store_address = world_.env(store_).address();
  for (int i = 1; i <= shape.servers; i++) {
    servers_.push_back(world_.add_node(fmt::format("server-{}", i), [this](sim::Env& env) {
      return engine::server_boot(server_options_)(env);
    }));
    server_addresses_.push_back(world_.env(servers_.back()).address());
  }
  worker::WorkerOptions& worker_options = worker_options_;
  worker_options.servers = server_addresses_;
  worker_options.cache_size = shape.worker_cache_size;
  DURO_ASSERT(shape.worker_poll_timeout > shape.server.long_poll_wait);
  worker_options.poll_timeout = shape.worker_poll_timeout;
  for (int i = 1; i <= shape.workers; i++) {
    workers_.push_back(world_.add_node(
        // The options are read at boot, so that run() may still set the
        // fuzz ones.
        fmt::format("worker-{}", i), [this](sim::Env& env) -> std::unique_ptr<sim::Process> {
          return std::make_unique<worker::Worker>(env, worker_options_, registry_);
        }));
  }
  client_node_ = world_.add_node("client", [](sim::Env&) -> std::unique_ptr<sim::Process> {
    return std::make_unique<NoProcess>();
  });
}

Harness::~Harness() = default;

void Harness::adopt_service(std::unique_ptr<FakeService> fake) {
  DURO_ASSERT_MSG(!finished_, "add_service() after the run");
  DURO_ASSERT_MSG(!service_addresses_.contains(fake->name()), "two services with one name");
  FakeService* service = fake.get();
  service->set_hooks(FakeService::Hooks{
      .in_outage = [this, name = service->name()] { return world_.in_outage(name); },
      .changed =
          [this] {
            // A check that itself changed a fake would recurse; checks only read.
            DURO_ASSERT(!in_safety_check_);
            if (scenario_ == nullptr) return;
            in_safety_check_ = true;
            scenario_->check_safety(checker_);
            in_safety_check_ = false;
          },
  });
  const sim::NodeId node =
      world_.add_node(service->name(), [service](sim::Env& env) { return service->boot(env); });
  service_addresses_.emplace(service->name(), world_.env(node).address());
  services_.push_back(std::move(fake));
}

sim::Address Harness::address_of(std::string_view service) const {
  auto it = service_addresses_.find(service);
  DURO_ASSERT_MSG(it != service_addresses_.end(), "no service by that name");
  return it->second;
}

void Harness::client(std::string name, std::function<void(sdk::Client& client, sim::Env& env)> body) {
  DURO_ASSERT(next_client_port_ < kChecksPort + 1000);
  const std::uint16_t port = next_client_port_++;
  clients_running_++;
  world_.env(client_node_).spawn(name, [this, port, name, body = std::move(body)] {
    sim::Env& env = world_.env(client_node_);
    sdk::Client client(env, server_addresses_, port, {.try_timeout = 5s, .identity = name});
    env.sleep_for(kWarmUp);
    body(client, env);
    clients_running_--;
  });
}

void Harness::expect(const engine::WorkflowExecution& execution, std::string what, OutcomeCheck check) {
  DURO_ASSERT(!execution.workflow_id.empty() && !execution.run_id.empty());
  expectations_.push_back(Expectation{execution, std::move(what), std::move(check)});
}

void Harness::script(sim::FaultAction action) {
  DURO_ASSERT_MSG(scenario_ != nullptr && quiet_at_ == sim::TimePoint{}, "script() is for setup()");
  DURO_ASSERT_MSG(action.invalid_reason().empty(), "a scripted fault must be well formed");
  DURO_ASSERT_MSG(action.at >= sim::Duration{0} && action.at < definition_.shape.chaos,
                  "a scripted fault happens inside the chaos phase");
  DURO_ASSERT(scripted_.size() < sim::kFaultPlanActionsMax / 2);
  scripted_.push_back(std::move(action));
}

void Harness::script_partition(sim::FaultAction partition, sim::Duration until) {
  DURO_ASSERT(partition.kind == sim::FaultKind::kPartition && partition.at < until);
  sim::FaultAction heal;
  heal.at = until;
  heal.kind = sim::FaultKind::kHeal;
  script(partition);
  script(heal);
  held_.push_back(HeldPartition{std::move(partition), until});
}

const sdk::WorkflowOutcome<sdk::Payload>* Harness::outcome(std::string_view workflow_id) const {
  auto it = outcomes_.find(workflow_id);
  return it == outcomes_.end() ? nullptr : &it->second;
}

void Harness::set_up_only(Scenario& scenario) {
  DURO_ASSERT_MSG(scenario_ == nullptr, "a harness sets up once");
  scenario_ = &scenario;
  scenario.setup(*this);
  finished_ = true;
}

SeedReport Harness::run(Scenario& scenario, const SeedOptions& options) {
  const auto wall_start = std::chrono::steady_clock::now();
  DURO_ASSERT_MSG(scenario_ == nullptr, "a harness runs once");
  scenario_ = &scenario;
  if (options.trace != nullptr) world_.sim().set_trace_log(options.trace);
  histories_ = options.histories;
  fuzz_ = options.fuzz;
  if (fuzz_) {
    // Evictions from rare to most tasks; each worker's clock off by up to
    // ten minutes either way, from the start.
    worker_options_.fuzz_eviction_probability = 0.1 + 0.8 * fuzz_random_.uniform_double();
    // Signals, results and timers held up to a second, well within the
    // callers' timeouts: they land at every point around workflow tasks.
    server_options_.fuzz_delivery_hold_max = std::min<sim::Duration>(std::chrono::seconds{1},
                                                                     server_options_.rpc_timeout / 3);
    for (sim::NodeId node : workers_) {
      sim::FaultAction skew;
      skew.kind = sim::FaultKind::kClockJump;
      skew.nodes = {world_.env(node).name()};
      const std::int64_t skew_ms = fuzz_random_.uniform_range(-600'000, 600'000);
      skew.clock_delta = std::chrono::milliseconds{skew_ms == 0 ? 1 : skew_ms};
      scripted_.push_back(std::move(skew));
    }
  }
  scenario.setup(*this);

  SeedReport report;
  report.scenario = definition_.name;
  report.seed = seed_;
  sim::FaultPlan plan;
  if (options.plan) {
    plan = *options.plan;
  } else {
    sim::FaultProfile profile = options.profile;
    // A corrupted store refuses to serve rather than serve wrong data (by
    // design), which no workflow outlives: the store's own tests cover it.
    profile.disk_corruption.enabled = false;
    profile.down_max = std::min(profile.down_max, definition_.shape.down_max);
    sim::FaultTopology topology;
    topology.crashable.push_back("store");
    for (sim::NodeId node : servers_) topology.crashable.push_back(world_.env(node).name());
    for (sim::NodeId node : workers_) topology.crashable.push_back(world_.env(node).name());
    topology.with_disks = {"store"};
    for (const auto& service : services_) topology.services.push_back(service->name());
    topology.chaos = definition_.shape.chaos;
    plan = sim::draw_fault_plan(seed_, profile, topology);
    // A held partition is cut again right after each drawn heal inside it
    // (the copy sorts after the heal: same time, later in the list).
    std::vector<sim::FaultAction> recuts;
    for (const HeldPartition& held : held_) {
      for (const sim::FaultAction& action : plan.actions) {
        if (action.kind != sim::FaultKind::kHeal || action.at < held.partition.at || action.at >= held.until) continue;
        sim::FaultAction recut = held.partition;
        recut.at = action.at;
        recuts.push_back(std::move(recut));
      }
    }
    // Scripted faults go after drawn ones at the same time: stable.
    plan.actions.insert(plan.actions.end(), scripted_.begin(), scripted_.end());
    plan.actions.insert(plan.actions.end(), recuts.begin(), recuts.end());
    std::stable_sort(plan.actions.begin(), plan.actions.end(),
                     [](const sim::FaultAction& a, const sim::FaultAction& b) { return a.at < b.at; });
  }
  report.profile = plan.profile;
  report.fault_plan = plan.to_text();
  if (sim::Result<void> applied = world_.apply(plan); !applied.ok()) {
    checker_.violate("fault-plan", "the plan does not fit this scenario: " + applied.error().message);
  } else {
    const sim::TimePoint start = world_.sim().now();
    quiet_at_ = start + plan.chaos;
    live_by_ = quiet_at_ + definition_.shape.liveness_bound;
    world_.env(client_node_).spawn("checks", [this, &scenario] {
      sim::Env& env = world_.env(client_node_);
      sdk::Client client(env, server_addresses_, kChecksPort, {.try_timeout = 5s, .identity = "checks"});
      finish(scenario, client, env);
      finished_ = true;
      env.sim().stop();
    });
    const sim::RunResult result = world_.run({.until = live_by_ + kChecksBound});
    if (!finished_) {
      checker_.violate("run", fmt::format("the checks did not finish: the run stopped ({}) at {}",
                                          sim::stop_reason_name(result.reason),
                                          sim::format_duration(result.time - world_.sim().start_time())));
    }
    report.trace_hash = result.trace_hash;
    report.events = result.events_executed;
    report.simulated_ns = std::chrono::nanoseconds(result.time - world_.sim().start_time()).count();
  }
  finished_ = true;
  scenario_ = nullptr;
  for (const sim::AppliedFault& fault : world_.fault_log()) {
    if (fault.outcome == "applied") report.faults_applied++;
  }
  report.passed = checker_.passed();
  report.violations = checker_.violations();
  report.violations_total = checker_.violations_total();
  report.workflows = expectations_.size();
  report.runs_replayed = runs_replayed_;
  report.findings = std::move(findings_);
  report.checks = checker_.checks();
  report.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return report;
}

void Harness::finish(Scenario& scenario, sdk::Client& client, sim::Env& env) {
  if (env.sim().now() < quiet_at_) env.sleep_for(quiet_at_ - env.sim().now());
  // The workload may still be acting (a delete after a create): wait for
  // its clients, within the bound.
  while (clients_running_ > 0 && env.sim().now() < live_by_) env.sleep_for(1s);
  checker_.check(clients_running_ == 0, "liveness", "{} workload client(s) still running at the liveness deadline",
                 clients_running_);
  for (std::size_t i = 0; i < expectations_.size(); i++) {
    const Expectation& expected = expectations_[i];
    sim::Result<sdk::WorkflowOutcome<sdk::Payload>> outcome = client.result_payload(expected.execution, live_by_);
    if (!outcome.ok()) {
      checker_.violate("liveness", fmt::format("{} ({}) not closed within {} of the quiet phase: {}",
                                               expected.execution.workflow_id, expected.what,
                                               sim::format_duration(definition_.shape.liveness_bound),
                                               sim::to_string(outcome.error())));
      continue;
    }
    const std::string problem = expected.check(outcome.value());
    checker_.check(problem.empty(), "outcome", "{} ({}) {}: {}", expected.execution.workflow_id, expected.what,
                   describe(outcome.value()), problem);
    outcomes_[expected.execution.workflow_id] = std::move(outcome.value());
  }
  check_histories(client, env);
  scenario.check_safety(checker_);
  scenario.check_end(*this, checker_);
}

void Harness::check_histories(sdk::Client& client, sim::Env& env) {
  (void)env;
  sdk::Replayer replayer(registry_);
  std::deque<engine::WorkflowExecution> pending;
  std::set<std::pair<std::string, std::string>> seen;
  for (const Expectation& expected : expectations_) pending.push_back(expected.execution);
  while (!pending.empty() && seen.size() < kRunsCheckedMax) {
    engine::WorkflowExecution execution = std::move(pending.front());
    pending.pop_front();
    if (!seen.emplace(execution.workflow_id, execution.run_id).second) continue;
    sim::Result<engine::History> history = client.history(execution, live_by_ + kChecksBound);
    if (!history.ok()) {
      checker_.violate("history", fmt::format("cannot read the history of {}/{}: {}", execution.workflow_id,
                                              execution.run_id, sim::to_string(history.error())));
      continue;
    }
    const std::vector<engine::HistoryEvent>& events = history.value().events;
    longest_history_ = std::max(longest_history_, static_cast<std::int64_t>(events.size()));
    for (const std::string& problem : engine::validate_history(history.value())) {
      checker_.violate("history-valid", fmt::format("{}/{}: {}", execution.workflow_id, execution.run_id, problem));
    }
    if (events.empty()) continue;
    if (fuzz_) fuzz_history(execution, events);
    for (const engine::HistoryEvent& event : events) {
      if (const auto* child = event.as<engine::ChildWorkflowExecutionStarted>()) {
        pending.push_back(child->workflow_execution);
      }
    }
    const engine::HistoryEvent& last = events.back();
    if (!engine::is_close_event(last.type())) continue;
    std::string next_run;
    if (const auto* continued = last.as<engine::WorkflowExecutionContinuedAsNew>()) {
      next_run = continued->new_execution_run_id;
    } else if (const auto* failed = last.as<engine::WorkflowExecutionFailed>()) {
      next_run = failed->new_execution_run_id;
    } else if (const auto* timed_out = last.as<engine::WorkflowExecutionTimedOut>()) {
      next_run = timed_out->new_execution_run_id;
    }
    if (!next_run.empty()) pending.push_back(engine::WorkflowExecution{execution.workflow_id, next_run});
    const sdk::ReplayResult replay = replayer.replay(events, execution.workflow_id, execution.run_id);
    runs_replayed_++;
    if (histories_ != nullptr) {
      const auto* started = events.front().as<engine::WorkflowExecutionStarted>();
      if (started != nullptr) {
        histories_->push_back(engine::HistoryFile{
            engine::HistoryFileHeader{started->workflow_type, execution.workflow_id, execution.run_id, "",
                                      definition_.name, seed_},
            history.value()});
      }
    }
    checker_.check(replay.ok, "replay", "{}/{} does not replay: {}", execution.workflow_id, execution.run_id,
                   replay.message);
  }
}

void Harness::found(std::string workflow_type, std::string kind, std::string message) {
  const std::size_t of_type = static_cast<std::size_t>(std::count_if(
      findings_.begin(), findings_.end(), [&](const FuzzFinding& f) { return f.workflow_type == workflow_type; }));
  if (of_type >= kFindingsPerTypeMax) return;
  if (message.size() > kFindingBytesMax) message = message.substr(0, kFindingBytesMax) + "...";
  findings_.push_back(FuzzFinding{std::move(workflow_type), std::move(kind), std::move(message)});
}

void Harness::fuzz_history(const engine::WorkflowExecution& execution, const std::vector<engine::HistoryEvent>& events) {
  const auto* started = events.front().as<engine::WorkflowExecutionStarted>();
  if (started == nullptr) return;
  const std::string& type = started->workflow_type;
  // A workflow task that failed during the run: the worker met
  // nondeterminism on a cache miss, or the code broke a rule. Not one the
  // server refused because events arrived while it ran (UnhandledCommand):
  // that is timing, which fuzz mode's held events make common, not the
  // code's fault.
  for (const engine::HistoryEvent& event : events) {
    const auto* failed = event.as<engine::WorkflowTaskFailed>();
    if (failed == nullptr || failed->cause == engine::WorkflowTaskFailedCause::kUnhandledCommand) continue;
    found(type, "task-failure",
          fmt::format("{}/{}: workflow task failed at event {} ({}): {}", execution.workflow_id, execution.run_id,
                      event.event_id, failed->failure.type, failed->failure.message));
    break;
  }
  if (!engine::is_close_event(events.back().type())) return;
  // Where a worker could have lost the run: after each completed task's
  // commands. A fresh replayer (its own stacks) replays up to there, after
  // the heap was disturbed by a few allocations of sizes drawn from the
  // seed; evenly spaced cuts when there are more than the budget allows.
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i < events.size(); i++) {
    if (!events[i].is<engine::WorkflowTaskCompleted>()) continue;
    std::size_t end = i + 1;
    while (end < events.size() && engine::is_command_event(events[end].type())) end++;
    cuts.push_back(end);
  }
  const std::size_t step = cuts.size() / kReplayCutsMax + 1;
  for (std::size_t c = 0; c < cuts.size(); c += step) {
    // Small blocks of many sizes: allocators keep small sizes in classes
    // (glibc's bins, the sanitizers' size-class regions), so only blocks
    // of the code's own sizes move where its next objects land.
    std::vector<std::unique_ptr<char[]>> disturbance;
    const std::uint64_t blocks = fuzz_random_.uniform(kDisturbingBlocksMax) + 1;
    for (std::uint64_t b = 0; b < blocks; b++) {
      disturbance.push_back(std::make_unique<char[]>(fuzz_random_.uniform(256) + 1));
    }
    sdk::Replayer fresh(registry_);
    const sdk::ReplayResult replay =
        fresh.replay(std::span(events).first(cuts[c]), execution.workflow_id, execution.run_id);
    if (!replay.ok) {
      found(type, "replay",
            fmt::format("{}/{}: a fresh replay of events 1..{} (of {}) diverged: {}", execution.workflow_id,
                        execution.run_id, cuts[c], events.size(), replay.message));
      return;
    }
  }
}

}  // namespace duro::scenarios

namespace duro::scenarios {

SeedReport run_seed(const ScenarioDefinition& definition, const SeedOptions& options) {
  std::unique_ptr<Scenario> scenario = definition.make();
  DURO_ASSERT(scenario != nullptr);
  Harness harness(definition, options.seed);
  return harness.run(*scenario, options);
}

}  // namespace duro::scenarios
