#include "engine/store/request_id_table.h"

#include <functional>
#include <limits>

#include "sim/assert.h"
#include "sim/linear_probing.h"

namespace duro::engine::store {

namespace {

constexpr std::size_t kIndexSlotsMin = 16;
constexpr std::size_t kRingGrowthMax = 4096;

}  // namespace

RequestIdTable::RequestIdTable(std::size_t capacity) : capacity_(capacity), index_(kIndexSlotsMin) {
  DURO_ASSERT(capacity > 0);
  // Ring places are kept in 32 bits, plus one for "empty".
  DURO_ASSERT(capacity < std::numeric_limits<std::uint32_t>::max());
}

std::uint32_t RequestIdTable::hash_of(std::string_view id) {
  return static_cast<std::uint32_t>(std::hash<std::string_view>{}(id));
}

std::size_t RequestIdTable::probe(std::string_view id, std::uint32_t hash) const {
  // At most half the slots are taken, so an empty one ends every probe.
  std::size_t slot = hash & mask();
  for (std::size_t step = 0; step < index_.size(); step++) {
    const Slot& candidate = index_[slot];
    if (candidate.entry == 0) return slot;
    if (candidate.hash == hash && ring_[candidate.entry - 1].id == id) return slot;
    slot = (slot + 1) & mask();
  }
  DURO_ASSERT_MSG(false, "the request-id index has no empty slot");
  return 0;
}

std::size_t RequestIdTable::slot_of_entry(std::uint32_t hash, std::size_t entry) const {
  std::size_t slot = hash & mask();
  for (std::size_t step = 0; step < index_.size(); step++) {
    DURO_ASSERT(index_[slot].entry != 0);  // A live entry is always reachable from its home slot.
    if (index_[slot].entry == entry + 1) return slot;
    slot = (slot + 1) & mask();
  }
  DURO_ASSERT_MSG(false, "a live request id is missing from the index");
  return 0;
}

const RememberedRequest* RequestIdTable::find(std::string_view id) const {
  const Slot& slot = index_[probe(id, hash_of(id))];
  return slot.entry == 0 ? nullptr : &ring_[slot.entry - 1].remembered;
}

bool RequestIdTable::remember(std::string_view id, const RememberedRequest& remembered) {
  DURO_ASSERT(live_ <= ring_.size() && ring_.size() <= capacity_);
  if (!ring_.empty()) {
    const Entry& newest = ring_[(head_ + ring_.size() - 1) % ring_.size()];
    DURO_ASSERT(newest.remembered.sequence < remembered.sequence);
  }
  const std::uint32_t hash = hash_of(id);
  // An id remembered before leaves its old place stale.
  const std::size_t existing = probe(id, hash);
  const bool fresh = index_[existing].entry == 0;
  if (!fresh) {
    ring_[index_[existing].entry - 1].live = false;
    erase_slot(existing);
    live_--;
  }
  // A full ring makes room: the oldest entry leaves the order, and the
  // index too if it is not stale.
  std::size_t place = ring_.size();
  if (ring_.size() == capacity_) {
    place = head_;
    head_ = (head_ + 1) % capacity_;
    Entry& oldest = ring_[place];
    if (oldest.live) {
      erase_slot(slot_of_entry(hash_of(oldest.id), place));
      oldest.live = false;
      live_--;
    }
  } else {
    // Past a few thousand ids, the ring takes its whole capacity at once:
    // doubling would copy every entry again and leave the old array behind
    // (resident), and untouched capacity costs no memory.
    if (ring_.size() == ring_.capacity() && ring_.size() >= kRingGrowthMax) ring_.reserve(capacity_);
    ring_.emplace_back();
  }
  if (2 * (live_ + 1) > index_.size()) grow_index();
  Slot& slot = index_[probe(id, hash)];
  DURO_ASSERT(slot.entry == 0);
  Entry& entry = ring_[place];
  entry.id.assign(id);  // A reused entry keeps its buffer.
  entry.remembered = remembered;
  entry.live = true;
  slot = Slot{hash, static_cast<std::uint32_t>(place + 1)};
  live_++;
  DURO_ASSERT(live_ <= ring_.size() && ring_.size() <= capacity_ && 2 * live_ <= index_.size());
  return fresh;
}

void RequestIdTable::erase_slot(std::size_t hole) {
  sim::erase_by_backward_shift(
      index_, hole, [](const Slot& slot) { return slot.entry == 0; },
      [this](const Slot& slot) { return slot.hash & mask(); });
}

void RequestIdTable::grow_index() {
  std::vector<Slot> old = std::move(index_);
  index_.assign(old.size() * 2, Slot{});
  for (const Slot& slot : old) {
    if (slot.entry == 0) continue;
    std::size_t at = slot.hash & mask();
    // At most a quarter full now: an empty slot comes within the table.
    for (std::size_t step = 0; index_[at].entry != 0; step++) {
      DURO_ASSERT(step < index_.size());
      at = (at + 1) & mask();
    }
    index_[at] = slot;
  }
}

}  // namespace duro::engine::store
