#include "engine/server/matching.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sim/codec.h"
#include "sim/random.h"
#include "sim/simulator.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;
using sim::ErrorCode;
using Kind = TaskToken::Kind;

MatchingTask make_task(int n, Kind kind = Kind::kWorkflow, std::int32_t attempt = 1) {
  return MatchingTask{.kind = kind,
                      .execution = {"wf-" + std::to_string(n), "run-" + std::to_string(n)},
                      .scheduled_event_id = 2,
                      .attempt = attempt};
}

PollWorkflowTaskQueueRequest workflow_poll(std::string queue, std::string poll_request_id = {}) {
  return PollWorkflowTaskQueueRequest{.task_queue = {std::move(queue)}, .identity = "worker",
                                      .poll_request_id = std::move(poll_request_id)};
}

PollActivityTaskQueueRequest activity_poll(std::string queue) {
  PollActivityTaskQueueRequest request;
  request.task_queue = {std::move(queue)};
  request.identity = "worker";
  return request;
}

std::string token_for(const MatchingTask& task, EventId started_event_id = 0) {
  TaskToken token;
  token.kind = task.kind;
  token.execution = task.execution;
  token.scheduled_event_id = task.scheduled_event_id;
  token.started_event_id = started_event_id;
  token.attempt = task.attempt;
  return sim::encode(token);
}

TaskToken token_of(const std::string& bytes) {
  sim::Result<TaskToken> token = sim::decode<TaskToken>(bytes);
  DURO_ASSERT(token.ok());
  return token.value();
}

MatchingTask task_of(const std::string& token_bytes) {
  const TaskToken token = token_of(token_bytes);
  return MatchingTask{token.kind, token.execution, token.scheduled_event_id, token.attempt};
}

// History, as far as matching sees it: records starts, answers a poll that
// started a task the same again (while the task is not stale), refuses
// stale and already-started tasks, and fails on demand. A real
// implementation of the contract in matching.h, not a mock.
struct FakeHistory {
  sim::Duration latency{0};
  std::set<MatchingTask> stale;
  std::deque<ErrorCode> failures;  // The next starts fail with these, in order.
  std::map<MatchingTask, std::pair<std::string, EventId>> started;  // Task -> (poll id, started event id).
  std::vector<MatchingTask> start_calls;
  std::int64_t next_started_event_id = 3;

  template <typename Reply>
  sim::Result<Reply> start(const MatchingTask& task, const std::string& poll_request_id) {
    start_calls.push_back(task);
    if (latency.count() > 0) sim::this_fiber::sleep_for(latency);
    if (!failures.empty()) {
      const ErrorCode code = failures.front();
      failures.pop_front();
      return sim::Error{code, "injected"};
    }
    if (stale.contains(task)) return sim::Error{ErrorCode::kNotFound, "NotFound: stale task"};
    auto it = started.find(task);
    if (it != started.end() && (poll_request_id.empty() || it->second.first != poll_request_id)) {
      return sim::Error{ErrorCode::kAlreadyExists, "already started"};
    }
    if (it == started.end()) it = started.emplace(task, std::pair{poll_request_id, next_started_event_id++}).first;
    Reply reply;
    reply.execution = task.execution;
    reply.attempt = task.attempt;
    reply.task_token = token_for(task, it->second.second);
    return reply;
  }

  sim::Result<PollWorkflowTaskQueueReply> build_query(const PendingQuery& query) {
    if (latency.count() > 0) sim::this_fiber::sleep_for(latency);
    PollWorkflowTaskQueueReply reply;
    reply.execution = query.execution;
    reply.workflow_type = "order";
    return reply;
  }
};

std::unique_ptr<Matching> make_matching(FakeHistory& history, MatchingOptions options = {},
                                        std::uint32_t incarnation = 1) {
  return std::make_unique<Matching>(
      options, "server-0", incarnation,
      [&history](const MatchingTask& task, const PollWorkflowTaskQueueRequest& request) {
        return history.start<PollWorkflowTaskQueueReply>(task, request.poll_request_id);
      },
      [&history](const MatchingTask& task, const PollActivityTaskQueueRequest& request) {
        return history.start<PollActivityTaskQueueReply>(task, request.poll_request_id);
      },
      [&history](const PendingQuery& query, const PollWorkflowTaskQueueRequest&) {
        return history.build_query(query);
      });
}

struct PollOutcome {
  std::optional<sim::Result<PollWorkflowTaskQueueReply>> result;
  sim::TimePoint at{};

  bool has_task() const { return result && result->ok() && result->value().has_task; }
  std::string workflow_id() const { return result->value().execution.workflow_id; }
};

