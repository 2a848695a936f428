// WorkflowContext: everything workflow code may do besides computing.
//
// A workflow is a function, run in a coroutine by the worker:
//
//   ProvisionResult provision(duro::sdk::WorkflowContext& ctx, const ProvisionRequest& req) {
//     auto cell = ctx.activity<CellId>("pick_cell", req.region,
//                                      {.start_to_close = 30s, .retry = {.maximum_attempts = 5}});
//     ctx.sleep(std::chrono::hours{1});
//     auto approved = ctx.wait_signal<Approval>("approve", /*timeout=*/std::chrono::days{2});
//     if (ctx.patched("validate-endpoints")) ctx.activity<void>("validate", cell);
//     return {cell};
//   }
//
// Each call that touches the world becomes a command in the workflow's
// history, and on replay (after a worker crash or a cache eviction) the SDK
// feeds the recorded outcomes back instead of doing it again. So workflow
// code must be deterministic: the same history must make it produce the
// same commands. It takes time from now(), randomness from random(), and
// anything else non-deterministic through side_effect() or an activity; it
// must not read clocks, files, sockets, globals that change, or the
// addresses of objects. If it does, replay catches the divergence and
// reports a NondeterminismError naming the event, both sides, and the file
// and line of the SDK call (errors.h).
//
// Blocking calls (get() on a future, sleep, wait_signal, await, the
// synchronous activity/child calls) suspend the calling coroutine until
// history resolves what it waits on; other coroutines of the workflow (go())
// run meanwhile. Everything runs in a cancellation scope: when the scope
// (or the whole workflow) is cancelled, the operations started in it are
// cancelled — their futures fail with CanceledError at once (Temporal's
// TRY_CANCEL) — and wait_signal and await in it throw CanceledError. get()
// on a future waits for that future alone: it throws only if that future
// failed (a future of another scope's operation is not cancelled by yours).
//
// Signal and query handlers run between workflow tasks, on no coroutine:
// they read and update workflow state, and must neither block nor issue
// commands (a WorkflowUsageError says so). Code that reacts to a signal
// with commands waits for it: wait_signal, or await on state a handler set.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "engine/sdk/errors.h"
#include "engine/sdk/future.h"
#include "engine/sdk/options.h"
#include "engine/sdk/payload.h"

namespace duro::sdk {

class WorkflowRun;

namespace detail {

struct ScopeState;

// Inputs as payloads; a string literal is a std::string.
template <typename A>
Payload input_payload(const A& input) {
  if constexpr (std::is_array_v<A> && std::is_same_v<std::remove_cv_t<std::remove_extent_t<A>>, char>) {
    return to_payload(std::string(input));
  } else {
    return to_payload(input);
  }
}

// A non-owning reference to a callable, for calls that use it before they
// return (no allocation, unlike std::function).
template <typename Signature>
class FunctionRef;
template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename Fn>
    requires(!std::is_same_v<std::remove_cvref_t<Fn>, FunctionRef>)
  FunctionRef(Fn& fn) noexcept  // NOLINT: implicit, like std::function_ref.
      : object_(static_cast<void*>(std::addressof(fn))),
        call_([](void* object, Args... args) -> R { return (*static_cast<Fn*>(object))(std::forward<Args>(args)...); }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

}  // namespace detail

// A cancellation scope: cancel() cancels what was started in it (and in the
// scopes nested in it) and makes blocking calls in it throw CanceledError.
class CancellationScope {
 public:
  CancellationScope() = default;
  explicit CancellationScope(std::shared_ptr<detail::ScopeState> state) : state_(std::move(state)) {}

  void cancel();
  bool cancelled() const noexcept;

 private:
  friend class WorkflowContext;
  std::shared_ptr<detail::ScopeState> state_;
};

// A child workflow: `started` resolves with its execution (workflow and run
// id) once it runs, `result` when it closes.
template <typename R>
struct ChildWorkflow {
  Future<engine::WorkflowExecution> started;
  Future<R> result;
};

class WorkflowContext {
 public:
  explicit WorkflowContext(WorkflowRun& run) noexcept : run_(&run) {}

  const WorkflowInfo& info() const noexcept;
  // The start time of the current workflow task, from history: the same on
  // every replay.
  sim::TimePoint now() const noexcept;
  // Deterministic randomness, seeded from the run id.
  std::uint64_t random() noexcept;
  // Uniform in [0, bound). bound > 0.
  std::uint64_t random_uniform(std::uint64_t bound);
  // True while the code re-runs a workflow task history already records.
  // For logging only: never branch on it.
  bool is_replaying() const noexcept;
  // True once the workflow's cancellation was requested.
  bool cancel_requested() const noexcept;

  // --- Activities -------------------------------------------------------
  // Options with no timeout set take the workflow type's defaults
  // (WorkflowOptions::activity_defaults).

