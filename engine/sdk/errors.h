// The errors workflow and activity code meets.
//
// WorkflowError and its kinds carry a Temporal Failure (type, message,
// details, non_retryable). They are the failures a workflow may catch and
// act on, and the ones that, escaping the workflow function, fail the
// workflow with their Failure:
//
//   ApplicationError    thrown on purpose by workflow or activity code.
//                       From an activity it fails the attempt (retried
//                       unless non_retryable, or its type is in the retry
//                       policy's non_retryable_error_types).
//   ActivityError       an activity the workflow waited on failed for good
//                       (retries exhausted, non-retryable, timed out);
//                       failure() is the last attempt's failure.
//   ChildWorkflowError  a child workflow failed, timed out, was cancelled
//                       or terminated, or could not start.
//   ExternalWorkflowError  signalling or cancelling another workflow failed
//                       (it does not exist).
//   CanceledError       the operation's cancellation scope (or the whole
//                       workflow) was cancelled. Escaping the workflow
//                       after the workflow's cancellation was requested, it
//                       closes the workflow as Canceled.
//
// Anything else escaping workflow code (a std::exception from a bug, a
// PayloadError) fails the workflow *task*, not the workflow: the task is
// retried with backoff and the workflow stays open, visible in describe,
// until a fixed worker is deployed — Temporal's default. A workflow may opt
// into failing instead (WorkflowOptions::fail_workflow_on_task_failure).
//
// NondeterminismError is not a WorkflowError: workflow code cannot cause it
// on purpose, and catching it does not help. The SDK records it before it
// unwinds the workflow, so a `catch` in workflow code cannot swallow it.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/history/event.h"
#include "engine/history/failure.h"

namespace duro::sdk {

using engine::Failure;
using engine::Payload;

class WorkflowError : public std::runtime_error {
 public:
  explicit WorkflowError(Failure failure);
  const Failure& failure() const noexcept { return failure_; }

 private:
  Failure failure_;
};

class ApplicationError : public WorkflowError {
 public:
  ApplicationError(std::string type, std::string message, Payload details = {}, bool non_retryable = false);
  explicit ApplicationError(Failure failure) : WorkflowError(std::move(failure)) {}
};

class ActivityError : public WorkflowError {
 public:
  ActivityError(Failure failure, std::string activity_type, std::string activity_id, engine::RetryState retry_state);
  const std::string& activity_type() const noexcept { return activity_type_; }
  const std::string& activity_id() const noexcept { return activity_id_; }
  engine::RetryState retry_state() const noexcept { return retry_state_; }

 private:
  std::string activity_type_;
  std::string activity_id_;
  engine::RetryState retry_state_;
};

class ChildWorkflowError : public WorkflowError {
 public:
  ChildWorkflowError(Failure failure, std::string workflow_type, engine::WorkflowExecution execution);
  const std::string& workflow_type() const noexcept { return workflow_type_; }
  const engine::WorkflowExecution& execution() const noexcept { return execution_; }

 private:
  std::string workflow_type_;
  engine::WorkflowExecution execution_;
};

class ExternalWorkflowError : public WorkflowError {
 public:
  using WorkflowError::WorkflowError;
};

class CanceledError : public WorkflowError {
 public:
  explicit CanceledError(std::string message);
  explicit CanceledError(Failure failure) : WorkflowError(std::move(failure)) {}
};

// Where workflow code called the SDK: the place a NondeterminismError
// points at.
struct CodeLocation {
  std::string file;
  std::uint32_t line = 0;
  std::string call;  // "activity", "sleep", "side_effect", ...

  bool operator==(const CodeLocation&) const = default;
};

// One command, as the divergence report prints it: the event id it has (or
// would have) in history and a one-line description, e.g.
// `ScheduleActivityTask id="3" type="validate"`.
struct CommandLine {
  engine::EventId event_id = 0;  // 0: the code's command, not (yet) in history.
  std::string text;
  CodeLocation location;  // For the code's commands.

  bool operator==(const CommandLine&) const = default;
};

// Replay found the code doing something other than what history records.
class NondeterminismError : public std::runtime_error {
 public:
  enum class Kind : std::uint8_t {
    kMismatch,  // The code's command differs from the command event history holds there.
    kMissing,   // History holds a command event the code did not produce.
    kExtra,     // The code produced a command history does not hold.
  };

  struct Divergence {
    Kind kind = Kind::kMismatch;
    std::string workflow_id;
    std::string run_id;
    std::string workflow_type;
    engine::EventId event_id = 0;   // The history event where replay diverged.
    engine::EventId workflow_task_started_event_id = 0;  // The task being replayed.
    std::string history_holds;      // One line; empty for kExtra.
    std::string code_produced;      // One line; empty for kMissing.
    CodeLocation location;          // The SDK call that produced the command (kMissing: the last one).
    std::vector<CommandLine> history_around;  // The task's command events, in order.
    std::vector<CommandLine> code_around;     // The task's commands from the code, in order.
  };

  explicit NondeterminismError(Divergence divergence);
  const Divergence& divergence() const noexcept { return divergence_; }

 private:
  Divergence divergence_;
};

const char* nondeterminism_kind_name(NondeterminismError::Kind kind) noexcept;

// The report NondeterminismError::what() returns: several lines, naming the
// run, the event, both sides, the code location, and the commands around
// the divergence.
std::string format_divergence(const NondeterminismError::Divergence& divergence);

// A call the SDK refuses because of where it was made (a command from a
// query or signal handler, a blocking call outside workflow code). Fails
// the workflow task: it is a bug in the workflow.
class WorkflowUsageError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Failure types the SDK raises by name.
inline constexpr const char* kNondeterminismFailureType = "NondeterminismError";
inline constexpr const char* kPanicFailureType = "WorkflowTaskPanic";

}  // namespace duro::sdk
