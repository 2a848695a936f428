// ring-rollout: a release rolls through deployment rings while the cluster
// crashes and partitions, the deployer fails and hangs, and an operator
// halts and resumes it.
//
// The `rollout` workflow runs a `deploy_ring` child per ring, in ring order
// (0, 1, 2, 5, 100). A child deploys its cells one at a time (a
// `deploy_cell` activity: start the operation, poll it with heartbeats
// until it succeeds; a failed or hung operation is retried), bakes for the
// rollout kind's time (hours to days, a durable timer), then asks the alert
// service whether the release misbehaves anywhere it landed. Alerts stop
// the rollout: every cell it reached goes back to the previous release,
// newest ring first.
//
// Halts: the operator's "halt" signal reaches the rollout, which forwards
// it to the running child. The child accepts it between cells — nothing of
// its own is in flight then — by fencing the release at the deployer (so a
// zombie attempt cannot deploy it either), and waits for "resume", which
// it accepts by lifting the fence.
//
// Invariants:
//   ring-order:   a cell of ring r gets the release only after every cell
//                 of the ring before finished it and the bake passed.
//   halt:         no operation of the release finishes while it is halted
//                 (between an accepted halt and its resume); the fence
//                 refuses starts.
//   one-change:   at most one operation in flight per cell.
//   final-state:  a good release ends on every cell and the rollout
//                 completes; a bad one ends on none (rolled back) and the
//                 rollout says so.
//   outcome:      the rollout closes, completed, within the bound.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "engine/sdk/activity_context.h"
#include "engine/sdk/workflow_context.h"
#include "scenarios/fakes/alert_service.h"
#include "scenarios/fakes/cell_deployer.h"
#include "scenarios/fakes/service_call.h"
#include "scenarios/harness.h"
#include "scenarios/registry.h"

// Named after the file, not anonymous: the library compiles several files
// to a unit (unity build), where the anonymous namespaces of different
// files are one and their same-named constants would collide.
namespace duro::scenarios::ring_rollout {

struct Ring {
  std::int32_t number = 0;
  std::vector<std::string> cells;
};
DURO_CODEC_FIELDS(Ring, number, cells);

struct Release {
  std::string id;
  std::string kind;
  std::string previous;  // What the cells run before it.
  std::vector<Ring> rings;
};
DURO_CODEC_FIELDS(Release, id, kind, previous, rings);

struct RingInput {
  std::string release;
  std::string kind;
  Ring ring;
  bool halted = false;  // Halted when the child starts.
};
DURO_CODEC_FIELDS(RingInput, release, kind, ring, halted);

struct CellChange {
  std::string cell;
  std::string release;
  bool rollback = false;
};
DURO_CODEC_FIELDS(CellChange, cell, release, rollback);

namespace {

using namespace std::chrono_literals;
using sdk::ActivityContext;
using sdk::WorkflowContext;

const std::vector<std::int32_t> kRingNumbers = {0, 1, 2, 5, 100};
const std::vector<int> kCellsPerRing = {1, 2, 3, 3, 3};

// Bake times per rollout kind (our choice: CONTROL_PLANE.md says hours to days).
sim::Duration bake_time(std::string_view kind) {
  if (kind == "patch") return 4h;
  if (kind == "config") return 2h;
  if (kind == "alerts") return 1h;
  if (kind == "infra") return 24h;
  if (kind == "auth") return 8h;
  return 12h;  // normal
}
const std::vector<std::string> kKinds = {"normal", "patch", "config", "alerts", "infra", "auth"};

sdk::ActivityOptions deploy_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 30min;
  options.heartbeat = 2min;
  options.retry.initial_interval = 10s;
  options.retry.maximum_interval = 5min;
  return options;
}

sdk::ActivityOptions quick_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 30s;
  options.retry.initial_interval = 1s;
  options.retry.maximum_interval = 1min;
  return options;
}

class RingRollout final : public Scenario {
 public:
  void setup(Harness& harness) override;
  void check_safety(Checker& checker) override;
  void check_end(Harness& harness, Checker& checker) override;

