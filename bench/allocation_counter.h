// The count of heap allocations (operator new) in this process, kept by
// the replacement operator new in sim_bench.cc, so any benchmark can
// report allocations per event or per workflow (DESIGN.md §7: the hot
// path's budget is zero).
#pragma once

#include <cstdint>

namespace duro::bench {

// False under ASan, whose allocator must see every new: nothing is counted.
bool counting_allocations() noexcept;
// Allocations so far; take differences.
std::uint64_t allocations() noexcept;
// Bytes of heap blocks in use, as the allocator sized them, read off the
// allocator's heap (a walk of its pages: for memory benchmarks, not hot
// paths). Only while counting_allocations().
std::int64_t live_heap_bytes() noexcept;

}  // namespace duro::bench
