#include "engine/sdk/frontend_caller.h"

#include <algorithm>
#include <utility>

#include "engine/server/api.h"
#include "sim/assert.h"

namespace duro::sdk {
namespace {

constexpr sim::Duration kBackoffFirst = std::chrono::milliseconds{100};
constexpr sim::Duration kBackoffMax = std::chrono::seconds{2};

}  // namespace

FrontendCaller::FrontendCaller(sim::Env& env, std::vector<sim::Address> servers, std::uint16_t port)
    : env_(env), servers_(std::move(servers)) {
  DURO_ASSERT(!servers_.empty());
  rpc_ = std::make_unique<sim::RpcClient>(env_.network(), env_.node(), port);
  next_server_ = env_.random().uniform(servers_.size());
}

bool FrontendCaller::retryable(const sim::Error& error) noexcept {
  return error.code == sim::ErrorCode::kUnavailable || error.code == sim::ErrorCode::kTimeout ||
         error.code == sim::ErrorCode::kOverloaded;
}

sim::Result<std::string> FrontendCaller::call_raw(std::string_view method, const std::string& payload,
                                                  const CallPolicy& policy) {
  DURO_ASSERT(policy.try_timeout > sim::Duration{0});
  DURO_ASSERT(policy.attempts_max > 0);
  stats_.calls++;
  sim::Error last{sim::ErrorCode::kTimeout, "the deadline passed before the first try"};
  sim::Duration backoff = kBackoffFirst;
  for (int attempt = 0; attempt < policy.attempts_max; attempt++) {
    const sim::TimePoint now = env_.sim().now();
    if (now >= policy.deadline) break;
    if (attempt > 0) stats_.retries++;
    const sim::Address server = servers_[next_server_ % servers_.size()];
    sim::Result<std::string> reply = rpc_->call_raw(sim::Endpoint{server, engine::kFrontendPort}, method, payload,
                                                    std::min(policy.try_timeout, policy.deadline - now));
    if (reply.ok() || !retryable(reply.error())) return reply;
    stats_.failed_tries++;
    last = reply.error();
    next_server_++;
    if (attempt + 1 == policy.attempts_max) break;
    env_.sleep_for(std::min(backoff, std::max(policy.deadline - env_.sim().now(), sim::Duration{0})));
    backoff = std::min(backoff * 2, kBackoffMax);
  }
  return last;
}

}  // namespace duro::sdk
