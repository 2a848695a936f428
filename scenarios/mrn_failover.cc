// mrn-failover: multi-region namespaces. Each namespace has two replicas,
// active in cell-east and passive in cell-west (asynchronous replication,
// a pull about once a second). A failover controller — one long-lived
// workflow per namespace — probes the active replica every 10 s; after
// three failed probes it fails over: gracefully first (drain, wait until
// the replica holds the last write, hand over), forced if that is not done
// within 10 s (promote the replica at the next epoch; the old active may
// still take writes from tenants that reach it: split brain). Each
// failover bumps the epoch and repoints DNS. Once the old active is
// reachable again the controller demotes it (it re-syncs from the new
// active, and writes only it took are dropped: conflict resolution, the
// newer epoch wins); once it has been healthy for five minutes the
// controller fails back to the home region, gracefully. A budget stops
// ping-pong: at most kFailoversPerWindowMax failovers an hour.
//
// The fault: a scripted partition cuts cell-east off from the control
// plane (the workers) and from cell-west for 8 to 15 minutes, while the
// tenants can still reach it; the profile's faults come on top.
//
// Invariants:
//   epoch-increases:  each replica that becomes active does so at an
//                     epoch above every epoch active before it.
//   one-open-run:     after healing, one active replica per namespace and
//                     at most one open run per workflow id.
//   replicas:         every namespace has a replica in 2 or 3 cells, always.
//   no-ping-pong:     at most kFailoversPerWindowMax failovers per hour
//                     of the controller's time: its shard's clock, which
//                     runs ahead of true time once clock jumps and
//                     takeovers have moved it.
//   graceful-keeps:   a replica that took over by hand-over holds every
//                     write of the one it replaced (nothing acknowledged is
//                     lost in a graceful failover).
//   failover:         a partition of the region holding the active replica
//                     that lasts past the bound (6 minutes, plus each store
//                     outage in them and its recovery) is answered by a
//                     failover, unless the failover budget was spent when
//                     the cut came.
//   dns-follows:      at the end DNS points at the active replica.
//   outcome:          every controller closes, completed, when stopped.
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
#include "scenarios/fakes/cell_service.h"
#include "scenarios/fakes/namespace_endpoint.h"
#include "scenarios/fakes/resource_service.h"
#include "scenarios/fakes/service_call.h"
#include "scenarios/harness.h"
#include "engine/server/server_node.h"
#include "scenarios/registry.h"

// Named after the file, not anonymous: the library compiles several files
// to a unit (unity build), where the anonymous namespaces of different
// files are one and their same-named constants would collide.
namespace duro::scenarios::mrn_failover {

struct FailoverState {
  std::string ns;
  std::string home;       // The region the namespace lives in when healthy.
  std::string primary;    // The cell the controller made active.
  std::string secondary;
  std::int64_t epoch = 1;
  std::string demote;     // An old active still to demote (after a forced failover).
  std::vector<std::int64_t> failover_times_ns;  // Since the workflow's start, for the budget.
  std::int64_t failovers = 0;
  std::int64_t forced = 0;
  std::int64_t runs = 1;
  bool stopping = false;
};
DURO_CODEC_FIELDS(FailoverState, ns, home, primary, secondary, epoch, demote, failover_times_ns, failovers, forced,
                  runs, stopping);

namespace {

using namespace std::chrono_literals;
using sdk::ActivityContext;
using sdk::WorkflowContext;

constexpr int kNamespaces = 2;
constexpr int kTenantWorkflows = 10;
constexpr const char* kEast = "cell-east";
constexpr const char* kWest = "cell-west";
constexpr sim::Duration kProbeInterval = 10s;
constexpr int kUnhealthyProbes = 3;
constexpr sim::Duration kGracefulBound = 10s;
constexpr int kFailBackHealthyProbes = 30;  // Five minutes of health.
constexpr int kFailoversPerWindowMax = 4;
constexpr sim::Duration kFailoverWindow = 1h;
constexpr int kRoundsPerRun = 60;           // Then continue as new.
constexpr int kActiveWaitRoundsMax = 30;    // 1 s each.
// A partition of the active region longer than this must see a failover:
// three probes, a graceful attempt, a forced one, with room for the
// control plane's own faults.
constexpr sim::Duration kFailoverDue = 6min;
constexpr sim::Duration kPartitionMin = 8min;
constexpr sim::Duration kPartitionMax = 15min;
// Shorter than a probe's start-to-close: a probe fails by itself, not by
// the activity timing out.
constexpr sim::Duration kCellCallTimeout = 3s;
// A graceful failover's drain: if the hand-over does not follow, the old
// active takes writes again after this (or when resumed).
constexpr sim::Duration kDrainLease = 30s;

// One try, short: a probe that fails is the signal.
sdk::ActivityOptions probe_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 5s;
  options.retry.maximum_attempts = 1;
  return options;
}

// Retried until it lands: steps that must happen.
sdk::ActivityOptions must_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 10s;
  options.retry.initial_interval = 1s;
  options.retry.maximum_interval = 10s;
  return options;
}