  template <typename R = void, typename A>
  Future<R> start_activity(std::string_view type, const A& input, const ActivityOptions& options = {},
                           std::source_location location = std::source_location::current()) {
    return Future<R>(start_activity_payload(type, detail::input_payload(input), options, location));
  }
  template <typename R = void, typename A>
  R activity(std::string_view type, const A& input, const ActivityOptions& options = {},
             std::source_location location = std::source_location::current()) {
    return start_activity<R>(type, input, options, location).get(location);
  }

  // --- Timers -----------------------------------------------------------
  // A duration <= 0 is ready at once and records nothing.

  Future<void> timer(sim::Duration duration, std::source_location location = std::source_location::current());
  void sleep(sim::Duration duration, std::source_location location = std::source_location::current()) {
    timer(duration, location).get(location);
  }

  // --- Signals ----------------------------------------------------------
  // A signal with no handler waits in a per-name queue, in arrival order,
  // until wait_signal takes it; registering a handler hands it the queue.

  template <typename T>
  T wait_signal(std::string_view name, std::source_location location = std::source_location::current()) {
    return from_payload<T>(*wait_signal_payload(name, std::nullopt, location));
  }
  // nullopt when `timeout` passes first (a durable timer).
  template <typename T>
  std::optional<T> wait_signal(std::string_view name, sim::Duration timeout,
                               std::source_location location = std::source_location::current()) {
    std::optional<Payload> payload = wait_signal_payload(name, timeout, location);
    if (!payload) return std::nullopt;
    return from_payload<T>(*payload);
  }
  template <typename T, typename Fn>
  void on_signal(std::string_view name, Fn handler) {
    on_signal_payload(name, [handler = std::move(handler)](const Payload& payload) mutable {
      handler(from_payload<T>(payload));
    });
  }

  // --- Queries ----------------------------------------------------------
  // A handler reads workflow state and returns an answer; A is its
  // argument's type (std::monostate: none).

  template <typename R, typename A = std::monostate, typename Fn>
  void on_query(std::string_view name, Fn handler) {
    on_query_payload(name, [handler = std::move(handler)](const Payload& args) mutable -> Payload {
      if constexpr (std::is_same_v<A, std::monostate>) {
        return to_payload<R>(handler());
      } else {
        return to_payload<R>(handler(from_payload<A>(args)));
      }
    });
  }

  // --- Side effects and versioning -------------------------------------

  // Runs `fn` once, records its result in history, and returns the
  // recorded result on every replay. For small non-deterministic values (a
  // UUID); anything that can fail belongs in an activity.
  template <typename Fn>
  auto side_effect(Fn fn, std::source_location location = std::source_location::current()) -> decltype(fn()) {
    using R = decltype(fn());
    auto produce = [&]() -> Payload { return to_payload<R>(fn()); };
    return from_payload<R>(side_effect_payload(detail::FunctionRef<Payload()>(produce), location));
  }

  // Temporal's patching. New code: `if (ctx.patched("x")) new_path(); else
  // old_path();`. A run that first executes it records a marker and takes
  // the new path; a run whose history predates it (no marker there) takes
  // the old one. Once no run from before the patch remains open, replace
  // the branch with `ctx.deprecate_patch("x"); new_path();`, and once none
  // from before that remains, remove the call.
  bool patched(std::string_view patch_id, std::source_location location = std::source_location::current());
  void deprecate_patch(std::string_view patch_id, std::source_location location = std::source_location::current());

  // --- Child workflows and other workflows ------------------------------

  template <typename R = void, typename A>
  ChildWorkflow<R> start_child(std::string_view workflow_type, const A& input, const ChildOptions& options = {},
                               std::source_location location = std::source_location::current()) {
    auto [started, result] = start_child_payload(workflow_type, detail::input_payload(input), options, location);
    return ChildWorkflow<R>{Future<engine::WorkflowExecution>(std::move(started)), Future<R>(std::move(result))};
  }
  template <typename R = void, typename A>
  R child(std::string_view workflow_type, const A& input, const ChildOptions& options = {},
          std::source_location location = std::source_location::current()) {
    return start_child<R>(workflow_type, input, options, location).result.get(location);
  }

  // Resolves once the signal is recorded in the target's history; fails
  // with ExternalWorkflowError if there is no such workflow.
  template <typename A>
  Future<void> signal_workflow(const engine::WorkflowExecution& target, std::string_view signal_name, const A& input,
                               std::source_location location = std::source_location::current()) {
    return Future<void>(signal_workflow_payload(target, signal_name, detail::input_payload(input), location));
  }
  Future<void> cancel_workflow(const engine::WorkflowExecution& target,
                               std::source_location location = std::source_location::current());

  // --- Concurrency --------------------------------------------------------

