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

template <typename Response, typename Request>
sim::Result<Response> Frontend::by_token(const std::string& token_bytes, const char* method, const Request& request) {
  sim::Result<TaskToken> token = sim::decode<TaskToken>(token_bytes);
  if (!token.ok()) return Error{ErrorCode::kInvalidArgument, "BadRequest: malformed task token"};
  return to_history<Response>(token.value().execution.workflow_id, method, request);
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
  server.handle<RespondWorkflowTaskCompletedRequest, RespondWorkflowTaskCompletedReply>(
      kRespondWorkflowTaskCompleted, [this](const auto& request) {
        return by_token<RespondWorkflowTaskCompletedReply>(request.task_token, kHistoryCompleteWorkflowTask, request);
      });
  server.handle<RespondWorkflowTaskFailedRequest, Ack>(kRespondWorkflowTaskFailed, [this](const auto& request) {
    return by_token<Ack>(request.task_token, kHistoryFailWorkflowTask, request);
  });
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
  server.handle<RecordActivityTaskHeartbeatRequest, RecordActivityTaskHeartbeatReply>(
      kRecordActivityTaskHeartbeat, [this](const auto& request) {
        return by_token<RecordActivityTaskHeartbeatReply>(request.task_token, kHistoryHeartbeat, request);
      });
  server.handle<RespondActivityTaskCompletedRequest, RespondActivityTaskCompletedReply>(
      kRespondActivityTaskCompleted, [this](const auto& request) {
        return by_token<RespondActivityTaskCompletedReply>(request.task_token, kHistoryCompleteActivity, request);
      });
  server.handle<RespondActivityTaskFailedRequest, Ack>(kRespondActivityTaskFailed, [this](const auto& request) {
    return by_token<Ack>(request.task_token, kHistoryFailActivity, request);
  });
  server.handle<RespondActivityTaskCanceledRequest, Ack>(kRespondActivityTaskCanceled, [this](const auto& request) {
    return by_token<Ack>(request.task_token, kHistoryCancelActivity, request);
  });
}

}  // namespace duro::engine
