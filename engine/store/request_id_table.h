// The store's memory of applied request ids: the last `capacity` mutations
// applied, by request id, so that a retry of one gets its first outcome
// back instead of being applied twice.
//
//   RequestIdTable table(100'000);
//   table.remember("3/7/41", {MutationKind::kWrite, /*sequence=*/12});
//   table.find("3/7/41")->sequence;   // 12
//   table.for_each([](std::string_view id, const RememberedRequest& r) { ... });  // oldest first
//
// Mutations are remembered in the order applied, with increasing sequences,
// and the oldest goes first when a `capacity + 1`-th comes. An id applied
// again (recovery replays the log over a snapshot) takes its new sequence;
// its old place in the order is left behind, stale, and still counts
// against capacity until it reaches the front. What the table holds is a
// function of the mutations it was given (a decoded table starts from its
// image, which lists no stale places): deterministic and bounded.
//
// Why not a std::unordered_map and a queue of its nodes: every write looks
// its id up among up to 100,000 (one lookup at submit, one insertion and
// one eviction at apply), and a node-based table pays a cache miss at each
// link it follows, an allocation per id and a bucket walk to erase one. Here
// the entries sit in a ring in the order applied (a slot is reused, its
// id's buffer with it), and a flat index of 8-byte slots, linear probing,
// half full at most, finds one: a lookup reads one index line and one
// entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/store/store_conditions.h"

namespace duro::engine::store {

class RequestIdTable {
 public:
  explicit RequestIdTable(std::size_t capacity);

  // The id's entry, or nullptr: valid until the next remember().
  const RememberedRequest* find(std::string_view id) const;
  // Remembers `id` as applied at `remembered.sequence`, which must exceed
  // every sequence remembered before; forgets the oldest entry if the
  // order is full. Returns whether the id was new to the table.
  bool remember(std::string_view id, const RememberedRequest& remembered);

  std::size_t capacity() const noexcept { return capacity_; }
  // Ids remembered (stale places in the order not counted).
  std::size_t size() const noexcept { return live_; }

  // Calls visit(id, remembered) for each id remembered, oldest first (by
  // increasing sequence): an order that depends on the entries alone.
  template <typename Visit>
  void for_each(Visit&& visit) const {
    for (std::size_t i = 0; i < ring_.size(); i++) {
      const Entry& entry = ring_[(head_ + i) % ring_.size()];
      if (entry.live) visit(std::string_view{entry.id}, entry.remembered);
    }
  }

 private:
  struct Entry {
    std::string id;
    RememberedRequest remembered;
    bool live = false;  // False once the id was remembered again, later.
  };
  // An index slot: the low 32 bits of the id's hash (its home slot, and a
  // filter before comparing ids) and 1 + the entry's place in the ring.
  struct Slot {
    std::uint32_t hash = 0;
    std::uint32_t entry = 0;  // 0: empty.
  };

  static std::uint32_t hash_of(std::string_view id);
  // The index slot that holds `id`, or the empty slot where it would go.
  std::size_t probe(std::string_view id, std::uint32_t hash) const;
  // The index slot that points at ring entry `entry`.
  std::size_t slot_of_entry(std::uint32_t hash, std::size_t entry) const;
  // Empties slot `hole` (sim/linear_probing.h).
  void erase_slot(std::size_t hole);
  void grow_index();
  std::size_t mask() const noexcept { return index_.size() - 1; }

  std::size_t capacity_;
  std::vector<Entry> ring_;  // Grows to capacity_, then wraps.
  std::size_t head_ = 0;     // The oldest entry once the ring is full.
  std::size_t live_ = 0;
  std::vector<Slot> index_;  // A power of two; at most half full.
};

}  // namespace duro::engine::store
