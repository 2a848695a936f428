// Erasing from a hash table of linear probing without tombstones.
//
//   std::vector<Slot> slots(16);   // a power of two, never full
//   erase_by_backward_shift(slots, hole,
//                           [](const Slot& s) { return s.empty(); },
//                           [&](const Slot& s) { return s.hash & (slots.size() - 1); });
//
// With tombstones, a table that erases as often as it inserts (calls
// answered, ids forgotten) fills with them and every probe grows. Instead
// the entries after the hole, up to the next empty slot, move back into it
// unless their home slot lies cyclically after the hole (then the hole is
// not on their probe path). Every key stays reachable from its home.
#pragma once

#include <cstddef>
#include <vector>

namespace duro::sim {

// Empties slots[hole] (`slots.size()` a power of two, one slot at least
// empty) and closes the gap. `is_empty(slot)` tells an empty slot, which
// `Slot{}` must be; `home_of(slot)` is a taken slot's home index.
template <typename Slot, typename IsEmpty, typename HomeOf>
void erase_by_backward_shift(std::vector<Slot>& slots, std::size_t hole, IsEmpty is_empty, HomeOf home_of) {
  const std::size_t mask = slots.size() - 1;
  slots[hole] = Slot{};
  std::size_t next = (hole + 1) & mask;
  // Bounded by the table: the run of taken slots ends at an empty one.
  for (std::size_t step = 0; step < slots.size() && !is_empty(slots[next]); step++) {
    if (((next - home_of(slots[next])) & mask) >= ((next - hole) & mask)) {
      slots[hole] = slots[next];
      slots[next] = Slot{};
      hole = next;
    }
    next = (next + 1) & mask;
  }
}

}  // namespace duro::sim