// The replica's status, or nothing if the cell cannot be reached now.
std::optional<CellReplicaStatus> probe(WorkflowContext& ctx, const std::string& cell, const std::string& ns) {
  try {
    return ctx.activity<CellReplicaStatus>("region_status", CellCall{cell, ns, "", 0}, probe_options());
  } catch (const sdk::ActivityError&) {
    return std::nullopt;
  }
}

// A one-try step; false if it failed or the cell refused.
bool try_step(WorkflowContext& ctx, const char* activity, CellCall call) {
  try {
    return ctx.activity<bool>(activity, call, probe_options());
  } catch (const sdk::ActivityError&) {
    return false;
  }
}

bool within_budget(WorkflowContext& ctx, const FailoverState& state) {
  const std::int64_t now_ns = std::chrono::nanoseconds(ctx.now().time_since_epoch()).count();
  const std::int64_t window_ns = std::chrono::nanoseconds(kFailoverWindow).count();
  const auto recent = std::count_if(state.failover_times_ns.begin(), state.failover_times_ns.end(),
                                    [&](std::int64_t at) { return now_ns - at < window_ns; });
  return recent < kFailoversPerWindowMax;
}

// Moves the namespace from state.primary to state.secondary at the next
// epoch: gracefully if that is done within kGracefulBound, else (if
// `force_ok`) by promotion. False if nothing changed.
bool fail_over(WorkflowContext& ctx, FailoverState& state, bool force_ok) {
  const std::int64_t epoch = state.epoch + 1;
  const sim::TimePoint give_up = ctx.now() + kGracefulBound;
  bool handed = false;
  if (try_step(ctx, "region_drain", CellCall{state.primary, state.ns, "", 0})) {
    while (!handed && ctx.now() < give_up) {
      const auto from = probe(ctx, state.primary, state.ns);
      const auto to = probe(ctx, state.secondary, state.ns);
      if (from && to && from->role == ReplicaRole::kDraining && to->version == from->version) {
        handed = try_step(ctx, "region_hand_over", CellCall{state.primary, state.ns, state.secondary, epoch});
      }
      if (!handed) ctx.sleep(1s);
    }
  }
  bool active = false;
  if (handed) {
    // The replica takes over when it pulls the hand-over.
    for (int round = 0; round < kActiveWaitRoundsMax && !active; round++) {
      const auto to = probe(ctx, state.secondary, state.ns);
      active = to && to->role == ReplicaRole::kActive && to->epoch == epoch;
      if (!active) ctx.sleep(1s);
    }
  }
  if (!handed && !force_ok) {
    // Give the drain up: the primary takes writes again now rather than
    // when its lease ends (if this fails, the lease ends it).
    try_step(ctx, "region_resume", CellCall{state.primary, state.ns, "", 0});
    return false;
  }
  bool forced = false;
  if (!active) {
    // Forced: the old active may still take writes until it is demoted.
    // A refusal means the replica is at this epoch or newer already, which
    // only this controller makes: nothing to do but report it.
    if (!ctx.activity<bool>("region_promote", CellCall{state.secondary, state.ns, "", epoch}, must_options())) {
      throw sdk::ApplicationError("EpochConflict", fmt::format("{} refused epoch {}", state.secondary, epoch));
    }
    forced = true;
  }
  ctx.activity<bool>("region_dns", DnsPoint{state.ns, state.secondary, epoch}, must_options());
  std::swap(state.primary, state.secondary);
  state.epoch = epoch;
  // An old active still to demote that is now the primary needs no demotion.
  if (state.demote == state.primary) state.demote.clear();
  if (forced) state.demote = state.secondary;
  state.failovers++;
  state.forced += forced ? 1 : 0;
  state.failover_times_ns.push_back(std::chrono::nanoseconds(ctx.now().time_since_epoch()).count());
  // Only the window's worth is needed for the budget.
  if (state.failover_times_ns.size() > static_cast<std::size_t>(kFailoversPerWindowMax)) {
    state.failover_times_ns.erase(state.failover_times_ns.begin());
  }
  return true;
}

