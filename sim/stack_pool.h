// Fiber stacks, pooled.
//
// Each stack is one mmap'd region with an inaccessible guard page below it,
// so an overflow faults at once instead of corrupting a neighbour. Freed
// stacks go back to a free list and are reused last-in first-out (warm in
// cache), so spawning a fiber allocates nothing after warm-up. The pool
// releases its memory only when it is destroyed; it is bounded by
// `stacks_max`, and running out asserts.
//
// A destroyed pool leaves up to kStacksKeptMax stacks to the process, for
// the next pool of the same stack size: a process that runs simulation
// after simulation (a suite's seeds, a benchmark's batches) then maps and
// faults in its stacks once, not once per simulation. Which stack a fiber
// gets never shows in what it computes: addresses are not inputs.
//
// 64 KiB is the default: the smallest stack measured to run a fiber here is
// about 47 KB. Under ASan stack frames grow several-fold (redzones), so
// SimulatorOptions multiplies the default by four in sanitizer builds.
#pragma once

#include <boost/context/stack_context.hpp>
#include <cstddef>
#include <vector>

namespace duro::sim {

// At most this many stacks outlive their pools (about 270 MiB of address
// space at the default size; resident only as deep as fibers ran, ~11 KB
// each in BM_workflow_end_to_end). A thousand workflows started at once
// peak at about 3,100 live fibers; at 1,024 the next simulation of a
// process mapped and faulted in 2,000 stacks afresh.
inline constexpr std::size_t kStacksKeptMax = 4096;

class StackPool {
 public:
  StackPool(std::size_t stack_size_bytes, std::size_t stacks_max);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // A stack of stack_size_bytes(); `sp` is its top (stacks grow down).
  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& stack) noexcept;

  std::size_t stack_size_bytes() const noexcept { return stack_size_bytes_; }
  std::size_t in_use() const noexcept { return in_use_; }
  std::size_t mapped() const noexcept { return mapped_; }
  // Bytes of the pool's stacks the kernel holds in memory (mincore): each
  // stack is resident as deep as any fiber that used it ever ran. A
  // diagnostic; costs a system call per stack.
  std::size_t resident_bytes() const;
  // Stacks destroyed pools left to the process, of any size.
  static std::size_t kept();

 private:
  struct Mapping {
    void* base;
    std::size_t length;
  };

  std::size_t stack_size_bytes_;
  std::size_t stacks_max_;
  std::size_t page_size_bytes_;
  std::size_t in_use_ = 0;
  std::size_t mapped_ = 0;
  std::vector<boost::context::stack_context> free_;
  std::vector<Mapping> mappings_;
};

// The stack-allocator concept boost::context::fiber takes: hands stacks out
// of a StackPool and returns them to it when the fiber exits.
class PooledStackAllocator {
 public:
  explicit PooledStackAllocator(StackPool* pool) noexcept : pool_(pool) {}
  boost::context::stack_context allocate() { return pool_->allocate(); }
  void deallocate(boost::context::stack_context& stack) noexcept { pool_->deallocate(stack); }

 private:
  StackPool* pool_;
};

}  // namespace duro::sim
