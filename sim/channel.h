// Channel<T>: a bounded first-in first-out queue between fibers.
//
// Senders never block: try_send() refuses when the channel is full, so a
// producer faster than its consumer sees back-pressure instead of growing a
// queue without limit. Receivers wait, with a deadline, in arrival order.
// close() wakes every receiver with Error{kClosed} once the queue is empty.
//
// It is the mailbox of a simulated server: the network delivers into it,
// handler fibers receive from it.
#pragma once

#include <cstddef>
#include <deque>

#include "sim/result.h"
#include "sim/simulator.h"

namespace duro::sim {

template <typename T>
class Channel {
 public:
  explicit Channel(std::size_t capacity) : capacity_(capacity) { DURO_ASSERT(capacity > 0); }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  std::size_t size() const noexcept { return items_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }
  bool closed() const noexcept { return closed_; }

  // Enqueues `item`; false (and `item` untouched) if full or closed.
  bool try_send(T&& item) {
    if (closed_ || items_.size() >= capacity_) return false;
    items_.push_back(std::move(item));
    wake_one();
    return true;
  }
  bool try_send(const T& item) {
    T copy = item;
    return try_send(std::move(copy));
  }

  // Takes the oldest item, waiting until one arrives, the deadline passes
  // (kTimeout) or the channel is closed and drained (kClosed).
  Result<T> receive(TimePoint deadline = TimePoint::max()) {
    Simulator& sim = Simulator::current();
    for (;;) {
      if (!items_.empty()) {
        T item = std::move(items_.front());
        items_.pop_front();
        // Another receiver may be waiting for what is left.
        if (!items_.empty()) wake_one();
        return item;
      }
      if (closed_) return Error{ErrorCode::kClosed, "channel closed"};
      DURO_ASSERT_MSG(receivers_.size() < kReceiversMax, "too many fibers waiting on one channel");
      const Waiter waiter = sim.begin_wait();
      sim_ = &sim;
      receivers_.push_back(waiter);
      WakeReason reason;
      try {
        reason = sim.suspend(waiter, "channel receive", deadline);
      } catch (const FiberUnwind&) {
        // Killed, perhaps after being chosen to take an item: pass the turn
        // on so the item does not sit unclaimed while others wait.
        forget(waiter);
        if (!items_.empty()) wake_one();
        throw;
      }
      if (reason == WakeReason::kTimeout) {
        forget(waiter);
        if (!items_.empty()) continue;  // Arrived at the same instant.
        return Error{ErrorCode::kTimeout, "nothing received before the deadline"};
      }
    }
  }
  Result<T> receive_for(Duration timeout) { return receive(Simulator::current().now() + timeout); }

  void close() {
    closed_ = true;
    while (!receivers_.empty()) wake_one();
  }

 private:
  static constexpr std::size_t kReceiversMax = 1 << 16;

  void wake_one() {
    if (receivers_.empty()) return;
    const Waiter waiter = receivers_.front();
    receivers_.pop_front();
    sim_->notify(waiter);
  }

  void forget(Waiter waiter) {
    for (auto it = receivers_.begin(); it != receivers_.end(); ++it) {
      if (it->slot == waiter.slot && it->token == waiter.token) {
        receivers_.erase(it);
        return;
      }
    }
  }

  std::deque<T> items_;
  std::deque<Waiter> receivers_;
  Simulator* sim_ = nullptr;  // Of the receivers; set when one waits.
  std::size_t capacity_;
  bool closed_ = false;
};

}  // namespace duro::sim
