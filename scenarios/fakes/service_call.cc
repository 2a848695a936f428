#include "scenarios/fakes/service_call.h"

#include <memory>
#include <utility>

#include "scenarios/fakes/fake_service.h"
#include "sim/assert.h"
#include "sim/network.h"
#include "sim/rpc.h"

namespace duro::scenarios {
namespace {

// Ports activities' short-lived clients bind: well clear of the engine's
// (7200 frontend, 74xx-75xx workers and clients) and the fakes' (9000).
constexpr std::uint16_t kEphemeralFirst = 20000;
constexpr std::uint16_t kEphemeralCount = 20000;
constexpr int kBindTriesMax = 64;

}  // namespace

sim::Result<std::string> call_service_raw(sim::Env& env, sim::Address service, std::string_view method,
                                          std::string payload, sim::Duration timeout) {
  DURO_ASSERT(timeout > sim::Duration{0});
  std::unique_ptr<sim::Socket> socket;
  const auto start = static_cast<std::uint16_t>(env.random().uniform(kEphemeralCount));
  for (int i = 0; i < kBindTriesMax && socket == nullptr; i++) {
    const auto port = static_cast<std::uint16_t>(kEphemeralFirst + (start + i) % kEphemeralCount);
    sim::Result<std::unique_ptr<sim::Socket>> bound = env.network().bind(env.node(), port);
    if (bound.ok()) socket = std::move(bound.value());
  }
  if (socket == nullptr) throw ServiceUnavailable("no free port on " + env.name() + " for a service call");
  sim::RpcClient client(env.network(), env.node(), std::move(socket));
  sim::Result<std::string> reply = client.call_raw(sim::Endpoint{service, kServicePort}, method, std::move(payload), timeout);
  if (!reply.ok()) {
    const sim::ErrorCode code = reply.error().code;
    if (code == sim::ErrorCode::kUnavailable || code == sim::ErrorCode::kOverloaded ||
        code == sim::ErrorCode::kTimeout || code == sim::ErrorCode::kBrokenPromise) {
      throw ServiceUnavailable(std::string(method) + ": " + sim::to_string(reply.error()));
    }
  }
  return reply;
}

}  // namespace duro::scenarios
