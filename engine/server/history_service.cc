#include "engine/server/history_service.h"

#include <algorithm>
#include <utility>

#include "engine/server/delivery_fuzz.h"
#include "sim/assert.h"

namespace duro::engine {
namespace {

using sim::Error;
using sim::ErrorCode;

constexpr std::uint32_t kHistoryPageEventsMax = 1000;
constexpr int kRunsFollowedMax = 100;  // A bound on following continue-as-new chains in one call.

}  // namespace

HistoryService::HistoryService(sim::Env& env, ShardController& shards, Router& router, const ServerOptions& options)
    : env_(env), shards_(shards), router_(router), options_(options) {}

sim::Result<std::shared_ptr<Shard>> HistoryService::shard_for(const std::string& workflow_id) const {
  if (workflow_id.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: workflow id is empty"};
  std::shared_ptr<Shard> shard = shards_.shard_for_workflow(workflow_id);
  if (shard == nullptr) {
    return Error{ErrorCode::kUnavailable,
                 "ShardNotOwned: shard " + std::to_string(router_.shard_for(workflow_id)) + " is not owned here"};
  }
  return shard;
}

sim::Result<TaskToken> HistoryService::token_of(const std::string& bytes, TaskToken::Kind kind) const {
  sim::Result<TaskToken> token = sim::decode<TaskToken>(bytes);
  if (!token.ok()) return Error{ErrorCode::kInvalidArgument, "BadRequest: malformed task token"};
  if (token.value().kind != kind || token.value().execution.workflow_id.empty() ||
      token.value().execution.run_id.empty()) {
    return Error{ErrorCode::kInvalidArgument, "BadRequest: task token of the wrong kind"};
  }
  return token;
}

sim::Result<Ack> HistoryService::update(const WorkflowExecution& execution, const Shard::Op& op) {
  sim::Result<std::shared_ptr<Shard>> shard = shard_for(execution.workflow_id);
  if (!shard.ok()) return shard.error();
  sim::Result<void> done = shard.value()->update(execution, op);
  if (!done.ok()) return done.error();
  return Ack{};
}

sim::Result<StartWorkflowExecutionReply> HistoryService::start(const HistoryStartRequest& request) {
  sim::Result<std::shared_ptr<Shard>> shard = shard_for(request.request.workflow_id);
  if (!shard.ok()) return shard.error();
  return shard.value()->start_workflow(request);
}

sim::Result<Ack> HistoryService::signal(const SignalWorkflowExecutionRequest& request) {
  hold_delivery_for_fuzz(env_, options_.fuzz_delivery_hold_max);
  if (request.signal_name.empty()) return Error{ErrorCode::kInvalidArgument, "BadRequest: signal name is empty"};
  return update(request.execution, [&](ExecutionMutator& mutator) {
    return mutator.signal(request.signal_name, request.input, request.identity, request.request_id);
  });
}

sim::Result<Ack> HistoryService::request_cancel(const RequestCancelWorkflowExecutionRequest& request) {
  return update(request.execution, [&](ExecutionMutator& mutator) {
    return mutator.request_cancel(request.reason, request.identity, request.request_id);
  });
}

sim::Result<Ack> HistoryService::terminate(const TerminateWorkflowExecutionRequest& request) {
  return update(request.execution, [&](ExecutionMutator& mutator) {
    // A retried terminate finds the run already terminated: done.
    if (!mutator.state().running() && mutator.state().status == WorkflowStatus::kTerminated) return sim::Result<void>{};
    return mutator.terminate(request.reason, request.details, request.identity);
  });
}

sim::Result<DescribeWorkflowExecutionReply> HistoryService::describe(const DescribeWorkflowExecutionRequest& request) {
  sim::Result<std::shared_ptr<Shard>> shard = shard_for(request.execution.workflow_id);
  if (!shard.ok()) return shard.error();
  sim::Result<Shard::SnapshotPtr> snapshot = shard.value()->load(request.execution);
  if (!snapshot.ok()) return snapshot.error();
  const MutableState& state = snapshot.value()->state;
  DescribeWorkflowExecutionReply reply;
  reply.execution = state.execution;
  reply.workflow_type = state.workflow_type;
  reply.task_queue = state.task_queue;
  reply.status = state.status;
  reply.start_time = state.start_time;
  reply.close_time = state.close_time;
  reply.history_length = state.next_event_id - 1;
  for (const auto& [id, activity] : state.activities) {
    reply.pending_activities.push_back(PendingActivityInfo{id, activity.activity_id, activity.activity_type,
                                                           activity.attempt, activity.started(),
                                                           activity.cancel_requested, activity.last_failure});
  }
  for (const auto& [id, child] : state.children) {
    reply.pending_children.push_back(PendingChildInfo{id, child.workflow_id, child.run_id, child.workflow_type});
  }
  for (const auto& [id, timer] : state.timers) reply.pending_timers.push_back(id);
  reply.workflow_task_pending = state.workflow_task_outstanding();
  reply.parent = state.parent;
  return reply;
}

sim::Result<GetWorkflowExecutionHistoryReply> HistoryService::get_history(
    const GetWorkflowExecutionHistoryRequest& request) {
  sim::Result<std::shared_ptr<Shard>> shard = shard_for(request.execution.workflow_id);
  if (!shard.ok()) return shard.error();
  sim::Result<Shard::HistoryPage> page = shard.value()->read_history(
      request.execution, request.from_event_id, std::clamp<std::uint32_t>(request.max_events, 1, kHistoryPageEventsMax));
  if (!page.ok()) return page.error();
  sim::Result<std::vector<HistoryEvent>> events = decode_events(page.value().events);
  DURO_ASSERT_MSG(events.ok(), "history read back does not decode");
  return GetWorkflowExecutionHistoryReply{std::move(page.value().run_id), std::move(events).value(),
                                          page.value().next_event_id};
}

sim::Result<GetWorkflowExecutionResultReply> HistoryService::result(const GetWorkflowExecutionResultRequest& request) {
  sim::Result<std::shared_ptr<Shard>> shard = shard_for(request.execution.workflow_id);
  if (!shard.ok()) return shard.error();
  const sim::TimePoint deadline =
      env_.sim().deadline_after(std::clamp(request.wait, sim::Duration{0}, options_.long_poll_wait));
  WorkflowExecution execution = request.execution;
  for (int followed = 0; followed < kRunsFollowedMax; followed++) {
    sim::Result<Shard::SnapshotPtr> snapshot = shard.value()->wait_closed(execution, deadline);
    if (!snapshot.ok()) return snapshot.error();
    const MutableState& state = snapshot.value()->state;
    GetWorkflowExecutionResultReply reply;
    reply.run_id = state.execution.run_id;
    reply.status = state.status;
    if (state.running()) return reply;
    if (request.follow_runs && !state.new_execution_run_id.empty()) {
      // Same workflow id, same shard: follow the chain to its last run.
      execution = WorkflowExecution{state.execution.workflow_id, state.new_execution_run_id};
      continue;
    }
    reply.closed = true;
    reply.close_event = state.close_event;
    return reply;
  }
  return Error{ErrorCode::kUnavailable, "too many runs to follow in one call; call again"};
}

sim::Result<QueryWorkflowReply> HistoryService::query(const QueryWorkflowRequest& request) {
  sim::Result<std::shared_ptr<Shard>> shard = shard_for(request.execution.workflow_id);
  if (!shard.ok()) return shard.error();
  sim::Result<Shard::SnapshotPtr> snapshot = shard.value()->load(request.execution);
  if (!snapshot.ok()) return snapshot.error();
  const MutableState& state = snapshot.value()->state;
  QueryWorkflowRequest resolved = request;
  resolved.execution = state.execution;
  const sim::Duration wait = options_.rpc_timeout;
  // The sticky worker has the run in its cache; if it is gone, any worker
  // of the normal queue replays it.
  if (!state.sticky_task_queue.name.empty()) {
    sim::Result<QueryWorkflowReply> answered = router_.matching<QueryWorkflowReply>(
        state.sticky_task_queue, method::kMatchingQuery, MatchingQueryRequest{state.sticky_task_queue, resolved, wait},
        env_.sim().deadline_after(wait + options_.rpc_timeout), false);
    if (answered.ok()) return answered;
  }
  return router_.matching<QueryWorkflowReply>(state.task_queue, method::kMatchingQuery,
                                              MatchingQueryRequest{state.task_queue, resolved, wait},
                                              env_.sim().deadline_after(wait + options_.rpc_timeout), false);
}

sim::Result<PollWorkflowTaskQueueReply> HistoryService::record_workflow_task_started(
    const RecordWorkflowTaskStartedRequest& request) {
  hold_delivery_for_fuzz(env_, options_.fuzz_delivery_hold_max);
  const MatchingTask& task = request.task;
  sim::Result<std::shared_ptr<Shard>> shard = shard_for(task.execution.workflow_id);
  if (!shard.ok()) return shard.error();
  Shard::SnapshotPtr after;
  sim::Result<void> started = shard.value()->update(
      task.execution,
      [&](ExecutionMutator& mutator) {
        return mutator.record_workflow_task_started(task.scheduled_event_id, task.attempt, request.poll.poll_request_id,
                                                    request.poll.identity);
      },
      &after);
  if (!started.ok()) return started.error();
  if (after == nullptr) {
    // Nothing was written: a retried poll whose start was recorded before.
    sim::Result<Shard::SnapshotPtr> loaded = shard.value()->load(task.execution);
    if (!loaded.ok()) return loaded.error();
    after = std::move(loaded).value();
  }
  const MutableState& state = after->state;
  // Read again after the update let go of the run: the task may have timed
  // out and been scheduled again meanwhile. Then this poll's task is stale.
  if (state.workflow_task.scheduled_event_id != task.scheduled_event_id ||
      state.workflow_task.attempt != task.attempt || !state.workflow_task_started()) {
    return Error{ErrorCode::kNotFound, "NotFound: the workflow task moved on"};
  }
  return workflow_task(*shard.value(), state);
}

sim::Result<PollWorkflowTaskQueueReply> HistoryService::workflow_task(Shard& shard, const MutableState& state) {
  DURO_ASSERT(state.workflow_task_started());
  PollWorkflowTaskQueueReply reply;
  reply.has_task = true;
  reply.execution = state.execution;
  reply.workflow_type = state.workflow_type;
  reply.attempt = state.workflow_task.attempt;
  reply.previous_started_event_id = state.previous_started_event_id;
  reply.started_event_id = state.workflow_task.started_event_id;
  reply.task_token = sim::encode(TaskToken{TaskToken::Kind::kWorkflow, state.execution,
                                           state.workflow_task.scheduled_event_id, state.workflow_task.started_event_id,
                                           state.workflow_task.attempt, {}, {}});
  // A sticky worker holds the run up to its previous task: send what came
  // after. Anyone else replays from the first event.
  const EventId from = state.workflow_task.task_queue.kind == TaskQueueKind::kSticky
                           ? state.previous_started_event_id + 1
                           : 1;
  sim::Result<Shard::HistoryPage> history = shard.read_written_history(state.execution, from, kHistoryPageEventsMax);
  if (!history.ok()) return history.error();
  reply.history = std::move(history.value().events);
  reply.next_page_event_id = history.value().next_event_id;
  return reply;
}

sim::Result<RespondWorkflowTaskCompletedReply> HistoryService::complete_workflow_task(
    const RespondWorkflowTaskCompletedRequest& request) {
  sim::Result<TaskToken> token = token_of(request.task_token, TaskToken::Kind::kWorkflow);
  if (!token.ok()) return token.error();
  RespondWorkflowTaskCompletedReply reply;
  sim::Result<Ack> done = update(token.value().execution, [&](ExecutionMutator& mutator) {
    // Built on every attempt of the update; only the written one is sent.
    reply.activity_tasks.clear();
    sim::Result<void> completed = mutator.complete_workflow_task(token.value(), request, env_.random());
    for (const EventId scheduled_event_id : mutator.eager_started()) {
      const auto started = mutator.state().activities.find(scheduled_event_id);
      DURO_ASSERT_MSG(started != mutator.state().activities.end(), "an eager activity is gone from its run");
      const ActivityInfo& activity = started->second;
      const auto command = std::find_if(request.commands.begin(), request.commands.end(), [&](const Command& c) {
        const auto* schedule = std::get_if<ScheduleActivityTask>(&c);
        return schedule != nullptr && schedule->activity_id == activity.activity_id;
      });
      DURO_ASSERT(command != request.commands.end());
      reply.activity_tasks.push_back(
          activity_task(mutator.state(), activity, std::get<ScheduleActivityTask>(*command).input));
    }
    return completed;
  });
  if (!done.ok()) return done.error();
  return reply;
}

sim::Result<Ack> HistoryService::fail_workflow_task(const RespondWorkflowTaskFailedRequest& request) {
  sim::Result<TaskToken> token = token_of(request.task_token, TaskToken::Kind::kWorkflow);
  if (!token.ok()) return token.error();
  return update(token.value().execution, [&](ExecutionMutator& mutator) {
    return mutator.fail_workflow_task(token.value(), request.cause, request.failure, request.identity);
  });
}

sim::Result<PollActivityTaskQueueReply> HistoryService::record_activity_task_started(
    const RecordActivityTaskStartedRequest& request) {
  const MatchingTask& task = request.task;
  sim::Result<std::shared_ptr<Shard>> shard = shard_for(task.execution.workflow_id);
  if (!shard.ok()) return shard.error();
  Shard::SnapshotPtr after;
  sim::Result<void> started = shard.value()->update(
      task.execution,
      [&](ExecutionMutator& mutator) {
        return mutator.record_activity_task_started(task.scheduled_event_id, task.attempt, request.poll.poll_request_id,
                                                    request.poll.identity);
      },
      &after);
  if (!started.ok()) return started.error();
  if (after == nullptr) {
    sim::Result<Shard::SnapshotPtr> loaded = shard.value()->load(task.execution);
    if (!loaded.ok()) return loaded.error();
    after = std::move(loaded).value();
  }
  auto it = after->state.activities.find(task.scheduled_event_id);
  if (it == after->state.activities.end()) return Error{ErrorCode::kNotFound, "NotFound: activity gone"};
  const ActivityInfo& activity = it->second;
  // Read again after the update let go of the run: the attempt may have
  // timed out and another begun meanwhile (cell-migration, swarm seed 14).
  // Then this poll's task is stale.
  if (activity.attempt != task.attempt || !activity.started()) {
    return Error{ErrorCode::kNotFound, "NotFound: activity attempt " + std::to_string(task.attempt) + " moved on"};
  }
  sim::Result<Shard::HistoryPage> scheduled =
      shard.value()->read_written_history(after->state.execution, task.scheduled_event_id, 1);
  if (!scheduled.ok()) return scheduled.error();
  sim::Result<std::vector<HistoryEvent>> events = decode_events(scheduled.value().events);
  DURO_ASSERT_MSG(events.ok(), "history read back does not decode");
  if (events.value().empty() || !events.value().front().is<ActivityTaskScheduled>()) {
    return Error{ErrorCode::kUnavailable, "the activity's scheduled event is not readable yet"};
  }
  return activity_task(after->state, activity, events.value().front().as<ActivityTaskScheduled>()->input);
}

PollActivityTaskQueueReply HistoryService::activity_task(const MutableState& state, const ActivityInfo& activity,
                                                         const Payload& input) {
  DURO_ASSERT(activity.started());
  PollActivityTaskQueueReply reply;
  reply.has_task = true;
  reply.task_token = sim::encode(TaskToken{TaskToken::Kind::kActivity, state.execution, activity.scheduled_event_id, 0,
                                           activity.attempt, {}, {}});
  reply.execution = state.execution;
  reply.workflow_type = state.workflow_type;
  reply.activity_id = activity.activity_id;
  reply.activity_type = activity.activity_type;
  reply.input = input;
  reply.attempt = activity.attempt;
  reply.scheduled_time = activity.scheduled_time;
  reply.current_attempt_scheduled_time = activity.attempt_scheduled_time;
  reply.started_time = activity.started_time;
  reply.schedule_to_close_timeout = activity.schedule_to_close_timeout;
  reply.start_to_close_timeout = activity.start_to_close_timeout;
  reply.heartbeat_timeout = activity.heartbeat_timeout;
  reply.heartbeat_details = activity.heartbeat_details;
  return reply;
}

sim::Result<RecordActivityTaskHeartbeatReply> HistoryService::heartbeat(const RecordActivityTaskHeartbeatRequest& request) {
  sim::Result<TaskToken> token = token_of(request.task_token, TaskToken::Kind::kActivity);
  if (!token.ok()) return token.error();
  bool cancel_requested = false;
  sim::Result<Ack> done = update(token.value().execution, [&](ExecutionMutator& mutator) {
    sim::Result<bool> recorded = mutator.record_activity_heartbeat(token.value(), request.details);
    if (!recorded.ok()) return sim::Result<void>{recorded.error()};
    cancel_requested = recorded.value();
    return sim::Result<void>{};
  });
  if (!done.ok()) return done.error();
  return RecordActivityTaskHeartbeatReply{cancel_requested};
}

sim::Result<RespondActivityTaskCompletedReply> HistoryService::complete_activity(
    const RespondActivityTaskCompletedRequest& request) {
  hold_delivery_for_fuzz(env_, options_.fuzz_delivery_hold_max);
  sim::Result<TaskToken> token = token_of(request.task_token, TaskToken::Kind::kActivity);
  if (!token.ok()) return token.error();
  sim::Result<std::shared_ptr<Shard>> shard = shard_for(token.value().execution.workflow_id);
  if (!shard.ok()) return shard.error();
  // Delivery fuzzing declines: an eager task leaves no moment between the
  // result and the task that sees it, and the fuzzer is there to land other
  // events in that moment, as they would land for a worker that did not ask.
  const bool eager_asked = !request.eager_sticky_queue.name.empty() && !request.eager_poll_request_id.empty() &&
                           options_.fuzz_delivery_hold_max == sim::Duration{0};
  bool eager = false;
  Shard::SnapshotPtr after;
  sim::Result<void> done = shard.value()->update(
      token.value().execution,
      [&](ExecutionMutator& mutator) {
        // Decided on every attempt of the update; only the written one counts.
        eager = false;
        sim::Result<void> completed = mutator.complete_activity(token.value(), request.result, request.identity);
        if (completed.ok() && eager_asked) {
          eager = mutator.start_workflow_task_eagerly(request.eager_sticky_queue, request.eager_poll_request_id,
                                                      request.identity);
        }
        return completed;
      },
      eager_asked ? &after : nullptr);
  RespondActivityTaskCompletedReply reply;
  if (!done.ok()) {
    // A retry of a completion that was written, whose reply was lost (or
    // whose task could not be read back below): the activity is gone, but
    // the workflow task it started for this very request may still be the
    // run's outstanding one. It is handed out again, as matching does for a
    // retried poll; else it would wait out its start-to-close timeout.
    if (done.error().code != ErrorCode::kNotFound || !eager_asked) return done.error();
    sim::Result<Shard::SnapshotPtr> loaded = shard.value()->load(token.value().execution);
    if (!loaded.ok()) return done.error();
    const MutableState& state = loaded.value()->state;
    if (!state.running() || !state.workflow_task_started() ||
        state.workflow_task.request_id != request.eager_poll_request_id) {
      return done.error();
    }
    sim::Result<PollWorkflowTaskQueueReply> task = workflow_task(*shard.value(), state);
    if (!task.ok()) return task.error();
    reply.workflow_task = std::move(task).value();
    return reply;
  }
  if (!eager) return reply;
  // The task is the worker's now: were this reply lost, the worker's retry
  // gets it again (above); were the worker gone, the task's start-to-close
  // timeout would hand it out again.
  DURO_ASSERT(after != nullptr && after->state.workflow_task_started());
  DURO_ASSERT(after->state.workflow_task.request_id == request.eager_poll_request_id);
  sim::Result<PollWorkflowTaskQueueReply> task = workflow_task(*shard.value(), after->state);
  if (!task.ok()) return task.error();
  reply.workflow_task = std::move(task).value();
  return reply;
}

sim::Result<Ack> HistoryService::fail_activity(const RespondActivityTaskFailedRequest& request) {
  hold_delivery_for_fuzz(env_, options_.fuzz_delivery_hold_max);
  sim::Result<TaskToken> token = token_of(request.task_token, TaskToken::Kind::kActivity);
  if (!token.ok()) return token.error();
  return update(token.value().execution, [&](ExecutionMutator& mutator) {
    return mutator.fail_activity(token.value(), request.failure, request.last_heartbeat_details, request.identity);
  });
}

sim::Result<Ack> HistoryService::cancel_activity(const RespondActivityTaskCanceledRequest& request) {
  hold_delivery_for_fuzz(env_, options_.fuzz_delivery_hold_max);
  sim::Result<TaskToken> token = token_of(request.task_token, TaskToken::Kind::kActivity);
  if (!token.ok()) return token.error();
  return update(token.value().execution, [&](ExecutionMutator& mutator) {
    return mutator.cancel_activity(token.value(), request.details, request.identity);
  });
}

sim::Result<Ack> HistoryService::child_closed(const ChildClosedRequest& request) {
  hold_delivery_for_fuzz(env_, options_.fuzz_delivery_hold_max);
  return update(request.parent, [&](ExecutionMutator& mutator) {
    mutator.child_closed(request.initiated_event_id, request.child, request.close_event);
    return sim::Result<void>{};
  });
}

void HistoryService::register_methods(sim::RpcServer& server) {
  server.handle<HistoryStartRequest, StartWorkflowExecutionReply>(method::kHistoryStart,
                                                                 [this](const auto& r) { return start(r); });
  server.handle<SignalWorkflowExecutionRequest, Ack>(method::kHistorySignal, [this](const auto& r) { return signal(r); });
  server.handle<RequestCancelWorkflowExecutionRequest, Ack>(method::kHistoryRequestCancel,
                                                            [this](const auto& r) { return request_cancel(r); });
  server.handle<TerminateWorkflowExecutionRequest, Ack>(method::kHistoryTerminate,
                                                        [this](const auto& r) { return terminate(r); });
  server.handle<DescribeWorkflowExecutionRequest, DescribeWorkflowExecutionReply>(
      method::kHistoryDescribe, [this](const auto& r) { return describe(r); });
  server.handle<GetWorkflowExecutionHistoryRequest, GetWorkflowExecutionHistoryReply>(
      method::kHistoryGetHistory, [this](const auto& r) { return get_history(r); });
  server.handle<GetWorkflowExecutionResultRequest, GetWorkflowExecutionResultReply>(
      method::kHistoryResult, [this](const auto& r) { return result(r); });
  server.handle<QueryWorkflowRequest, QueryWorkflowReply>(method::kHistoryQuery, [this](const auto& r) { return query(r); });
  server.handle<RecordWorkflowTaskStartedRequest, PollWorkflowTaskQueueReply>(
      method::kHistoryRecordWorkflowTaskStarted, [this](const auto& r) { return record_workflow_task_started(r); });
  server.handle<RespondWorkflowTaskCompletedRequest, RespondWorkflowTaskCompletedReply>(
      method::kHistoryCompleteWorkflowTask, [this](const auto& r) { return complete_workflow_task(r); });
  server.handle<RespondWorkflowTaskFailedRequest, Ack>(method::kHistoryFailWorkflowTask,
                                                       [this](const auto& r) { return fail_workflow_task(r); });
  server.handle<RecordActivityTaskStartedRequest, PollActivityTaskQueueReply>(
      method::kHistoryRecordActivityTaskStarted, [this](const auto& r) { return record_activity_task_started(r); });
  server.handle<RecordActivityTaskHeartbeatRequest, RecordActivityTaskHeartbeatReply>(
      method::kHistoryHeartbeat, [this](const auto& r) { return heartbeat(r); });
  server.handle<RespondActivityTaskCompletedRequest, RespondActivityTaskCompletedReply>(
      method::kHistoryCompleteActivity, [this](const auto& r) { return complete_activity(r); });
  server.handle<RespondActivityTaskFailedRequest, Ack>(method::kHistoryFailActivity,
                                                       [this](const auto& r) { return fail_activity(r); });
  server.handle<RespondActivityTaskCanceledRequest, Ack>(method::kHistoryCancelActivity,
                                                         [this](const auto& r) { return cancel_activity(r); });
  server.handle<ChildClosedRequest, Ack>(method::kHistoryChildClosed, [this](const auto& r) { return child_closed(r); });
}

}  // namespace duro::engine
