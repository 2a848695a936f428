#include "engine/testing/test_client.h"

#include <algorithm>
#include <utility>

#include "sim/assert.h"

namespace duro::engine::testing {
namespace {

bool retryable(const sim::Error& error) {
  return error.code == sim::ErrorCode::kUnavailable || error.code == sim::ErrorCode::kTimeout ||
         error.code == sim::ErrorCode::kOverloaded;
}

constexpr int kAttemptsMax = 10'000;  // A bound on the loop; the deadline ends it first.
constexpr std::uint32_t kPagesMax = 10'000;

}  // namespace

TestClient::TestClient(sim::Env& env, std::vector<sim::Address> servers, std::uint16_t port, sim::Duration rpc_timeout)
    : env_(env), servers_(std::move(servers)), rpc_timeout_(rpc_timeout) {
  DURO_ASSERT(!servers_.empty());
  rpc_ = std::make_unique<sim::RpcClient>(env_.network(), env_.node(), port);
  next_server_ = env_.random().uniform(servers_.size());
}

sim::Result<std::string> TestClient::call_raw(std::string_view method, const std::string& payload,
                                              sim::TimePoint deadline) {
  sim::Error last{sim::ErrorCode::kTimeout, "deadline passed before the first try"};
  sim::Duration backoff = std::chrono::milliseconds{100};
  for (int attempt = 0; attempt < kAttemptsMax; attempt++) {
    const sim::TimePoint now = env_.sim().now();
    if (now >= deadline) break;
    const sim::Address server = servers_[next_server_ % servers_.size()];
    sim::Result<std::string> reply =
        rpc_->call_raw(sim::Endpoint{server, kFrontendPort}, method, payload, std::min(rpc_timeout_, deadline - now));
    if (reply.ok() || !retryable(reply.error())) return reply;
    last = reply.error();
    retries_++;
    next_server_++;
    env_.sleep_for(std::min(backoff, std::max(deadline - env_.sim().now(), sim::Duration{0})));
    backoff = std::min(backoff * 2, sim::Duration{std::chrono::seconds{2}});
  }
  return last;
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
      if (!retryable(reply.error())) return reply;
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
