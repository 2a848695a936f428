// The calls server nodes make to each other: history and matching, as the
// frontend and the shards' task executors use them. Not for clients.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/server/api.h"
#include "engine/server/matching.h"
#include "sim/codec.h"

namespace duro::engine {

namespace method {
inline constexpr const char* kHistoryStart = "history.start";
inline constexpr const char* kHistorySignal = "history.signal";
inline constexpr const char* kHistoryRequestCancel = "history.request_cancel";
inline constexpr const char* kHistoryTerminate = "history.terminate";
inline constexpr const char* kHistoryDescribe = "history.describe";
inline constexpr const char* kHistoryResult = "history.result";
inline constexpr const char* kHistoryQuery = "history.query";
inline constexpr const char* kHistoryGetHistory = "history.get_history";
inline constexpr const char* kHistoryRecordWorkflowTaskStarted = "history.record_workflow_task_started";
inline constexpr const char* kHistoryCompleteWorkflowTask = "history.complete_workflow_task";
inline constexpr const char* kHistoryFailWorkflowTask = "history.fail_workflow_task";
inline constexpr const char* kHistoryRecordActivityTaskStarted = "history.record_activity_task_started";
inline constexpr const char* kHistoryHeartbeat = "history.heartbeat";
inline constexpr const char* kHistoryCompleteActivity = "history.complete_activity";
inline constexpr const char* kHistoryFailActivity = "history.fail_activity";
inline constexpr const char* kHistoryCancelActivity = "history.cancel_activity";
inline constexpr const char* kHistoryChildClosed = "history.child_closed";
inline constexpr const char* kMatchingAddTask = "matching.add_task";
inline constexpr const char* kMatchingPollWorkflow = "matching.poll_workflow";
inline constexpr const char* kMatchingPollActivity = "matching.poll_activity";
inline constexpr const char* kMatchingQuery = "matching.query";
inline constexpr const char* kMatchingAnswerQuery = "matching.answer_query";
}  // namespace method

// A start, from a client or from a parent's StartChild transfer task.
struct HistoryStartRequest {
  StartWorkflowExecutionRequest request;
  std::optional<ParentInfo> parent;
  ParentClosePolicy parent_close_policy = ParentClosePolicy::kTerminate;
};
DURO_CODEC_FIELDS(HistoryStartRequest, request, parent, parent_close_policy);

struct RecordWorkflowTaskStartedRequest {
  MatchingTask task;
  PollWorkflowTaskQueueRequest poll;
};
DURO_CODEC_FIELDS(RecordWorkflowTaskStartedRequest, task, poll);

struct RecordActivityTaskStartedRequest {
  MatchingTask task;
  PollActivityTaskQueueRequest poll;
};
DURO_CODEC_FIELDS(RecordActivityTaskStartedRequest, task, poll);

struct ChildClosedRequest {
  WorkflowExecution parent;
  EventId initiated_event_id = 0;
  WorkflowExecution child;
  HistoryEvent close_event;
};
DURO_CODEC_FIELDS(ChildClosedRequest, parent, initiated_event_id, child, close_event);

struct AddTaskRequest {
  TaskQueue task_queue;
  MatchingTask task;
};
DURO_CODEC_FIELDS(AddTaskRequest, task_queue, task);

struct MatchingPollRequest {
  PollWorkflowTaskQueueRequest workflow;  // Used by poll_workflow.
  PollActivityTaskQueueRequest activity;  // Used by poll_activity.
  sim::Duration wait{0};
};
DURO_CODEC_FIELDS(MatchingPollRequest, workflow, activity, wait);

struct MatchingQueryRequest {
  TaskQueue task_queue;
  QueryWorkflowRequest query;  // query.execution has both ids.
  sim::Duration wait{0};
};
DURO_CODEC_FIELDS(MatchingQueryRequest, task_queue, query, wait);

struct AnswerQueryRequest {
  TaskToken token;
  QueryWorkflowReply reply;
};
DURO_CODEC_FIELDS(AnswerQueryRequest, token, reply);

}  // namespace duro::engine
