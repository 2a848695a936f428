// namespace-provisioning: tenants create and delete namespaces while the
// control plane's cluster crashes and partitions and its dependencies fail.
//
// Creating a namespace (the `create_namespace` workflow, a saga):
//   1. reserve the name in the name registry (owner: the workflow);
//   2. pick the cell with the most free capacity (a read, kept in history,
//      so a retried registration goes to the same cell);
//   3. register the namespace in that cell's database (full: pick again);
//   4. issue its certificate, 5. create its ingress, 6. point DNS at the
//      cell, 7. wait until DNS answers with the cell (propagation takes
//      seconds to minutes), 8. mark it active.
// A step that fails for good (no cell has room, the name is taken) undoes
// the steps before it, newest first, and fails the workflow with the
// reason. `delete_namespace` marks it deleting and removes everything.
//
// Every external call carries the activity's idempotency key; the fakes
// answer a repeated key with the first answer, so a call retried after a
// timeout that hid a success is not applied twice.
//
// Invariants (checked after every change to a fake, and at the end):
//   one-record:    no namespace has a record in two cells' databases.
//   dns-owner:     a DNS record points at a cell whose database holds the
//                  namespace's record, for the same owner.
//   active-whole:  a namespace is active only while its DNS record,
//                  certificate and cell registration all exist.
//   no-orphans:    at the end, every resource belongs to an active
//                  namespace of the same owner; nothing is left reserved
//                  or half deleted.
//   one-winner:    of the creates racing for one name, at most one
//                  completes; a completed create's namespace is active
//                  (or deleted afterwards by a completed delete).
//   outcome:       creates complete or fail with NameTaken/NoCapacity;
//                  deletes complete.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
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
namespace duro::scenarios::namespace_provisioning {

struct NamespaceRequest {
  std::string account;
  std::string name;
  std::string owner;  // Deletes: the create that holds the namespace.
};
DURO_CODEC_FIELDS(NamespaceRequest, account, name, owner);

struct CellWrite {
  std::string cell;
  NamespaceRequest ns;
};
DURO_CODEC_FIELDS(CellWrite, cell, ns);

namespace {

using namespace std::chrono_literals;
using sdk::ActivityContext;
using sdk::WorkflowContext;

constexpr int kCells = 3;
constexpr const char* kNameTaken = "NameTaken";
constexpr const char* kNoCapacity = "NoCapacity";
constexpr int kPicksMax = 3;

std::string record_key(const NamespaceRequest& ns) { return ns.account + "/" + ns.name; }
std::string endpoint(const NamespaceRequest& ns) { return ns.name + "." + ns.account; }
std::string cell_name(int i) { return fmt::format("cell-db-{}", i); }
std::string create_id(const NamespaceRequest& ns) { return "create/" + record_key(ns); }

// Retried without end (the liveness bound is what limits them), with
// backoff capped at a minute; only NameTaken and NoCapacity are final.
sdk::ActivityOptions step_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 30s;
  options.retry.initial_interval = 1s;
  options.retry.maximum_interval = 1min;
  options.retry.non_retryable_error_types = {kNameTaken, kNoCapacity};
  return options;
}

class Provisioning final : public Scenario {
 public:
  void setup(Harness& harness) override;
  void check_safety(Checker& checker) override;
  void check_end(Harness& harness, Checker& checker) override;

 private:
  // --- Activities: each one call (or a few reads) to a fake ------------
  ResourceReply put(ActivityContext& ctx, std::string_view service, const std::string& key, const std::string& value,
                    const std::string& owner, std::string_view suffix = "");
  void erase(ActivityContext& ctx, std::string_view service, const std::string& key, const std::string& owner);
  std::string pick_cell(ActivityContext& ctx);

  // --- Workflows -------------------------------------------------------
  std::string create_namespace(WorkflowContext& ctx, const NamespaceRequest& ns);
  void delete_namespace(WorkflowContext& ctx, const NamespaceRequest& ns);

  // --- Workload --------------------------------------------------------
  void tenant(Harness& harness, sdk::Client& client, sim::Env& env, NamespaceRequest ns, int creators, bool then_delete);