 private:
  void deploy_cell(ActivityContext& ctx, const CellChange& change);
  std::string rollout(WorkflowContext& ctx, const Release& release);
  std::vector<std::string> deploy_ring(WorkflowContext& ctx, const RingInput& input);
  void operator_client(Harness& harness, sdk::Client& client, sim::Env& env);
  // True while `release` was halted at `at`.
  bool halted_at(const std::string& release, sim::TimePoint at) const;

  Harness* harness_ = nullptr;
  CellDeployer* deployer_ = nullptr;
  AlertService* alerts_ = nullptr;
  Release release_;
  bool bad_ = false;
  std::map<std::string, std::size_t> ring_of_;  // Cell -> ring index.
  std::string workflow_id_;
  std::set<std::uint64_t> checked_starts_;  // Operations judged at their start.
  std::set<std::uint64_t> checked_ends_;    // ... and at their end.
};

void RingRollout::deploy_cell(ActivityContext& ctx, const CellChange& change) {
  const sim::Address deployer = harness_->address_of("deployer");
  DeployRequest request;
  request.cell = change.cell;
  request.release = change.release;
  request.rollout = ctx.info().workflow_execution.workflow_id;
  request.rollback = change.rollback;
  request.activity = ctx.idempotency_key();
  request.attempt = ctx.attempt();
  // One operation per attempt: a retry after a failed or hung operation
  // starts a fresh one (superseding a hung one).
  request.idempotency_key = fmt::format("{}/{}", ctx.idempotency_key(), ctx.attempt());
  sim::Result<DeployReply> started = call_service<DeployReply>(ctx.env(), deployer, "deploy", request);
  if (!started.ok()) throw sdk::ApplicationError("DeployRefused", sim::to_string(started.error()));
  constexpr int kPollsMax = 1000;
  for (int poll = 0; poll < kPollsMax; poll++) {
    ctx.heartbeat(started.value().operation);
    if (ctx.cancel_requested()) throw sdk::CanceledError("deploy cancelled");
    sim::Result<DeployStatus> status =
        call_service<DeployStatus>(ctx.env(), deployer, "status", DeployStatusRequest{started.value().operation});
    if (!status.ok()) throw sdk::ApplicationError("DeployStatus", sim::to_string(status.error()));
    switch (status.value().state) {
      case DeployState::kSucceeded: return;
      case DeployState::kRunning: break;
      case DeployState::kFailed:
      case DeployState::kSuperseded:
        throw sdk::ApplicationError("DeployFailed", fmt::format("{} on {}: {}", change.release, change.cell,
                                                                deploy_state_name(status.value().state)));
    }
    ctx.env().sleep_for(30s);
  }
  throw sdk::ApplicationError("DeployHung", change.release + " on " + change.cell + " never finished");
}

std::vector<std::string> RingRollout::deploy_ring(WorkflowContext& ctx, const RingInput& input) {
  bool halted = input.halted;
  ctx.on_signal<bool>("halt", [&](bool value) { halted = value; });
  const sdk::ActivityOptions quick = quick_options();
  for (const std::string& cell : input.ring.cells) {
    if (halted) {
      // Accept the halt: nothing of ours is in flight now; the fence stops
      // any zombie attempt too.
      ctx.activity<void>("fence", input.release, quick);
      ctx.await([&] { return !halted; });
      ctx.activity<void>("unfence", input.release, quick);
    }
    ctx.activity<void>("deploy_cell", CellChange{cell, input.release, false}, deploy_options());
  }
  // Bake. The timer runs on the servers' clocks, which can jump forward;
  // the deployer's record of when the cells got the release is the
  // evidence the bake is over.
  sim::Duration remaining = bake_time(input.kind);
  constexpr int kBakeChecksMax = 100;
  for (int check = 0; check < kBakeChecksMax && remaining > sim::Duration{0}; check++) {
    ctx.sleep(remaining);
    remaining = ctx.activity<sim::Duration>("bake_remaining", BakeQuery{input.release, input.ring.cells,
                                                                        bake_time(input.kind)}, quick);
  }
  // Alerts from any cell the release reached so far.
  return ctx.activity<std::vector<std::string>>("check_alerts", input.release, quick);
}