// Members in this order: the simulator is destroyed first, so fibers it
// unwinds at teardown still find the matching they wait in.
class MatchingTest : public ::testing::Test {
 protected:
  FakeHistory history;
  std::unique_ptr<Matching> matching = make_matching(history);
  sim::Simulator sim{{.seed = 7}};
  sim::NodeId server = sim.add_node("server-0");
  sim::NodeId worker_a = sim.add_node("worker-a");
  sim::NodeId worker_b = sim.add_node("worker-b");
  const sim::TimePoint start = sim.now();
  const TaskQueue orders{"orders"};

  // Polls `queue` once from a fiber on `node`, after `delay`.
  void poll_from(sim::NodeId node, PollOutcome& outcome, sim::Duration delay = 0s, sim::Duration wait = 60s,
                 std::string queue = "orders", std::string poll_request_id = {}) {
    sim.spawn(node, "poller", [this, &outcome, delay, wait, queue, poll_request_id] {
      if (delay.count() > 0) sim::this_fiber::sleep_for(delay);
      outcome.result = matching->poll_workflow(workflow_poll(queue, poll_request_id), sim.now() + wait);
      outcome.at = sim.now();
    });
  }

  void add_at(sim::Duration delay, MatchingTask task, TaskQueue queue = {"orders"}) {
    sim.spawn(server, "history", [this, delay, task, queue] {
      if (delay.count() > 0) sim::this_fiber::sleep_for(delay);
      EXPECT_TRUE(matching->add_task(queue, task).ok());
    });
  }
};

TEST_F(MatchingTest, HandsATaskStraightToAWaitingPoller) {
  PollOutcome outcome;
  poll_from(worker_a, outcome);
  add_at(1s, make_task(1));
  sim.run();
  ASSERT_TRUE(outcome.has_task());
  EXPECT_EQ(outcome.workflow_id(), "wf-1");
  EXPECT_EQ(outcome.at, start + 1s);
  EXPECT_EQ(task_of(outcome.result->value().task_token), make_task(1));
  const MatchingStats stats = matching->stats();
  EXPECT_EQ(stats.tasks_added, 1U);
  EXPECT_EQ(stats.tasks_sync_matched, 1U);
  EXPECT_EQ(stats.tasks_dispatched, 1U);
  EXPECT_EQ(stats.queues, 0U) << "an idle queue is dropped";
}

TEST_F(MatchingTest, ServesTasksAndPollersFirstInFirstOut) {
  {
    sim::Simulator::Scope scope(sim);
    for (int n = 1; n <= 3; n++) ASSERT_TRUE(matching->add_task(orders, make_task(n)).ok());
  }
  std::vector<std::string> order;
  sim.spawn(worker_a, "poller", [&] {
    for (int i = 0; i < 3; i++) {
      sim::Result<PollWorkflowTaskQueueReply> reply = matching->poll_workflow(workflow_poll("orders"), sim.now());
      ASSERT_TRUE(reply.ok() && reply.value().has_task);
      order.push_back(reply.value().execution.workflow_id);
    }
  });
  sim.run();
  EXPECT_EQ(order, (std::vector<std::string>{"wf-1", "wf-2", "wf-3"}));

  // Pollers, in the order they came, get tasks in the order they were added.
  PollOutcome first, second, third;
  poll_from(worker_b, first, 1ms);
  poll_from(worker_a, second, 2ms);
  poll_from(worker_b, third, 3ms);
  add_at(1s, make_task(4));
  add_at(1s, make_task(5));
  add_at(1s, make_task(6));
  sim.run();
  ASSERT_TRUE(first.has_task() && second.has_task() && third.has_task());
  EXPECT_EQ(first.workflow_id(), "wf-4");
  EXPECT_EQ(second.workflow_id(), "wf-5");
  EXPECT_EQ(third.workflow_id(), "wf-6");
}

TEST_F(MatchingTest, DeduplicatesATaskQueuedOrBeingStarted) {
  history.latency = 100ms;
  PollOutcome outcome;
  sim.spawn(server, "history", [&] {
    ASSERT_TRUE(matching->add_task(orders, make_task(1)).ok());
    ASSERT_TRUE(matching->add_task(orders, make_task(1)).ok());
    EXPECT_EQ(matching->queue_size(Kind::kWorkflow, orders), 1U);
    // Another attempt, or the same task on another queue or as another
    // kind, is another task.
    ASSERT_TRUE(matching->add_task(orders, make_task(1, Kind::kWorkflow, 2)).ok());
    ASSERT_TRUE(matching->add_task({"other"}, make_task(1)).ok());
    ASSERT_TRUE(matching->add_task(orders, make_task(1, Kind::kActivity)).ok());
    EXPECT_EQ(matching->queue_size(Kind::kWorkflow, orders), 2U);
    EXPECT_EQ(matching->stats().tasks_deduped, 1U);

    sim::this_fiber::sleep_for(1s);
    // Task 1 is being started by the poll below: still a duplicate.
    sim::this_fiber::sleep_for(50ms);
    ASSERT_TRUE(matching->add_task(orders, make_task(1)).ok());
    EXPECT_EQ(matching->stats().tasks_deduped, 2U);
    // Started: history may hand it over again (and would then refuse it).
    sim::this_fiber::sleep_for(100ms);
    ASSERT_TRUE(matching->add_task(orders, make_task(1)).ok());
    EXPECT_EQ(matching->stats().tasks_deduped, 2U);
  });
  poll_from(worker_a, outcome, 1s);
  sim.run();
  ASSERT_TRUE(outcome.has_task());
  EXPECT_EQ(task_of(outcome.result->value().task_token), make_task(1));
}

