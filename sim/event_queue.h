// The scheduler's pending events, ordered by (time, sequence).
//
// An event is 24 bytes: when it fires, a sequence number that breaks ties
// (assigned at push, so equal-time events run in push order unless the
// simulator draws the sequence to shuffle them), and an opaque 64-bit target
// the simulator decodes. pop() returns the least (time, seq) pending, always:
// the order is exact, whatever order the pushes came in.
//
// A radix heap, because simulated time never goes back. Nearly every push
// is at or after the last event popped, the "base". Keys are 128-bit,
// (time, seq), read as 32 hex digits; an event goes into the bucket named
// by the highest digit in which its key differs from the base's key and
// its own value of that digit (level 0..31, value 1..15: 480 buckets, each
// holding keys that all sort after the buckets below). Push is an append.
// Pop takes the lowest non-empty bucket, finds its least event (the least
// of all), makes that the new base and spreads the bucket's other events
// over lower levels, where they now belong. An event moves down a couple of
// times over its life (at most 31); those loops are short and predictable,
// where each level of a comparison heap is a coin-flip branch: a timer
// wakeup spent half its time in the 4-ary heap this replaced. (Hex digits
// rather than bits halve the moves: ~12 ns off a timer wakeup.) Keying on
// (time, seq), not time alone, keeps ties exact even when the sequence
// numbers are shuffled.
//
// A push below the base goes to a small 4-ary heap, `early_`, which pops
// first. It happens when an event was popped without moving the clock (a
// dead timer) and, with shuffled ties, for sequences drawn below the last
// one popped at the current time. Everything in `early_` is <= the base, and
// the base moves only while `early_` is empty, so it stays in front.
//
// Memory: each bucket keeps its first kHomeEvents events in a slice of its
// own and the rest in fixed-size blocks from a pool shared by all buckets,
// reserved for kReservedEvents pending: a warmed-up simulation does not
// allocate per event. The queue is bounded: pushing past `capacity` asserts.
// A simulation that schedules without bound is a bug to be found, not
// memory to be grown into.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "sim/assert.h"

namespace duro::sim {

struct Event {
  std::int64_t time_ns;
  std::uint64_t seq;
  std::uint64_t target;

  // Bitwise & and |: no branch to mispredict on equal times.
  friend bool operator<(const Event& a, const Event& b) noexcept {
    return (a.time_ns < b.time_ns) | ((a.time_ns == b.time_ns) & (a.seq < b.seq));
  }
};
static_assert(sizeof(Event) == 24);

class EventQueue {
 public:
  explicit EventQueue(std::size_t capacity)
      : capacity_(capacity), home_(std::make_unique_for_overwrite<Event[]>(kBuckets * kHomeEvents)) {
    DURO_ASSERT(capacity > 0);
    for (unsigned index = 0; index < kBuckets; index++) reset(index);
    add_slab(blocks_needed(std::min(capacity, kReservedEvents)));
    early_.reserve(std::min(capacity, kHomeEvents));
  }
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }

  // The least event. Not const: finding it is the first half of a pop, and
  // the answer is kept for the pop() that usually follows.
  const Event& top() noexcept {
    DURO_ASSERT(size_ > 0);
    if (!early_.empty()) return early_.front();
    locate_least();
    return *least_;
  }

  void push(const Event& event) {
    DURO_ASSERT_MSG(size_ < capacity_, "event queue full: raise the event capacity or find the runaway scheduler");
    size_++;
    least_ = nullptr;
    if (!above_base(event)) [[unlikely]] {
      if (size_ > 1) {
        early_push(event);
        return;
      }
      // The queue was empty: there is nothing to stay ahead of, so the base
      // goes back to the least key there is.
      base_time_key_ = 0;
      base_seq_ = 0;
      if (!above_base(event)) {
        early_push(event);
        return;
      }
    }
    append(bucket_of(event), event);
  }

  Event pop() {
    DURO_ASSERT(size_ > 0);
    size_--;
    if (!early_.empty()) return early_pop();
    locate_least();
    const Event* const least_slot = least_;
    const Event least = *least_slot;
    least_ = nullptr;
    DURO_ASSERT(above_base(least));
    const unsigned from = least_bucket_;
    base_time_key_ = time_key(least.time_ns);
    base_seq_ = least.seq;
    // The bucket's other events are above the new base and differ from it
    // only in lower digits: each goes down a level, into a bucket that was
    // empty.
    drain(from, [this, from, least_slot](const Event& event) {
      if (&event == least_slot) return;
      const unsigned to = bucket_of(event);
      DURO_ASSERT(to < from);
      append(to, event);
    });
    return least;
  }

