#include "engine/sdk/client.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "sim/assert.h"

namespace duro::sdk {

using namespace duro::engine;

namespace {

constexpr int kWaitRoundsMax = 100'000;  // Long polls of at most 15 s: over two weeks.
constexpr std::uint32_t kHistoryPagesMax = 10'000;
constexpr std::uint32_t kHistoryPageEvents = 1000;
constexpr sim::Duration kLongPoll = std::chrono::seconds{15};

}  // namespace

Client::Client(sim::Env& env, std::vector<sim::Address> servers, std::uint16_t port, ClientOptions options)
    : caller_(env, std::move(servers), port), options_(std::move(options)) {
  DURO_ASSERT(options_.try_timeout > sim::Duration{0});
}

CallPolicy Client::policy(sim::Duration wait) const {
  return CallPolicy{.try_timeout = options_.try_timeout,
                    .deadline = caller_.env().sim().deadline_after(wait),
                    .attempts_max = 10'000};
}

std::string Client::fresh_request_id(std::string_view what) {
  sim::Env& env = caller_.env();
  // Unique per node incarnation and call; the node name keeps clients on
  // different nodes apart.
  return fmt::format("{}/{}/{}/{}", what, env.name(), env.incarnation(), ++request_seq_);
}

StartWorkflowExecutionRequest Client::start_request(std::string_view workflow_type, std::string workflow_id,
                                                    Payload input, const StartOptions& options,
                                                    std::string request_id) const {
  DURO_ASSERT(!workflow_id.empty() && !workflow_type.empty() && !request_id.empty());
  StartWorkflowExecutionRequest request;
  request.request_id = std::move(request_id);
  request.workflow_id = std::move(workflow_id);
  request.workflow_type = std::string(workflow_type);
  request.task_queue = TaskQueue{options.task_queue, TaskQueueKind::kNormal};
  request.input = std::move(input);
  request.workflow_execution_timeout = options.execution_timeout;
  request.workflow_run_timeout = options.run_timeout;
  request.workflow_id_reuse_policy = options.id_reuse_policy;
  request.identity = options_.identity;
  return request;
}

sim::Result<WorkflowExecution> Client::start_payload(std::string_view workflow_type, std::string workflow_id,
                                                     Payload input, const StartOptions& options) {
  std::string request_id = options.request_id.empty() ? "start/" + workflow_id : options.request_id;
  const StartWorkflowExecutionRequest request =
      start_request(workflow_type, std::move(workflow_id), std::move(input), options, std::move(request_id));
  sim::Result<StartWorkflowExecutionReply> reply =
      caller_.call<StartWorkflowExecutionReply>(method::kStartWorkflowExecution, request, policy(options.wait));
  if (!reply.ok()) return reply.error();
  return WorkflowExecution{request.workflow_id, reply.value().run_id};
}

sim::Result<void> Client::signal_payload(const WorkflowExecution& execution, std::string_view name, Payload input,
                                         std::string request_id, sim::Duration wait) {
  SignalWorkflowExecutionRequest request;
  request.request_id = request_id.empty() ? fresh_request_id("signal") : std::move(request_id);
  request.execution = execution;
  request.signal_name = std::string(name);
  request.input = std::move(input);
  request.identity = options_.identity;
  sim::Result<Ack> reply = caller_.call<Ack>(method::kSignalWorkflowExecution, request, policy(wait));
  if (!reply.ok()) return reply.error();
  return {};
}

sim::Result<WorkflowExecution> Client::signal_with_start_payload(std::string_view workflow_type,
                                                                 std::string workflow_id, Payload input,
                                                                 std::string_view signal_name, Payload signal_input,
                                                                 const StartOptions& options) {
  StartWorkflowExecutionRequest request =
      start_request(workflow_type, std::move(workflow_id), std::move(input), options,
                    options.request_id.empty() ? fresh_request_id("signal-with-start") : options.request_id);
  request.signal_name = std::string(signal_name);
  request.signal_input = std::move(signal_input);
  sim::Result<StartWorkflowExecutionReply> reply = caller_.call<StartWorkflowExecutionReply>(
      method::kSignalWithStartWorkflowExecution, request, policy(options.wait));
  if (!reply.ok()) return reply.error();
  return WorkflowExecution{request.workflow_id, reply.value().run_id};
}

sim::Result<Payload> Client::query_payload(const WorkflowExecution& execution, std::string_view name, Payload args,
                                           sim::Duration wait) {
  QueryWorkflowRequest request{execution, std::string(name), std::move(args)};
  sim::Result<QueryWorkflowReply> reply = caller_.call<QueryWorkflowReply>(method::kQueryWorkflow, request, policy(wait));
  if (!reply.ok()) return reply.error();
  if (reply.value().failure) {
    return sim::Error{sim::ErrorCode::kApplication,
                      fmt::format("query '{}' failed: {}", name, reply.value().failure->message)};
  }
  return std::move(reply.value().result);
}

sim::Result<WorkflowOutcome<Payload>> Client::result_payload(const WorkflowExecution& execution,
                                                             sim::TimePoint deadline) {
  sim::Env& env = caller_.env();
  for (int round = 0; round < kWaitRoundsMax; round++) {
    const sim::TimePoint now = env.sim().now();
    if (now >= deadline) break;
    GetWorkflowExecutionResultRequest request{execution, std::min<sim::Duration>(deadline - now, kLongPoll), true};
    CallPolicy call = policy(std::min<sim::Duration>(deadline - now, kLongPoll + std::chrono::seconds{5}));
    call.try_timeout = kLongPoll + std::chrono::seconds{5};
    sim::Result<GetWorkflowExecutionResultReply> reply =
        caller_.call<GetWorkflowExecutionResultReply>(method::kGetWorkflowExecutionResult, request, call);
    if (!reply.ok()) {
      if (!FrontendCaller::retryable(reply.error())) return reply.error();
      continue;
    }
    if (!reply.value().closed) continue;
    WorkflowOutcome<Payload> outcome;
    outcome.status = reply.value().status;
    outcome.run_id = reply.value().run_id;
    if (const std::optional<HistoryEvent>& close = reply.value().close_event) {
      if (const auto* completed = close->as<WorkflowExecutionCompleted>()) {
        outcome.value = completed->result;
      } else {
        outcome.failure = close_failure(*close);
      }
    }
    return outcome;
  }
  return sim::Error{sim::ErrorCode::kTimeout, "workflow " + execution.workflow_id + " still running at the deadline"};
}

std::optional<Failure> Client::close_failure(const HistoryEvent& close) {
  if (const auto* failed = close.as<WorkflowExecutionFailed>()) return failed->failure;
  if (close.is<WorkflowExecutionTimedOut>()) {
    return Failure{kTimeoutFailureType, "workflow timed out", {}, true, TimeoutType::kNone, "server"};
  }
  if (close.is<WorkflowExecutionCanceled>()) {
    return Failure{kCanceledFailureType, "workflow canceled", {}, true, TimeoutType::kNone, "server"};
  }
  if (const auto* terminated = close.as<WorkflowExecutionTerminated>()) {
    return Failure{kTerminatedFailureType, terminated->reason, {}, true, TimeoutType::kNone, "server"};
  }
  return Failure{"Unknown", "closed by " + std::string(event_type_name(close.type())), {}, true, TimeoutType::kNone,
                 "server"};
}

sim::Result<void> Client::cancel(const WorkflowExecution& execution, std::string reason, sim::Duration wait) {
  RequestCancelWorkflowExecutionRequest request{fresh_request_id("cancel"), execution, std::move(reason),
                                                options_.identity};
  sim::Result<Ack> reply = caller_.call<Ack>(method::kRequestCancelWorkflowExecution, request, policy(wait));
  if (!reply.ok()) return reply.error();
  return {};
}

sim::Result<void> Client::terminate(const WorkflowExecution& execution, std::string reason, sim::Duration wait) {
  TerminateWorkflowExecutionRequest request{fresh_request_id("terminate"), execution, std::move(reason), {},
                                            options_.identity};
  sim::Result<Ack> reply = caller_.call<Ack>(method::kTerminateWorkflowExecution, request, policy(wait));
  if (!reply.ok()) return reply.error();
  return {};
}

sim::Result<DescribeWorkflowExecutionReply> Client::describe(const WorkflowExecution& execution, sim::Duration wait) {
  return caller_.call<DescribeWorkflowExecutionReply>(method::kDescribeWorkflowExecution,
                                                      DescribeWorkflowExecutionRequest{execution}, policy(wait));
}

sim::Result<History> Client::history(const WorkflowExecution& execution, sim::TimePoint deadline) {
  History history;
  WorkflowExecution read = execution;
  EventId next = 1;
  CallPolicy call = policy(std::chrono::seconds{0});
  call.deadline = deadline;
  for (std::uint32_t page = 0; page < kHistoryPagesMax; page++) {
    sim::Result<GetWorkflowExecutionHistoryReply> reply = caller_.call<GetWorkflowExecutionHistoryReply>(
        method::kGetWorkflowExecutionHistory, GetWorkflowExecutionHistoryRequest{read, next, kHistoryPageEvents}, call);
    if (!reply.ok()) return reply.error();
    // Later pages read the run the first one resolved, even if a new run
    // of the chain started meanwhile.
    read.run_id = reply.value().run_id;
    for (HistoryEvent& event : reply.value().events) history.events.push_back(std::move(event));
    if (reply.value().next_event_id == 0) return history;
    next = reply.value().next_event_id;
  }
  return sim::Error{sim::ErrorCode::kOverloaded, "history longer than the page bound"};
}

}  // namespace duro::sdk
