// How a namespace is reached: its DNS record names the cell that should
// hold its active replica (CellService), and a cell that does not (any
// more, or not yet) redirects. Shared by the scenarios that move
// namespaces between cells (cell-migration, mrn-failover).
//
//   NamespaceEndpoint endpoint("ns-1", "cell-1", [&](std::string_view name) { return harness.address_of(name); });
//   if (!endpoint.write(env, CellWrite{"ns-1", "wf-3", "ns-1/w17"}, give_up_at)) { ... never accepted ... }
//
//   // In an activity of the control plane: point DNS at a new owner.
//   bool newest = point_namespace_dns(ctx.env(), dns, "ns-1", "cell-2", epoch, ctx.idempotency_key());
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "scenarios/fakes/cell_service.h"
#include "sim/env.h"

namespace duro::scenarios {

// The argument of a control-plane activity that calls one cell about one
// namespace: `other` is the cell the call names (add: the upstream;
// hand_over: the target; demote: the new upstream).
struct CellCall {
  std::string cell;
  std::string ns;
  std::string other;
  std::int64_t epoch = 0;
};
DURO_CODEC_FIELDS(CellCall, cell, ns, other, epoch);

// Calls `method` ("add", "status", "drain", "resume", "hand_over",
// "promote", "demote", "remove") of `cell` with the request that method
// takes, built from `call` (a drain asks for `drain_lease`). Throws
// ServiceUnavailable for failures a retry may cure; a refusal comes back
// as the error. For activities.
sim::Result<CellReplicaStatus> call_cell(sim::Env& env, sim::Address cell, std::string_view method,
                                         const CellCall& call, sim::Duration drain_lease, sim::Duration timeout);

// The argument of a control-plane activity that points a namespace's DNS
// record at a cell (point_namespace_dns).
struct DnsPoint {
  std::string ns;
  std::string cell;
  std::int64_t epoch = 0;
};
DURO_CODEC_FIELDS(DnsPoint, ns, cell, epoch);

// The owner every namespace DNS record is written under.
inline constexpr std::string_view kNamespaceDnsOwner = "control-plane";

class NamespaceEndpoint {
 public:
  using AddressOf = std::function<sim::Address(std::string_view service)>;

  // `cell`: where the tenant believes the namespace is at first.
  NamespaceEndpoint(std::string ns, std::string cell, AddressOf address_of);

  // Sends `request` until a cell accepts it, or until `give_up_at`: follows
  // a redirect (after a short pause: a target that has not pulled the
  // hand-over yet points back at the source), and after a failure (the
  // cell down, slow, throttled, or without a replica) backs off a second
  // and asks DNS again. The same write id every try, so the namespace
  // applies it once. False if no cell accepted it.
  bool write(sim::Env& env, const CellWrite& request, sim::TimePoint give_up_at);

  // Where the last write went (or the tenant now believes the namespace is).
  const std::string& cell() const noexcept { return cell_; }

 private:
  std::string ns_;
  std::string cell_;
  AddressOf address_of_;
};

// Points `ns`'s DNS record at `cell`, conditionally on `epoch`: a late
// write from an older move or failover cannot point it back. True if this
// epoch's record is there; false if a newer one is. Throws
// ServiceUnavailable for failures a retry may cure, sdk::ApplicationError
// for the rest. For activities.
bool point_namespace_dns(sim::Env& env, sim::Address dns, const std::string& ns, const std::string& cell,
                         std::int64_t epoch, const std::string& idempotency_key);

// What readers of `ns`'s DNS record see now ("" if none). Throws as above.
std::string resolve_namespace_dns(sim::Env& env, sim::Address dns, const std::string& ns);

}  // namespace duro::scenarios
