// call_service: how activities reach a fake external service, over the
// simulated network from the worker node they run on.
//
//   sim::Result<ResourceReply> reply = call_service<ResourceReply>(
//       ctx.env(), dns, "put", ResourcePut{name, cell, owner, ctx.idempotency_key()});
//
// Each call binds a short-lived client on a free port of the caller's node
// (an activity owns no long-lived socket; a crash of the node unwinds the
// call and frees the port). Failures a retry may cure — 503, 500, 429 and
// timeouts — throw ServiceUnavailable, so the activity's retry policy
// retries them with backoff; answers about the request itself (exists,
// not found, no capacity) come back as the Result for the activity to
// judge.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "sim/codec.h"
#include "sim/env.h"
#include "sim/result.h"

namespace duro::scenarios {

class ServiceUnavailable : public std::runtime_error {
 public:
  explicit ServiceUnavailable(const std::string& message) : std::runtime_error(message) {}
};

// Throws ServiceUnavailable for retryable failures; returns the rest.
sim::Result<std::string> call_service_raw(sim::Env& env, sim::Address service, std::string_view method,
                                          std::string payload, sim::Duration timeout);

template <typename Reply, typename Request>
sim::Result<Reply> call_service(sim::Env& env, sim::Address service, std::string_view method, const Request& request,
                                sim::Duration timeout = std::chrono::seconds{10}) {
  sim::Result<std::string> bytes = call_service_raw(env, service, method, sim::encode(request), timeout);
  if (!bytes.ok()) return bytes.error();
  return sim::decode<Reply>(bytes.value());
}

}  // namespace duro::scenarios
