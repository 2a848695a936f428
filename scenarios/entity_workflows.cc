// entity-workflows: long-lived digital twins of cells and namespaces. Each
// entity is one workflow that lives for the whole run: signals change its
// desired configuration, queries read its state, and it reconciles the
// real configuration (a config service) to the desired one. Every few
// changes it continues as new, carrying its state, so its history stays
// bounded however long it lives. Workers and servers crash under it.
//
// Each operator client sends its entity generations 1..N in order, one at
// a time, retrying each with the same request id until it is acknowledged,
// and queries the entity between sends; at the end it signals "stop" and
// the entity closes with its state once the last generation is applied.
//
// Invariants:
//   exactly-once:  the entity saw every acknowledged generation once, in
//                  order (no loss across crashes or continue-as-new, no
//                  duplicate from a retried signal).
//   monotonic:     the config service's generation for an entity never
//                  goes back, and never runs ahead of what was sent;
//                  queries from one client never see the state go back.
//   converged:     at the end the config holds the last generation.
//   bounded:       no run's history is longer than the bound (continue-
//                  as-new keeps them short).
//   outcome:       every entity closes, completed, within the bound.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/sdk/activity_context.h"
#include "engine/sdk/workflow_context.h"
#include "scenarios/fakes/resource_service.h"
#include "scenarios/fakes/service_call.h"
#include "scenarios/harness.h"
#include "scenarios/registry.h"

// Named after the file, not anonymous: the library compiles several files
// to a unit (unity build), where the anonymous namespaces of different
// files are one and their same-named constants would collide.
namespace duro::scenarios::entity_workflows {

struct EntityState {
  std::string name;
  std::int64_t desired = 0;   // The last generation signalled.
  std::int64_t applied = 0;   // The last generation the config holds.
  std::int64_t received = 0;  // Generation signals seen, over all runs.
  std::int64_t out_of_order = 0;  // Signals that were not desired + 1.
  std::int64_t runs = 1;
  bool stopping = false;
};
DURO_CODEC_FIELDS(EntityState, name, desired, applied, received, out_of_order, runs, stopping);

struct ConfigWrite {
  std::string entity;
  std::int64_t generation = 0;
};
DURO_CODEC_FIELDS(ConfigWrite, entity, generation);

namespace {

using namespace std::chrono_literals;
using sdk::ActivityContext;
using sdk::WorkflowContext;

constexpr int kEntities = 6;
constexpr int kChangesPerRun = 4;        // Then continue as new.
constexpr std::int64_t kHistoryEventsMax = 400;

EntityState entity(WorkflowContext& ctx, EntityState state) {
  int handled = 0;
  ctx.on_signal<std::int64_t>("desire", [&](std::int64_t generation) {
    state.received++;
    if (generation != state.desired + 1) state.out_of_order++;
    state.desired = std::max(state.desired, generation);
  });
  ctx.on_signal<bool>("stop", [&](bool) { state.stopping = true; });
  ctx.on_query<EntityState>("state", [&] { return state; });
  sdk::ActivityOptions options;
  options.start_to_close = 30s;
  options.retry.initial_interval = 1s;
  options.retry.maximum_interval = 1min;
  constexpr int kRoundsMax = 1000;
  for (int round = 0; round < kRoundsMax; round++) {
    ctx.await([&] { return state.desired > state.applied || state.stopping; });
    if (state.desired > state.applied) {
      const std::int64_t target = state.desired;
      ctx.activity<void>("apply_config", ConfigWrite{state.name, target}, options);
      state.applied = target;
      handled++;
    }
    if (state.stopping && state.applied == state.desired) return state;
    if (handled >= kChangesPerRun) {
      state.runs++;
      ctx.continue_as_new(state);
    }
  }
  throw sdk::ApplicationError("TooManyRounds", "the entity did not settle");
}

class EntityWorkflows final : public Scenario {
 public:
  void setup(Harness& harness) override;
  void check_safety(Checker& checker) override;
  void check_end(Harness& harness, Checker& checker) override;

 private:
  void operator_client(Harness& harness, sdk::Client& client, sim::Env& env, int index);

