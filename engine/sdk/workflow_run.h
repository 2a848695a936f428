// WorkflowRun: one run of a workflow, driven by its history.
//
// The worker feeds a run the events of its history, in order, in batches
// (each poll's new events); the run executes the workflow code at every
// workflow task the events contain and answers the last one with commands.
// A run kept in the worker's cache continues from where it stopped; a cache
// miss makes a new run and feeds it the whole history, and the code re-runs
// every past task — replay.
//
// At each workflow task (a WorkflowTaskStarted):
//   1. the events since the previous task are applied first: activity and
//      child results, timer firings, signals (to handlers or queues), a
//      cancellation request; they resolve futures but run no code;
//   2. the workflow's coroutines run, in a fixed order, until none can move;
//   3. the commands they produced are the task's answer — or, when history
//      already records the task (a WorkflowTaskCompleted follows), each
//      command is matched as it is produced against the command event
//      history holds at that point, by Temporal's rules (activity id and
//      type, timer id, marker name, child type, signal name and target,
//      closing commands by type). A mismatch, a command history does not
//      hold, or a command event the code did not produce is a
//      NondeterminismError pointing at the SDK call.
// Tasks that failed or timed out in history (WorkflowTaskFailed/TimedOut
// follows their Started event) produced nothing and are skipped.
//
// A run that failed a task (nondeterminism, an exception from the code) is
// poisoned: the worker drops it and replays from scratch on the retry.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <source_location>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/history/command.h"
#include "engine/history/event.h"
#include "engine/sdk/coroutine.h"
#include "engine/sdk/errors.h"
#include "engine/sdk/future.h"
#include "engine/sdk/options.h"
#include "engine/sdk/workflow_context.h"
#include "sim/random.h"
#include "sim/stack_pool.h"

namespace duro::sdk {

// A registered workflow type: its code, type-erased to payloads.
struct WorkflowDefinition {
  std::function<Payload(WorkflowContext&, const Payload&)> body;
  WorkflowOptions options;
};

// The answer to one workflow task.
struct TaskAnswer {
  bool failed = false;                 // Fail the task (RespondWorkflowTaskFailed) instead.
  std::vector<engine::Command> commands;
  engine::WorkflowTaskFailedCause cause = engine::WorkflowTaskFailedCause::kUnspecified;
  Failure failure;
  std::optional<NondeterminismError::Divergence> divergence;  // Set for nondeterminism.
};

// The commands the code produced at one workflow task.
struct TaskCommands {
  engine::EventId started_event_id = 0;  // The task's WorkflowTaskStarted.
  std::vector<engine::Command> commands;

  bool operator==(const TaskCommands&) const = default;
};

// The answer to a query.
struct QueryAnswer {
  Payload result;
  std::optional<Failure> failure;
};

namespace detail {

struct Op;

// Where the code made a command: kept raw (no string work) until a report
// needs it. SDK-made commands (closes, cancellations) have no file.
struct CodeSite {
  std::source_location where{};
  const char* call = "";
};

struct ScopeState {
  std::weak_ptr<ScopeState> parent;
  std::vector<std::weak_ptr<ScopeState>> children;
  std::vector<std::weak_ptr<Op>> ops;  // Started in this scope; pruned as they close.
  WorkflowRun* run = nullptr;
  bool cancelled = false;
};

}  // namespace detail

struct WorkflowRunOptions {
  std::size_t coroutines_max = 10'000;
  std::size_t commands_per_task_max = 1'000;  // The server's limit (server_limits.h).
  std::size_t scheduling_rounds_max = 1'000'000;  // Resumes in one task: a livelock guard.
  // Keep every command the code produced (commands_by_task()): for replay
  // tests, not for workers (it grows with the history).
  bool record_commands = false;
};

class WorkflowRun {
 public:
  // `definition` and `stacks` must outlive the run.
  WorkflowRun(const WorkflowDefinition* definition, engine::WorkflowExecution execution, std::string workflow_type,
              sim::StackPool& stacks, WorkflowRunOptions options = {});
  ~WorkflowRun();
  WorkflowRun(const WorkflowRun&) = delete;
  WorkflowRun& operator=(const WorkflowRun&) = delete;