std::string RingRollout::rollout(WorkflowContext& ctx, const Release& release) {
  bool halted = false;
  std::uint64_t changes = 0;  // Halts and resumes received.
  ctx.on_signal<std::string>("halt", [&](const std::string&) {
    halted = true;
    changes++;
  });
  ctx.on_signal<std::string>("resume", [&](const std::string&) {
    halted = false;
    changes++;
  });
  std::optional<engine::WorkflowExecution> child;
  std::uint64_t forwarded = 0;
  // Forwards halts and resumes to the ring being deployed (handlers may
  // not issue commands; this coroutine does).
  ctx.go([&] {
    for (;;) {
      ctx.await([&] { return child.has_value() && forwarded != changes; });
      forwarded = changes;
      try {
        ctx.signal_workflow(*child, "halt", halted).get();
      } catch (const sdk::ExternalWorkflowError&) {
        // The ring finished meanwhile; the next one starts with the state.
      }
    }
  });
  std::vector<std::string> reached;
  for (const Ring& ring : release.rings) {
    // The child starts with the halt state as of now; the forwarder sends
    // whatever changes after.
    const std::uint64_t known = changes;
    sdk::ChildOptions options;
    options.workflow_id = fmt::format("{}/ring-{}", ctx.info().workflow_id, ring.number);
    auto deploy = ctx.start_child<std::vector<std::string>>("deploy_ring",
                                                            RingInput{release.id, release.kind, ring, halted}, options);
    child = deploy.started.get();
    forwarded = known;
    const std::vector<std::string> alerting = deploy.result.get();
    child.reset();
    reached.insert(reached.end(), ring.cells.begin(), ring.cells.end());
    if (!alerting.empty()) {
      // Roll back everything it reached, newest ring first.
      for (auto cell = reached.rbegin(); cell != reached.rend(); ++cell) {
        ctx.activity<void>("deploy_cell", CellChange{*cell, release.previous, true}, deploy_options());
      }
      return fmt::format("rolled back at ring {}: {} alerting", ring.number, alerting.size());
    }
  }
  return "completed";
}

void RingRollout::setup(Harness& harness) {
  harness_ = &harness;
  sim::Random& random = harness.random();
  release_.id = fmt::format("release-{}", harness.seed());
  release_.kind = kKinds[random.uniform(kKinds.size())];
  release_.previous = "release-0";
  std::map<std::string, std::string> versions;
  for (std::size_t r = 0; r < kRingNumbers.size(); r++) {
    Ring ring{kRingNumbers[r], {}};
    for (int c = 0; c < kCellsPerRing[r]; c++) {
      const std::string cell = fmt::format("cell-r{}-{}", kRingNumbers[r], c);
      ring.cells.push_back(cell);
      versions[cell] = release_.previous;
      ring_of_[cell] = r;
    }
    release_.rings.push_back(std::move(ring));
  }
  FailureModel flaky{.server_error_probability = 0.05, .timeout_after_apply_probability = 0.03};
  deployer_ = &harness.add_service<CellDeployer>("deployer", flaky.draw(random), CellDeployerOptions{}, versions);
  alerts_ = &harness.add_service<AlertService>("alerts", flaky.draw(random), *deployer_);
  // A bad build: it misbehaves on the cells of some ring (not the first:
  // ring 0 is a canary of one cell that the bad change misses) and later.
  bad_ = random.chance(1, 3);
  if (bad_) {
    const std::size_t from = 1 + random.uniform(kRingNumbers.size() - 1);
    std::set<std::string> cells;
    for (std::size_t r = from; r < release_.rings.size(); r++) {
      cells.insert(release_.rings[r].cells.begin(), release_.rings[r].cells.end());
    }
    alerts_->mark_bad(release_.id, std::move(cells), sim::Duration{std::chrono::minutes{10 + random.uniform(50)}});
  }

  sdk::Registry& registry = harness.registry();
  registry.activity("deploy_cell", [this](ActivityContext& ctx, const CellChange& change) { deploy_cell(ctx, change); });
  auto fence = [this](ActivityContext& ctx, const std::string& release, bool halted) {
    sim::Result<FenceReply> reply = call_service<FenceReply>(ctx.env(), harness_->address_of("deployer"), "fence",
                                                             FenceRequest{release, halted, ctx.idempotency_key()});
    if (!reply.ok()) throw sdk::ApplicationError("FenceFailed", sim::to_string(reply.error()));
  };
  registry.activity("fence", [fence](ActivityContext& ctx, const std::string& release) { fence(ctx, release, true); });
  registry.activity("unfence",
                    [fence](ActivityContext& ctx, const std::string& release) { fence(ctx, release, false); });
  registry.activity("bake_remaining", [this](ActivityContext& ctx, const BakeQuery& query) {
    sim::Result<BakeReply> reply =
        call_service<BakeReply>(ctx.env(), harness_->address_of("deployer"), "baked", query);
    if (!reply.ok()) throw sdk::ApplicationError("DeployerUnavailable", sim::to_string(reply.error()));
    if (!reply.value().landed) throw sdk::ApplicationError("NotLanded", "a cell of the ring does not run it", {}, true);
    return reply.value().remaining;
  });
  registry.activity("check_alerts", [this](ActivityContext& ctx, const std::string& release) {
    // A failed call is retried, never read as "no alerts" (fail static).
    sim::Result<AlertReply> reply =
        call_service<AlertReply>(ctx.env(), harness_->address_of("alerts"), "firing", AlertQuery{release});
    if (!reply.ok()) throw sdk::ApplicationError("AlertsUnavailable", sim::to_string(reply.error()));
    return reply.value().cells;
  });
  registry.workflow("rollout", [this](WorkflowContext& ctx, const Release& release) { return rollout(ctx, release); });
  registry.workflow("deploy_ring",
                    [this](WorkflowContext& ctx, const RingInput& input) { return deploy_ring(ctx, input); });

  harness.client("operator", [this, &harness](sdk::Client& client, sim::Env& env) {
    operator_client(harness, client, env);
  });
}

