#include "sim/stack_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include "sim/assert.h"
#include "sim/sanitizer.h"

namespace duro::sim {

namespace {

// Stacks left by destroyed pools, with their guard pages still in place.
struct KeptStacks {
  std::mutex mutex;
  std::deque<std::pair<void*, std::size_t>> mappings;  // Base, length; oldest first.
};

KeptStacks& kept_stacks() {
  static KeptStacks* kept = new KeptStacks;  // Never destroyed: pools may outlive static destruction.
  return *kept;
}

// A kept mapping of exactly `length` bytes, or nullptr.
void* take_kept(std::size_t length) {
  KeptStacks& kept = kept_stacks();
  const std::lock_guard lock(kept.mutex);
  for (std::size_t i = kept.mappings.size(); i-- > 0;) {
    if (kept.mappings[i].second == length) {
      void* base = kept.mappings[i].first;
      kept.mappings.erase(kept.mappings.begin() + static_cast<std::ptrdiff_t>(i));
      return base;
    }
  }
  return nullptr;
}

// Keeps the mapping for a later pool; at the bound, the one kept longest
// goes instead.
void give_back(void* base, std::size_t length) {
  KeptStacks& kept = kept_stacks();
  std::pair<void*, std::size_t> oldest{nullptr, 0};
  {
    const std::lock_guard lock(kept.mutex);
    if (kept.mappings.size() == kStacksKeptMax) {
      oldest = kept.mappings.front();
      kept.mappings.pop_front();
    }
    kept.mappings.emplace_back(base, length);
    DURO_ASSERT(kept.mappings.size() <= kStacksKeptMax);
  }
  if (oldest.first != nullptr) ::munmap(oldest.first, oldest.second);
}

}  // namespace

std::size_t StackPool::kept() {
  KeptStacks& kept = kept_stacks();
  const std::lock_guard lock(kept.mutex);
  return kept.mappings.size();
}

StackPool::StackPool(std::size_t stack_size_bytes, std::size_t stacks_max)
    : stacks_max_(stacks_max), page_size_bytes_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) {
  DURO_ASSERT(page_size_bytes_ > 0);
  DURO_ASSERT(stacks_max > 0);
  // Round up to whole pages: the guard page must sit on a page boundary.
  stack_size_bytes_ = (stack_size_bytes + page_size_bytes_ - 1) / page_size_bytes_ * page_size_bytes_;
  DURO_ASSERT_MSG(stack_size_bytes_ >= 16 * 1024, "fiber stacks below 16 KiB cannot run a fiber");
}

StackPool::~StackPool() {
  DURO_ASSERT_MSG(in_use_ == 0, "StackPool destroyed while fibers still hold stacks");
  for (const Mapping& mapping : mappings_) give_back(mapping.base, mapping.length);
}

boost::context::stack_context StackPool::allocate() {
  if (free_.empty()) {
    DURO_ASSERT_MSG(mapped_ < stacks_max_, "fiber stack pool exhausted: too many live fibers");
    const std::size_t length = stack_size_bytes_ + page_size_bytes_;
    void* base = take_kept(length);
    if (base == nullptr) {
      base = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      DURO_ASSERT_MSG(base != MAP_FAILED, "mmap of a fiber stack failed");
      // The lowest page is the guard: stacks grow down into it.
      DURO_ASSERT(::mprotect(base, page_size_bytes_, PROT_NONE) == 0);
    }
    mappings_.push_back(Mapping{base, length});
    mapped_++;
    boost::context::stack_context stack;
    stack.size = stack_size_bytes_;
    stack.sp = static_cast<char*>(base) + length;
    free_.push_back(stack);
  }
  boost::context::stack_context stack = free_.back();
  free_.pop_back();
  in_use_++;
  // A reused stack still carries the ASan poison of the frames of the fiber
  // that last ran on it; clear it or the new fiber trips over stale redzones.
  sanitizer::unpoison(static_cast<char*>(stack.sp) - stack.size, stack.size);
  return stack;
}

std::size_t StackPool::resident_bytes() const {
  std::vector<unsigned char> pages;
  std::size_t resident_pages = 0;
  for (const Mapping& mapping : mappings_) {
    pages.resize(mapping.length / page_size_bytes_);
    DURO_ASSERT(::mincore(mapping.base, mapping.length, pages.data()) == 0);
    for (const unsigned char page : pages) resident_pages += page & 1U;
  }
  return resident_pages * page_size_bytes_;
}

void StackPool::deallocate(boost::context::stack_context& stack) noexcept {
  DURO_ASSERT(in_use_ > 0);
  DURO_ASSERT(stack.size == stack_size_bytes_);
  in_use_--;
  // Nothing may read a finished fiber's frames (a handler that captured a
  // local by reference and outlived it): under ASan, reading a pooled stack
  // is a use-after-poison report until the stack is lent again.
  sanitizer::poison(static_cast<char*>(stack.sp) - stack.size, stack.size);
  free_.push_back(stack);
}

}  // namespace duro::sim
