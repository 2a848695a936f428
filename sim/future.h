// Promise<T> and Future<T>: one value handed from one fiber to another.
//
//   sim::Promise<int> promise;
//   sim::Future<int> future = promise.future();
//   sim.spawn(n, "answer", [p = std::move(promise)]() mutable {
//     sim::this_fiber::sleep_for(5ms);
//     p.set_value(42);
//   });
//   // in another fiber:
//   sim::Result<int> r = future.get_for(1s);   // 42, or Error{kTimeout}
//
// Waiting suspends only the waiting fiber. Every wait ends: with the value,
// with the error the promise set, with kBrokenPromise when the promise is
// destroyed unfulfilled (its owner's node crashed, say), with kTimeout at a
// deadline, or with kCancelled. A future that times out stays valid and can
// be waited on again.
//
// Cancellation runs the other way too: Future::cancel() (or destroying the
// future) marks the shared state abandoned, and the promise's holder can ask
// cancelled() to stop work nobody waits for.
//
// Futures are single-threaded and belong to one simulation; T must be
// movable.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "sim/result.h"
#include "sim/simulator.h"

namespace duro::sim {

namespace detail {

// The type-independent part of a shared state: who waits, and whether
// anyone still cares.
struct FutureStateBase {
  // The waiting fiber's simulator, kept so that a promise fulfilled or
  // destroyed outside any run (test teardown) still wakes it correctly.
  Simulator* sim = nullptr;
  Waiter waiter;
  bool has_waiter = false;
  bool abandoned = false;  // The future was cancelled or destroyed.

  void set_waiter(Simulator& simulator, Waiter w) noexcept {
    sim = &simulator;
    waiter = w;
    has_waiter = true;
  }

  void wake() {
    if (has_waiter) {
      has_waiter = false;
      sim->notify(waiter);
    }
  }
};

template <typename T>
struct FutureState : FutureStateBase {
  std::optional<Result<T>> result;
  bool ready() const noexcept { return result.has_value(); }
};

enum class WaitOutcome : std::uint8_t { kReady, kTimeout, kKilled };

// Suspends the calling fiber until `state` is ready or the deadline passes.
template <typename T>
WaitOutcome wait_state(FutureState<T>& state, TimePoint deadline, const char* what) {
  if (state.ready()) return WaitOutcome::kReady;
  Simulator& sim = Simulator::current();
  // Each pass either returns or waits once more; a wake that was not for
  // this state (a cancel() can cause one) loops, and the deadline bounds
  // the loop.
  for (;;) {
    const Waiter waiter = sim.begin_wait();
    state.set_waiter(sim, waiter);
    // Unregister however the wait ends (an unwinding fiber included), so
    // the promise never notifies a wait, or a simulator, that is gone.
    struct Unregister {
      FutureStateBase* state;
      ~Unregister() { state->has_waiter = false; }
    } unregister{&state};
    const WakeReason reason = sim.suspend(waiter, what, deadline);
    if (state.ready()) return WaitOutcome::kReady;
    // A dying fiber's waits return at once (see Simulator::suspend):
    // final, or a loop here would spin.
    if (reason == WakeReason::kKilled) return WaitOutcome::kKilled;
    if (reason == WakeReason::kTimeout) return WaitOutcome::kTimeout;
  }
}

}  // namespace detail

template <typename T>
class Future;

template <typename T>
class Promise {
 public:
  Promise() : state_(std::make_shared<detail::FutureState<T>>()) {}
  ~Promise() { break_if_unfulfilled(); }
  Promise(Promise&& other) noexcept = default;
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      break_if_unfulfilled();
      state_ = std::move(other.state_);
      future_taken_ = other.future_taken_;
    }
    return *this;
  }
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;

  // The one future of this promise.
  Future<T> future() {
    DURO_ASSERT_MSG(state_ != nullptr, "future() on a moved-from promise");
    DURO_ASSERT_MSG(!future_taken_, "future() called twice on one promise");
    future_taken_ = true;
    return Future<T>(state_);
  }

  template <typename U = T>
    requires(!std::is_void_v<U>)
  void set_value(U value) {
    fulfil(Result<T>(std::move(value)));
  }
  template <typename U = T>
    requires std::is_void_v<U>
  void set_value() {
    fulfil(Result<void>());
  }
  void set_error(Error error) { fulfil(Result<T>(std::move(error))); }

  bool fulfilled() const noexcept { return state_ != nullptr && state_->ready(); }
  // True once the future was cancelled or dropped: nobody will read the
  // value, and the work behind it may stop.
  bool cancelled() const noexcept { return state_ != nullptr && state_->abandoned; }

 private:
  void fulfil(Result<T> result) {
    DURO_ASSERT_MSG(state_ != nullptr, "set on a moved-from promise");
    if (state_->ready()) {
      // Only a cancelled future may already hold a result; anything else is
      // a promise kept twice.
      DURO_ASSERT_MSG(state_->abandoned, "promise fulfilled twice");
      return;
    }
    state_->result.emplace(std::move(result));
    state_->wake();
  }

  void break_if_unfulfilled() {
    if (state_ != nullptr && !state_->ready()) {
      state_->result.emplace(Error{ErrorCode::kBrokenPromise, "promise destroyed unfulfilled"});
      state_->wake();
    }
  }

  std::shared_ptr<detail::FutureState<T>> state_;
  bool future_taken_ = false;
};

