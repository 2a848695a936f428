// Channel<T>: a bounded first-in first-out queue between fibers.
//
// Senders never block: try_send() refuses when the channel is full, so a
// producer faster than its consumer sees back-pressure instead of growing a
// queue without limit. Receivers wait, with a deadline, in arrival order.
// close() wakes every receiver with Error{kClosed} once the queue is empty.
// try_receive() takes an item without waiting, but only one no receiver is
// waiting or woken for.
//
// It is the mailbox of a simulated server: the network delivers into it,
// handler fibers receive from it.
//
// Destroying a channel while fibers wait on it is safe: it closes and drops
// what is queued, and the waiters wake to kClosed (or finish unwinding)
// without touching the destroyed object. Their state lives in a small core
// that the last of them frees. (A process often owns the socket its own
// receive loop waits on, and the two die in the same crash.)
#pragma once

#include <cstddef>
#include <deque>
#include <optional>

#include "sim/result.h"
#include "sim/simulator.h"

namespace duro::sim {

template <typename T>
class Channel {
 public:
  explicit Channel(std::size_t capacity) : core_(new Core(capacity)) { DURO_ASSERT(capacity > 0); }
  ~Channel() {
    core_->items.clear();
    core_->close();
    core_->release();
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  std::size_t size() const noexcept { return core_->items.size(); }
  std::size_t capacity() const noexcept { return core_->capacity; }
  bool closed() const noexcept { return core_->closed; }

  // Enqueues `item`; false (and `item` untouched) if full or closed.
  bool try_send(T&& item) {
    Core& core = *core_;
    if (core.closed || core.items.size() >= core.capacity) return false;
    core.items.push_back(std::move(item));
    core.wake_one();
    return true;
  }

  // Takes the oldest item if one is queued and no receiver is waiting for
  // it or has been woken for it (they came first); never waits. (receive()
  // itself takes a queued item at once, even one a woken receiver was
  // about to take: that receiver then waits again.)
  std::optional<T> try_receive() {
    Core& core = *core_;
    if (!core.receivers.empty() || core.items.size() <= core.woken) return std::nullopt;
    T item = std::move(core.items.front());
    core.items.pop_front();
    return item;
  }

  // Takes the oldest item, waiting until one arrives, the deadline passes
  // (kTimeout) or the channel is closed and drained (kClosed).
  Result<T> receive(TimePoint deadline = TimePoint::max()) {
    Core* core = core_;
    core->refs++;
    struct Release {
      Core* core;
      ~Release() { core->release(); }
    } release{core};
    Simulator& sim = Simulator::current();
    for (;;) {
      if (!core->items.empty()) {
        T item = std::move(core->items.front());
        core->items.pop_front();
        // Another receiver may be waiting for what is left.
        if (!core->items.empty()) core->wake_one();
        return item;
      }
      if (core->closed) return Error{ErrorCode::kClosed, "channel closed"};
      DURO_ASSERT_MSG(core->receivers.size() < kReceiversMax, "too many fibers waiting on one channel");
      const Waiter waiter = sim.begin_wait();
      core->sim = &sim;
      core->receivers.push_back(waiter);
      WakeReason reason;
      try {
        reason = sim.suspend(waiter, "channel receive", deadline);
      } catch (const FiberUnwind&) {
        // Killed, perhaps after being chosen to take an item: pass the turn
        // on so the item does not sit unclaimed while others wait.
        core->settle(waiter);
        if (!core->items.empty()) core->wake_one();
        throw;
      }
      core->settle(waiter);
      if (reason == WakeReason::kTimeout || reason == WakeReason::kKilled) {
        if (!core->items.empty()) {
          if (reason == WakeReason::kTimeout) continue;  // Arrived at the same instant.
          core->wake_one();  // Dying: leave the item to another receiver.
        }
        // A dying fiber's waits return at once (see Simulator::suspend):
        // final, or this loop would spin.
        if (reason == WakeReason::kKilled) return Error{ErrorCode::kKilled, "the receiving fiber is being unwound"};
        return Error{ErrorCode::kTimeout, "nothing received before the deadline"};
      }
    }
  }
  Result<T> receive_for(Duration timeout) { return receive(Simulator::current().deadline_after(timeout)); }

  void close() { core_->close(); }

 private:
  static constexpr std::size_t kReceiversMax = 1 << 16;

  // Shared by the channel and the receivers inside receive(); freed by the
  // last to leave. Single-threaded, so a plain count.
  struct Core {
    explicit Core(std::size_t capacity_items) : capacity(capacity_items) {}

    void wake_one() {
      if (receivers.empty()) return;
      const Waiter waiter = receivers.front();
      receivers.pop_front();
      woken++;
      sim->notify(waiter);
    }

    // A receiver back from its wait, however it ended: out of the queue of
    // receivers if still in it, else it was woken and no longer counts as
    // woken-but-not-yet-running.
    void settle(Waiter waiter) {
      for (auto it = receivers.begin(); it != receivers.end(); ++it) {
        if (it->slot == waiter.slot && it->token == waiter.token) {
          receivers.erase(it);
          return;
        }
      }
      DURO_ASSERT(woken > 0);
      woken--;
    }

    void close() {
      closed = true;
      // Bounded: each pass removes one receiver.
      while (!receivers.empty()) wake_one();
    }

    void release() {
      DURO_ASSERT(refs > 0);
      if (--refs == 0) delete this;
    }

    std::deque<T> items;
    std::deque<Waiter> receivers;
    // Receivers woken (by wake_one) that have not run yet: as many items
    // are theirs, and try_receive leaves them.
    std::size_t woken = 0;
    Simulator* sim = nullptr;  // Of the receivers; set when one waits.
    std::size_t capacity;
    int refs = 1;  // The channel's own.
    bool closed = false;
  };

  Core* core_;
};

}  // namespace duro::sim