FailoverState controller(WorkflowContext& ctx, FailoverState state) {
  ctx.on_signal<bool>("stop", [&](bool) { state.stopping = true; });
  ctx.on_query<FailoverState>("state", [&] { return state; });
  int unhealthy = 0;
  int home_healthy = 0;
  for (int round = 0; round < kRoundsPerRun; round++) {
    const auto primary = probe(ctx, state.primary, state.ns);
    const bool healthy = primary && primary->role == ReplicaRole::kActive;
    // Stop only at rest: the primary taking writes, nothing to demote.
    if (state.stopping && state.demote.empty() && healthy) return state;
    unhealthy = healthy ? 0 : unhealthy + 1;
    if (unhealthy >= kUnhealthyProbes && !state.stopping && within_budget(ctx, state)) {
      if (fail_over(ctx, state, /*force_ok=*/true)) unhealthy = 0;
      home_healthy = 0;
    }
    if (!state.demote.empty()) {
      // The old active re-syncs from the new one; until then it may take
      // writes nobody will keep.
      if (try_step(ctx, "region_demote", CellCall{state.demote, state.ns, state.primary, state.epoch})) {
        state.demote.clear();
      }
    } else if (state.primary != state.home && !state.stopping) {
      const auto home = probe(ctx, state.home, state.ns);
      home_healthy = home && home->role == ReplicaRole::kPassive ? home_healthy + 1 : 0;
      if (home_healthy >= kFailBackHealthyProbes && within_budget(ctx, state)) {
        // Fail back only gracefully: the home region is healthy, so no
        // write need be given up for it.
        fail_over(ctx, state, /*force_ok=*/false);
        home_healthy = 0;
      }
    }
    ctx.sleep(kProbeInterval);
  }
  state.runs++;
  ctx.continue_as_new(state);
}

// A tenant's view of one workflow id: the run it believes open.
struct TenantWorkflow {
  int run = 0;
  bool open = false;
  int events = 0;
};

class MrnFailover final : public Scenario {
 public:
  void setup(Harness& harness) override;
  void check_safety(Checker& checker) override;
  void check_end(Harness& harness, Checker& checker) override;

 private:
  void register_activities(Harness& harness);
  void operator_client(Harness& harness, sdk::Client& client, sim::Env& env, int index);
  void tenant(Harness& harness, sim::Env& env, int index);
  // Workflow id -> its open run ids, over the active replicas of `ns`.
  std::map<std::string, std::set<std::string>> open_runs(const std::string& ns) const;
  // How far the clock that times ns's controller runs ahead of true time:
  // its now() is its task's start in history, stamped by the shard's clock
  // (engine/server/shard_clock.h), which takes a new owner's clock when a
  // server takes the shard over and never goes back. So clock jumps move
  // the controller's time only through takeovers, and its budget's hour
  // in true time is shorter by what this skew grew within it. Read off
  // the shard's owner; nothing when the shard has none now.
  std::optional<sim::Duration> controller_skew(const std::string& ns) const;
  // The last skew sampled at or before `at` (0 before any).
  sim::Duration skew_at(const std::string& ns, sim::TimePoint at) const;
  // When a failover is due if the controller may start one at `from`:
  // kFailoverDue of time the control plane could work in. Each store
  // outage (crash to restart, and the servers' recovery) lengthens it.
  sim::TimePoint failover_due(sim::TimePoint from) const;

