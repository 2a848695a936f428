// The calls an RpcClient waits on, by request id: where the receive loop
// puts each reply.
//
//   detail::FutureState<std::string> reply;   // in the calling fiber's frame
//   calls.add(id, &reply);
//   ...                                       // the receive loop, later:
//   if (auto* call = calls.find(id)) { call->result.emplace(...); calls.erase(id); call->wake(); }
//
// Each call's state lives in its caller's frame, which outlives the entry:
// the caller erases it however the call ends. So a call costs no
// allocation, where a map of promises cost a node and a shared state for
// every message a workflow sends (about twenty). The table is flat, open
// addressing with linear probing, at most half full, so a lookup reads one
// slot or a few next to it; it grows with the calls in flight and never
// shrinks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sim/future.h"
#include "sim/result.h"

namespace duro::sim {

class PendingCalls {
 public:
  using Call = detail::FutureState<std::string>;

  PendingCalls();

  // `id` must not be pending; `call` must outlive the entry.
  void add(std::uint64_t id, Call* call);
  // The call waiting for `id`, or nullptr (late, duplicated, given up on).
  Call* find(std::uint64_t id) const;
  // Forgets `id`; false if it was not pending.
  bool erase(std::uint64_t id);
  std::size_t size() const noexcept { return size_; }

  // Calls visit(call) for every pending call, then forgets them all.
  template <typename Visit>
  void drain(Visit&& visit) {
    for (Slot& slot : slots_) {
      if (slot.call == nullptr) continue;
      Call* call = slot.call;
      slot = Slot{};
      visit(*call);
    }
    size_ = 0;
  }

 private:
  struct Slot {
    std::uint64_t id = 0;
    Call* call = nullptr;  // nullptr: empty.
  };

  // The slot holding `id`, or the empty slot where it would go.
  std::size_t probe(std::uint64_t id) const;
  void grow();
  std::size_t mask() const noexcept { return slots_.size() - 1; }
  // Ids are handed out one after another: as their own hash they fill
  // consecutive slots, and calls in flight rarely collide.
  std::size_t home(std::uint64_t id) const noexcept { return static_cast<std::size_t>(id) & mask(); }

  std::vector<Slot> slots_;  // A power of two; at most half full.
  std::size_t size_ = 0;
};

// Waits until `call` has its reply or the deadline passes: the reply, or
// Error{kTimeout}, or Error{kKilled} in a fiber being unwound.
Result<std::string> wait_for_reply(PendingCalls::Call& call, TimePoint deadline);

}  // namespace duro::sim
