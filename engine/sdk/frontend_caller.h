// FrontendCaller: one call to the frontend API, with the retry discipline
// every caller of it needs — workers, clients, tests.
//
//   sdk::FrontendCaller caller(env, servers, /*port=*/7500);
//   sim::Result<StartWorkflowExecutionReply> reply = caller.call<StartWorkflowExecutionReply>(
//       method::kStartWorkflowExecution, request, {.deadline = env.sim().deadline_after(1min)});
//
// A try goes to one server (round robin, from a seeded start) and waits at
// most `try_timeout`; an answer that means "try again" (unavailable,
// overloaded) or "unknown" (timeout) moves to the next server after a
// backoff that doubles from 100 ms to 2 s. The loop ends at the deadline or
// after `attempts_max` tries, whichever comes first, with the last error.
// Retrying a call whose outcome is unknown is safe only because every
// frontend call that changes state carries a request id (the server
// deduplicates); callers must send one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sim/codec.h"
#include "sim/env.h"
#include "sim/rpc.h"

namespace duro::sdk {

struct CallPolicy {
  sim::Duration try_timeout = std::chrono::seconds{5};
  sim::TimePoint deadline = sim::TimePoint::max();
  int attempts_max = 10'000;  // A bound on the loop; usually the deadline ends it first.
};

struct FrontendCallerStats {
  std::uint64_t calls = 0;
  std::uint64_t retries = 0;       // Tries after the first, over all calls.
  std::uint64_t failed_tries = 0;  // Tries answered "try again" or not at all.
};

class FrontendCaller {
 public:
  // Binds `port` on the env's node for replies.
  FrontendCaller(sim::Env& env, std::vector<sim::Address> servers, std::uint16_t port);

  template <typename Response, typename Request>
  sim::Result<Response> call(std::string_view method, const Request& request, const CallPolicy& policy) {
    sim::Result<std::string> bytes = call_raw(method, sim::encode(request), policy);
    if (!bytes.ok()) return bytes.error();
    return sim::decode<Response>(bytes.value());
  }
  sim::Result<std::string> call_raw(std::string_view method, const std::string& payload, const CallPolicy& policy);

  // True for the errors a retry may cure.
  static bool retryable(const sim::Error& error) noexcept;

  sim::Env& env() const noexcept { return env_; }
  const FrontendCallerStats& stats() const noexcept { return stats_; }

 private:
  sim::Env& env_;
  std::vector<sim::Address> servers_;
  std::unique_ptr<sim::RpcClient> rpc_;
  std::size_t next_server_ = 0;
  FrontendCallerStats stats_;
};

}  // namespace duro::sdk