  // Feeds the next events (the first batch starts at event 1; each next
  // batch continues at next_event_id()). Returns the answer to the task the
  // batch ends with, or nullopt when it ends without a task to answer (a
  // history replayed to its end). Bad input (a history that does not
  // describe a run: events out of order, references to nothing) fails the
  // task with a message naming the event. With `run_last_task` false, a
  // task the batch ends with is not run (to answer a query from a history
  // whose current task is still in flight).
  std::optional<TaskAnswer> apply(std::span<const engine::HistoryEvent> events, bool run_last_task = true);
  // Whether a batch starting with `first` continues this run: it must be
  // the next event, and after a task answered live, the server must have
  // taken the answer (WorkflowTaskCompleted). If not, drop the run and
  // replay the whole history in a new one.
  bool continues_with(const engine::HistoryEvent& first) const noexcept;

  // Answers a query from the state after the last task. Handlers may not
  // block or issue commands.
  QueryAnswer query(std::string_view query_type, const Payload& args);

  engine::EventId next_event_id() const noexcept { return next_event_id_; }
  engine::EventId last_started_event_id() const noexcept { return last_started_event_id_; }
  bool poisoned() const noexcept { return poisoned_; }
  // The code closed the run (complete, fail, cancel, continue-as-new).
  bool finished() const noexcept { return close_emitted_; }
  const WorkflowInfo& info() const noexcept { return info_; }
  // Where the code's last command came from (its SDK call), if it made one.
  std::optional<CodeLocation> last_command_location() const;
  // Every command the code produced, task by task (for replay equivalence):
  // one entry per task the code ran, in order.
  const std::vector<TaskCommands>& commands_by_task() const noexcept { return commands_by_task_; }
  std::vector<TaskCommands> take_commands_by_task() noexcept { return std::move(commands_by_task_); }
  // Live coroutines (each holds a stack).
  std::size_t coroutines() const noexcept { return coroutines_.size(); }

  // --- For WorkflowContext ------------------------------------------------
  sim::TimePoint now() const noexcept { return now_; }
  bool replaying() const noexcept { return replaying_; }
  bool cancel_requested() const noexcept { return cancel_requested_; }
  sim::Random& random() noexcept { return random_; }
  std::shared_ptr<detail::FutureCore> start_activity(std::string_view type, Payload input,
                                                     const ActivityOptions& options, const std::source_location& where);
  std::shared_ptr<detail::FutureCore> start_timer(sim::Duration duration, const std::source_location& where);
  std::optional<Payload> wait_signal(std::string_view name, std::optional<sim::Duration> timeout,
                                     const std::source_location& where);
  void on_signal(std::string_view name, std::function<void(const Payload&)> handler);
  void on_query(std::string_view name, std::function<Payload(const Payload&)> handler);
  Payload side_effect(detail::FunctionRef<Payload()> produce, const std::source_location& where);
  bool patched(std::string_view patch_id, bool deprecated, const std::source_location& where);
  std::pair<std::shared_ptr<detail::FutureCore>, std::shared_ptr<detail::FutureCore>> start_child(
      std::string_view workflow_type, Payload input, const ChildOptions& options, const std::source_location& where);
  std::shared_ptr<detail::FutureCore> signal_external(const engine::WorkflowExecution& target,
                                                      std::string_view signal_name, Payload input,
                                                      const std::source_location& where);
  std::shared_ptr<detail::FutureCore> cancel_external(const engine::WorkflowExecution& target,
                                                      const std::source_location& where);
  std::shared_ptr<detail::FutureCore> go(std::function<Payload()> body);
  // Suspends the current coroutine until `ready` holds (or, when
  // `cancellable`, its scope is cancelled: then throws CanceledError).
  void block_until(detail::FunctionRef<bool()> ready, bool cancellable, const std::source_location& where);
  std::shared_ptr<detail::ScopeState> new_scope(bool cancellable);
  std::shared_ptr<detail::ScopeState>& current_scope();
  void cancel_scope(detail::ScopeState& scope);
  [[noreturn]] void continue_as_new(Payload input, const ContinueAsNewOptions& options);

 private:
  struct Pending {
    engine::Command command;
    std::shared_ptr<detail::Op> op;  // Learns its event id when matched; null for cancels and closes.
    detail::CodeSite site;
  };
  struct Slot {
    std::unique_ptr<Coroutine> coroutine;
    std::shared_ptr<detail::ScopeState> scope;   // Its current scope.
    std::shared_ptr<detail::FutureCore> result;  // Null for the main coroutine.
    const detail::FunctionRef<bool()>* ready = nullptr;  // What it waits for; null: runnable.
    bool cancellable_wait = false;
    bool done = false;
  };
  // Marks handler code (signal and query handlers, side-effect functions):
  // no commands, no blocking.
  class HandlerScope {
   public:
    explicit HandlerScope(bool& flag) : flag_(flag), previous_(std::exchange(flag, true)) {}
    ~HandlerScope() { flag_ = previous_; }
    HandlerScope(const HandlerScope&) = delete;
    HandlerScope& operator=(const HandlerScope&) = delete;