  // Drops every event `dead` returns true for: O(n), for purging cancelled
  // timers in bulk. The base stays, so every survivor stays in its bucket.
  template <typename Pred>
  void remove_if(Pred&& dead) {
    least_ = nullptr;
    std::erase_if(early_, dead);
    if (early_.size() >= 2) {
      // Bottom-up heap construction: sift down every internal node.
      for (std::size_t i = (early_.size() - 2) / kArity + 1; i-- > 0;) sift_down(i, early_[i]);
    }
    std::size_t kept = early_.size();
    for (unsigned index = 0; index < kBuckets; index++) {
      // Survivors go back in as they are read: at home never past the
      // event being read, beyond it into blocks already read or fresh.
      drain(index, [&](const Event& event) {
        if (dead(event)) return;
        append(index, event);
        kept++;
      });
    }
    DURO_ASSERT(kept <= size_);
    size_ = kept;
  }

 private:
  // Digits 0..15 of the key are the sequence, 16..31 the time.
  static constexpr unsigned kDigitBits = 4;
  static constexpr unsigned kDigitMax = (1U << kDigitBits) - 1;
  static constexpr unsigned kLevelsPerWord = 64 / kDigitBits;
  static constexpr unsigned kBuckets = 2 * kLevelsPerWord * kDigitMax;
  static constexpr unsigned kOccupiedWords = (kBuckets + 63) / 64;
  // A bucket's own slice: the low buckets, which every pop works on, rarely
  // hold more. Blocks are large so that the high buckets, which take most
  // pushes, seldom reach the end of one. (Measured with binary digits:
  // 16/16 cost ~5 ns more per timer wakeup than 32/128.)
  static constexpr std::size_t kHomeEvents = 32;
  static constexpr std::size_t kBlockEvents = 128;
  static constexpr std::size_t kReservedEvents = 4096;
  static constexpr std::size_t kArity = 4;

  struct Block {
    Event events[kBlockEvents];
    Block* older;  // The bucket's next block, or in the free list the next free one.
  };
  // Events are at home, then in `newest` up to `cursor`, then in older
  // blocks, which are full. Appending is a store through `cursor` until it
  // meets `limit`, the end of the home slice or of the newest block.
  struct Bucket {
    Event* cursor;
    Event* limit;
    Block* newest;
  };

  // Blocks that `events` pending can need. A bucket has blocks only once
  // its home is full, and all its blocks are full but the newest; while a
  // bucket is drained its blocks are freed only as each is read, so up to
  // one block's events are held twice, and a purge refills the bucket
  // while its old blocks are still being read.
  static constexpr std::size_t blocks_needed(std::size_t events) noexcept {
    return events / kBlockEvents + std::min<std::size_t>(kBuckets, events / (kHomeEvents + 1)) + 4;
  }

  __extension__ using Key = unsigned __int128;
  static Key key_of(const Event& event) noexcept {
    return (static_cast<Key>(time_key(event.time_ns)) << 64) | event.seq;
  }

  // Maps signed time onto unsigned keeping the order, so that XOR finds
  // the highest differing bit of two times.
  static std::uint64_t time_key(std::int64_t time_ns) noexcept {
    return static_cast<std::uint64_t>(time_ns) ^ (1ULL << 63);
  }

  bool above_base(const Event& event) const noexcept {
    const std::uint64_t key = time_key(event.time_ns);
    return (key > base_time_key_) | ((key == base_time_key_) & (event.seq > base_seq_));
  }

  // The bucket of an event above the base: the highest hex digit in which
  // their keys differ (its level), and the event's value of that digit,
  // which is larger than the base's.
  unsigned bucket_of(const Event& event) const noexcept {
    const std::uint64_t time = time_key(event.time_ns);
    const std::uint64_t time_diff = time ^ base_time_key_;
    if (time_diff != 0) {
      const unsigned level = (63 - static_cast<unsigned>(std::countl_zero(time_diff))) / kDigitBits;
      const auto digit = static_cast<unsigned>((time >> (level * kDigitBits)) & kDigitMax);
      return (kLevelsPerWord + level) * kDigitMax + digit - 1;
    }
    const unsigned level = (63 - static_cast<unsigned>(std::countl_zero(event.seq ^ base_seq_))) / kDigitBits;
    const auto digit = static_cast<unsigned>((event.seq >> (level * kDigitBits)) & kDigitMax);
    return level * kDigitMax + digit - 1;
  }

  Event* home(unsigned index) const noexcept { return &home_[index * kHomeEvents]; }

  void reset(unsigned index) noexcept {
    buckets_[index] = Bucket{home(index), home(index) + kHomeEvents, nullptr};
    occupied_[index / 64] &= ~(1ULL << (index % 64));
  }

  void append(unsigned index, const Event& event) {
    Bucket& bucket = buckets_[index];
    if (bucket.cursor == bucket.limit) [[unlikely]] {
      Block* const block = take_block();
      block->older = bucket.newest;
      bucket.newest = block;
      bucket.cursor = block->events;
      bucket.limit = block->events + kBlockEvents;
    }
    *bucket.cursor++ = event;
    occupied_[index / 64] |= 1ULL << (index % 64);
  }

  Block* take_block() {
    if (free_blocks_ != nullptr) {
      Block* const block = free_blocks_;
      free_blocks_ = block->older;
      return block;
    }
    if (fresh_blocks_ == fresh_blocks_end_) {
      // Past the reserve: grow by doubling, up to what `capacity` can need.
      DURO_ASSERT(blocks_total_ < blocks_needed(capacity_));
      add_slab(std::min(blocks_total_, blocks_needed(capacity_) - blocks_total_));
    }
    return fresh_blocks_++;
  }

