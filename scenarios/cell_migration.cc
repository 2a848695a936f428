// cell-migration: namespaces move between cells with different shard
// counts while their tenants keep writing, under crashes and partitions of
// the control plane and outages of the cells.
//
// Every namespace starts in the "daycare" cell (cell-1, 4 shards) and is
// moved twice by an operator, each time to one of the other cells (8 and 16
// shards; the 16-shard cell has room for two namespaces only, so some
// moves are refused and aborted cleanly). A move is one workflow:
//
//   add a passive replica in the target (it pulls the source about once a
//   second; workflow -> shard is hash mod shard count, so the target
//   re-maps every workflow) -> wait until it is nearly caught up -> drain
//   the source for a lease (it stops taking writes; if nobody hands it
//   over within the lease it takes writes again) -> wait until the target
//   holds the source's last write -> hand over at the next epoch (the
//   target takes over when it pulls the hand-over) -> wait for the target
//   to be active -> point DNS at it -> wait until DNS shows it -> remove
//   the source's replica.
//
// Each namespace's tenant writes all the while: it resolves the namespace
// through DNS (which propagates slowly), follows the cell's redirect when
// the namespace moved, and retries every write with the same write id
// until a cell accepts it.
//
// Invariants:
//   one-writer:       never two cells accepting writes for one namespace.
//   handover-window:  a namespace is without a writer only briefly (at
//                     most kWriterlessMax at a time) and never at the end.
//   no-loss:          the accepting replica holds every write a tenant was
//                     told was accepted, each once (no workflow lost or
//                     duplicated across shard re-maps).
//   same-histories:   a replica that took over holds, for every workflow
//                     of the replica it replaced, the same history (its
//                     writes may only continue it).
//   no-orphans:       at the end each namespace has one replica, in the
//                     cell DNS points at.
//   tenant-writes:    every tenant write was accepted by the end.
//   outcome:          every move closes, moved or aborted with a reason.
//   progress:         at least one namespace moved (a run without a move
//                     would check nothing).
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/sdk/activity_context.h"
#include "engine/sdk/workflow_context.h"
#include "scenarios/fakes/cell_service.h"
#include "scenarios/fakes/namespace_endpoint.h"
#include "scenarios/fakes/resource_service.h"
#include "scenarios/fakes/service_call.h"
#include "scenarios/harness.h"
#include "scenarios/registry.h"