TEST_F(MatchingTest, RefusesBeyondItsBoundsAndDropsIdleQueues) {
  matching = make_matching(history, {.queues_max = 2, .tasks_per_queue_max = 3, .pollers_per_queue_max = 2});
  sim.spawn(server, "history", [&] {
    for (int n = 1; n <= 3; n++) ASSERT_TRUE(matching->add_task(orders, make_task(n)).ok());
    const sim::Result<void> full = matching->add_task(orders, make_task(4));
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error().code, ErrorCode::kOverloaded);
    ASSERT_TRUE(matching->add_task({"billing"}, make_task(5)).ok());
    const sim::Result<void> third_queue = matching->add_task({"shipping"}, make_task(6));
    ASSERT_FALSE(third_queue.ok());
    EXPECT_EQ(third_queue.error().code, ErrorCode::kOverloaded);
    EXPECT_EQ(matching->stats().tasks_rejected, 2U);
    EXPECT_EQ(matching->add_task({""}, make_task(7)).error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(matching->add_task(orders, MatchingTask{.kind = Kind::kQuery, .execution = {"wf", ""},
                                                      .scheduled_event_id = 2})
                  .error()
                  .code,
              ErrorCode::kInvalidArgument);
  });
  sim.run();

  // Drain both queues; they go away once empty.
  sim.spawn(worker_a, "drain", [&] {
    for (const char* name : {"orders", "billing"}) {
      for (;;) {
        sim::Result<PollWorkflowTaskQueueReply> reply = matching->poll_workflow(workflow_poll(name), sim.now());
        ASSERT_TRUE(reply.ok());
        if (!reply.value().has_task) break;
      }
    }
    EXPECT_EQ(matching->stats().queues, 0U);
    ASSERT_TRUE(matching->add_task({"shipping"}, make_task(6)).ok());
  });
  sim.run();

  // Two pollers wait on "empty"; a third is refused.
  PollOutcome one, two, three;
  poll_from(worker_a, one, 0s, 10s, "empty");
  poll_from(worker_b, two, 0s, 10s, "empty");
  poll_from(worker_a, three, 1ms, 10s, "empty");
  sim.run();
  ASSERT_TRUE(three.result.has_value());
  ASSERT_FALSE(three.result->ok());
  EXPECT_EQ(three.result->error().code, ErrorCode::kOverloaded);
  EXPECT_TRUE(one.result->ok() && two.result->ok());
}

TEST_F(MatchingTest, ALongPollEndsEmptyExactlyAtItsDeadline) {
  PollOutcome outcome;
  poll_from(worker_a, outcome, 0s, 30s);
  sim.run();
  ASSERT_TRUE(outcome.result.has_value() && outcome.result->ok());
  EXPECT_FALSE(outcome.result->value().has_task);
  EXPECT_EQ(outcome.at, start + 30s);
  const MatchingStats stats = matching->stats();
  EXPECT_EQ(stats.polls_empty, 1U);
  EXPECT_EQ(stats.pollers_waiting, 0U);
  EXPECT_EQ(stats.queues, 0U);

  // A poll whose deadline has passed still takes a task that is there.
  PollOutcome late;
  add_at(0s, make_task(1));
  poll_from(worker_a, late, 1ms, -1s);
  sim.run();
  EXPECT_TRUE(late.has_task());
}

TEST_F(MatchingTest, SkipsStaleTasksAndHandsOutTheNext) {
  history.stale.insert(make_task(1));
  history.stale.insert(make_task(2));
  add_at(0s, make_task(1));
  add_at(0s, make_task(2));
  add_at(0s, make_task(3));
  PollOutcome outcome;
  poll_from(worker_a, outcome, 1s);
  sim.run();
  ASSERT_TRUE(outcome.has_task());
  EXPECT_EQ(outcome.workflow_id(), "wf-3");
  EXPECT_EQ(matching->stats().tasks_dropped_stale, 2U);
  EXPECT_EQ(matching->stats().queues, 0U);
}