template <typename T>
class Future {
 public:
  Future() = default;
  ~Future() {
    if (state_ != nullptr) state_->abandoned = true;
  }
  Future(Future&&) noexcept = default;
  Future& operator=(Future&& other) noexcept {
    if (this != &other) {
      if (state_ != nullptr) state_->abandoned = true;
      state_ = std::move(other.state_);
    }
    return *this;
  }
  Future(const Future&) = delete;
  Future& operator=(const Future&) = delete;

  bool valid() const noexcept { return state_ != nullptr; }
  bool ready() const noexcept {
    DURO_ASSERT(valid());
    return state_->ready();
  }

  // Waits until ready or the deadline; true if ready.
  bool wait_until(TimePoint deadline) {
    DURO_ASSERT(valid());
    return detail::wait_state(*state_, deadline, "future") == detail::WaitOutcome::kReady;
  }
  bool wait_for(Duration timeout) { return wait_until(Simulator::current().deadline_after(timeout)); }

  // Waits and takes the result; the future becomes invalid. A wait that is
  // killed (the fiber's node crashed) unwinds instead of returning.
  Result<T> get() { return get_until(TimePoint::max()); }

  // As get(), but at the deadline returns Error{kTimeout} and stays valid.
  // In a fiber that is being unwound (a destructor waiting during a crash)
  // it returns Error{kKilled} at once.
  Result<T> get_until(TimePoint deadline) {
    DURO_ASSERT(valid());
    switch (detail::wait_state(*state_, deadline, "future")) {
      case detail::WaitOutcome::kReady: break;
      case detail::WaitOutcome::kTimeout: return Error{ErrorCode::kTimeout, "no result before the deadline"};
      case detail::WaitOutcome::kKilled: return Error{ErrorCode::kKilled, "the waiting fiber is being unwound"};
    }
    Result<T> result = std::move(*state_->result);
    state_.reset();
    return result;
  }
  Result<T> get_for(Duration timeout) { return get_until(Simulator::current().deadline_after(timeout)); }

  // Gives up on the result: it becomes Error{kCancelled} unless it is
  // already there, and the promise's holder sees cancelled().
  void cancel() {
    DURO_ASSERT(valid());
    state_->abandoned = true;
    if (!state_->ready()) {
      state_->result.emplace(Error{ErrorCode::kCancelled, "future cancelled"});
      state_->wake();
    }
  }

 private:
  friend class Promise<T>;
  template <typename U>
  friend Result<std::size_t> when_any(std::span<Future<U>> futures, TimePoint deadline);

  explicit Future(std::shared_ptr<detail::FutureState<T>> state) : state_(std::move(state)) {}

  std::shared_ptr<detail::FutureState<T>> state_;
};

// Waits until every future is ready; Error{kTimeout} at the deadline.
template <typename T>
Result<void> when_all(std::span<Future<T>> futures, TimePoint deadline = TimePoint::max()) {
  for (Future<T>& future : futures) {
    if (!future.wait_until(deadline)) return Error{ErrorCode::kTimeout, "not all futures ready before the deadline"};
  }
  return {};
}

// Waits until at least one future is ready and returns the index of the
// first ready one (lowest index, so the answer is deterministic even when
// several became ready at once); Error{kTimeout} at the deadline.
template <typename T>
Result<std::size_t> when_any(std::span<Future<T>> futures, TimePoint deadline = TimePoint::max()) {
  DURO_ASSERT_MSG(!futures.empty(), "when_any() of no futures");
  auto first_ready = [&]() -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < futures.size(); i++) {
      if (futures[i].ready()) return i;
    }
    return std::nullopt;
  };
  Simulator& sim = Simulator::current();
  for (;;) {
    if (auto index = first_ready()) return *index;
    // One suspension, registered with every state: the first to be
    // fulfilled wakes us; the registrations left in the others are for a
    // suspension that has ended, so they are ignored if they fire.
    const Waiter waiter = sim.begin_wait();
    for (Future<T>& future : futures) future.state_->set_waiter(sim, waiter);
    struct Unregister {
      std::span<Future<T>> futures;
      ~Unregister() {
        for (Future<T>& future : futures) future.state_->has_waiter = false;
      }
    } unregister{futures};
    const WakeReason reason = sim.suspend(waiter, "when_any", deadline);
    if (reason == WakeReason::kTimeout || reason == WakeReason::kKilled) {
      if (auto index = first_ready()) return *index;
      if (reason == WakeReason::kKilled) return Error{ErrorCode::kKilled, "the waiting fiber is being unwound"};
      return Error{ErrorCode::kTimeout, "no future ready before the deadline"};
    }
  }
}

}  // namespace duro::sim