void RingRollout::operator_client(Harness& harness, sdk::Client& client, sim::Env& env) {
  workflow_id_ = "rollout/" + release_.id;
  sim::Result<engine::WorkflowExecution> run = sim::Error{sim::ErrorCode::kTimeout, "not started"};
  // The release must start: retry until acknowledged (the start is
  // idempotent by its request id).
  while (!run.ok() && env.sim().now() < harness.quiet_at()) {
    run = client.start("rollout", workflow_id_, release_, {.wait = 10min});
  }
  if (!run.ok()) return;
  const bool bad = bad_;
  harness.expect(run.value(), "rollout " + release_.id, [bad](const sdk::WorkflowOutcome<sdk::Payload>& outcome) {
    if (!outcome.completed() || !outcome.value) return std::string("the rollout completes");
    const std::string said = sdk::from_payload<std::string>(*outcome.value);
    if (bad != said.starts_with("rolled back")) {
      return fmt::format("a {} release said '{}'", bad ? "bad" : "good", said);
    }
    return std::string();
  });
  // The operator halts it some time during the first chaos phase, and
  // resumes it hours later.
  const auto halt_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(harness.shape().chaos).count());
  env.sleep_for(sim::Duration{static_cast<std::int64_t>(env.random().uniform(halt_ns))});
  if (!client.signal(run.value(), "halt", std::string("operator"), "halt/1", 1h).ok()) return;
  env.sleep_for(sim::Duration{std::chrono::hours{1 + env.random().uniform(6)}});
  (void)client.signal(run.value(), "resume", std::string("operator"), "resume/1", 6h);
}

bool RingRollout::halted_at(const std::string& release, sim::TimePoint at) const {
  bool halted = false;
  for (const FenceChange& change : deployer_->fence_log()) {
    if (change.at > at) break;
    if (change.release == release) halted = change.halted;
  }
  return halted;
}