TEST_F(MatchingTest, AFailedStartPutsTheTaskBackAtTheHead) {
  history.failures = {ErrorCode::kUnavailable, ErrorCode::kTimeout};
  add_at(0s, make_task(1));
  add_at(0s, make_task(2));
  PollOutcome first, second, third;
  poll_from(worker_a, first, 1s);
  poll_from(worker_a, second, 2s);
  poll_from(worker_a, third, 3s);
  sim.run();
  ASSERT_TRUE(first.result && !first.result->ok());
  EXPECT_EQ(first.result->error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE(second.result && !second.result->ok());
  EXPECT_EQ(second.result->error().code, ErrorCode::kTimeout);
  ASSERT_TRUE(third.has_task());
  EXPECT_EQ(third.workflow_id(), "wf-1") << "the task that failed to start keeps its place";
  EXPECT_EQ(matching->stats().tasks_returned, 2U);
  EXPECT_EQ(matching->queue_size(Kind::kWorkflow, orders), 1U);
}

TEST_F(MatchingTest, ActivityAndWorkflowQueuesOfOneNameAreApart) {
  std::optional<sim::Result<PollActivityTaskQueueReply>> activity;
  sim.spawn(worker_a, "activity poller", [&] {
    activity = matching->poll_activity(activity_poll("orders"), sim.now() + 10s);
  });
  PollOutcome workflow;
  poll_from(worker_b, workflow, 0s, 10s);
  add_at(1s, make_task(1, Kind::kActivity));
  sim.run();
  ASSERT_TRUE(activity && activity->ok() && activity->value().has_task);
  EXPECT_EQ(task_of(activity->value().task_token), make_task(1, Kind::kActivity));
  ASSERT_TRUE(workflow.result && workflow.result->ok());
  EXPECT_FALSE(workflow.result->value().has_task);
}

TEST_F(MatchingTest, AQueryRoundTripsThroughAWorker) {
  history.latency = 5ms;
  std::optional<sim::Result<QueryWorkflowReply>> answer;
  sim.spawn(server, "client", [&] {
    answer = matching->query(orders, {"wf-9", "run-9"}, QueryWorkflowRequest{{"wf-9", ""}, "status", "args"},
                             sim.now() + 10s);
  });
  sim.spawn(worker_a, "worker", [&] {
    sim::Result<PollWorkflowTaskQueueReply> poll = matching->poll_workflow(workflow_poll("orders"), sim.now() + 60s);
    ASSERT_TRUE(poll.ok() && poll.value().has_task);
    ASSERT_TRUE(poll.value().query.has_value());
    EXPECT_EQ(poll.value().query->query_type, "status");
    EXPECT_EQ(poll.value().query->args, "args");
    EXPECT_EQ(poll.value().workflow_type, "order");
    const TaskToken token = token_of(poll.value().task_token);
    EXPECT_EQ(token.kind, Kind::kQuery);
    EXPECT_EQ(token.owner, "server-0");
    EXPECT_EQ(token.execution, (WorkflowExecution{"wf-9", "run-9"}));
    sim::this_fiber::sleep_for(20ms);
    TaskToken elsewhere = token;
    elsewhere.owner = "server-1";
    EXPECT_EQ(matching->answer_query(elsewhere, {}).error().code, ErrorCode::kInvalidArgument);
    EXPECT_TRUE(matching->answer_query(token, QueryWorkflowReply{"shipped", std::nullopt}).ok());
    EXPECT_EQ(matching->answer_query(token, {}).error().code, ErrorCode::kNotFound) << "answered already";
  });
  sim.run();
  ASSERT_TRUE(answer && answer->ok());
  EXPECT_EQ(answer->value().result, "shipped");
  const MatchingStats stats = matching->stats();
  EXPECT_EQ(stats.queries_delivered, 1U);
  EXPECT_EQ(stats.queries_answered, 1U);
  EXPECT_EQ(stats.queries_pending, 0U);
  EXPECT_EQ(stats.queues, 0U);
}

TEST_F(MatchingTest, AQueryGoesBeforeQueuedTasks) {
  add_at(0s, make_task(1));
  std::optional<sim::Result<QueryWorkflowReply>> answer;
  sim.spawn(server, "client", [&] {
    sim::this_fiber::sleep_for(1ms);
    answer = matching->query(orders, {"wf-9", "run-9"}, {}, sim.now() + 10s);
  });
  std::vector<bool> was_query;
  sim.spawn(worker_a, "worker", [&] {
    sim::this_fiber::sleep_for(1s);
    for (int i = 0; i < 2; i++) {
      sim::Result<PollWorkflowTaskQueueReply> poll = matching->poll_workflow(workflow_poll("orders"), sim.now());
      ASSERT_TRUE(poll.ok() && poll.value().has_task);
      was_query.push_back(poll.value().query.has_value());
      if (poll.value().query) {
        EXPECT_TRUE(matching->answer_query(token_of(poll.value().task_token), {}).ok());
      }
    }
  });
  sim.run();
  EXPECT_EQ(was_query, (std::vector<bool>{true, false}));
  EXPECT_TRUE(answer && answer->ok());
}

TEST_F(MatchingTest, AQueryTimesOutWhetherOrNotAWorkerTookIt) {
  std::optional<sim::Result<QueryWorkflowReply>> unclaimed;
  sim::TimePoint unclaimed_at{};
  sim.spawn(server, "client", [&] {
    unclaimed = matching->query(orders, {"wf-1", "run-1"}, {}, sim.now() + 5s);
    unclaimed_at = sim.now();
  });
  sim.run();
  ASSERT_TRUE(unclaimed && !unclaimed->ok());
  EXPECT_EQ(unclaimed->error().code, ErrorCode::kTimeout);
  EXPECT_EQ(unclaimed_at, start + 5s);
  EXPECT_EQ(matching->stats().queues, 0U) << "the timed-out query left nothing behind";

  std::optional<sim::Result<QueryWorkflowReply>> unanswered;
  std::string token;
  sim.spawn(server, "client", [&] { unanswered = matching->query(orders, {"wf-1", "run-1"}, {}, sim.now() + 5s); });
  sim.spawn(worker_a, "worker", [&] {
    sim::Result<PollWorkflowTaskQueueReply> poll = matching->poll_workflow(workflow_poll("orders"), sim.now() + 1s);
    ASSERT_TRUE(poll.ok() && poll.value().has_task);
    token = poll.value().task_token;
    sim::this_fiber::sleep_for(10s);  // Answers too late.
    EXPECT_EQ(matching->answer_query(token_of(token), {}).error().code, ErrorCode::kNotFound);
  });
  sim.run();
  ASSERT_TRUE(unanswered && !unanswered->ok());
  EXPECT_EQ(unanswered->error().code, ErrorCode::kTimeout);
  EXPECT_EQ(matching->stats().queries_timed_out, 2U);

  // A restarted node issues fresh query ids: an answer meant for its
  // previous incarnation finds nothing.
  matching = make_matching(history, {}, 2);
  sim.spawn(server, "client", [&] { (void)matching->query(orders, {"wf-1", "run-1"}, {}, sim.now() + 5s); });
  sim.spawn(worker_a, "worker", [&] {
    sim::Result<PollWorkflowTaskQueueReply> poll = matching->poll_workflow(workflow_poll("orders"), sim.now() + 1s);
    ASSERT_TRUE(poll.ok() && poll.value().has_task);
    EXPECT_NE(token_of(poll.value().task_token).query_id, token_of(token).query_id);
    EXPECT_EQ(matching->answer_query(token_of(token), {}).error().code, ErrorCode::kNotFound);
  });
  sim.run();
}

TEST_F(MatchingTest, AFailedQueryBuildFailsTheQueryAndThePollGoesOn) {
  matching = std::make_unique<Matching>(
      MatchingOptions{}, "server-0", 1,
      [this](const MatchingTask& task, const PollWorkflowTaskQueueRequest& request) {
        return history.start<PollWorkflowTaskQueueReply>(task, request.poll_request_id);
      },
      [this](const MatchingTask& task, const PollActivityTaskQueueRequest& request) {
        return history.start<PollActivityTaskQueueReply>(task, request.poll_request_id);
      },
      [](const PendingQuery&, const PollWorkflowTaskQueueRequest&) -> sim::Result<PollWorkflowTaskQueueReply> {
        return sim::Error{ErrorCode::kNotFound, "NotFound: no such workflow"};
      });
  std::optional<sim::Result<QueryWorkflowReply>> answer;
  sim.spawn(server, "client", [&] { answer = matching->query(orders, {"wf-1", "run-1"}, {}, sim.now() + 5s); });
  add_at(1ms, make_task(2));
  PollOutcome outcome;
  poll_from(worker_a, outcome, 1s);
  sim.run();
  ASSERT_TRUE(answer && !answer->ok());
  EXPECT_EQ(answer->error().code, ErrorCode::kNotFound);
  ASSERT_TRUE(outcome.has_task());
  EXPECT_EQ(outcome.workflow_id(), "wf-2");
  EXPECT_EQ(matching->stats().queries_failed, 1U);
}

TEST_F(MatchingTest, APollerKilledByACrashLeavesNoDanglingWaiter) {
  PollOutcome dead_1, dead_2, live;
  poll_from(worker_a, dead_1);
  poll_from(worker_a, dead_2);
  poll_from(worker_b, live, 1ms);
  sim.schedule_at(start + 1s, [&] { sim.crash(worker_a); });
  sim.spawn(server, "history", [&] {
    sim::this_fiber::sleep_for(2s);
    EXPECT_EQ(matching->stats().pollers_waiting, 1U);
    ASSERT_TRUE(matching->add_task(orders, make_task(1)).ok());
  });
  sim.run();
  EXPECT_FALSE(dead_1.result.has_value());
  EXPECT_FALSE(dead_2.result.has_value());
  ASSERT_TRUE(live.has_task());
  EXPECT_EQ(live.workflow_id(), "wf-1");
  EXPECT_EQ(live.at, start + 2s);
  EXPECT_EQ(matching->stats().queues, 0U);
}

TEST_F(MatchingTest, APollerKilledBeforeItWakesPassesItsTaskOn) {
  PollOutcome dead, live;
  poll_from(worker_a, dead);
  poll_from(worker_b, live, 1ms);
  // The task goes to worker-a's poller, whose node dies before it runs.
  sim.schedule_at(start + 1s, [&] {
    ASSERT_TRUE(matching->add_task(orders, make_task(1)).ok());
    sim.crash(worker_a);
  });
  sim.run();
  EXPECT_FALSE(dead.result.has_value());
  ASSERT_TRUE(live.has_task());
  EXPECT_EQ(live.workflow_id(), "wf-1");
  EXPECT_EQ(live.at, start + 1s);
  EXPECT_EQ(history.start_calls.size(), 1U);
}

TEST_F(MatchingTest, APollerKilledWhileStartingATaskGivesItBack) {
  history.latency = 100ms;
  PollOutcome dead, live;
  poll_from(worker_a, dead);
  poll_from(worker_b, live, 10ms);
  add_at(1ms, make_task(1));
  // worker-a's poll is inside history's start when its node dies.
  sim.schedule_at(start + 50ms, [&] { sim.crash(worker_a); });
  sim.run();
  EXPECT_FALSE(dead.result.has_value());
  ASSERT_TRUE(live.has_task());
  EXPECT_EQ(live.workflow_id(), "wf-1");
  EXPECT_EQ(live.at, start + 150ms) << "handed over at the crash, then started";
  EXPECT_EQ(matching->stats().tasks_returned, 1U);
  EXPECT_EQ(history.start_calls.size(), 2U);
}

TEST_F(MatchingTest, ARetriedOrDuplicatedPollGetsTheSameReply) {
  PollOutcome original, duplicate, retry, fresh;
  poll_from(worker_a, original, 0s, 60s, "orders", "poll-1");
  poll_from(worker_a, duplicate, 1ms, 60s, "orders", "poll-1");  // The network delivered it twice.
  add_at(1s, make_task(1));
  add_at(1s, make_task(2));
  poll_from(worker_a, retry, 2s, 60s, "orders", "poll-1");  // The reply was lost; the worker retries.
  poll_from(worker_a, fresh, 3s, 60s, "orders", "poll-2");
  sim.run();
  ASSERT_TRUE(original.has_task() && duplicate.has_task() && retry.has_task() && fresh.has_task());
  EXPECT_EQ(original.result->value().task_token, duplicate.result->value().task_token);
  EXPECT_EQ(original.result->value().task_token, retry.result->value().task_token);
  EXPECT_EQ(original.workflow_id(), "wf-1");
  EXPECT_EQ(fresh.workflow_id(), "wf-2");
  EXPECT_EQ(duplicate.at, start + 1s);
  // One start per task, and history asked again for each replay: the
  // task must still be the one that poll started.
  EXPECT_EQ(history.start_calls.size(), 4U);
  EXPECT_EQ(history.started.size(), 2U);
  EXPECT_EQ(matching->stats().polls_replayed, 2U);
  EXPECT_EQ(matching->stats().polls_replayed_stale, 0U);
}

// A retry that comes after the task moved on (it timed out in history and
// was retried: a new attempt) gets nothing, not the dead attempt: the
// worker would run it, with its side effects, beside the live one.
TEST_F(MatchingTest, ARetriedPollWhoseTaskMovedOnGetsNothing) {
  PollOutcome original, retry, next;
  poll_from(worker_a, original, 0s, 60s, "orders", "poll-1");
  add_at(1s, make_task(1));
  sim.spawn(server, "history", [this] {
    sim::this_fiber::sleep_for(2s);
    history.stale.insert(make_task(1));  // Attempt 1 timed out: attempt 2 is scheduled.
    EXPECT_TRUE(matching->add_task(orders, make_task(1, Kind::kWorkflow, 2)).ok());
  });
  poll_from(worker_a, retry, 3s, 0s, "orders", "poll-1");  // The reply was lost; a late retry.
  poll_from(worker_a, next, 4s, 60s, "orders", "poll-2");
  sim.run();
  ASSERT_TRUE(original.has_task());
  ASSERT_TRUE(retry.result.has_value() && retry.result->ok());
  EXPECT_FALSE(retry.result->value().has_task) << "a retry was handed an attempt that moved on";
  ASSERT_TRUE(next.has_task());
  EXPECT_EQ(token_of(next.result->value().task_token).attempt, 2);
  EXPECT_EQ(matching->stats().polls_replayed, 1U);
  EXPECT_EQ(matching->stats().polls_replayed_stale, 1U);
}

// --- Property ---------------------------------------------------------------------

// Random adds, polls (with random history outcomes: started, stale, failed)
// and crashes of pollers' nodes. Matching must never start a task that is
// not outstanding (added, and not yet started or found stale), never start
// one twice at once, never return one to two polls, and lose none: at the
// end, every outstanding task can still be polled, exactly once.
RC_GTEST_PROP(MatchingProperty, NeverLosesOrDuplicatesATask, ()) {
  const auto ops = *rc::gen::container<std::vector<std::tuple<int, int, int>>>(
      rc::gen::tuple(rc::gen::inRange(0, 11), rc::gen::inRange(0, 64), rc::gen::inRange(0, 100)));
  const auto seed = *rc::gen::arbitrary<std::uint64_t>();

  using Key = std::pair<std::string, MatchingTask>;  // Queue name, task.
  std::set<Key> outstanding;
  std::set<Key> starting;
  std::set<Key> dispatched;  // Started, not yet seen in a poll's reply.
  std::vector<std::string> violations;
  sim::Random random(seed);
  bool quiet = false;  // The drain: every start succeeds at once.

  auto start = [&](const MatchingTask& task, const std::string& queue) -> sim::Result<std::string> {
    const Key key{queue, task};
    if (!outstanding.contains(key)) violations.push_back("started a task that is not outstanding");
    if (!starting.insert(key).second) violations.push_back("started a task twice at once");
    if (!quiet) {
      try {
        sim::this_fiber::sleep_for(std::chrono::milliseconds{random.uniform(20)});
      } catch (const sim::FiberUnwind&) {
        starting.erase(key);  // The poll died; matching keeps the task.
        throw;
      }
    }
    starting.erase(key);
    const std::uint64_t draw = quiet ? 0 : random.uniform(10);
    if (draw < 6) {
      outstanding.erase(key);
      dispatched.insert(key);
      return token_for(task);
    }
    if (draw < 8) {
      outstanding.erase(key);
      return sim::Error{ErrorCode::kNotFound, "NotFound: stale"};
    }
    return sim::Error{ErrorCode::kUnavailable, "history unreachable"};
  };
  auto claim = [&](const std::string& queue, const std::string& token) {
    if (dispatched.erase(Key{queue, task_of(token)}) != 1) violations.push_back("a reply with a task not started for it");
  };

  Matching matching(
      MatchingOptions{.tasks_per_queue_max = 6, .pollers_per_queue_max = 4}, "server-0", 1,
      [&](const MatchingTask& task, const PollWorkflowTaskQueueRequest& request)
          -> sim::Result<PollWorkflowTaskQueueReply> {
        sim::Result<std::string> token = start(task, request.task_queue.name);
        if (!token.ok()) return token.error();
        PollWorkflowTaskQueueReply reply;
        reply.task_token = token.value();
        return reply;
      },
      [&](const MatchingTask& task, const PollActivityTaskQueueRequest& request)
          -> sim::Result<PollActivityTaskQueueReply> {
        sim::Result<std::string> token = start(task, request.task_queue.name);
        if (!token.ok()) return token.error();
        PollActivityTaskQueueReply reply;
        reply.task_token = token.value();
        return reply;
      },
      [](const PendingQuery&, const PollWorkflowTaskQueueRequest&) -> sim::Result<PollWorkflowTaskQueueReply> {
        return sim::Error{ErrorCode::kNotFound, "no queries here"};
      });

  // Half the runs order same-instant events by the seed, to explore
  // interleavings (a crash before a woken poller runs, say).
  sim::Simulator sim({.seed = seed, .shuffle_ties = (seed & 1) != 0});
  const sim::NodeId server = sim.add_node("server-0");
  const std::vector<sim::NodeId> workers = {sim.add_node("w0"), sim.add_node("w1"), sim.add_node("w2")};
  const std::vector<std::string> queues = {"q0", "q1"};

  // One poll from a fiber on `node`; its reply must carry a task started for it.
  auto spawn_poll = [&](sim::NodeId node, const std::string& queue, Kind kind, sim::Duration wait) {
    sim.spawn(node, "poller", [&, queue, kind, wait] {
      if (kind == Kind::kWorkflow) {
        sim::Result<PollWorkflowTaskQueueReply> reply =
            matching.poll_workflow(workflow_poll(queue), sim.now() + wait);
        if (reply.ok() && reply.value().has_task) claim(queue, reply.value().task_token);
      } else {
        sim::Result<PollActivityTaskQueueReply> reply = matching.poll_activity(activity_poll(queue), sim.now() + wait);
        if (reply.ok() && reply.value().has_task) claim(queue, reply.value().task_token);
      }
    });
  };

  // Adds one of a few tasks (duplicates are common) and checks dedupe
  // against the model.
  auto add = [&](int a, int b) {
    const std::string& queue = queues[static_cast<std::size_t>(a) % 2];
    const Kind kind = (a / 2) % 2 == 0 ? Kind::kWorkflow : Kind::kActivity;
    const MatchingTask task = make_task(a / 4 % 6, kind, 1 + b % 2);
    const bool duplicate = outstanding.contains(Key{queue, task});
    const std::uint64_t deduped = matching.stats().tasks_deduped;
    const sim::Result<void> added = matching.add_task({queue}, task);
    if (added.ok() && !duplicate) outstanding.insert(Key{queue, task});
    if (duplicate != (matching.stats().tasks_deduped == deduped + 1)) violations.push_back("dedupe disagrees");
    if (duplicate && !added.ok()) violations.push_back("a duplicate refused");
  };

  sim.spawn(server, "driver", [&] {
    for (const auto& [op, a, b] : ops) {
      const std::string& queue = queues[static_cast<std::size_t>(a) % 2];
      const Kind kind = (a / 2) % 2 == 0 ? Kind::kWorkflow : Kind::kActivity;
      if (op <= 2) {
        add(a, b);
      } else if (op == 3) {
        // Add, then crash a worker in the same instant, from the scheduler:
        // a poller handed the task may die before it even wakes.
        const sim::NodeId node = workers[static_cast<std::size_t>(b) % workers.size()];
        const sim::Waiter waiter = sim.begin_wait();
        sim.schedule_at(sim.now(), [&, a, b, node, waiter] {
          add(a, b);
          if (sim.is_up(node)) {
            sim.crash(node);
            sim.restart(node);
          }
          sim.notify(waiter);
        });
        (void)sim.suspend(waiter, "add and crash");
      } else if (op <= 6) {
        const sim::NodeId node = workers[static_cast<std::size_t>(b) % workers.size()];
        if (sim.is_up(node)) spawn_poll(node, queue, kind, std::chrono::milliseconds{b % 3 == 0 ? 0 : b});
      } else if (op <= 8) {
        sim::this_fiber::sleep_for(std::chrono::milliseconds{b % 30});
      } else if (op == 9) {
        add(a, b);
      } else {
        const sim::NodeId node = workers[static_cast<std::size_t>(b) % workers.size()];
        if (sim.is_up(node)) {
          sim.crash(node);
          sim.restart(node);
        }
      }
    }
    // Let every poll end, then drain every queue.
    sim::this_fiber::sleep_for(1s);
    quiet = true;
    if (!starting.empty()) violations.push_back("a start still running after every poll ended");
    for (const std::string& queue : queues) {
      for (int i = 0; i < 100; i++) {
        sim::Result<PollWorkflowTaskQueueReply> reply = matching.poll_workflow(workflow_poll(queue), sim.now());
        if (!reply.ok() || !reply.value().has_task) break;
        claim(queue, reply.value().task_token);
      }
      for (int i = 0; i < 100; i++) {
        sim::Result<PollActivityTaskQueueReply> reply = matching.poll_activity(activity_poll(queue), sim.now());
        if (!reply.ok() || !reply.value().has_task) break;
        claim(queue, reply.value().task_token);
      }
    }
  });
  const sim::RunResult result = sim.run();
  RC_ASSERT(result.reason == sim::StopReason::kQuiescent);
  for (const std::string& violation : violations) RC_FAIL(violation);
  RC_ASSERT(outstanding.empty());  // Nothing lost.
  RC_ASSERT(dispatched.empty());   // Every task started reached its poll (no wait between the two).
  const MatchingStats stats = matching.stats();
  RC_ASSERT(stats.queues == 0U);
  RC_ASSERT(stats.pollers_waiting == 0U);
  RC_CLASSIFY(stats.tasks_returned > 0, "a task went back");
  RC_CLASSIFY(stats.tasks_sync_matched > 0, "sync match");
  RC_CLASSIFY(stats.tasks_rejected > 0, "refused at a bound");
}

}  // namespace
}  // namespace duro::engine