// Named after the file, not anonymous: the library compiles several files
// to a unit (unity build), where the anonymous namespaces of different
// files are one and their same-named constants would collide.
namespace duro::scenarios::cell_migration {

struct MigrationRequest {
  std::string ns;
  std::string source;
  std::string target;
};
DURO_CODEC_FIELDS(MigrationRequest, ns, source, target);

struct MigrationResult {
  bool moved = false;
  std::string ns;
  std::string owner;  // Where the namespace is when the workflow ends.
  std::int64_t epoch = 0;
  std::string reason;  // Aborted: why.
};
DURO_CODEC_FIELDS(MigrationResult, moved, ns, owner, epoch, reason);

// What a cell said to a control-plane call that it refused.
struct CellAnswer {
  bool ok = false;
  std::string refusal;
  CellReplicaStatus status;
};
DURO_CODEC_FIELDS(CellAnswer, ok, refusal, status);

namespace {

using namespace std::chrono_literals;
using sdk::ActivityContext;
using sdk::WorkflowContext;

constexpr int kNamespaces = 4;
constexpr int kMovesPerNamespace = 2;
constexpr int kTenantWorkflows = 24;
constexpr const char* kDaycare = "cell-1";
// How long a drained source waits for its hand-over before it takes
// writes again.
constexpr sim::Duration kDrainLease = 60s;
constexpr sim::Duration kCellCallTimeout = 10s;
// The longest a namespace may be without a writer: a drain lease that runs
// out, plus a hand-over's pull while the source is in an outage (the
// profiles' outages are at most a minute), plus slack.
constexpr sim::Duration kWriterlessMax = 3min;
// How far behind the target may be when the drain starts (writes).
constexpr std::int64_t kCatchUpLagMax = 3;
// Bounds on the workflow's loops; each round sleeps, so these bound time.
constexpr int kCatchUpRoundsMax = 600;   // 2 s each: 20 minutes.
constexpr int kSwitchAttemptsMax = 8;
constexpr int kWaitRoundsMax = 1800;     // 1 s each: 30 minutes.
constexpr int kDnsRoundsMax = 360;       // 10 s each: an hour.

sdk::ActivityOptions cell_call_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 20s;
  options.retry.initial_interval = 1s;
  options.retry.maximum_interval = 10s;
  return options;
}

CellReplicaStatus status(WorkflowContext& ctx, const std::string& cell, const std::string& ns) {
  return ctx.activity<CellAnswer>("cell_status", CellCall{cell, ns, "", 0}, cell_call_options()).status;
}

MigrationResult aborted(WorkflowContext& ctx, const MigrationRequest& request, std::string reason) {
  // Leave nothing behind in the target: a passive replica we added goes.
  const CellReplicaStatus target = status(ctx, request.target, request.ns);
  if (target.found && target.role == ReplicaRole::kPassive && target.upstream == request.source) {
    ctx.activity<CellAnswer>("cell_remove", CellCall{request.target, request.ns, "", 0}, cell_call_options());
  }
  const CellReplicaStatus source = status(ctx, request.source, request.ns);
  return MigrationResult{.moved = false, .ns = request.ns, .owner = request.source, .epoch = source.epoch,
                         .reason = std::move(reason)};
}

// One move; see the file comment for its steps.
MigrationResult migrate(WorkflowContext& ctx, const MigrationRequest& request) {
  const sdk::ActivityOptions options = cell_call_options();
  const CellReplicaStatus source = status(ctx, request.source, request.ns);
  if (!source.found || source.role != ReplicaRole::kActive) {
    return MigrationResult{.moved = false, .ns = request.ns, .owner = "", .epoch = source.epoch,
                           .reason = fmt::format("{} does not own {}", request.source, request.ns)};
  }
  const CellAnswer added =
      ctx.activity<CellAnswer>("cell_add", CellCall{request.target, request.ns, request.source, 0}, options);
  if (!added.ok) {
    return MigrationResult{.moved = false, .ns = request.ns, .owner = request.source, .epoch = source.epoch,
                           .reason = "the target refused a replica: " + added.refusal};
  }
  // Catch up while the source still takes writes: the drain is then short.
  for (int round = 0; round < kCatchUpRoundsMax; round++) {
    const CellReplicaStatus target = status(ctx, request.target, request.ns);
    const CellReplicaStatus now = status(ctx, request.source, request.ns);
    if (now.version - target.version <= kCatchUpLagMax) break;
    ctx.sleep(2s);
  }
  for (int attempt = 0; attempt < kSwitchAttemptsMax; attempt++) {
    const CellAnswer drained =
        ctx.activity<CellAnswer>("cell_drain", CellCall{request.source, request.ns, "", 0}, options);
    if (!drained.ok) return aborted(ctx, request, "the source refused the drain: " + drained.refusal);
    // The source is frozen now: wait until the target holds its last write.
    bool caught_up = false;
    std::int64_t epoch = 0;
    for (int round = 0; round < kWaitRoundsMax; round++) {
      const CellReplicaStatus now = status(ctx, request.source, request.ns);
      if (now.role != ReplicaRole::kDraining) break;  // The lease ran out.
      const CellReplicaStatus target = status(ctx, request.target, request.ns);
      if (target.version == now.version) {
        caught_up = true;
        epoch = now.epoch + 1;
        break;
      }
      ctx.sleep(1s);
    }
    if (!caught_up) continue;
    const CellAnswer handed =
        ctx.activity<CellAnswer>("cell_hand_over", CellCall{request.source, request.ns, request.target, epoch}, options);
    if (!handed.ok) continue;  // The lease ran out first: drain again.
    // The target takes over when it pulls the hand-over.
    bool active = false;
    for (int round = 0; round < kWaitRoundsMax && !active; round++) {
      const CellReplicaStatus target = status(ctx, request.target, request.ns);
      active = target.role == ReplicaRole::kActive && target.epoch == epoch;
      if (!active) ctx.sleep(1s);
    }
    if (!active) throw sdk::ApplicationError("HandOverStuck", "the target never took the namespace over");
    ctx.activity<bool>("dns_point", DnsPoint{request.ns, request.target, epoch}, options);
    bool visible = false;
    for (int round = 0; round < kDnsRoundsMax && !visible; round++) {
      visible = ctx.activity<std::string>("dns_resolve", request.ns, options) == request.target;
      if (!visible) ctx.sleep(10s);
    }
    // Tenants with a stale answer reach the source, which redirects them:
    // it goes only once DNS shows the target.
    if (!visible) throw sdk::ApplicationError("DnsStuck", "DNS never showed the target");
    ctx.activity<CellAnswer>("cell_remove", CellCall{request.source, request.ns, "", 0}, options);
    return MigrationResult{.moved = true, .ns = request.ns, .owner = request.target, .epoch = epoch, .reason = ""};
  }
  return aborted(ctx, request, "no hand-over within the drain lease");
}

class CellMigration final : public Scenario {
 public:
  void setup(Harness& harness) override;
  void check_safety(Checker& checker) override;
  void check_end(Harness& harness, Checker& checker) override;