  Harness* harness_ = nullptr;
  ResourceService* names_ = nullptr;
  std::vector<ResourceService*> cells_;
  ResourceService* certs_ = nullptr;
  ResourceService* ingress_ = nullptr;
  ResourceService* dns_ = nullptr;
  std::vector<NamespaceRequest> namespaces_;
  // Ground truth from the clients: what each namespace's creators and
  // delete were told at the end.
  std::map<std::string, std::vector<std::string>> creates_;  // record key -> create workflow ids acknowledged
  std::map<std::string, std::string> deletes_;               // record key -> delete workflow id acknowledged
};

ResourceReply Provisioning::put(ActivityContext& ctx, std::string_view service, const std::string& key,
                                const std::string& value, const std::string& owner, std::string_view suffix) {
  sim::Result<ResourceReply> reply =
      call_service<ResourceReply>(ctx.env(), harness_->address_of(service), "put",
                                  ResourcePut{key, value, owner, ctx.idempotency_key() + std::string(suffix)});
  if (reply.ok()) return reply.value();
  if (reply.error().code == sim::ErrorCode::kAlreadyExists) {
    throw sdk::ApplicationError(kNameTaken, reply.error().message, {}, true);
  }
  if (reply.error().code == sim::ErrorCode::kNoSpace) {
    throw sdk::ApplicationError(kNoCapacity, reply.error().message, {}, true);
  }
  throw sdk::ApplicationError("ServiceError", std::string(service) + ": " + sim::to_string(reply.error()));
}

void Provisioning::erase(ActivityContext& ctx, std::string_view service, const std::string& key,
                         const std::string& owner) {
  sim::Result<ResourceReply> reply = call_service<ResourceReply>(ctx.env(), harness_->address_of(service), "delete",
                                                                 ResourceDelete{key, owner, ctx.idempotency_key()});
  // Held by another owner: not ours to delete, and nothing of ours is left.
  if (reply.ok() || reply.error().code == sim::ErrorCode::kAlreadyExists) return;
  throw sdk::ApplicationError("ServiceError", std::string(service) + ": " + sim::to_string(reply.error()));
}

std::string Provisioning::pick_cell(ActivityContext& ctx) {
  std::string best;
  std::uint64_t best_free = 0;
  for (int i = 0; i < kCells; i++) {
    sim::Result<ResourceUsage> usage =
        call_service<ResourceUsage>(ctx.env(), harness_->address_of(cell_name(i)), "usage", ResourceUsageRequest{});
    if (!usage.ok()) throw sdk::ApplicationError("ServiceError", sim::to_string(usage.error()));
    const std::uint64_t free = usage.value().capacity - std::min(usage.value().records, usage.value().capacity);
    if (free > best_free) {
      best_free = free;
      best = cell_name(i);
    }
  }
  if (best.empty()) throw sdk::ApplicationError(kNoCapacity, "no cell has room", {}, true);
  return best;
}

std::string Provisioning::create_namespace(WorkflowContext& ctx, const NamespaceRequest& ns) {
  const sdk::ActivityOptions options = step_options();
  ctx.activity<ResourceReply>("reserve_name", ns, options);  // NameTaken fails the workflow: nothing to undo.

  // Undo, newest first, what was done before a step failed for good.
  std::vector<std::string> undo;
  auto fail = [&](const sdk::ActivityError& error) -> std::string {
    sdk::ActivityOptions cleanup = step_options();
    cleanup.retry.non_retryable_error_types = {};
    ctx.non_cancellable([&] {
      for (auto step = undo.rbegin(); step != undo.rend(); ++step) ctx.activity<void>(*step, ns, cleanup);
      ctx.activity<void>("release_name", ns, cleanup);
    });
    throw sdk::ApplicationError(error.failure().type, error.failure().message, {}, true);
  };

  std::string cell;
  for (int pick = 1; cell.empty(); pick++) {
    try {
      const std::string candidate = ctx.activity<std::string>("pick_cell", ns, options);
      ctx.activity<ResourceReply>("register_in_cell", CellWrite{candidate, ns}, options);
      cell = candidate;
    } catch (const sdk::ActivityError& error) {
      // Full since it was picked (others registered meanwhile): pick again.
      if (error.failure().type != kNoCapacity || pick == kPicksMax) return fail(error);
    }
  }
  undo.push_back("unregister_from_cells");
  try {
    ctx.activity<ResourceReply>("issue_certificate", ns, options);
    undo.push_back("revoke_certificate");
    ctx.activity<ResourceReply>("create_ingress", CellWrite{cell, ns}, options);
    undo.push_back("delete_ingress");
    ctx.activity<ResourceReply>("point_dns", CellWrite{cell, ns}, options);
    undo.push_back("delete_dns");
    ctx.activity<void>("wait_endpoint", CellWrite{cell, ns}, options);
    ctx.activity<ResourceReply>("mark_active", ns, options);
  } catch (const sdk::ActivityError& error) {
    return fail(error);
  }
  return cell;
}

void Provisioning::delete_namespace(WorkflowContext& ctx, const NamespaceRequest& ns) {
  sdk::ActivityOptions options = step_options();
  options.retry.non_retryable_error_types = {};
  // Deleting first: from here on nobody may take it for active.
  ctx.activity<void>("mark_deleting", ns, options);
  ctx.activity<void>("delete_dns", ns, options);
  ctx.activity<void>("delete_ingress", ns, options);
  ctx.activity<void>("revoke_certificate", ns, options);
  ctx.activity<void>("unregister_from_cells", ns, options);
  ctx.activity<void>("release_name", ns, options);
}

void Provisioning::setup(Harness& harness) {
  harness_ = &harness;
  sim::Random& random = harness.random();
  FailureModel flaky{.server_error_probability = 0.05, .timeout_after_apply_probability = 0.03};
  names_ = &harness.add_service<ResourceService>("name-registry", flaky.draw(random));
  for (int i = 0; i < kCells; i++) {
    ResourceOptions cell_options;
    cell_options.capacity = 2 + random.uniform(3);  // 2..4 namespaces per cell
    cells_.push_back(&harness.add_service<ResourceService>(cell_name(i), flaky.draw(random), cell_options));
  }
  FailureModel slow = flaky;
  slow.latency_min = 500ms;
  slow.latency_max = 20s;
  slow.requests_per_second_max = 2;
  certs_ = &harness.add_service<ResourceService>("cert-issuer", slow.draw(random));
  ingress_ = &harness.add_service<ResourceService>("cloud-api", flaky.draw(random));
  ResourceOptions dns_options;
  dns_options.propagation_min = 5s;
  dns_options.propagation_max = 3min;
  dns_ = &harness.add_service<ResourceService>("dns", flaky.draw(random), dns_options);

  sdk::Registry& registry = harness.registry();
  auto owner_of = [](ActivityContext& ctx) { return ctx.info().workflow_execution.workflow_id; };
  registry.activity("reserve_name", [this, owner_of](ActivityContext& ctx, const NamespaceRequest& ns) {
    return put(ctx, "name-registry", record_key(ns), "reserved", owner_of(ctx));
  });
  registry.activity("pick_cell", [this](ActivityContext& ctx, const NamespaceRequest&) { return pick_cell(ctx); });
  registry.activity("register_in_cell", [this, owner_of](ActivityContext& ctx, const CellWrite& write) {
    return put(ctx, write.cell, record_key(write.ns), "namespace", owner_of(ctx));
  });
  registry.activity("issue_certificate", [this, owner_of](ActivityContext& ctx, const NamespaceRequest& ns) {
    return put(ctx, "cert-issuer", endpoint(ns), "certificate", owner_of(ctx));
  });
  registry.activity("create_ingress", [this, owner_of](ActivityContext& ctx, const CellWrite& write) {
    return put(ctx, "cloud-api", endpoint(write.ns), "ingress->" + write.cell, owner_of(ctx));
  });
  registry.activity("point_dns", [this, owner_of](ActivityContext& ctx, const CellWrite& write) {
    return put(ctx, "dns", endpoint(write.ns), write.cell, owner_of(ctx));
  });
  registry.activity("wait_endpoint", [this](ActivityContext& ctx, const CellWrite& write) {
    sim::Result<ResourceReply> reply =
        call_service<ResourceReply>(ctx.env(), harness_->address_of("dns"), "get", ResourceGet{endpoint(write.ns)});
    if (!reply.ok()) throw sdk::ApplicationError("ServiceError", sim::to_string(reply.error()));
    // Not yet propagated: the retry policy asks again, with backoff.
    if (!reply.value().found || reply.value().value != write.cell) {
      throw sdk::ApplicationError("NotPropagated", endpoint(write.ns) + " does not resolve to " + write.cell + " yet");
    }
  });
  registry.activity("mark_active", [this, owner_of](ActivityContext& ctx, const NamespaceRequest& ns) {
    return put(ctx, "name-registry", record_key(ns), "active", owner_of(ctx));
  });
  // Undo steps and deletes act for the namespace's owner: the create that
  // reserved it (the undo runs in that very workflow).
  auto namespace_owner = [](ActivityContext& ctx, const NamespaceRequest& ns) {
    const std::string& workflow_id = ctx.info().workflow_execution.workflow_id;
    if (workflow_id.starts_with("create/")) return workflow_id;
    return ns.owner.empty() ? create_id(ns) : ns.owner;
  };
  registry.activity("mark_deleting", [this, namespace_owner](ActivityContext& ctx, const NamespaceRequest& ns) {
    // A namespace that never became active (or was released) is already gone.
    try {
      put(ctx, "name-registry", record_key(ns), "deleting", namespace_owner(ctx, ns));
    } catch (const sdk::ApplicationError& error) {
      if (error.failure().type != kNameTaken && error.failure().type != kNoCapacity) throw;
    }
  });
  registry.activity("delete_dns", [this, namespace_owner](ActivityContext& ctx, const NamespaceRequest& ns) {
    erase(ctx, "dns", endpoint(ns), namespace_owner(ctx, ns));
  });
  registry.activity("delete_ingress", [this, namespace_owner](ActivityContext& ctx, const NamespaceRequest& ns) {
    erase(ctx, "cloud-api", endpoint(ns), namespace_owner(ctx, ns));
  });
  registry.activity("revoke_certificate", [this, namespace_owner](ActivityContext& ctx, const NamespaceRequest& ns) {
    erase(ctx, "cert-issuer", endpoint(ns), namespace_owner(ctx, ns));
  });
  registry.activity("unregister_from_cells",
                    [this, namespace_owner](ActivityContext& ctx, const NamespaceRequest& ns) {
                      for (int i = 0; i < kCells; i++) erase(ctx, cell_name(i), record_key(ns), namespace_owner(ctx, ns));
                    });
  registry.activity("release_name", [this, namespace_owner](ActivityContext& ctx, const NamespaceRequest& ns) {
    erase(ctx, "name-registry", record_key(ns), namespace_owner(ctx, ns));
  });
  registry.workflow("create_namespace",
                    [this](WorkflowContext& ctx, const NamespaceRequest& ns) { return create_namespace(ctx, ns); });
  registry.workflow("delete_namespace",
                    [this](WorkflowContext& ctx, const NamespaceRequest& ns) { delete_namespace(ctx, ns); });

  // The workload: namespaces of three accounts, some requested twice under
  // different operation ids (a double click), some deleted once created.
  const int count = 6 + static_cast<int>(random.uniform(5));
  for (int i = 0; i < count; i++) {
    NamespaceRequest ns{fmt::format("acct-{}", random.uniform(3)), fmt::format("ns-{}", i), ""};
    namespaces_.push_back(ns);
    const int creators = random.chance(1, 4) ? 2 : 1;
    const bool then_delete = random.chance(1, 3);
    harness.client(fmt::format("tenant-{}", i), [this, &harness, ns, creators, then_delete](sdk::Client& client,
                                                                                           sim::Env& env) {
      tenant(harness, client, env, ns, creators, then_delete);
    });
  }
}

void Provisioning::tenant(Harness& harness, sdk::Client& client, sim::Env& env, NamespaceRequest ns, int creators,
                          bool then_delete) {
  // Requests arrive over the first half of the chaos phase.
  env.sleep_for(sim::Duration{static_cast<std::int64_t>(env.random().uniform(
      static_cast<std::uint64_t>(std::chrono::nanoseconds(harness.shape().chaos / 2).count())))});
  const std::string key = record_key(ns);
  std::vector<engine::WorkflowExecution> runs;
  for (int c = 0; c < creators; c++) {
    const std::string workflow_id = c == 0 ? create_id(ns) : fmt::format("{}/again-{}", create_id(ns), c);
    sdk::StartOptions start;
    start.id_reuse_policy = engine::WorkflowIdReusePolicy::kRejectDuplicate;
    start.wait = 5min;
    sim::Result<engine::WorkflowExecution> run = client.start("create_namespace", workflow_id, ns, start);
    if (!run.ok()) continue;  // Not acknowledged: not owed anything.
    creates_[key].push_back(workflow_id);
    runs.push_back(run.value());
    harness.expect(run.value(), "create " + key, [](const sdk::WorkflowOutcome<sdk::Payload>& outcome) -> std::string {
      if (outcome.completed()) return "";
      if (outcome.failure && (outcome.failure->type == kNameTaken || outcome.failure->type == kNoCapacity)) return "";
      return "a create completes, or fails with NameTaken or NoCapacity";
    });
    // The same request again, as a client retrying after a lost answer
    // would: one workflow, not two.
    sim::Result<engine::WorkflowExecution> again = client.start("create_namespace", workflow_id, ns, start);
    harness.checker().check(!again.ok() || again.value().run_id == run.value().run_id, "outcome",
                            "a repeated start of {} started a second run", workflow_id);
  }
  if (!then_delete || runs.empty()) return;
  sim::Result<sdk::WorkflowOutcome<std::string>> created = client.result<std::string>(runs.front(), harness.live_by());
  if (!created.ok() || !created.value().completed()) return;
  const std::string delete_id = "delete/" + key;
  // The create the tenant waited for is the one that holds it (the first
  // acknowledged; with a double click it may not be create/<key>).
  NamespaceRequest held = ns;
  held.owner = runs.front().workflow_id;
  sim::Result<engine::WorkflowExecution> run = client.start("delete_namespace", delete_id, held, {.wait = 5min});
  if (!run.ok()) return;
  deletes_[key] = delete_id;
  harness.expect(run.value(), "delete " + key, [](const sdk::WorkflowOutcome<sdk::Payload>& outcome) -> std::string {
    return outcome.completed() ? "" : "a delete completes";
  });
}

void Provisioning::check_safety(Checker& checker) {
  // one-record
  std::map<std::string, std::vector<std::string>> cells_of;
  for (const ResourceService* cell : cells_) {
    for (const auto& [key, record] : cell->records()) cells_of[key].push_back(cell->name());
  }
  for (const auto& [key, cells] : cells_of) {
    checker.check(cells.size() <= 1, "one-record", "{} has records in {} cells ({})", key, cells.size(),
                  fmt::join(cells, ", "));
  }
  auto owning_cell = [&](const std::string& key, const std::string& owner) -> const ResourceService* {
    for (const ResourceService* cell : cells_) {
      const Record* record = cell->find(key);
      if (record != nullptr && record->owner == owner) return cell;
    }
    return nullptr;
  };
  // dns-owner
  for (const NamespaceRequest& ns : namespaces_) {
    const Record* dns = dns_->find(endpoint(ns));
    if (dns == nullptr) continue;
    const ResourceService* cell = owning_cell(record_key(ns), dns->owner);
    checker.check(cell != nullptr && cell->name() == dns->value, "dns-owner",
                  "DNS sends {} to {}, but {}", endpoint(ns), dns->value,
                  cell == nullptr ? "no cell holds it for " + dns->owner : "it lives in " + cell->name());
  }
  // active-whole
  for (const NamespaceRequest& ns : namespaces_) {
    const Record* name = names_->find(record_key(ns));
    if (name == nullptr || name->value != "active") continue;
    const Record* dns = dns_->find(endpoint(ns));
    const Record* cert = certs_->find(endpoint(ns));
    const ResourceService* cell = owning_cell(record_key(ns), name->owner);
    checker.check(dns != nullptr && dns->owner == name->owner && cert != nullptr && cert->owner == name->owner &&
                      cell != nullptr,
                  "active-whole", "{} is active without {}", record_key(ns),
                  dns == nullptr || dns->owner != name->owner   ? "its DNS record"
                  : cert == nullptr || cert->owner != name->owner ? "its certificate"
                                                                  : "its cell registration");
  }
}

void Provisioning::check_end(Harness& harness, Checker& checker) {
  // no-orphans: everything left belongs to an active namespace, same owner.
  auto active_owner = [&](const std::string& key) -> std::string {
    const Record* name = names_->find(key);
    return name != nullptr && name->value == "active" ? name->owner : "";
  };
  for (const auto& [key, record] : names_->records()) {
    checker.check(record.value == "active", "no-orphans", "{} is left {} by {}", key, record.value, record.owner);
  }
  std::map<std::string, std::string> key_of_endpoint;
  for (const NamespaceRequest& ns : namespaces_) key_of_endpoint[endpoint(ns)] = record_key(ns);
  for (const ResourceService* service : {certs_, ingress_, dns_}) {
    for (const auto& [name, record] : service->records()) {
      const std::string owner = active_owner(key_of_endpoint[name]);
      checker.check(owner == record.owner, "no-orphans", "{} in {} belongs to {}, and the namespace's active owner is '{}'",
                    name, service->name(), record.owner, owner);
    }
  }
  for (const ResourceService* cell : cells_) {
    for (const auto& [key, record] : cell->records()) {
      const std::string owner = active_owner(key);
      checker.check(owner == record.owner, "no-orphans", "{} in {} belongs to {}, and its active owner is '{}'", key,
                    cell->name(), record.owner, owner);
    }
  }
  // one-winner, and completed creates are active unless deleted.
  for (const auto& [key, creators] : creates_) {
    int completed = 0;
    std::string winner;
    for (const std::string& workflow_id : creators) {
      const sdk::WorkflowOutcome<sdk::Payload>* outcome = harness.outcome(workflow_id);
      if (outcome != nullptr && outcome->completed()) {
        completed++;
        winner = workflow_id;
      }
    }
    checker.check(completed <= 1, "one-winner", "{} creates of {} completed", completed, key);
    if (completed != 1) continue;
    auto deleted = deletes_.find(key);
    const sdk::WorkflowOutcome<sdk::Payload>* delete_outcome =
        deleted == deletes_.end() ? nullptr : harness.outcome(deleted->second);
    if (delete_outcome != nullptr && delete_outcome->completed()) {
      checker.check(names_->find(key) == nullptr, "no-orphans", "{} was deleted and its name is still held", key);
    } else if (deleted == deletes_.end()) {
      checker.check(active_owner(key) == winner, "one-winner", "{} was created by {} but is not active for it", key,
                    winner);
    }
  }
}

}  // namespace
}  // namespace duro::scenarios::namespace_provisioning

namespace duro::scenarios {

using namespace std::chrono_literals;

ScenarioDefinition namespace_provisioning_scenario() {
  ScenarioDefinition definition;
  definition.name = "namespace-provisioning";
  definition.summary =
      "tenants create and delete namespaces (a saga over a name registry, cell databases, a certificate issuer, "
      "ingress and DNS) while the cluster crashes and partitions and the services fail";
  definition.invariants = {
      "one-record: no namespace has a record in two cells",
      "dns-owner: a DNS record points at the cell holding the namespace, for the same owner",
      "active-whole: active only with DNS, certificate and cell registration in place",
      "no-orphans: at the end every resource belongs to an active namespace of the same owner",
      "one-winner: of creates racing for one name at most one completes, and its namespace is active",
      "outcome: creates complete or fail with NameTaken/NoCapacity; deletes complete",
  };
  definition.shape.chaos = 10min;
  definition.shape.liveness_bound = 30min;
  definition.make = [] { return std::make_unique<namespace_provisioning::Provisioning>(); };
  return definition;
}

}  // namespace duro::scenarios