  // Runs `fn` in a new coroutine of this workflow, in a new cancellation
  // scope nested in the current one. Coroutines run one at a time: at each
  // workflow task, every one that can move is resumed in creation order
  // (the main one first), round after round until none can, so the
  // interleaving is deterministic.
  template <typename Fn>
  auto go(Fn fn) -> Future<decltype(fn())> {
    using R = decltype(fn());
    return Future<R>(go_payload([fn = std::move(fn)]() mutable -> Payload {
      if constexpr (std::is_void_v<R>) {
        fn();
        return Payload{};
      } else {
        return to_payload<R>(fn());
      }
    }));
  }

  // Blocks until every future is ready (none throws here; get() each).
  template <typename... Futures>
  void wait_all(const Futures&... futures) {
    auto all = [&] { return (futures.ready() && ...); };
    await(all);
  }
  template <typename T>
  void wait_all(const std::vector<Future<T>>& futures) {
    auto all = [&] {
      for (const Future<T>& future : futures) {
        if (!future.ready()) return false;
      }
      return true;
    };
    await(all);
  }
  // Blocks until one is ready; returns the index of the first ready one.
  template <typename... Futures>
  std::size_t wait_any(const Futures&... futures) {
    auto any = [&] { return (futures.ready() || ...); };
    await(any);
    std::size_t index = 0;
    std::size_t found = sizeof...(Futures);
    ((found = (found == sizeof...(Futures) && futures.ready()) ? index : found, index++), ...);
    return found;
  }
  template <typename T>
  std::size_t wait_any(const std::vector<Future<T>>& futures) {
    auto any = [&] {
      for (const Future<T>& future : futures) {
        if (future.ready()) return true;
      }
      return false;
    };
    await(any);
    for (std::size_t i = 0; i < futures.size(); i++) {
      if (futures[i].ready()) return i;
    }
    return futures.size();
  }

  // Blocks until `condition` (over workflow state) holds. Throws
  // CanceledError if the current scope is cancelled first.
  template <typename Condition>
  void await(Condition condition, std::source_location location = std::source_location::current()) {
    auto check = [&]() -> bool { return condition(); };
    await_condition(detail::FunctionRef<bool()>(check), location);
  }

  // --- Cancellation -------------------------------------------------------

  // Runs body(scope) in a new scope nested in the current one.
  template <typename Fn>
  auto cancellation_scope(Fn body) -> decltype(body(std::declval<CancellationScope&>())) {
    CancellationScope scope = new_scope(/*cancellable=*/true);
    ScopeGuard guard(*this, scope);
    return body(scope);
  }
  // Runs body() in a scope the enclosing scopes' cancellation does not
  // reach: cleanup after a cancellation.
  template <typename Fn>
  auto non_cancellable(Fn body) -> decltype(body()) {
    CancellationScope scope = new_scope(/*cancellable=*/false);
    ScopeGuard guard(*this, scope);
    return body();
  }

  // --- Continue-as-new ------------------------------------------------------

  // Closes this run and starts a new one of the chain with `input` (a fresh
  // history). Does not return.
  template <typename A>
  [[noreturn]] void continue_as_new(const A& input, const ContinueAsNewOptions& options = {}) {
    continue_as_new_payload(detail::input_payload(input), options);
  }

 private:
  class ScopeGuard {
   public:
    ScopeGuard(WorkflowContext& context, const CancellationScope& scope);
    ~ScopeGuard();
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;

   private:
    WorkflowContext& context_;
    std::shared_ptr<detail::ScopeState> previous_;
  };

  std::shared_ptr<detail::FutureCore> start_activity_payload(std::string_view type, Payload input,
                                                             const ActivityOptions& options,
                                                             const std::source_location& location);
  std::optional<Payload> wait_signal_payload(std::string_view name, std::optional<sim::Duration> timeout,
                                             const std::source_location& location);
  void on_signal_payload(std::string_view name, std::function<void(const Payload&)> handler);
  void on_query_payload(std::string_view name, std::function<Payload(const Payload&)> handler);
  Payload side_effect_payload(detail::FunctionRef<Payload()> produce, const std::source_location& location);
  std::pair<std::shared_ptr<detail::FutureCore>, std::shared_ptr<detail::FutureCore>> start_child_payload(
      std::string_view workflow_type, Payload input, const ChildOptions& options,
      const std::source_location& location);
  std::shared_ptr<detail::FutureCore> signal_workflow_payload(const engine::WorkflowExecution& target,
                                                              std::string_view signal_name, Payload input,
                                                              const std::source_location& location);
  std::shared_ptr<detail::FutureCore> go_payload(std::function<Payload()> body);
  void await_condition(detail::FunctionRef<bool()> condition, const std::source_location& location);
  CancellationScope new_scope(bool cancellable);
  [[noreturn]] void continue_as_new_payload(Payload input, const ContinueAsNewOptions& options);

  WorkflowRun* run_;
};

}  // namespace duro::sdk