 private:
  void register_activities(Harness& harness);
  void operator_client(Harness& harness, sdk::Client& client, sim::Env& env, int index);
  void tenant(Harness& harness, sim::Env& env, int index);

  std::vector<CellService*> cells_;
  ResourceService* dns_ = nullptr;
  std::vector<std::string> namespaces_;
  // Namespace -> write id -> workflow, for writes a cell accepted.
  std::map<std::string, std::map<std::string, std::string>> acked_;
  std::map<std::string, std::int64_t> unacked_;  // Writes never accepted.
  std::map<std::string, sim::TimePoint> writerless_since_;
  // Namespace -> the writer (cell, epoch) the last check saw: the content
  // checks run when it changes (a write only adds to the writer's replica).
  std::map<std::string, std::pair<std::string, std::int64_t>> writer_seen_;
  bool checking_end_ = false;
  int moves_ = 0;
  Harness* harness_ = nullptr;
};

void CellMigration::setup(Harness& harness) {
  harness_ = &harness;
  sim::Random& random = harness.random();
  FailureModel flaky{.server_error_probability = 0.03, .timeout_after_apply_probability = 0.02};
  const std::uint32_t shard_counts[] = {4, 8, 16};
  const std::size_t capacities[] = {8, 4, 2};
  for (int i = 0; i < 3; i++) {
    cells_.push_back(&harness.add_service<CellService>(
        fmt::format("cell-{}", i + 1), flaky.draw(random),
        CellOptions{.shard_count = shard_counts[i], .namespaces_max = capacities[i], .pull_interval = 1s,
                    .workflows_max = 1000, .writes_per_workflow_max = 10'000}));
  }
  for (CellService* cell : cells_) {
    for (CellService* peer : cells_) {
      if (peer != cell) cell->add_peer(peer->name(), harness.address_of(peer->name()));
    }
  }
  dns_ = &harness.add_service<ResourceService>(
      "dns", flaky.draw(random), ResourceOptions{.capacity = 0, .propagation_min = 5s, .propagation_max = 90s,
                                                 .idempotency_keys_max = 1 << 20});
  for (int i = 1; i <= kNamespaces; i++) {
    const std::string ns = fmt::format("ns-{}", i);
    namespaces_.push_back(ns);
    cells_[0]->place(ns);
    dns_->preload(ns, kDaycare, std::string(kNamespaceDnsOwner));
  }
  harness.registry().workflow("migrate_namespace", migrate);
  register_activities(harness);
  for (int i = 0; i < kNamespaces; i++) {
    harness.client(fmt::format("operator-{}", i + 1), [this, &harness, i](sdk::Client& client, sim::Env& env) {
      operator_client(harness, client, env, i);
    });
    harness.client(fmt::format("tenant-{}", i + 1),
                   [this, &harness, i](sdk::Client&, sim::Env& env) { tenant(harness, env, i); });
  }
}

void CellMigration::register_activities(Harness& harness) {
  sdk::Registry& registry = harness.registry();
  // A cell's refusal (kInvalidArgument, kAlreadyExists, kNoSpace,
  // kNotFound) is an answer for the workflow to judge; unavailability
  // throws and is retried.
  auto answer = [](sim::Result<CellReplicaStatus> reply) {
    if (reply.ok()) return CellAnswer{.ok = true, .refusal = "", .status = reply.value()};
    return CellAnswer{.ok = false, .refusal = sim::to_string(reply.error()), .status = CellReplicaStatus{}};
  };
  auto cell_method = [&harness, answer](std::string method) {
    return [&harness, answer, method](ActivityContext& ctx, const CellCall& call) {
      return answer(call_cell(ctx.env(), harness.address_of(call.cell), method, call, kDrainLease, kCellCallTimeout));
    };
  };
  for (const char* method : {"add", "drain", "hand_over", "status", "remove"}) {
    registry.activity(std::string("cell_") + method, cell_method(method));
  }
  registry.activity("dns_point", [&harness](ActivityContext& ctx, const DnsPoint& point) {
    return point_namespace_dns(ctx.env(), harness.address_of("dns"), point.ns, point.cell, point.epoch,
                               ctx.idempotency_key());
  });
  registry.activity("dns_resolve", [&harness](ActivityContext& ctx, const std::string& ns) {
    return resolve_namespace_dns(ctx.env(), harness.address_of("dns"), ns);
  });
}

void CellMigration::operator_client(Harness& harness, sdk::Client& client, sim::Env& env, int index) {
  const std::string ns = namespaces_[static_cast<std::size_t>(index)];
  std::string owner = kDaycare;
  const auto chaos_ns = std::chrono::nanoseconds(harness.shape().chaos).count();
  for (int move = 1; move <= kMovesPerNamespace; move++) {
    env.sleep_for(sim::Duration{env.random().uniform_range(chaos_ns / 20, chaos_ns / 3)});
    // Any cell but the owner; the operator's view of the owner is the
    // last move's result.
    std::vector<std::string> targets;
    for (const CellService* cell : cells_) {
      if (cell->name() != owner) targets.push_back(cell->name());
    }
    const std::string target = targets[env.random().uniform(targets.size())];
    const std::string workflow_id = fmt::format("migrate/{}/{}", ns, move);
    sim::Result<engine::WorkflowExecution> run = sim::Error{sim::ErrorCode::kTimeout, "not started"};
    for (int tries = 0; tries < 1000 && !run.ok() && env.sim().now() < harness.live_by(); tries++) {
      run = client.start("migrate_namespace", workflow_id, MigrationRequest{ns, owner, target});
    }
    if (!run.ok()) return;
    harness.expect(run.value(), "move " + ns, [](const sdk::WorkflowOutcome<sdk::Payload>& outcome) -> std::string {
      if (!outcome.completed() || !outcome.value) return "a move completes, moved or aborted";
      const MigrationResult result = sdk::from_payload<MigrationResult>(*outcome.value);
      if (!result.moved && result.reason.empty()) return "an aborted move says why";
      return "";
    });
    sim::Result<sdk::WorkflowOutcome<MigrationResult>> outcome =
        client.result<MigrationResult>(run.value(), harness.live_by());
    if (!outcome.ok() || !outcome.value().completed() || !outcome.value().value) return;
    if (outcome.value().value->moved) {
      owner = outcome.value().value->owner;
      moves_++;
    }
  }
}

void CellMigration::tenant(Harness& harness, sim::Env& env, int index) {
  const std::string ns = namespaces_[static_cast<std::size_t>(index)];
  NamespaceEndpoint endpoint(ns, kDaycare, [&harness](std::string_view name) { return harness.address_of(name); });
  constexpr int kWritesMax = 100'000;
  for (int seq = 1; seq <= kWritesMax && env.sim().now() < harness.quiet_at(); seq++) {
    env.sleep_for(sim::Duration{env.random().uniform_range(std::chrono::nanoseconds(500ms).count(),
                                                           std::chrono::nanoseconds(4s).count())});
    const std::string workflow_id = fmt::format("{}/wf-{}", ns, env.random().uniform(kTenantWorkflows));
    const CellWrite request{ns, workflow_id, fmt::format("{}/w{}", ns, seq)};
    if (endpoint.write(env, request, harness.live_by())) {
      acked_[ns][request.write_id] = workflow_id;
    } else {
      unacked_[ns]++;
    }
  }
}

void CellMigration::check_safety(Checker& checker) {
  const sim::TimePoint now = harness_->world().sim().now();
  for (const std::string& ns : namespaces_) {
    std::vector<const CellService*> writers;
    for (const CellService* cell : cells_) {
      const Replica* replica = cell->replica(ns);
      if (replica != nullptr && replica->accepting()) writers.push_back(cell);
    }
    checker.check(writers.size() <= 1, "one-writer", "{} is accepting writes in {} cells", ns, writers.size());
    if (writers.empty()) {
      writerless_since_.try_emplace(ns, now);
    } else if (auto since = writerless_since_.find(ns); since != writerless_since_.end()) {
      checker.check(now - since->second <= kWriterlessMax, "handover-window", "{} had no writer for {}", ns,
                    sim::format_duration(now - since->second));
      writerless_since_.erase(since);
    }
    for (const CellService* writer : writers) {
      const Replica& replica = *writer->replica(ns);
      auto seen = std::make_pair(writer->name(), replica.epoch);
      if (writer_seen_[ns] == seen && !checking_end_) continue;
      writer_seen_[ns] = seen;
      const auto workflows = CellService::workflows_of(replica);
      std::size_t events = 0;
      for (const auto& [workflow_id, writes] : workflows) events += writes.size();
      checker.check(events == replica.write_ids.size(), "no-loss", "{} in {}: {} events for {} distinct writes", ns,
                    writer->name(), events, replica.write_ids.size());
      for (const auto& [write_id, workflow_id] : acked_[ns]) {
        if (!checker.check(replica.write_ids.contains(write_id), "no-loss",
                           "{} in {} lost accepted write {} (workflow {})", ns, writer->name(), write_id,
                           workflow_id)) {
          break;
        }
      }
      // Every replica this one replaced: the same histories, continued.
      for (const CellService* old_cell : cells_) {
        const Replica* old = old_cell->replica(ns);
        if (old == nullptr || old->role != ReplicaRole::kRetired || old->handed_to != writer->name() ||
            old->epoch != replica.epoch) {
          continue;
        }
        for (const auto& [workflow_id, writes] : CellService::workflows_of(*old)) {
          auto now_writes = workflows.find(workflow_id);
          const bool continued = now_writes != workflows.end() && now_writes->second.size() >= writes.size() &&
                                 std::equal(writes.begin(), writes.end(), now_writes->second.begin());
          if (!checker.check(continued, "same-histories", "{}: workflow {} had {} events in {}, {} in {}", ns,
                             workflow_id, writes.size(), old_cell->name(),
                             now_writes == workflows.end() ? std::size_t{0} : now_writes->second.size(),
                             writer->name())) {
            break;
          }
        }
      }
    }
  }
}

void CellMigration::check_end(Harness&, Checker& checker) {
  checking_end_ = true;
  check_safety(checker);
  for (const std::string& ns : namespaces_) {
    std::vector<std::string> holders;
    std::string writer;
    for (const CellService* cell : cells_) {
      const Replica* replica = cell->replica(ns);
      if (replica == nullptr) continue;
      holders.push_back(fmt::format("{} ({})", cell->name(), replica_role_name(replica->role)));
      if (replica->accepting()) writer = cell->name();
    }
    checker.check(!writer.empty(), "handover-window", "{} has no writer at the end", ns);
    const Record* dns = dns_->find(ns);
    checker.check(holders.size() == 1 && dns != nullptr && dns->value == writer, "no-orphans",
                  "{}: replicas in [{}], DNS points at {}", ns, fmt::join(holders, ", "),
                  dns == nullptr ? "nothing" : dns->value);
    checker.check(unacked_[ns] == 0, "tenant-writes", "{}: {} tenant writes were never accepted", ns, unacked_[ns]);
  }
  checker.check(moves_ > 0, "progress", "no namespace moved: the run checked no hand-over");
}

}  // namespace
}  // namespace duro::scenarios::cell_migration

namespace duro::scenarios {

using namespace std::chrono_literals;

ScenarioDefinition cell_migration_scenario() {
  ScenarioDefinition definition;
  definition.name = "cell-migration";
  definition.summary =
      "namespaces move between cells with different shard counts (replicate, catch up, drain, hand over, switch "
      "DNS, remove the source) while their tenants keep writing";
  definition.invariants = {
      "one-writer: never two cells accepting writes for one namespace",
      "handover-window: no writer only briefly (at most 3 min at a time), never at the end",
      "no-loss: the accepting replica holds every accepted write, once",
      "same-histories: a replica that took over continues every history of the one it replaced",
      "no-orphans: at the end one replica per namespace, where DNS points",
      "tenant-writes: every tenant write accepted by the end",
      "outcome: every move closes, moved or aborted with a reason",
      "progress: at least one namespace moved",
  };
  definition.shape.chaos = 20min;
  definition.shape.liveness_bound = 40min;
  definition.make = [] { return std::make_unique<cell_migration::CellMigration>(); };
  return definition;
}

}  // namespace duro::scenarios
