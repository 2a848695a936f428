// TestClient: a client of the frontend API with the retry discipline a
// real client needs, for tests and benchmarks (the SDK's client comes with
// the SDK).
//
// Every call goes to the servers round robin and is retried, with the same
// request id, while the answer is "try again" (unavailable, overloaded) or
// unknown (timeout), until the call's deadline. Starts carry request ids,
// so a start retried after a lost reply returns the run it started instead
// of failing as a duplicate: an acknowledged start happened exactly once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/history/history.h"
#include "engine/sdk/frontend_caller.h"
#include "engine/server/api.h"
#include "sim/env.h"
#include "sim/rpc.h"

namespace duro::engine::testing {

class TestClient {
 public:
  TestClient(sim::Env& env, std::vector<sim::Address> servers, std::uint16_t port,
             sim::Duration rpc_timeout = std::chrono::seconds{5});

  template <typename Response, typename Request>
  sim::Result<Response> call(std::string_view method, const Request& request, sim::TimePoint deadline) {
    sim::Result<std::string> bytes = call_raw(method, sim::encode(request), deadline);
    if (!bytes.ok()) return bytes.error();
    return sim::decode<Response>(bytes.value());
  }

  sim::Result<StartWorkflowExecutionReply> start(const StartWorkflowExecutionRequest& request, sim::TimePoint deadline);
  sim::Result<Ack> signal(const SignalWorkflowExecutionRequest& request, sim::TimePoint deadline);
  // Waits for the run (following continue-as-new) to close, polling until
  // the deadline.
  sim::Result<GetWorkflowExecutionResultReply> wait_result(const WorkflowExecution& execution, sim::TimePoint deadline);
  // The run's whole history so far.
  sim::Result<History> history(const WorkflowExecution& execution, sim::TimePoint deadline);

  std::uint64_t retries() const noexcept { return caller_.stats().retries; }

  // Sends `payload` as it is (a test's malformed request) and returns the
  // reply's bytes.
  sim::Result<std::string> call_raw(std::string_view method, const std::string& payload, sim::TimePoint deadline);

 private:

  sim::Env& env_;
  sdk::FrontendCaller caller_;
  sim::Duration rpc_timeout_;
};

}  // namespace duro::engine::testing
