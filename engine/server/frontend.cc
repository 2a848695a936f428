#include "engine/server/frontend.h"

#include <algorithm>

#include "engine/server/internal_api.h"

namespace duro::engine {
namespace {

using sim::Error;
using sim::ErrorCode;

// Each forwarded call may wait for ownership to settle (a node joined or
// died): a few RPC timeouts, not forever.
constexpr int kForwardTimeouts = 3;

}  // namespace

Frontend::Frontend(sim::Env& env, Router& router, const ServerOptions& options)
    : env_(env), router_(router), options_(options) {}

sim::TimePoint Frontend::deadline() const { return env_.sim().deadline_after(kForwardTimeouts * options_.rpc_timeout); }

template <typename Response, typename Request>
sim::Result<Response> Frontend::to_history(const std::string& workflow_id, const char* method, const Request& request) {
  if (workflow_id.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: workflow id is empty"};
  return router_.history<Response>(workflow_id, method, request, deadline());
}

std::string_view leading_task_token(std::string_view payload) {
  sim::Decoder decoder(payload);
  std::string_view token;
  if (!decoder.read_bytes(token)) return {};
  return token;
}

void Frontend::forward_by_token(sim::RpcServer& server, const char* method, const char* history_method) {
  server.handle_raw(method, [this, history_method](std::string_view payload, std::string& reply) -> sim::Result<void> {
    sim::Result<TaskToken> token = sim::decode<TaskToken>(leading_task_token(payload));
    if (!token.ok()) return Error{ErrorCode::kInvalidArgument, "BadRequest: malformed task token"};
    const std::string& workflow_id = token.value().execution.workflow_id;
    if (workflow_id.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: workflow id is empty"};
    sim::Result<std::string> answer = router_.history_bytes(workflow_id, history_method, payload, deadline());
    if (!answer.ok()) return answer.error();
    reply += answer.value();
    return {};
  });
}

void Frontend::register_methods(sim::RpcServer& server) {
  using namespace method;
  auto start = [this](const StartWorkflowExecutionRequest& request) -> sim::Result<StartWorkflowExecutionReply> {
    if (request.request_id.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: request id is empty"};
    return to_history<StartWorkflowExecutionReply>(request.workflow_id, kHistoryStart, HistoryStartRequest{request, {}, {}});
  };
  server.handle<StartWorkflowExecutionRequest, StartWorkflowExecutionReply>(kStartWorkflowExecution, start);
  server.handle<StartWorkflowExecutionRequest, StartWorkflowExecutionReply>(
      kSignalWithStartWorkflowExecution,
      [start](const StartWorkflowExecutionRequest& request) -> sim::Result<StartWorkflowExecutionReply> {
        if (!request.signal_name || request.signal_name->empty()) {
          return Error{ErrorCode::kInvalidArgument, "BadRequest: signal-with-start without a signal name"};
        }
        return start(request);
      });
  server.handle<SignalWorkflowExecutionRequest, Ack>(kSignalWorkflowExecution, [this](const auto& request) {
    return to_history<Ack>(request.execution.workflow_id, kHistorySignal, request);
  });
  server.handle<QueryWorkflowRequest, QueryWorkflowReply>(kQueryWorkflow, [this](const auto& request) {
    return to_history<QueryWorkflowReply>(request.execution.workflow_id, kHistoryQuery, request);
  });
  server.handle<RequestCancelWorkflowExecutionRequest, Ack>(kRequestCancelWorkflowExecution, [this](const auto& request) {
    return to_history<Ack>(request.execution.workflow_id, kHistoryRequestCancel, request);
  });
  server.handle<TerminateWorkflowExecutionRequest, Ack>(kTerminateWorkflowExecution, [this](const auto& request) {
    return to_history<Ack>(request.execution.workflow_id, kHistoryTerminate, request);
  });
  server.handle<DescribeWorkflowExecutionRequest, DescribeWorkflowExecutionReply>(
      kDescribeWorkflowExecution, [this](const auto& request) {
        return to_history<DescribeWorkflowExecutionReply>(request.execution.workflow_id, kHistoryDescribe, request);
      });
  server.handle<GetWorkflowExecutionHistoryRequest, GetWorkflowExecutionHistoryReply>(
      kGetWorkflowExecutionHistory, [this](const auto& request) {
        return to_history<GetWorkflowExecutionHistoryReply>(request.execution.workflow_id, kHistoryGetHistory, request);
      });
  server.handle<GetWorkflowExecutionResultRequest, GetWorkflowExecutionResultReply>(
      kGetWorkflowExecutionResult,
      [this](const GetWorkflowExecutionResultRequest& request) -> sim::Result<GetWorkflowExecutionResultReply> {
        if (request.execution.workflow_id.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: no workflow id"};
        // A long poll: each try waits as long as the history side may.
        const sim::Duration wait = std::clamp(request.wait, sim::Duration{0}, options_.long_poll_wait);
        return router_.history<GetWorkflowExecutionResultReply>(
            request.execution.workflow_id, kHistoryResult, request,
            env_.sim().deadline_after(wait + 2 * options_.rpc_timeout), true, wait + options_.rpc_timeout);
      });
  server.handle<PollWorkflowTaskQueueRequest, PollWorkflowTaskQueueReply>(
      kPollWorkflowTaskQueue,
      [this](const PollWorkflowTaskQueueRequest& request) -> sim::Result<PollWorkflowTaskQueueReply> {
        if (request.task_queue.name.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: no task queue"};
        // One try: a poll that times out may have been handed a task.
        // (Member by member: GCC 12 without LTO warns, wrongly, that a
        // `{}` member of the aggregate may be used uninitialized.)
        MatchingPollRequest poll;
        poll.workflow = request;
        poll.wait = options_.long_poll_wait;
        return router_.matching<PollWorkflowTaskQueueReply>(
            request.task_queue, kMatchingPollWorkflow, poll,
            env_.sim().deadline_after(options_.long_poll_wait + options_.rpc_timeout), false);
      });
  server.handle<PollActivityTaskQueueRequest, PollActivityTaskQueueReply>(
      kPollActivityTaskQueue,
      [this](const PollActivityTaskQueueRequest& request) -> sim::Result<PollActivityTaskQueueReply> {
        if (request.task_queue.name.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: no task queue"};
        MatchingPollRequest poll;
        poll.activity = request;
        poll.wait = options_.long_poll_wait;
        return router_.matching<PollActivityTaskQueueReply>(
            request.task_queue, kMatchingPollActivity, poll,
            env_.sim().deadline_after(options_.long_poll_wait + options_.rpc_timeout), false);
      });
  forward_by_token(server, kRespondWorkflowTaskCompleted, kHistoryCompleteWorkflowTask);
  forward_by_token(server, kRespondWorkflowTaskFailed, kHistoryFailWorkflowTask);
  server.handle<RespondQueryTaskCompletedRequest, Ack>(
      kRespondQueryTaskCompleted, [this](const RespondQueryTaskCompletedRequest& request) -> sim::Result<Ack> {
        sim::Result<TaskToken> token = sim::decode<TaskToken>(request.task_token);
        if (!token.ok() || token.value().kind != TaskToken::Kind::kQuery || token.value().owner.empty()) {
          return Error{ErrorCode::kInvalidArgument, "BadRequest: not a query task token"};
        }
        return router_.node<Ack>(token.value().owner, kMatchingAnswerQuery,
                                 AnswerQueryRequest{token.value(), QueryWorkflowReply{request.result, request.failure}},
                                 deadline());
      });
  forward_by_token(server, kRecordActivityTaskHeartbeat, kHistoryHeartbeat);
  forward_by_token(server, kRespondActivityTaskCompleted, kHistoryCompleteActivity);
  forward_by_token(server, kRespondActivityTaskFailed, kHistoryFailActivity);
  forward_by_token(server, kRespondActivityTaskCanceled, kHistoryCancelActivity);
}

}  // namespace duro::engine
