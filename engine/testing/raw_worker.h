// RawWorker: a worker without the SDK, for testing the engine itself.
//
// It polls workflow and activity task queues through the frontend, like a
// real worker, but a workflow is a Decider: a function from the run's whole
// history to the commands of the next workflow task. No cache, no sticky
// queue, no replay: every task carries (or the worker fetches) the history
// from event 1. That is enough to drive every command the engine accepts
// while the nemesis crashes and partitions the servers.
//
// Calls go to the servers round robin; a call that fails for a reason worth
// retrying (unavailable, timeout) moves on to the next server. A task whose
// token went stale (kNotFound: it timed out, or a crash made it run twice)
// is dropped, as a real worker drops it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/sdk/frontend_caller.h"
#include "engine/server/api.h"
#include "sim/env.h"
#include "sim/rpc.h"

namespace duro::engine::testing {

// The commands of a workflow task, from the run's history so far.
using Decider = std::function<std::vector<Command>(const std::vector<HistoryEvent>& history)>;

// An activity: its result, or a Failure to fail the attempt with.
struct ActivityOutcome {
  Payload result;
  std::optional<Failure> failure;
};
using ActivityFn = std::function<ActivityOutcome(const PollActivityTaskQueueReply& task, sim::Env& env)>;

struct RawWorkerOptions {
  std::vector<sim::Address> servers;
  TaskQueue task_queue{"default", TaskQueueKind::kNormal};
  std::size_t workflow_pollers = 2;
  std::size_t activity_pollers = 4;
  std::uint16_t port = 7400;
  sim::Duration rpc_timeout = std::chrono::seconds{5};
  sim::Duration poll_timeout = std::chrono::seconds{30};  // Above the servers' long-poll wait.
};

struct RawWorkerStats {
  std::uint64_t workflow_tasks = 0;
  std::uint64_t activity_tasks = 0;
  std::uint64_t stale_responses = 0;
  std::uint64_t call_failures = 0;
};

class RawWorker final : public sim::Process {
 public:
  RawWorker(sim::Env& env, RawWorkerOptions options, std::map<std::string, Decider> deciders,
            std::map<std::string, ActivityFn> activities);
  ~RawWorker() override;

  const RawWorkerStats& stats() const noexcept { return stats_; }

 private:
  void workflow_poller(std::size_t index);
  void activity_poller(std::size_t index);
  sim::Result<std::string> call(std::string_view method, std::string payload, sim::Duration timeout);
  template <typename Response, typename Request>
  sim::Result<Response> call(std::string_view method, const Request& request, sim::Duration timeout) {
    sim::Result<std::string> bytes = call(method, sim::encode(request), timeout);
    if (!bytes.ok()) return bytes.error();
    return sim::decode<Response>(bytes.value());
  }
  void handle_workflow_task(PollWorkflowTaskQueueReply task);
  void handle_activity_task(const PollActivityTaskQueueReply& task);

  sim::Env& env_;
  RawWorkerOptions options_;
  std::map<std::string, Decider> deciders_;
  std::map<std::string, ActivityFn> activities_;
  std::unique_ptr<sdk::FrontendCaller> caller_;
  std::uint64_t poll_seq_ = 0;
  RawWorkerStats stats_;
};

}  // namespace duro::engine::testing
