#include "engine/testing/raw_worker.h"

#include <utility>

#include "sim/assert.h"

namespace duro::engine::testing {
namespace {

constexpr int kCallAttemptsMax = 8;
constexpr std::uint32_t kHistoryPagesMax = 1000;

}  // namespace

RawWorker::RawWorker(sim::Env& env, RawWorkerOptions options, std::map<std::string, Decider> deciders,
                     std::map<std::string, ActivityFn> activities)
    : env_(env), options_(std::move(options)), deciders_(std::move(deciders)), activities_(std::move(activities)) {
  DURO_ASSERT(!options_.servers.empty());
  caller_ = std::make_unique<sdk::FrontendCaller>(env_, options_.servers, options_.port);
  for (std::size_t i = 0; i < options_.workflow_pollers; i++) {
    env_.spawn("workflow-poller", [this, i] { workflow_poller(i); }, {.daemon = true});
  }
  for (std::size_t i = 0; i < options_.activity_pollers; i++) {
    env_.spawn("activity-poller", [this, i] { activity_poller(i); }, {.daemon = true});
  }
}

RawWorker::~RawWorker() = default;

sim::Result<std::string> RawWorker::call(std::string_view method, std::string payload, sim::Duration timeout) {
  sim::Result<std::string> reply =
      caller_->call_raw(method, payload, {.try_timeout = timeout, .deadline = sim::TimePoint::max(),
                                          .attempts_max = kCallAttemptsMax});
  stats_.call_failures = caller_->stats().failed_tries;
  return reply;
}

void RawWorker::workflow_poller(std::size_t index) {
  const std::string identity = env_.name() + "/wf-" + std::to_string(index);
  for (;;) {
    PollWorkflowTaskQueueRequest poll{options_.task_queue, identity,
                                      identity + "/" + std::to_string(env_.incarnation()) + "/" + std::to_string(++poll_seq_)};
    sim::Result<PollWorkflowTaskQueueReply> task =
        call<PollWorkflowTaskQueueReply>(method::kPollWorkflowTaskQueue, poll, options_.poll_timeout);
    if (!task.ok()) {
      env_.sleep_for(std::chrono::milliseconds{200});
      continue;
    }
    if (!task.value().has_task) continue;
    handle_workflow_task(std::move(task).value());
  }
}

void RawWorker::handle_workflow_task(PollWorkflowTaskQueueReply task) {
  stats_.workflow_tasks++;
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(task.history);
  if (!decoded.ok()) return;  // The task times out and comes again.
  std::vector<HistoryEvent> history = std::move(decoded).value();
  // Fetch the rest of a long history, page by page.
  EventId next = task.next_page_event_id;
  for (std::uint32_t page = 0; next != 0 && page < kHistoryPagesMax; page++) {
    sim::Result<GetWorkflowExecutionHistoryReply> more = call<GetWorkflowExecutionHistoryReply>(
        method::kGetWorkflowExecutionHistory, GetWorkflowExecutionHistoryRequest{task.execution, next, 1000},
        options_.rpc_timeout);
    if (!more.ok()) return;  // The task times out and comes again.
    for (HistoryEvent& event : more.value().events) {
      if (event.event_id <= task.started_event_id) history.push_back(std::move(event));
    }
    next = more.value().next_event_id;
    if (!history.empty() && history.back().event_id >= task.started_event_id) break;
  }
  if (task.query) {
    // Raw workers answer every query with the history length.
    RespondQueryTaskCompletedRequest answer{task.task_token, std::to_string(history.size()), std::nullopt};
    (void)call<Ack>(method::kRespondQueryTaskCompleted, answer, options_.rpc_timeout);
    return;
  }
  auto decider = deciders_.find(task.workflow_type);
  if (decider == deciders_.end()) {
    RespondWorkflowTaskFailedRequest failed{task.task_token, WorkflowTaskFailedCause::kWorkflowWorkerUnhandledFailure,
                                            Failure{"UnknownWorkflowType", "no decider for " + task.workflow_type, {},
                                                    false, TimeoutType::kNone, "workflow"},
                                            env_.name()};
    (void)call<Ack>(method::kRespondWorkflowTaskFailed, failed, options_.rpc_timeout);
    return;
  }
  RespondWorkflowTaskCompletedRequest completed;
  completed.task_token = task.task_token;
  completed.commands = decider->second(history);
  completed.identity = env_.name();
  // No eager activities: every activity of a raw worker goes through matching.
  sim::Result<RespondWorkflowTaskCompletedReply> done =
      call<RespondWorkflowTaskCompletedReply>(method::kRespondWorkflowTaskCompleted, completed, options_.rpc_timeout);
  if (!done.ok() && done.error().code == sim::ErrorCode::kNotFound) stats_.stale_responses++;
}

void RawWorker::activity_poller(std::size_t index) {
  const std::string identity = env_.name() + "/act-" + std::to_string(index);
  for (;;) {
    PollActivityTaskQueueRequest poll{options_.task_queue, identity,
                                      identity + "/" + std::to_string(env_.incarnation()) + "/" + std::to_string(++poll_seq_)};
    sim::Result<PollActivityTaskQueueReply> task =
        call<PollActivityTaskQueueReply>(method::kPollActivityTaskQueue, poll, options_.poll_timeout);
    if (!task.ok()) {
      env_.sleep_for(std::chrono::milliseconds{200});
      continue;
    }
    if (!task.value().has_task) continue;
    handle_activity_task(task.value());
  }
}

void RawWorker::handle_activity_task(const PollActivityTaskQueueReply& task) {
  stats_.activity_tasks++;
  auto fn = activities_.find(task.activity_type);
  sim::Result<Ack> done = sim::Error{sim::ErrorCode::kUnavailable, ""};
  if (fn == activities_.end()) {
    done = call<Ack>(method::kRespondActivityTaskFailed,
                     RespondActivityTaskFailedRequest{task.task_token,
                                                      Failure{"UnknownActivityType", task.activity_type, {}, true,
                                                              TimeoutType::kNone, "activity"},
                                                      env_.name(),
                                                      {}},
                     options_.rpc_timeout);
  } else {
    ActivityOutcome outcome = fn->second(task, env_);
    if (outcome.failure) {
      done = call<Ack>(method::kRespondActivityTaskFailed,
                       RespondActivityTaskFailedRequest{task.task_token, *outcome.failure, env_.name(), {}},
                       options_.rpc_timeout);
    } else {
      // No eager workflow task: this worker keeps no sticky queue.
      sim::Result<RespondActivityTaskCompletedReply> completed = call<RespondActivityTaskCompletedReply>(
          method::kRespondActivityTaskCompleted,
          RespondActivityTaskCompletedRequest{task.task_token, outcome.result, env_.name(), {}, {}},
          options_.rpc_timeout);
      if (completed.ok()) {
        DURO_ASSERT_MSG(!completed.value().workflow_task.has_task, "an eager workflow task for a worker that asked for none");
        done = Ack{};
      } else {
        done = completed.error();
      }
    }
  }
  if (!done.ok() && done.error().code == sim::ErrorCode::kNotFound) stats_.stale_responses++;
}

}  // namespace duro::engine::testing
