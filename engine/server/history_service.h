// HistoryService: the history role of a server node — the "history.*"
// calls, answered by the shards this node owns.
//
// A call for a workflow whose shard this node does not own (its view and
// the caller's differ for a moment, or the shard is reloading) is answered
// kUnavailable ("ShardNotOwned"), and the caller's Router tries again.
#pragma once

#include <string>

#include "engine/server/internal_api.h"
#include "engine/server/router.h"
#include "engine/server/server_options.h"
#include "engine/server/shard_controller.h"
#include "sim/env.h"
#include "sim/rpc.h"

namespace duro::engine {

class HistoryService {
 public:
  HistoryService(sim::Env& env, ShardController& shards, Router& router, const ServerOptions& options);

  // Registers the history.* methods.
  void register_methods(sim::RpcServer& server);

  sim::Result<StartWorkflowExecutionReply> start(const HistoryStartRequest& request);
  sim::Result<Ack> signal(const SignalWorkflowExecutionRequest& request);
  sim::Result<Ack> request_cancel(const RequestCancelWorkflowExecutionRequest& request);
  sim::Result<Ack> terminate(const TerminateWorkflowExecutionRequest& request);
  sim::Result<DescribeWorkflowExecutionReply> describe(const DescribeWorkflowExecutionRequest& request);
  sim::Result<GetWorkflowExecutionHistoryReply> get_history(const GetWorkflowExecutionHistoryRequest& request);
  sim::Result<GetWorkflowExecutionResultReply> result(const GetWorkflowExecutionResultRequest& request);
  sim::Result<QueryWorkflowReply> query(const QueryWorkflowRequest& request);
  sim::Result<PollWorkflowTaskQueueReply> record_workflow_task_started(const RecordWorkflowTaskStartedRequest& request);
  sim::Result<RespondWorkflowTaskCompletedReply> complete_workflow_task(const RespondWorkflowTaskCompletedRequest& request);
  sim::Result<Ack> fail_workflow_task(const RespondWorkflowTaskFailedRequest& request);
  sim::Result<PollActivityTaskQueueReply> record_activity_task_started(const RecordActivityTaskStartedRequest& request);
  sim::Result<RecordActivityTaskHeartbeatReply> heartbeat(const RecordActivityTaskHeartbeatRequest& request);
  sim::Result<RespondActivityTaskCompletedReply> complete_activity(const RespondActivityTaskCompletedRequest& request);
  sim::Result<Ack> fail_activity(const RespondActivityTaskFailedRequest& request);
  sim::Result<Ack> cancel_activity(const RespondActivityTaskCanceledRequest& request);
  sim::Result<Ack> child_closed(const ChildClosedRequest& request);

 private:
  sim::Result<std::shared_ptr<Shard>> shard_for(const std::string& workflow_id) const;
  sim::Result<TaskToken> token_of(const std::string& bytes, TaskToken::Kind kind) const;
  sim::Result<Ack> update(const WorkflowExecution& execution, const Shard::Op& op);
  // The task that hands the run's started workflow task to a worker, with
  // the history it needs: what came after its previous task on a sticky
  // queue, else all of it.
  sim::Result<PollWorkflowTaskQueueReply> workflow_task(Shard& shard, const MutableState& state);
  // The task that hands `activity`'s started attempt to a worker.
  static PollActivityTaskQueueReply activity_task(const MutableState& state, const ActivityInfo& activity,
                                                  const Payload& input);

  sim::Env& env_;
  ShardController& shards_;
  Router& router_;
  const ServerOptions& options_;
};

}  // namespace duro::engine
