#include "engine/server/server_node.h"

#include <utility>

#include "engine/server/internal_api.h"
#include "sim/assert.h"

namespace duro::engine {
namespace {

using sim::Error;
using sim::ErrorCode;

constexpr std::size_t kLogLinesMax = 1000;
// Long polls hold a handler each: room for every worker's pollers.
constexpr std::size_t kConcurrentRequestsMax = 8192;

}  // namespace

ServerNode::ServerNode(sim::Env& env, ServerOptions options)
    : env_(env), options_(std::move(options)), name_(env.name()) {
  rpc_ = std::make_unique<sim::RpcClient>(env_.network(), env_.node(), kServerClientPort);
  membership_ = std::make_unique<Membership>(
      env_, name_,
      [this](const store::HeartbeatRequest& request) {
        return router_->store<store::HeartbeatReply>(store::kHeartbeatMethod, request);
      },
      options_.membership);
  router_ = std::make_unique<Router>(env_, *rpc_, *membership_, options_);
  matching_ = std::make_unique<Matching>(
      options_.matching, name_, env_.incarnation(),
      [this](const MatchingTask& task, const PollWorkflowTaskQueueRequest& poll) {
        return router_->history<PollWorkflowTaskQueueReply>(task.execution.workflow_id,
                                                            method::kHistoryRecordWorkflowTaskStarted,
                                                            RecordWorkflowTaskStartedRequest{task, poll},
                                                            env_.sim().deadline_after(2 * options_.rpc_timeout));
      },
      [this](const MatchingTask& task, const PollActivityTaskQueueRequest& poll) {
        return router_->history<PollActivityTaskQueueReply>(task.execution.workflow_id,
                                                            method::kHistoryRecordActivityTaskStarted,
                                                            RecordActivityTaskStartedRequest{task, poll},
                                                            env_.sim().deadline_after(2 * options_.rpc_timeout));
      },
      [this](const PendingQuery& query, const PollWorkflowTaskQueueRequest&) -> sim::Result<PollWorkflowTaskQueueReply> {
        // The worker answering may have nothing cached: send it the whole
        // history to replay (the first page; it fetches the rest).
        sim::Result<GetWorkflowExecutionHistoryReply> history = router_->history<GetWorkflowExecutionHistoryReply>(
            query.execution.workflow_id, method::kHistoryGetHistory,
            GetWorkflowExecutionHistoryRequest{query.execution, 1, 1000},
            env_.sim().deadline_after(2 * options_.rpc_timeout));
        if (!history.ok()) return history.error();
        const std::vector<HistoryEvent>& events = history.value().events;
        PollWorkflowTaskQueueReply reply;
        reply.execution = query.execution;
        reply.history = encode_events_forwarded(events);
        reply.next_page_event_id = history.value().next_event_id;
        if (!events.empty()) {
          if (const auto* started = events.front().as<WorkflowExecutionStarted>()) {
            reply.workflow_type = started->workflow_type;
          }
        }
        return reply;
      });
  shards_ = std::make_unique<ShardController>(env_, *router_, *membership_, options_, name_,
                                              [this](const std::string& line) { write_log(line); });
  history_ = std::make_unique<HistoryService>(env_, *shards_, *router_, options_);
  frontend_ = std::make_unique<Frontend>(env_, *router_, options_);
  // The router's calls to this node's own history and matching run in the
  // calling fiber: each frontend request would otherwise hold two fibers
  // (and two stacks). Every wait in their handlers has a deadline, so the
  // caller's wait is bounded all the same.
  server_ = std::make_unique<sim::RpcServer>(
      env_.network(), env_.node(), kFrontendPort,
      sim::RpcServerOptions{.concurrent_max = kConcurrentRequestsMax, .local_calls_inline = true});
  frontend_->register_methods(*server_);
  history_->register_methods(*server_);
  register_matching_methods();
  server_->start();
  membership_->start();
  shards_->start();
}

ServerNode::~ServerNode() = default;

void ServerNode::write_log(const std::string& line) {
  if (log_.size() >= kLogLinesMax) log_.erase(log_.begin());
  log_.push_back(sim::format_time(env_.sim().now()) + " " + line);
  env_.sim().trace("server", line);
}

void ServerNode::register_matching_methods() {
  using namespace method;
  server_->handle<AddTaskRequest, Ack>(kMatchingAddTask, [this](const AddTaskRequest& request) -> sim::Result<Ack> {
    sim::Result<void> added = matching_->add_task(request.task_queue, request.task);
    if (!added.ok()) return added.error();
    return Ack{};
  });
  server_->handle<MatchingPollRequest, PollWorkflowTaskQueueReply>(
      kMatchingPollWorkflow, [this](const MatchingPollRequest& request) {
        return matching_->poll_workflow(request.workflow,
                                        env_.sim().deadline_after(std::min(request.wait, options_.long_poll_wait)));
      });
  server_->handle<MatchingPollRequest, PollActivityTaskQueueReply>(
      kMatchingPollActivity, [this](const MatchingPollRequest& request) {
        return matching_->poll_activity(request.activity,
                                        env_.sim().deadline_after(std::min(request.wait, options_.long_poll_wait)));
      });
  server_->handle<MatchingQueryRequest, QueryWorkflowReply>(kMatchingQuery, [this](const MatchingQueryRequest& request) {
    return matching_->query(request.task_queue, request.query.execution, request.query,
                            env_.sim().deadline_after(std::min(request.wait, options_.long_poll_wait)));
  });
  server_->handle<AnswerQueryRequest, Ack>(kMatchingAnswerQuery, [this](const AnswerQueryRequest& request) -> sim::Result<Ack> {
    sim::Result<void> answered = matching_->answer_query(request.token, request.reply);
    if (!answered.ok()) return answered.error();
    return Ack{};
  });
}

std::function<std::unique_ptr<sim::Process>(sim::Env&)> server_boot(ServerOptions options) {
  return [options = std::move(options)](sim::Env& env) -> std::unique_ptr<sim::Process> {
    return std::make_unique<ServerNode>(env, options);
  };
}

}  // namespace duro::engine
