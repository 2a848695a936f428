// The scheduler's pending events, ordered by (time, sequence).
//
// An event is 24 bytes: when it fires, a sequence number that breaks ties
// (assigned at push, so equal-time events run in push order unless the
// simulator draws the sequence to shuffle them), and an opaque 64-bit target
// the simulator decodes. A 4-ary min-heap: half the depth of a binary heap,
// and a node's four children share a cache line, which makes pop — the hot
// operation — cheaper than std::priority_queue's.
//
// The queue is bounded: pushing past `capacity` asserts. A simulation that
// schedules without bound is a bug to be found, not memory to be grown into.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "sim/assert.h"

namespace duro::sim {

struct Event {
  std::int64_t time_ns;
  std::uint64_t seq;
  std::uint64_t target;

  friend bool operator<(const Event& a, const Event& b) noexcept {
    return a.time_ns < b.time_ns || (a.time_ns == b.time_ns && a.seq < b.seq);
  }
};
static_assert(sizeof(Event) == 24);

class EventQueue {
 public:
  explicit EventQueue(std::size_t capacity) : capacity_(capacity) {
    DURO_ASSERT(capacity > 0);
    heap_.reserve(capacity < 4096 ? capacity : 4096);
  }

  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }

  const Event& top() const noexcept {
    DURO_ASSERT(!heap_.empty());
    return heap_.front();
  }

  void push(const Event& event) {
    DURO_ASSERT_MSG(heap_.size() < capacity_, "event queue full: raise the event capacity or find the runaway scheduler");
    std::size_t hole = heap_.size();
    heap_.push_back(event);
    while (hole > 0) {
      const std::size_t parent = (hole - 1) / kArity;
      if (!(event < heap_[parent])) break;
      heap_[hole] = heap_[parent];
      hole = parent;
    }
    heap_[hole] = event;
  }

  Event pop() noexcept {
    DURO_ASSERT(!heap_.empty());
    const Event result = heap_.front();
    const Event last = heap_.back();
    heap_.pop_back();
    if (!heap_.empty()) sift_down(0, last);
    return result;
  }

  // Drops every event `dead` returns true for, and restores the heap:
  // O(n), for purging cancelled timers in bulk.
  template <typename Pred>
  void remove_if(Pred&& dead) {
    std::erase_if(heap_, dead);
    if (heap_.size() < 2) return;
    // Bottom-up heap construction: sift down every internal node.
    for (std::size_t i = (heap_.size() - 2) / kArity + 1; i-- > 0;) sift_down(i, heap_[i]);
  }

 private:
  static constexpr std::size_t kArity = 4;

  // Places `moving` (a copy: its slot is the hole) at or below `hole`.
  void sift_down(std::size_t hole, const Event moving) noexcept {
    const std::size_t count = heap_.size();
    for (;;) {
      const std::size_t first_child = hole * kArity + 1;
      if (first_child >= count) break;
      std::size_t best = first_child;
      const std::size_t end = first_child + kArity < count ? first_child + kArity : count;
      for (std::size_t child = first_child + 1; child < end; child++) {
        if (heap_[child] < heap_[best]) best = child;
      }
      if (!(heap_[best] < moving)) break;
      heap_[hole] = heap_[best];
      hole = best;
    }
    heap_[hole] = moving;
  }

  std::vector<Event> heap_;
  std::size_t capacity_;
};

}  // namespace duro::sim
