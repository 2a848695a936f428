#include "scenarios/fakes/namespace_endpoint.h"

#include <utility>

#include "engine/sdk/errors.h"
#include "scenarios/fakes/resource_service.h"
#include "scenarios/fakes/service_call.h"
#include "sim/assert.h"
#include "sim/simulator.h"

namespace duro::scenarios {
namespace {

using namespace std::chrono_literals;

// Bounds one write's tries; give_up_at bounds it in time.
constexpr int kTriesMax = 100'000;
constexpr sim::Duration kCallTimeout = 5s;
constexpr sim::Duration kRedirectPause = 200ms;
constexpr sim::Duration kFailurePause = 1s;

}  // namespace

NamespaceEndpoint::NamespaceEndpoint(std::string ns, std::string cell, AddressOf address_of)
    : ns_(std::move(ns)), cell_(std::move(cell)), address_of_(std::move(address_of)) {
  DURO_ASSERT(!ns_.empty() && !cell_.empty() && address_of_);
}

bool NamespaceEndpoint::write(sim::Env& env, const CellWrite& request, sim::TimePoint give_up_at) {
  DURO_ASSERT(request.ns == ns_ && !request.write_id.empty());
  for (int tries = 0; tries < kTriesMax && env.sim().now() < give_up_at; tries++) {
    try {
      sim::Result<CellWriteReply> reply =
          call_service<CellWriteReply>(env, address_of_(cell_), "write", request, kCallTimeout);
      if (reply.ok() && reply.value().accepted) return true;
      if (reply.ok() && !reply.value().redirect.empty()) {
        cell_ = reply.value().redirect;
        env.sleep_for(kRedirectPause);
        continue;
      }
    } catch (const ServiceUnavailable&) {
      // Down, slow or throttled: back off, then ask DNS again.
    }
    env.sleep_for(kFailurePause);
    try {
      const std::string resolved = resolve_namespace_dns(env, address_of_("dns"), ns_);
      if (!resolved.empty()) cell_ = resolved;
    } catch (const ServiceUnavailable&) {
    } catch (const sdk::ApplicationError&) {
    }
  }
  return false;
}

sim::Result<CellReplicaStatus> call_cell(sim::Env& env, sim::Address cell, std::string_view method,
                                         const CellCall& call, sim::Duration drain_lease, sim::Duration timeout) {
  auto send = [&](const auto& request) {
    return call_service<CellReplicaStatus>(env, cell, method, request, timeout);
  };
  if (method == "add") return send(CellAdd{call.ns, call.other});
  if (method == "drain") return send(CellDrain{call.ns, drain_lease});
  if (method == "hand_over") return send(CellHandOver{call.ns, call.other, call.epoch});
  if (method == "promote") return send(CellPromote{call.ns, call.epoch});
  if (method == "demote") return send(CellDemote{call.ns, call.other, call.epoch});
  DURO_ASSERT_MSG(method == "status" || method == "resume" || method == "remove", "no such cell method");
  return send(CellNamespace{call.ns});
}

bool point_namespace_dns(sim::Env& env, sim::Address dns, const std::string& ns, const std::string& cell,
                         std::int64_t epoch, const std::string& idempotency_key) {
  DURO_ASSERT(epoch > 0);
  sim::Result<ResourceReply> reply = call_service<ResourceReply>(
      env, dns, "put", ResourcePut{ns, cell, std::string(kNamespaceDnsOwner), idempotency_key, epoch});
  if (reply.ok()) return true;
  if (reply.error().code == sim::ErrorCode::kAlreadyExists) return false;  // A newer epoch is there.
  throw sdk::ApplicationError("DnsError", sim::to_string(reply.error()));
}

std::string resolve_namespace_dns(sim::Env& env, sim::Address dns, const std::string& ns) {
  sim::Result<ResourceReply> reply = call_service<ResourceReply>(env, dns, "get", ResourceGet{ns}, kCallTimeout);
  if (!reply.ok()) throw sdk::ApplicationError("DnsError", sim::to_string(reply.error()));
  return reply.value().found ? reply.value().value : std::string();
}

}  // namespace duro::scenarios
