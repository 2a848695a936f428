#include "engine/testing/test_client.h"

#include <algorithm>
#include <utility>

#include "sim/assert.h"

namespace duro::engine::testing {
namespace {

constexpr int kAttemptsMax = 10'000;  // A bound on the loop; the deadline ends it first.
constexpr std::uint32_t kPagesMax = 10'000;

}  // namespace

TestClient::TestClient(sim::Env& env, std::vector<sim::Address> servers, std::uint16_t port, sim::Duration rpc_timeout)
    : env_(env), caller_(env, std::move(servers), port), rpc_timeout_(rpc_timeout) {}

sim::Result<std::string> TestClient::call_raw(std::string_view method, const std::string& payload,
                                              sim::TimePoint deadline) {
  return caller_.call_raw(method, payload, {.try_timeout = rpc_timeout_, .deadline = deadline, .attempts_max = kAttemptsMax});
}

sim::Result<StartWorkflowExecutionReply> TestClient::start(const StartWorkflowExecutionRequest& request,
                                                           sim::TimePoint deadline) {
  return call<StartWorkflowExecutionReply>(method::kStartWorkflowExecution, request, deadline);
}

sim::Result<Ack> TestClient::signal(const SignalWorkflowExecutionRequest& request, sim::TimePoint deadline) {
  return call<Ack>(method::kSignalWorkflowExecution, request, deadline);
}

sim::Result<GetWorkflowExecutionResultReply> TestClient::wait_result(const WorkflowExecution& execution,
                                                                     sim::TimePoint deadline) {
  for (int round = 0; round < kAttemptsMax; round++) {
    const sim::TimePoint now = env_.sim().now();
    if (now >= deadline) break;
    GetWorkflowExecutionResultRequest request{execution, std::min<sim::Duration>(deadline - now, std::chrono::seconds{15}),
                                              true};
    sim::Result<GetWorkflowExecutionResultReply> reply = call<GetWorkflowExecutionResultReply>(
        method::kGetWorkflowExecutionResult, request, std::min(deadline, now + std::chrono::seconds{20}));
    if (!reply.ok()) {
      if (!sdk::FrontendCaller::retryable(reply.error())) return reply;
      continue;
    }
    if (reply.value().closed) return reply;
  }
  return sim::Error{sim::ErrorCode::kTimeout, "workflow " + execution.workflow_id + " still running at the deadline"};
}

sim::Result<History> TestClient::history(const WorkflowExecution& execution, sim::TimePoint deadline) {
  History history;
  EventId next = 1;
  for (std::uint32_t page = 0; page < kPagesMax; page++) {
    sim::Result<GetWorkflowExecutionHistoryReply> reply = call<GetWorkflowExecutionHistoryReply>(
        method::kGetWorkflowExecutionHistory, GetWorkflowExecutionHistoryRequest{execution, next, 1000}, deadline);
    if (!reply.ok()) return reply.error();
    for (HistoryEvent& event : reply.value().events) history.events.push_back(std::move(event));
    if (reply.value().next_event_id == 0) return history;
    next = reply.value().next_event_id;
  }
  return sim::Error{sim::ErrorCode::kOverloaded, "history longer than the page bound"};
}

}  // namespace duro::engine::testing
