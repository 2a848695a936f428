// Options of the SDK's calls, and what a workflow knows about itself.
//
// All are aggregates meant for designated initializers:
//   ctx.activity<CellId>("pick_cell", region,
//                        {.start_to_close = 30s, .retry = {.maximum_attempts = 5}});
// A zero duration means "not set" (Temporal's convention); every member
// has an initializer so that naming a few of them compiles warning-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "engine/history/event.h"
#include "engine/history/retry_policy.h"
#include "sim/clock.h"

namespace duro::sdk {

using engine::RetryPolicy;

// Temporal's four activity timeouts and retry policy. At least one of
// schedule_to_close and start_to_close must be set (the server refuses the
// command otherwise). `retry` defaults to the server's policy (1 s initial,
// x2, unlimited attempts within the timeouts).
struct ActivityOptions {
  sim::Duration schedule_to_close{0};
  sim::Duration schedule_to_start{0};
  sim::Duration start_to_close{0};
  sim::Duration heartbeat{0};
  RetryPolicy retry{};
  std::string task_queue{};   // Empty: the workflow's task queue.
  std::string activity_id{};  // Empty: the SDK's sequence number, "1", "2", ...
};

struct ChildOptions {
  std::string workflow_id{};  // Empty: "<parent workflow id>/<first 8 characters of its run id>/<n>".
  std::string task_queue{};   // Empty: the parent's.
  sim::Duration execution_timeout{0};
  sim::Duration run_timeout{0};
  sim::Duration task_timeout{0};
  engine::ParentClosePolicy parent_close_policy = engine::ParentClosePolicy::kTerminate;
  engine::WorkflowIdReusePolicy id_reuse_policy = engine::WorkflowIdReusePolicy::kAllowDuplicate;
  std::optional<RetryPolicy> retry{};
};

struct ContinueAsNewOptions {
  std::string workflow_type{};  // Empty: the same type.
  std::string task_queue{};     // Empty: the same queue.
  sim::Duration run_timeout{0};
  sim::Duration task_timeout{0};
};

// Per workflow type, given at registration.
struct WorkflowOptions {
  // Fail the workflow (instead of the workflow task) when its code throws
  // something that is not a WorkflowError, or replay finds it
  // nondeterministic. Default off: the task fails and is retried, the
  // workflow stays open until fixed code is deployed.
  bool fail_workflow_on_task_failure = false;
  // For ctx.activity() calls whose options leave them unset: the timeouts
  // (when neither schedule_to_close nor start_to_close is set, all four
  // come from here), and the retry policy (when the call's is the default).
  ActivityOptions activity_defaults{};
};

struct WorkflowInfo {
  std::string workflow_id;
  std::string run_id;
  std::string workflow_type;
  std::string task_queue;
  std::int32_t attempt = 1;
  std::string first_execution_run_id;
  std::string continued_execution_run_id;  // The run this one continues, if any.
  std::optional<engine::ParentInfo> parent;
  sim::TimePoint start_time{};
  sim::Duration run_timeout{0};
  sim::Duration execution_timeout{0};
};

}  // namespace duro::sdk