  // Blocks are handed out from a slab in order, so its memory is touched
  // only as far as it is used.
  void add_slab(std::size_t blocks) {
    DURO_ASSERT(blocks > 0);
    const std::unique_ptr<Block[]>& slab = slabs_.emplace_back(std::make_unique_for_overwrite<Block[]>(blocks));
    fresh_blocks_ = slab.get();
    fresh_blocks_end_ = slab.get() + blocks;
    blocks_total_ += blocks;
  }

  // Calls visit(event) on each event of a bucket, where it lies, and leaves
  // the bucket empty; visit may append to any bucket, this one included.
  template <typename Visit>
  void drain(unsigned index, Visit&& visit) {
    const Bucket bucket = buckets_[index];
    reset(index);
    const Event* const home_end = bucket.newest == nullptr ? bucket.cursor : home(index) + kHomeEvents;
    for (const Event* event = home(index); event != home_end; event++) visit(*event);
    for (Block* block = bucket.newest; block != nullptr;) {
      const Event* const end = block == bucket.newest ? bucket.cursor : block->events + kBlockEvents;
      for (const Event* event = block->events; event != end; event++) visit(*event);
      Block* const older = block->older;
      block->older = free_blocks_;  // Read to the end: free to reuse.
      free_blocks_ = block;
      block = older;
    }
  }

  // Finds the least event outside `early_` (the least of the lowest
  // non-empty bucket), unless it is known already.
  void locate_least() noexcept {
    if (least_ != nullptr) return;
    unsigned word = 0;
    while (occupied_[word] == 0) {
      word++;
      DURO_ASSERT(word < kOccupiedWords);
    }
    const unsigned index = word * 64 + static_cast<unsigned>(std::countr_zero(occupied_[word]));
    const Bucket& bucket = buckets_[index];
    const Event* least = home(index);
    const Event* const home_end = bucket.newest == nullptr ? bucket.cursor : home(index) + kHomeEvents;
    DURO_ASSERT(home_end != least);
    // One 128-bit comparison and conditional moves, not branches: which
    // event is least is a coin flip.
    Key least_key = key_of(*least);
    const auto scan = [&](const Event* begin, const Event* end) {
      for (const Event* event = begin; event != end; event++) {
        const Key key = key_of(*event);
        const bool less = key < least_key;
        least_key = less ? key : least_key;
        least = less ? event : least;
      }
    };
    scan(least + 1, home_end);
    for (const Block* block = bucket.newest; block != nullptr; block = block->older) {
      scan(block->events, block == bucket.newest ? bucket.cursor : block->events + kBlockEvents);
    }
    least_bucket_ = index;
    least_ = least;
  }

  void early_push(const Event& event) {
    std::size_t hole = early_.size();
    early_.push_back(event);
    while (hole > 0) {
      const std::size_t parent = (hole - 1) / kArity;
      if (!(event < early_[parent])) break;
      early_[hole] = early_[parent];
      hole = parent;
    }
    early_[hole] = event;
  }

  Event early_pop() noexcept {
    const Event result = early_.front();
    const Event last = early_.back();
    early_.pop_back();
    if (!early_.empty()) sift_down(0, last);
    return result;
  }

  // Places `moving` (a copy: its slot is the hole) at or below `hole`.
  void sift_down(std::size_t hole, const Event moving) noexcept {
    const std::size_t count = early_.size();
    for (;;) {
      const std::size_t first_child = hole * kArity + 1;
      if (first_child >= count) break;
      std::size_t best = first_child;
      const std::size_t end = first_child + kArity < count ? first_child + kArity : count;
      for (std::size_t child = first_child + 1; child < end; child++) {
        if (early_[child] < early_[best]) best = child;
      }
      if (!(early_[best] < moving)) break;
      early_[hole] = early_[best];
      hole = best;
    }
    early_[hole] = moving;
  }

  std::array<Bucket, kBuckets> buckets_;
  std::uint64_t occupied_[kOccupiedWords] = {};  // Bit i % 64 of word i / 64: bucket i is not empty.
  std::uint64_t base_time_key_ = 0;
  std::uint64_t base_seq_ = 0;
  const Event* least_ = nullptr;  // Where the least event is, in bucket least_bucket_, while known.
  unsigned least_bucket_ = 0;
  std::size_t size_ = 0;
  std::size_t capacity_;
  std::unique_ptr<Event[]> home_;  // kHomeEvents per bucket.
  std::vector<std::unique_ptr<Block[]>> slabs_;
  Block* free_blocks_ = nullptr;   // Blocks given back, linked through Block::older.
  Block* fresh_blocks_ = nullptr;  // Never used yet, up to fresh_blocks_end_.
  Block* fresh_blocks_end_ = nullptr;
  std::size_t blocks_total_ = 0;
  std::vector<Event> early_;  // A 4-ary min-heap of events <= the base.
};

}  // namespace duro::sim
