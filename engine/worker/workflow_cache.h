// WorkflowCache: the worker's sticky cache of running workflows, LRU.
//
// A cached run continues from its last task when the next one arrives
// (the server sends only the new events, on this worker's sticky queue);
// a miss or an eviction costs a replay of the whole history. Bounded: the
// least recently used run is evicted when a new one needs room. A run in
// use by a task handler is never evicted under it: take() removes it from
// the cache, put() returns it.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "engine/sdk/workflow_run.h"

namespace duro::worker {

class WorkflowCache {
 public:
  explicit WorkflowCache(std::size_t capacity);

  // Removes and returns the run with this run id, or nullptr.
  std::unique_ptr<sdk::WorkflowRun> take(const std::string& run_id);
  // Caches `run` as the most recently used, evicting the least recently
  // used beyond capacity. Returns how many were evicted.
  std::size_t put(const std::string& run_id, std::unique_ptr<sdk::WorkflowRun> run);
  void clear();

  std::size_t size() const noexcept { return index_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  struct Entry {
    std::string run_id;
    std::unique_ptr<sdk::WorkflowRun> run;
  };

  std::size_t capacity_;
  std::list<Entry> entries_;  // Most recently used first.
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace duro::worker
