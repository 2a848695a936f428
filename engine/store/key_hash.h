// Hashes for the tables keyed by ids: request ids, workflow ids, and
// (workflow id, run id) pairs; and ExecutionKeyRef, a key that borrows its
// ids, to look a run up without copying them.
//
//   std::unordered_map<std::string, Record, StringHash, std::equal_to<>> by_id;
//   by_id.find(std::string_view{"order-7"});            // no key built
//   std::unordered_map<ExecutionKey, Record, ExecutionKeyHash, ExecutionKeyEqual> runs;
//   runs.find(WorkflowExecution{"order-7", "run-1"});    // any type with the two fields
//
// Tables that grow with every workflow a store or shard has seen are hashed,
// not ordered: a tree's lookup among 100,000 ids that share long prefixes
// compares strings at every level, each a cache miss. A hashed table is never
// iterated in an order that shows (DESIGN.md §2.4): whoever must list it
// (a snapshot image) sorts first.
//
// Neither hash is noexcept, on purpose: libstdc++ (Debian's, the one this
// builds with) then keeps each node's hash code in the node, so a lookup
// walking a bucket compares codes, not the strings behind them, and a
// rehash reads no key. (For a noexcept hash it recomputes the codes,
// reading every key string it passes.) Other standard libraries decide for
// themselves; only speed depends on it.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

#include "engine/store/store_api.h"

namespace duro::engine::store {

struct StringHash {
  using is_transparent = void;
  // Not noexcept: see above.
  std::size_t operator()(std::string_view id) const { return std::hash<std::string_view>{}(id); }
};

// Hashes anything with `workflow_id` and `run_id` string fields the same,
// so a table keyed by ExecutionKey is looked up by WorkflowExecution too.
struct ExecutionKeyHash {
  using is_transparent = void;
  template <typename Key>
  std::size_t operator()(const Key& key) const {  // Not noexcept: see above.
    const std::size_t workflow = std::hash<std::string_view>{}(key.workflow_id);
    const std::size_t run = std::hash<std::string_view>{}(key.run_id);
    // Boost's hash_combine constant: mixes the run's hash into the
    // workflow's so that swapping the two ids changes the code.
    return workflow ^ (run + 0x9e3779b97f4a7c15ULL + (workflow << 6) + (workflow >> 2));
  }
};

// An ExecutionKey's ids, borrowed: valid while the strings it was made from.
struct ExecutionKeyRef {
  std::string_view workflow_id;
  std::string_view run_id;

  ExecutionKeyRef(std::string_view workflow, std::string_view run) noexcept : workflow_id(workflow), run_id(run) {}
  // Implicit: every lookup by key takes a borrowed one.
  ExecutionKeyRef(const ExecutionKey& key) noexcept  // NOLINT(google-explicit-constructor)
      : workflow_id(key.workflow_id), run_id(key.run_id) {}
};

struct ExecutionKeyEqual {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const noexcept {
    return a.run_id == b.run_id && a.workflow_id == b.workflow_id;
  }
};

}  // namespace duro::engine::store
