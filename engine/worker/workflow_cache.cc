#include "engine/worker/workflow_cache.h"

#include <utility>

#include "sim/assert.h"

namespace duro::worker {

WorkflowCache::WorkflowCache(std::size_t capacity) : capacity_(capacity) {}

std::unique_ptr<sdk::WorkflowRun> WorkflowCache::take(const std::string& run_id) {
  auto it = index_.find(run_id);
  if (it == index_.end()) return nullptr;
  std::unique_ptr<sdk::WorkflowRun> run = std::move(it->second->run);
  entries_.erase(it->second);
  index_.erase(it);
  return run;
}

std::size_t WorkflowCache::put(const std::string& run_id, std::unique_ptr<sdk::WorkflowRun> run) {
  DURO_ASSERT(run != nullptr);
  if (capacity_ == 0) return 1;  // No cache: every task replays.
  if (auto existing = index_.find(run_id); existing != index_.end()) {
    entries_.erase(existing->second);
    index_.erase(existing);
  }
  entries_.push_front(Entry{run_id, std::move(run)});
  index_[run_id] = entries_.begin();
  std::size_t evicted = 0;
  while (index_.size() > capacity_) {
    index_.erase(entries_.back().run_id);
    entries_.pop_back();
    evicted++;
  }
  DURO_ASSERT(index_.size() == entries_.size());
  return evicted;
}

void WorkflowCache::clear() {
  index_.clear();
  entries_.clear();
}

}  // namespace duro::worker
