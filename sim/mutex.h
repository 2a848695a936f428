// Mutex: mutual exclusion between fibers, first come first served.
//
// Fibers switch only when they suspend, so code between two suspension
// points is already atomic; a Mutex is for the sections that suspend in the
// middle — read a record from the store, decide, write it back — which two
// fibers must not interleave.
//
//   sim::Mutex mutex;
//   sim::Result<void> locked = mutex.lock(deadline);   // in a fiber
//   if (!locked.ok()) return locked.error();            // kTimeout
//   sim::Mutex::Unlocker unlocker(mutex);
//
// Ownership is handed to the oldest waiter on unlock (no barging), so a
// waiter cannot starve. A waiter killed while it waits (its node crashed)
// leaves the queue; if ownership had just been handed to it, it passes it on
// as it unwinds. The mutex belongs to its node's process: a crash unwinds
// every fiber that waits on it before the process (and the mutex) is
// destroyed.
#pragma once

#include <cstddef>
#include <list>

#include "sim/result.h"
#include "sim/simulator.h"

namespace duro::sim {

class Mutex {
 public:
  Mutex() = default;
  ~Mutex() { DURO_ASSERT_MSG(waiters_.empty(), "mutex destroyed with fibers waiting on it"); }
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  bool locked() const noexcept { return locked_; }
  std::size_t waiting() const noexcept { return waiters_.size(); }

  bool try_lock() noexcept {
    if (locked_) return false;
    locked_ = true;
    return true;
  }

  // Waits until the mutex is ours, or Error{kTimeout} at the deadline.
  Result<void> lock(TimePoint deadline = TimePoint::max()) {
    if (try_lock()) return {};
    DURO_ASSERT_MSG(waiters_.size() < kWaitersMax, "too many fibers waiting on one mutex");
    Simulator& sim = Simulator::current();
    const auto it = waiters_.insert(waiters_.end(), Waiting{sim.begin_wait(), false});
    WakeReason reason;
    try {
      reason = sim.suspend(it->waiter, "mutex", deadline);
    } catch (const FiberUnwind&) {
      const bool granted = it->granted;
      waiters_.erase(it);
      if (granted) unlock();
      throw;
    }
    const bool granted = it->granted;
    waiters_.erase(it);
    // Handed over at the instant the deadline passed: ours all the same.
    if (granted) {
      if (reason == WakeReason::kKilled) {
        unlock();
        return Error{ErrorCode::kKilled, "the locking fiber is being unwound"};
      }
      return {};
    }
    if (reason == WakeReason::kKilled) return Error{ErrorCode::kKilled, "the locking fiber is being unwound"};
    return Error{ErrorCode::kTimeout, "mutex not acquired before the deadline"};
  }

  // Hands the mutex to the oldest waiter, or frees it.
  void unlock() {
    DURO_ASSERT_MSG(locked_, "unlock() of a mutex that is not locked");
    for (Waiting& waiting : waiters_) {
      if (waiting.granted) continue;
      waiting.granted = true;
      Simulator::current().notify(waiting.waiter);
      return;  // Still locked: now by the waiter.
    }
    locked_ = false;
  }

  // Unlocks on scope exit (a lock already taken).
  class Unlocker {
   public:
    explicit Unlocker(Mutex& mutex) noexcept : mutex_(&mutex) { DURO_ASSERT(mutex.locked()); }
    ~Unlocker() {
      if (mutex_ != nullptr) mutex_->unlock();
    }
    Unlocker(const Unlocker&) = delete;
    Unlocker& operator=(const Unlocker&) = delete;

   private:
    Mutex* mutex_;
  };

 private:
  static constexpr std::size_t kWaitersMax = 1 << 16;

  struct Waiting {
    Waiter waiter;
    bool granted;
  };

  std::list<Waiting> waiters_;
  bool locked_ = false;
};

}  // namespace duro::sim