  ResourceService* config_ = nullptr;
  std::vector<std::string> names_;
  std::map<std::string, std::int64_t> sent_;   // Entity -> highest generation sent (acked or not).
  std::map<std::string, std::int64_t> acked_;  // Entity -> generations acknowledged.
  std::map<std::string, std::int64_t> seen_;   // Highest config generation the safety check saw.
  std::int64_t generations_ = 0;
};

void EntityWorkflows::setup(Harness& harness) {
  sim::Random& random = harness.random();
  FailureModel flaky{.server_error_probability = 0.05, .timeout_after_apply_probability = 0.03};
  config_ = &harness.add_service<ResourceService>("config", flaky.draw(random));
  generations_ = 8 + static_cast<std::int64_t>(random.uniform(9));  // 8..16 changes per entity
  harness.registry().workflow("entity", entity);
  harness.registry().activity("apply_config", [this, &harness](ActivityContext& ctx, const ConfigWrite& write) {
    sim::Result<ResourceReply> reply = call_service<ResourceReply>(
        ctx.env(), harness.address_of("config"), "put",
        ResourcePut{write.entity, fmt::format("gen {}", write.generation), "entity/" + write.entity,
                    ctx.idempotency_key(), write.generation});
    // Stale: a newer generation is there already (this attempt's earlier
    // try applied it, or a later change did): nothing to do.
    if (reply.ok() || reply.error().code == sim::ErrorCode::kAlreadyExists) return;
    throw sdk::ApplicationError("ConfigError", sim::to_string(reply.error()));
  });
  for (int i = 0; i < kEntities; i++) {
    names_.push_back(i < kEntities / 2 ? fmt::format("cell-{}", i) : fmt::format("namespace-{}", i - kEntities / 2));
    harness.client(fmt::format("operator-{}", i), [this, &harness, i](sdk::Client& client, sim::Env& env) {
      operator_client(harness, client, env, i);
    });
  }
}

void EntityWorkflows::operator_client(Harness& harness, sdk::Client& client, sim::Env& env, int index) {
  const std::string name = names_[static_cast<std::size_t>(index)];
  const std::string workflow_id = "entity/" + name;
  sim::Result<engine::WorkflowExecution> run = sim::Error{sim::ErrorCode::kTimeout, "not started"};
  while (!run.ok() && env.sim().now() < harness.quiet_at()) {
    run = client.start("entity", workflow_id, EntityState{.name = name});
  }
  if (!run.ok()) return;
  const std::int64_t generations = generations_;
  harness.expect(run.value(), "entity " + name,
                 [generations](const sdk::WorkflowOutcome<sdk::Payload>& outcome) -> std::string {
                   if (!outcome.completed() || !outcome.value) return "the entity completes when stopped";
                   const EntityState state = sdk::from_payload<EntityState>(*outcome.value);
                   if (state.received != generations || state.out_of_order != 0) {
                     return fmt::format("exactly-once: it saw {} generation signals ({} out of order) of {} sent",
                                        state.received, state.out_of_order, generations);
                   }
                   if (state.applied != generations) return fmt::format("it applied {}", state.applied);
                   return "";
                 });
  // Signals go to the workflow id, not the first run: the entity continues
  // as new under the same id.
  const engine::WorkflowExecution entity{workflow_id, ""};
  std::int64_t last_seen = 0;
  const auto gap_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(harness.shape().chaos).count()) /
                      static_cast<std::uint64_t>(generations + 1);
  for (std::int64_t generation = 1; generation <= generations; generation++) {
    env.sleep_for(sim::Duration{static_cast<std::int64_t>(env.random().uniform(gap_ns))});
    sent_[name] = generation;
    // The same request id on every try: one signal however many tries.
    const std::string request_id = fmt::format("desire/{}/{}", name, generation);
    constexpr int kTriesMax = 10'000;
    bool acked = false;
    for (int tries = 0; tries < kTriesMax && !acked; tries++) {
      acked = client.signal(entity, "desire", generation, request_id, 2min).ok();
    }
    if (!acked) return;  // The expectation then fails: the run is hopeless.
    acked_[name] = generation;
    sim::Result<EntityState> state = client.query<EntityState>(entity, "state");
    if (state.ok()) {
      harness.checker().check(state.value().desired >= last_seen && state.value().desired <= generation,
                              "monotonic", "a query of {} saw generation {} after {} (sent: {})", name,
                              state.value().desired, last_seen, generation);
      last_seen = std::max(last_seen, state.value().desired);
    }
  }
  for (int tries = 0; tries < 10'000; tries++) {
    if (client.signal(entity, "stop", true, "stop/" + name, 2min).ok()) break;
  }
}

void EntityWorkflows::check_safety(Checker& checker) {
  for (const auto& [key, record] : config_->records()) {
    std::int64_t& seen = seen_[key];
    checker.check(record.generation >= seen, "monotonic", "the config of {} went back from generation {} to {}", key,
                  seen, record.generation);
    seen = std::max(seen, record.generation);
    checker.check(record.generation <= sent_[key], "monotonic", "the config of {} holds generation {}; only {} were sent",
                  key, record.generation, sent_[key]);
  }
}

void EntityWorkflows::check_end(Harness& harness, Checker& checker) {
  for (const std::string& name : names_) {
    const Record* record = config_->find(name);
    const std::int64_t acked = acked_[name];
    checker.check(acked == generations_ && record != nullptr && record->generation == acked, "converged",
                  "{}: {} of {} generations acknowledged, the config holds {}", name, acked, generations_,
                  record == nullptr ? std::int64_t{0} : record->generation);
  }
  checker.check(harness.longest_history() <= kHistoryEventsMax, "bounded",
                "a run's history has {} events (bound {})", harness.longest_history(), kHistoryEventsMax);
}

}  // namespace
}  // namespace duro::scenarios::entity_workflows

namespace duro::scenarios {

using namespace std::chrono_literals;

ScenarioDefinition entity_workflows_scenario() {
  ScenarioDefinition definition;
  definition.name = "entity-workflows";
  definition.summary =
      "long-lived digital twins of cells and namespaces: signals change their desired state, queries read it, "
      "continue-as-new keeps their histories short, across worker and server crashes";
  definition.invariants = {
      "exactly-once: every acknowledged signal seen once, in order, across crashes and continue-as-new",
      "monotonic: the config's generation never goes back or runs ahead; queries never go back",
      "converged: at the end the config holds the last generation",
      "bounded: no run's history beyond the bound",
      "outcome: every entity completes when stopped",
  };
  definition.shape.chaos = 15min;
  definition.shape.liveness_bound = 30min;
  definition.make = [] { return std::make_unique<entity_workflows::EntityWorkflows>(); };
  return definition;
}

}  // namespace duro::scenarios