   private:
    bool& flag_;
    bool previous_;
  };

  void apply_event(const engine::HistoryEvent& event);
  // Runs the code at one workflow task; `recorded`: history records it,
  // and recorded_ holds its command events.
  void run_task(const engine::HistoryEvent& started, bool recorded);
  void run_coroutines();
  bool runnable(const Slot& slot) const;
  void main_body();
  void finish_main(engine::Command close);
  void code_threw(const std::string& what);
  void task_failed(engine::WorkflowTaskFailedCause cause, Failure failure);
  TaskAnswer take_answer();
  void emit(engine::Command command, std::shared_ptr<detail::Op> op, detail::CodeSite site);
  void bind(const Pending& pending, const engine::HistoryEvent& event);
  // Matches the next command a live task sent against its event.
  void match_one(const engine::HistoryEvent& event);
  void skip_deprecated_patches(const engine::Command* next);
  [[noreturn]] void diverge(NondeterminismError::Kind kind, const engine::HistoryEvent* event, const Pending* pending);
  [[noreturn]] void bad_history(const engine::HistoryEvent& event, std::string_view problem);
  std::shared_ptr<detail::Op> op_for(engine::EventId event_id, const engine::HistoryEvent& event);
  void close_op(detail::Op& op);
  void register_op(const std::shared_ptr<detail::Op>& op);
  void cancel_op(detail::Op& op);
  std::shared_ptr<detail::Op> shared_from(detail::Op& op);
  void emit_deferred_cancels();
  std::shared_ptr<detail::Op> start_timer_op(sim::Duration duration, const std::source_location& where,
                                             const char* call);
  void deliver_signal(const std::string& name, const Payload& input);

  const WorkflowDefinition* definition_;
  sim::StackPool& stacks_;
  WorkflowRunOptions options_;
  WorkflowInfo info_;
  WorkflowContext context_;
  Payload input_;
  sim::Random random_;

  engine::EventId next_event_id_ = 1;
  engine::EventId last_started_event_id_ = 0;
  sim::TimePoint now_{};
  bool replaying_ = false;
  bool last_task_live_ = false;
  bool poisoned_ = false;
  bool close_emitted_ = false;
  bool cancel_requested_ = false;
  bool cancel_pending_ = false;  // Requested in the events since the last task; acted on at the next.
  bool in_handler_ = false;
  bool function_returned_ = false;  // The workflow function's frame is gone, and its handlers.
  std::uint64_t task_seq_ = 0;  // Workflow tasks the code ran.

  std::vector<std::unique_ptr<Slot>> coroutines_;  // The main coroutine first.
  Slot* current_slot_ = nullptr;
  std::shared_ptr<detail::ScopeState> root_scope_;

  // Commands produced and not yet matched to their events, in order.
  std::deque<Pending> pending_;
  // While replaying a recorded task: its command events and how many the
  // code has matched.
  std::vector<const engine::HistoryEvent*> recorded_;
  std::size_t recorded_next_ = 0;
  engine::EventId replayed_completed_id_ = 0;  // The last recorded task's Completed.
  std::vector<Pending> task_log_;  // A replayed task's matched commands, for reports.
  std::size_t task_commands_ = 0;  // Commands the code produced in this task.
  detail::CodeSite last_site_;             // The code's last SDK call that made a command.
  std::vector<TaskCommands> commands_by_task_;
  std::vector<engine::Command> answer_;  // The live task's commands.

  std::unordered_map<engine::EventId, std::shared_ptr<detail::Op>> ops_by_event_;
  std::vector<std::shared_ptr<detail::Op>> deferred_cancels_;
  std::uint64_t activity_seq_ = 0;
  std::uint64_t timer_seq_ = 0;
  std::uint64_t child_seq_ = 0;
  std::map<std::string, bool, std::less<>> patches_;  // Memoized patched() answers.

  std::map<std::string, std::deque<Payload>, std::less<>> signal_queues_;
  std::map<std::string, std::function<void(const Payload&)>, std::less<>> signal_handlers_;
  std::map<std::string, std::function<Payload(const Payload&)>, std::less<>> query_handlers_;

  std::optional<TaskAnswer> failure_;  // Set when the task must fail; the run is poisoned.
};

// The run whose workflow code (its function, a handler, or the SDK working
// for it) is running on this thread, or nullptr. For the determinism guard
// of `duro fuzz`: a call to the real clock from here is a bug.
const WorkflowRun* running_workflow() noexcept;

}  // namespace duro::sdk