  Harness* harness_ = nullptr;
  std::vector<CellService*> cells_;
  ResourceService* dns_ = nullptr;
  std::vector<std::string> namespaces_;
  sim::Duration partition_at_{};
  // Namespace -> the (cell, epoch) pairs seen active, and the top epoch.
  std::map<std::string, std::set<std::pair<std::string, std::int64_t>>> actives_seen_;
  std::map<std::string, std::int64_t> top_epoch_;
  // Namespace -> when a replica became active, and where.
  std::map<std::string, std::vector<std::pair<sim::TimePoint, std::string>>> activations_;
  // The server nodes, for controller_skew (named once, not per check).
  std::vector<sim::NodeId> servers_;
  // Namespace -> (true time, skew) each time the sampled skew changed.
  std::map<std::string, std::vector<std::pair<sim::TimePoint, sim::Duration>>> skews_;
};

void MrnFailover::setup(Harness& harness) {
  harness_ = &harness;
  // Bounded: the harness names its servers server-1, server-2, ...
  constexpr int kServersMax = 64;
  for (int i = 1; i <= kServersMax; i++) {
    const sim::NodeId node = harness.world().node_named(fmt::format("server-{}", i));
    if (node == sim::kNoNode) break;
    servers_.push_back(node);
  }
  sim::Random& random = harness.random();
  FailureModel flaky{.server_error_probability = 0.02, .timeout_after_apply_probability = 0.01};
  for (const char* name : {kEast, kWest}) {
    cells_.push_back(&harness.add_service<CellService>(
        name, flaky.draw(random),
        CellOptions{.shard_count = 8, .namespaces_max = 4, .pull_interval = 1s, .workflows_max = 1000,
                    .writes_per_workflow_max = 10'000}));
  }
  cells_[0]->add_peer(kWest, harness.address_of(kWest));
  cells_[1]->add_peer(kEast, harness.address_of(kEast));
  dns_ = &harness.add_service<ResourceService>(
      "dns", flaky.draw(random), ResourceOptions{.capacity = 0, .propagation_min = 30s, .propagation_max = 2min,
                                                 .idempotency_keys_max = 1 << 20});
  for (int i = 1; i <= kNamespaces; i++) {
    const std::string ns = fmt::format("mrn-{}", i);
    namespaces_.push_back(ns);
    cells_[0]->place(ns);
    cells_[1]->place(ns, kEast);
    dns_->preload(ns, kEast, std::string(kNamespaceDnsOwner));
    actives_seen_[ns].emplace(kEast, 1);
    top_epoch_[ns] = 1;
  }
  // The region partition: east keeps its tenants, loses the control plane
  // and its peer.
  const auto chaos_ns = std::chrono::nanoseconds(harness.shape().chaos).count();
  partition_at_ = sim::Duration{random.uniform_range(chaos_ns / 8, chaos_ns / 3)};
  const auto length_ns = random.uniform_range(std::chrono::nanoseconds(kPartitionMin).count(),
                                              std::chrono::nanoseconds(kPartitionMax).count());
  sim::FaultAction cut;
  cut.at = partition_at_;
  cut.kind = sim::FaultKind::kPartition;
  cut.nodes = {kEast};
  cut.others = {kWest};
  for (int i = 1; i <= harness.shape().workers; i++) cut.others.push_back(fmt::format("worker-{}", i));
  harness.script_partition(cut, partition_at_ + sim::Duration{length_ns});

  harness.registry().workflow("failover_controller", controller);
  register_activities(harness);
  for (int i = 0; i < kNamespaces; i++) {
    harness.client(fmt::format("operator-{}", i + 1), [this, &harness, i](sdk::Client& client, sim::Env& env) {
      operator_client(harness, client, env, i);
    });
    harness.client(fmt::format("tenant-{}", i + 1),
                   [this, &harness, i](sdk::Client&, sim::Env& env) { tenant(harness, env, i); });
  }
}

void MrnFailover::register_activities(Harness& harness) {
  sdk::Registry& registry = harness.registry();
  registry.activity("region_status", [&harness](ActivityContext& ctx, const CellCall& call) {
    sim::Result<CellReplicaStatus> reply =
        call_cell(ctx.env(), harness.address_of(call.cell), "status", call, kDrainLease, kCellCallTimeout);
    if (!reply.ok()) throw sdk::ApplicationError("CellError", sim::to_string(reply.error()));
    return reply.value();
  });
  // A refusal is an answer (false); unavailability throws.
  auto step = [&harness](const char* method) {
    return [&harness, method](ActivityContext& ctx, const CellCall& call) {
      return call_cell(ctx.env(), harness.address_of(call.cell), method, call, kDrainLease, kCellCallTimeout).ok();
    };
  };
  for (const char* method : {"drain", "resume", "hand_over", "promote", "demote"}) {
    registry.activity(std::string("region_") + method, step(method));
  }
  registry.activity("region_dns", [&harness](ActivityContext& ctx, const DnsPoint& point) {
    return point_namespace_dns(ctx.env(), harness.address_of("dns"), point.ns, point.cell, point.epoch,
                               ctx.idempotency_key());
  });
}

void MrnFailover::operator_client(Harness& harness, sdk::Client& client, sim::Env& env, int index) {
  const std::string ns = namespaces_[static_cast<std::size_t>(index)];
  const std::string workflow_id = "mrn/" + ns;
  sim::Result<engine::WorkflowExecution> run = sim::Error{sim::ErrorCode::kTimeout, "not started"};
  for (int tries = 0; tries < 1000 && !run.ok() && env.sim().now() < harness.quiet_at(); tries++) {
    run = client.start("failover_controller", workflow_id,
                       FailoverState{.ns = ns, .home = kEast, .primary = kEast, .secondary = kWest, .epoch = 1,
                                     .demote = "", .failover_times_ns = {}, .failovers = 0, .forced = 0, .runs = 1,
                                     .stopping = false});
  }
  if (!run.ok()) return;
  harness.expect(run.value(), "controller " + ns, [](const sdk::WorkflowOutcome<sdk::Payload>& outcome) -> std::string {
    if (!outcome.completed() || !outcome.value) return "the controller completes when stopped";
    const FailoverState state = sdk::from_payload<FailoverState>(*outcome.value);
    if (!state.demote.empty()) return "it stopped with " + state.demote + " not demoted";
    return "";
  });
  // The controller runs through chaos; the operator stops it once quiet.
  if (env.sim().now() < harness.quiet_at()) env.sleep_for(harness.quiet_at() - env.sim().now());
  const engine::WorkflowExecution controller{workflow_id, ""};
  for (int tries = 0; tries < 10'000 && env.sim().now() < harness.live_by(); tries++) {
    if (client.signal(controller, "stop", true, "stop/" + ns, 2min).ok()) break;
  }
}

void MrnFailover::tenant(Harness& harness, sim::Env& env, int index) {
  const std::string ns = namespaces_[static_cast<std::size_t>(index)];
  NamespaceEndpoint endpoint(ns, kEast, [&harness](std::string_view name) { return harness.address_of(name); });
  std::map<std::string, TenantWorkflow> workflows;
  constexpr int kWritesMax = 100'000;
  for (int seq = 1; seq <= kWritesMax && env.sim().now() < harness.quiet_at(); seq++) {
    env.sleep_for(sim::Duration{env.random().uniform_range(std::chrono::nanoseconds(1s).count(),
                                                           std::chrono::nanoseconds(6s).count())});
    const std::string workflow_id = fmt::format("{}/wf-{}", ns, env.random().uniform(kTenantWorkflows));
    TenantWorkflow& workflow = workflows[workflow_id];
    std::string write_id;
    if (!workflow.open) {
      workflow.run++;
      write_id = fmt::format("{}:start:{}", workflow_id, workflow.run);
    } else if (workflow.events >= 3 && env.random().bernoulli(0.3)) {
      write_id = fmt::format("{}:close:{}", workflow_id, workflow.run);
    } else {
      write_id = fmt::format("{}:event:{}:{}", workflow_id, workflow.run, ++workflow.events);
    }
    // A write that no cell accepted (the run ends first) changes nothing.
    if (!endpoint.write(env, CellWrite{ns, workflow_id, write_id}, harness.quiet_at())) continue;
    if (write_id.find(":start:") != std::string::npos) {
      workflow.open = true;
      workflow.events = 0;
    } else if (write_id.find(":close:") != std::string::npos) {
      workflow.open = false;
    }
  }
}

std::map<std::string, std::set<std::string>> MrnFailover::open_runs(const std::string& ns) const {
  std::map<std::string, std::set<std::string>> open;
  for (const CellService* cell : cells_) {
    const Replica* replica = cell->replica(ns);
    if (replica == nullptr || !replica->accepting()) continue;
    for (const auto& [workflow_id, writes] : CellService::workflows_of(*replica)) {
      // The open run is the last start not followed by its close.
      std::string run;
      for (const std::string& write : writes) {
        if (write.find(":start:") != std::string::npos) run = write.substr(write.rfind(':') + 1);
        if (write.find(":close:") != std::string::npos && write.substr(write.rfind(':') + 1) == run) run.clear();
      }
      if (!run.empty()) open[workflow_id].insert(fmt::format("{}@{}", run, cell->name()));
    }
  }
  return open;
}

std::optional<sim::Duration> MrnFailover::controller_skew(const std::string& ns) const {
  sim::World& world = harness_->world();
  const std::string workflow_id = "mrn/" + ns;
  for (const sim::NodeId node : servers_) {
    if (!world.sim().is_up(node)) continue;
    auto* server = dynamic_cast<engine::ServerNode*>(world.sim().process(node));
    if (server == nullptr) continue;
    const std::shared_ptr<engine::Shard> shard = server->shards().shard_for_workflow(workflow_id);
    if (shard != nullptr && shard->active()) return shard->now() - world.sim().now();
  }
  return std::nullopt;
}

sim::Duration MrnFailover::skew_at(const std::string& ns, sim::TimePoint at) const {
  const auto found = skews_.find(ns);
  if (found == skews_.end()) return sim::Duration{0};
  sim::Duration skew{0};
  for (const auto& [sampled_at, sampled] : found->second) {
    if (sampled_at > at) break;
    skew = sampled;
  }
  return skew;
}

sim::TimePoint MrnFailover::failover_due(sim::TimePoint from) const {
  // A restarted store's servers renew or retake their shards (a lease is
  // 10 s) and the controller's calls back off before retrying.
  constexpr sim::Duration kStoreRecovery = 30s;
  std::vector<std::pair<sim::TimePoint, sim::TimePoint>> store_down;
  std::optional<sim::TimePoint> crashed;
  for (const sim::AppliedFault& fault : harness_->world().fault_log()) {
    if (fault.outcome != "applied" || fault.action.nodes != std::vector<std::string>{"store"}) continue;
    if (fault.action.kind == sim::FaultKind::kCrash && !crashed) crashed = fault.at;
    if (fault.action.kind == sim::FaultKind::kRestart && crashed) {
      store_down.emplace_back(*crashed, fault.at + kStoreRecovery);
      crashed.reset();
    }
  }
  // Never restarted before the quiet phase: down until then.
  if (crashed) store_down.emplace_back(*crashed, sim::TimePoint::max());
  // In time order, overlaps merged (a crash may come within the recovery
  // allowance of the restart before it): each outage is then counted once.
  std::sort(store_down.begin(), store_down.end());
  std::vector<std::pair<sim::TimePoint, sim::TimePoint>> merged;
  for (const auto& outage : store_down) {
    if (!merged.empty() && outage.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, outage.second);
    } else {
      merged.push_back(outage);
    }
  }
  sim::TimePoint due = from + kFailoverDue;
  for (const auto& [down, up] : merged) {
    if (up <= from) continue;
    if (down >= due) break;
    if (up == sim::TimePoint::max()) return sim::TimePoint::max();
    due += up - std::max(down, from);
  }
  return due;
}

void MrnFailover::check_safety(Checker& checker) {
  const sim::TimePoint now = harness_->world().sim().now();
  for (const std::string& ns : namespaces_) {
    if (const std::optional<sim::Duration> skew = controller_skew(ns)) {
      auto& samples = skews_[ns];
      if (samples.empty() || samples.back().second != *skew) samples.emplace_back(now, *skew);
    }
    int holders = 0;
    for (const CellService* cell : cells_) {
      const Replica* replica = cell->replica(ns);
      if (replica == nullptr) continue;
      holders++;
      if (!replica->accepting()) continue;
      const auto active = std::make_pair(cell->name(), replica->epoch);
      if (actives_seen_[ns].contains(active)) continue;
      checker.check(replica->epoch > top_epoch_[ns], "epoch-increases",
                    "{} became active in {} at epoch {}, not above epoch {} seen before", ns, cell->name(),
                    replica->epoch, top_epoch_[ns]);
      actives_seen_[ns].insert(active);
      top_epoch_[ns] = std::max(top_epoch_[ns], replica->epoch);
      auto& times = activations_[ns];
      const sim::Duration skew_now = skew_at(ns, now);
      times.emplace_back(now, cell->name());
      // The controller's hour, in true time: shorter by what its clock's
      // skew grew since each activation.
      std::int64_t recent = 0;
      sim::Duration shortest = kFailoverWindow;
      for (const auto& [at, activated_in] : times) {
        const sim::Duration window = kFailoverWindow - (skew_now - skew_at(ns, at));
        if (now - at < window) {
          recent++;
          shortest = std::min(shortest, window);
        }
      }
      checker.check(recent <= kFailoversPerWindowMax, "no-ping-pong", "{}: {} failovers within {}", ns, recent,
                    sim::format_duration(shortest));
      // A hand-over: the replica it replaced is retired, handed to it.
      const auto took_over = CellService::workflows_of(*replica);
      for (const CellService* old_cell : cells_) {
        const Replica* old = old_cell->replica(ns);
        if (old == nullptr || old->role != ReplicaRole::kRetired || old->handed_to != cell->name() ||
            old->epoch != replica->epoch) {
          continue;
        }
        for (const auto& [workflow_id, writes] : CellService::workflows_of(*old)) {
          auto now_writes = took_over.find(workflow_id);
          const bool kept = now_writes != took_over.end() && now_writes->second.size() >= writes.size() &&
                            std::equal(writes.begin(), writes.end(), now_writes->second.begin());
          if (!checker.check(kept, "graceful-keeps", "{}: workflow {} lost writes in the hand-over from {} to {}", ns,
                             workflow_id, old_cell->name(), cell->name())) {
            break;
          }
        }
      }
    }
    checker.check(holders == 2 || holders == 3, "replicas", "{} has replicas in {} cells", ns, holders);
  }
}

void MrnFailover::check_end(Harness& harness, Checker& checker) {
  check_safety(checker);
  for (const std::string& ns : namespaces_) {
    std::string writer;
    int writers = 0;
    std::vector<std::string> replicas;
    for (const CellService* cell : cells_) {
      const Replica* replica = cell->replica(ns);
      if (replica == nullptr) continue;
      replicas.push_back(fmt::format("{} {} at epoch {}{}", cell->name(), replica_role_name(replica->role),
                                     replica->epoch, replica->upstream.empty() ? "" : " following " + replica->upstream));
      if (replica->accepting()) {
        writer = cell->name();
        writers++;
      }
    }
    checker.check(writers == 1, "one-open-run", "{} has {} active replicas after healing ({})", ns, writers,
                  fmt::join(replicas, "; "));
    for (const auto& [workflow_id, runs] : open_runs(ns)) {
      if (!checker.check(runs.size() <= 1, "one-open-run", "{} has open runs {} after healing", workflow_id,
                         fmt::join(runs, ", "))) {
        break;
      }
    }
    const Record* dns = dns_->find(ns);
    checker.check(dns != nullptr && dns->value == writer, "dns-follows", "{}: DNS points at {}, the active is {}", ns,
                  dns == nullptr ? "nothing" : dns->value, writer);
  }
  // The region partition, as it happened: the first heal that is not
  // followed at once by the partition again ends it (a plan given by hand
  // may differ from the scripted one).
  std::vector<const sim::AppliedFault*> cuts_and_heals;
  for (const sim::AppliedFault& fault : harness.world().fault_log()) {
    const bool east_cut =
        fault.action.kind == sim::FaultKind::kPartition && fault.action.nodes == std::vector<std::string>{kEast};
    if ((east_cut || fault.action.kind == sim::FaultKind::kHeal) && fault.outcome == "applied") {
      cuts_and_heals.push_back(&fault);
    }
  }
  sim::TimePoint cut_at{};
  sim::TimePoint healed_at = harness.quiet_at();
  bool cut = false;
  for (std::size_t i = 0; i < cuts_and_heals.size(); i++) {
    const sim::AppliedFault& fault = *cuts_and_heals[i];
    if (fault.action.kind == sim::FaultKind::kPartition) {
      if (!cut) cut_at = fault.at;
      cut = true;
      continue;
    }
    if (!cut) continue;
    const bool recut = i + 1 < cuts_and_heals.size() && cuts_and_heals[i + 1]->at == fault.at &&
                       cuts_and_heals[i + 1]->action.kind == sim::FaultKind::kPartition;
    if (!recut) {
      healed_at = fault.at;
      break;
    }
  }
  if (!cut) return;
  for (const std::string& ns : namespaces_) {
    const auto& times = activations_[ns];
    // Due only if east was the active region when it was cut off.
    std::string active_at_cut = kEast;
    for (const auto& [at, cell] : times) {
      if (at <= cut_at) active_at_cut = cell;
    }
    if (active_at_cut != kEast) continue;
    // The controller may fail over once its budget allows: at the cut, or
    // when the oldest of the budget's failovers leaves its hour.
    const sim::Duration skew_cut = skew_at(ns, cut_at);
    std::vector<sim::TimePoint> frees;  // When each failover in the hour leaves it.
    for (const auto& [at, activated_in] : times) {
      const sim::TimePoint leaves = at + kFailoverWindow - (skew_cut - skew_at(ns, at));
      if (at <= cut_at && leaves > cut_at) frees.push_back(leaves);
    }
    sim::TimePoint allowed = cut_at;
    if (frees.size() >= static_cast<std::size_t>(kFailoversPerWindowMax)) {
      std::sort(frees.begin(), frees.end());
      allowed = frees[frees.size() - static_cast<std::size_t>(kFailoversPerWindowMax)];
    }
    const sim::TimePoint due_at = failover_due(allowed);
    if (healed_at <= due_at) continue;
    const bool answered = std::any_of(times.begin(), times.end(), [&](const auto& activation) {
      return activation.first >= cut_at && activation.first <= due_at;
    });
    checker.check(answered, "failover", "{}: cell-east was cut off for {} and no failover came within {}", ns,
                  sim::format_duration(healed_at - cut_at), sim::format_duration(due_at - cut_at));
  }
}

}  // namespace
}  // namespace duro::scenarios::mrn_failover

namespace duro::scenarios {

using namespace std::chrono_literals;

ScenarioDefinition mrn_failover_scenario() {
  ScenarioDefinition definition;
  definition.name = "mrn-failover";
  definition.summary =
      "multi-region namespaces fail over on a region partition (health probes; graceful first, forced after 10 s; "
      "epochs; DNS), demote the old active and fail back once healthy";
  definition.invariants = {
      "epoch-increases: each new active replica's epoch is above every earlier one",
      "one-open-run: after healing one active replica and at most one open run per workflow id",
      "replicas: every namespace has replicas in 2 or 3 cells",
      "no-ping-pong: at most 4 failovers per namespace per hour",
      "graceful-keeps: a hand-over keeps every write of the replica it replaced",
      "failover: a partition of the active region past 6 min is answered by a failover within 6 min",
      "dns-follows: at the end DNS points at the active replica",
      "outcome: every controller completes when stopped, with nothing left to demote",
  };
  definition.shape.chaos = 40min;
  definition.shape.liveness_bound = 30min;
  definition.make = [] { return std::make_unique<mrn_failover::MrnFailover>(); };
  return definition;
}

}  // namespace duro::scenarios
