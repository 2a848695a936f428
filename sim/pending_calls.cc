#include "sim/pending_calls.h"

#include "sim/assert.h"
#include "sim/linear_probing.h"

namespace duro::sim {

namespace {

constexpr std::size_t kSlotsMin = 16;

}  // namespace

PendingCalls::PendingCalls() : slots_(kSlotsMin) {}

std::size_t PendingCalls::probe(std::uint64_t id) const {
  // At most half the slots are taken: an empty one ends every probe.
  std::size_t slot = home(id);
  for (std::size_t step = 0; step < slots_.size(); step++) {
    if (slots_[slot].call == nullptr || slots_[slot].id == id) return slot;
    slot = (slot + 1) & mask();
  }
  DURO_ASSERT_MSG(false, "the pending-call table has no empty slot");
  return 0;
}

void PendingCalls::add(std::uint64_t id, Call* call) {
  DURO_ASSERT(call != nullptr);
  if (2 * (size_ + 1) > slots_.size()) grow();
  Slot& slot = slots_[probe(id)];
  DURO_ASSERT_MSG(slot.call == nullptr, "a request id pending twice");
  slot = Slot{id, call};
  size_++;
  DURO_ASSERT(2 * size_ <= slots_.size());
}

PendingCalls::Call* PendingCalls::find(std::uint64_t id) const { return slots_[probe(id)].call; }

bool PendingCalls::erase(std::uint64_t id) {
  const std::size_t hole = probe(id);
  if (slots_[hole].call == nullptr) return false;
  size_--;
  erase_by_backward_shift(
      slots_, hole, [](const Slot& slot) { return slot.call == nullptr; },
      [this](const Slot& slot) { return home(slot.id); });
  return true;
}

void PendingCalls::grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.size() * 2, Slot{});
  for (const Slot& slot : old) {
    if (slot.call != nullptr) slots_[probe(slot.id)] = slot;
  }
}

Result<std::string> wait_for_reply(PendingCalls::Call& call, TimePoint deadline) {
  switch (detail::wait_state(call, deadline, "rpc reply")) {
    case detail::WaitOutcome::kReady:
      return std::move(*call.result);
    case detail::WaitOutcome::kTimeout:
      return Error{ErrorCode::kTimeout, "no result before the deadline"};
    case detail::WaitOutcome::kKilled:
      return Error{ErrorCode::kKilled, "the waiting fiber is being unwound"};
  }
  DURO_ASSERT_MSG(false, "unknown wait outcome");
  return Error{ErrorCode::kKilled, "unknown wait outcome"};
}

}  // namespace duro::sim
