// Client: what an application uses to start, signal, query and await
// workflows, from a fiber on a simulated node.
//
//   sdk::Client client(env, servers, /*port=*/7500);
//   auto run = client.start("provision", "ns-42", ProvisionRequest{...});
//   client.signal(run.value(), "approve", Approval{true});
//   auto state = client.query<NamespaceState>(run.value(), "state");
//   auto result = client.result<ProvisionResult>(run.value(), env.sim().deadline_after(1h));
//
// Every call retries through FrontendCaller until its deadline. Calls that
// change state carry a request id, derived by default from what they do,
// so a retried start starts one workflow and a retried signal is recorded
// once: the "exactly once" a user expects from an acknowledged call. A
// call that returns an error may still have happened (its outcome is
// unknown after a timeout); calling again with the same request id settles
// it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/history/history.h"
#include "engine/sdk/frontend_caller.h"
#include "engine/sdk/payload.h"
#include "engine/server/api.h"

namespace duro::sdk {

struct StartOptions {
  std::string task_queue = "default";
  std::string request_id{};  // Empty: "start/<workflow id>".
  sim::Duration execution_timeout{0};
  sim::Duration run_timeout{0};
  engine::WorkflowIdReusePolicy id_reuse_policy = engine::WorkflowIdReusePolicy::kAllowDuplicate;
  sim::Duration wait = std::chrono::minutes{1};  // How long to keep trying.
};

// How a workflow (the last run of its chain) closed.
template <typename R>
struct WorkflowOutcome {
  engine::WorkflowStatus status = engine::WorkflowStatus::kRunning;
  std::string run_id;                  // The run that closed.
  std::optional<R> value;              // kCompleted (R = std::monostate for none).
  std::optional<engine::Failure> failure;  // kFailed, kTimedOut, kCanceled, kTerminated.

  bool completed() const noexcept { return status == engine::WorkflowStatus::kCompleted; }
};

struct ClientOptions {
  sim::Duration try_timeout = std::chrono::seconds{5};
  std::string identity = "client";
};

class Client {
 public:
  Client(sim::Env& env, std::vector<sim::Address> servers, std::uint16_t port, ClientOptions options = {});

  template <typename A>
  sim::Result<engine::WorkflowExecution> start(std::string_view workflow_type, std::string workflow_id, const A& input,
                                               const StartOptions& options = {}) {
    return start_payload(workflow_type, std::move(workflow_id), to_payload(input), options);
  }
  // Signals the workflow's current run (execution.run_id empty) or the given
  // run. request_id empty: a fresh one per call (each call is one signal).
  template <typename A>
  sim::Result<void> signal(const engine::WorkflowExecution& execution, std::string_view name, const A& input,
                           std::string request_id = {}, sim::Duration wait = std::chrono::minutes{1}) {
    return signal_payload(execution, name, to_payload(input), std::move(request_id), wait);
  }
  // Signals the workflow, starting it first if it is not running.
  template <typename A, typename S>
  sim::Result<engine::WorkflowExecution> signal_with_start(std::string_view workflow_type, std::string workflow_id,
                                                           const A& input, std::string_view signal_name,
                                                           const S& signal_input, const StartOptions& options = {}) {
    return signal_with_start_payload(workflow_type, std::move(workflow_id), to_payload(input), signal_name,
                                     to_payload(signal_input), options);
  }
  // Asks the workflow's query handler; a failed or unknown query is
  // Error{kApplication} with the handler's message.
  template <typename R, typename A = std::monostate>
  sim::Result<R> query(const engine::WorkflowExecution& execution, std::string_view name, const A& args = {},
                       sim::Duration wait = std::chrono::seconds{30}) {
    sim::Result<Payload> payload = query_payload(execution, name, to_payload(args), wait);
    if (!payload.ok()) return payload.error();
    try {
      return from_payload<R>(payload.value());
    } catch (const PayloadError& error) {
      return sim::Error{sim::ErrorCode::kDecode, error.what()};
    }
  }
  // Waits until the workflow's chain closes, or the deadline.
  template <typename R>
  sim::Result<WorkflowOutcome<R>> result(const engine::WorkflowExecution& execution, sim::TimePoint deadline) {
    sim::Result<WorkflowOutcome<Payload>> raw = result_payload(execution, deadline);
    if (!raw.ok()) return raw.error();
    WorkflowOutcome<R> outcome;
    outcome.status = raw.value().status;
    outcome.run_id = std::move(raw.value().run_id);
    outcome.failure = std::move(raw.value().failure);
    if (raw.value().value) {
      try {
        outcome.value = from_payload<R>(*raw.value().value);
      } catch (const PayloadError& error) {
        return sim::Error{sim::ErrorCode::kDecode, error.what()};
      }
    }
    return outcome;
  }
  // The same, with the result as the payload it was recorded as.
  sim::Result<WorkflowOutcome<Payload>> result_payload(const engine::WorkflowExecution& execution,
                                                       sim::TimePoint deadline);
  sim::Result<void> cancel(const engine::WorkflowExecution& execution, std::string reason,
                           sim::Duration wait = std::chrono::minutes{1});
  sim::Result<void> terminate(const engine::WorkflowExecution& execution, std::string reason,
                              sim::Duration wait = std::chrono::minutes{1});
  sim::Result<engine::DescribeWorkflowExecutionReply> describe(const engine::WorkflowExecution& execution,
                                                               sim::Duration wait = std::chrono::seconds{30});
  // The run's whole history so far (execution.run_id empty: the current run).
  sim::Result<engine::History> history(const engine::WorkflowExecution& execution, sim::TimePoint deadline);

  sim::Env& env() noexcept { return caller_.env(); }
  const FrontendCallerStats& stats() const noexcept { return caller_.stats(); }

 private:
  sim::Result<engine::WorkflowExecution> start_payload(std::string_view workflow_type, std::string workflow_id,
                                                       Payload input, const StartOptions& options);
  sim::Result<void> signal_payload(const engine::WorkflowExecution& execution, std::string_view name, Payload input,
                                   std::string request_id, sim::Duration wait);
  sim::Result<engine::WorkflowExecution> signal_with_start_payload(std::string_view workflow_type,
                                                                   std::string workflow_id, Payload input,
                                                                   std::string_view signal_name, Payload signal_input,
                                                                   const StartOptions& options);
  sim::Result<Payload> query_payload(const engine::WorkflowExecution& execution, std::string_view name, Payload args,
                                     sim::Duration wait);
  // The start request both start() and signal_with_start() send.
  engine::StartWorkflowExecutionRequest start_request(std::string_view workflow_type, std::string workflow_id,
                                                      Payload input, const StartOptions& options,
                                                      std::string request_id) const;
  static std::optional<engine::Failure> close_failure(const engine::HistoryEvent& close);
  CallPolicy policy(sim::Duration wait) const;
  std::string fresh_request_id(std::string_view what);

  FrontendCaller caller_;
  ClientOptions options_;
  std::uint64_t request_seq_ = 0;
};

}  // namespace duro::sdk