void RingRollout::check_safety(Checker& checker) {
  const std::vector<DeployOperation>& operations = deployer_->operations();
  std::map<std::string, int> running;
  for (const DeployOperation& operation : operations) {
    if (operation.state == DeployState::kRunning) running[operation.cell]++;
    if (operation.rollback || operation.release != release_.id) continue;
    // Each operation is judged once at its start (ring order) and once at
    // its end (halt).
    const bool judge_start = checked_starts_.insert(operation.id).second;
    const bool judge_end = operation.state == DeployState::kSucceeded && checked_ends_.insert(operation.id).second;
    // halt: no operation finishes while halted — the workflow may accept a
    // halt only with nothing of its own in flight. (Starts need no check
    // here: the deployer's fence refuses them, so one could never fail.)
    if (judge_end) {
      checker.check(!halted_at(operation.release, operation.finished), "halt",
                    "operation {} finished {} on {} while it was halted", operation.id, operation.release,
                    operation.cell);
    }
    if (!judge_start) continue;
    // ring-order: the ring before finished this release and baked.
    const std::size_t ring = ring_of_.at(operation.cell);
    if (ring == 0) continue;
    for (const std::string& cell : release_.rings[ring - 1].cells) {
      sim::TimePoint finished = sim::TimePoint::max();
      for (const DeployOperation& before : operations) {
        if (before.cell == cell && before.release == release_.id && !before.rollback &&
            before.state == DeployState::kSucceeded && before.started < operation.started) {
          finished = std::min(finished, before.finished);
        }
      }
      if (finished == sim::TimePoint::max()) {
        checker.violate("ring-order", fmt::format("{} went to {} (ring {}) at {} before {} of ring {} had it",
                                                  release_.id, operation.cell, release_.rings[ring].number,
                                                  sim::format_duration(operation.started - sim::kDefaultStartTime), cell,
                                                  release_.rings[ring - 1].number));
      } else {
        checker.check(finished + bake_time(release_.kind) <= operation.started, "ring-order",
                      "{} went to {} (ring {}) at {}, {} after {} of ring {} had it: the bake is {}", release_.id,
                      operation.cell, release_.rings[ring].number,
                      sim::format_duration(operation.started - sim::kDefaultStartTime),
                      sim::format_duration(operation.started - finished), cell, release_.rings[ring - 1].number,
                      sim::format_duration(bake_time(release_.kind)));
      }
    }
  }
  for (const auto& [cell, count] : running) {
    checker.check(count <= 1, "one-change", "{} has {} operations in flight", cell, count);
  }
}

void RingRollout::check_end(Harness& harness, Checker& checker) {
  const sdk::WorkflowOutcome<sdk::Payload>* outcome = harness.outcome(workflow_id_);
  if (outcome == nullptr || !outcome->completed()) return;  // The outcome check said so.
  const std::string expected = bad_ ? release_.previous : release_.id;
  for (const auto& [cell, version] : deployer_->versions()) {
    checker.check(version == expected, "final-state", "{} runs {} at the end; a {} release leaves it on {}", cell,
                  version, bad_ ? "bad" : "good", expected);
  }
}

}  // namespace
}  // namespace duro::scenarios::ring_rollout

namespace duro::scenarios {

using namespace std::chrono_literals;

ScenarioDefinition ring_rollout_scenario() {
  ScenarioDefinition definition;
  definition.name = "ring-rollout";
  definition.summary =
      "a release rolls through rings 0, 1, 2, 5, 100 (a child workflow per ring, bakes of hours to days), halted "
      "and resumed by an operator, rolled back when a bad build alerts";
  definition.invariants = {
      "ring-order: a cell of ring r gets the release only after ring r-1 finished it and baked",
      "halt: no operation of the release finishes while it is halted (the fence refuses starts)",
      "one-change: at most one operation in flight per cell",
      "final-state: a good release ends on every cell; a bad one on none",
      "outcome: the rollout completes, saying whether it rolled back",
  };
  // Faults over the first day; the rollout may take up to about six days
  // (five rings of 24 h bakes, a halt of up to 6 h, deploys).
  definition.shape.chaos = 24h;
  // Days of mostly waiting: renew leases and heartbeat less often (an idle
  // cluster's events are mostly these). A crashed server's shards move
  // after about two minutes instead of seconds, nothing next to hours of
  // bake.
  definition.shape.server.renew_interval = 30s;
  definition.shape.server.lease = 2min;
  definition.shape.server.controller_interval = 30s;
  definition.shape.server.ack_interval = 30s;
  definition.shape.server.membership.interval = 30s;
  definition.shape.server.membership.ttl = 2min;
  definition.shape.server.long_poll_wait = 60s;
  definition.shape.worker_poll_timeout = 70s;
  definition.shape.liveness_bound = std::chrono::days{7};
  definition.make = [] { return std::make_unique<ring_rollout::RingRollout>(); };
  return definition;
}

}  // namespace duro::scenarios
