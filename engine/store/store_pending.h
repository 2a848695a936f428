// Writes judged but not yet durable: what later requests' conditions must
// see before the state does.
//
// Group commit judges a request the moment it arrives, while the batch
// before it may still be waiting for its fsync. Judged against the
// acknowledged state alone, two requests in flight could both pass a
// condition only one of them may pass (two creates of one run, two takes
// of one shard). So the store keeps, next to its acknowledged StoreState,
// this overlay: for every key a pending mutation touched, the value that
// mutation left, tagged with its log sequence. As a view (StoreView) it
// answers from the overlay first and the state second, which is exactly the
// state after every pending mutation, in order.
//
// Reads never look here: the store serves reads from the acknowledged
// state only (store_api.h: "Reads see only acknowledged state").
//
// When a batch is durable and applied to the state, retire(last sequence)
// forgets every entry no later mutation has overwritten. The overlay holds
// at most one entry per key per pending mutation, and pending mutations are
// bounded by the store's concurrency bound.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/store/key_hash.h"
#include "engine/store/store_conditions.h"
#include "engine/store/store_state.h"

namespace duro::engine::store {

class PendingWrites {
 public:
  // `state` is the acknowledged state; it must outlive this overlay.
  explicit PendingWrites(const StoreState& state) : state_(state) {}
  PendingWrites(const PendingWrites&) = delete;
  PendingWrites& operator=(const PendingWrites&) = delete;

  // --- StoreView: the state after every pending mutation ---------------------------

  const ShardRecord* shard_record(std::uint32_t shard_id) const;
  std::optional<ExecutionMeta> execution_meta(ExecutionKeyRef key) const;
  const CurrentRecord* current_record(std::string_view workflow_id) const;
  const RememberedRequest* remembered(std::string_view request_id) const;

  // Records the effect of `mutation`, which evaluate() on this view just
  // judged to apply (`outcome`), as the mutation with log sequence `sequence`
  // (one above every pending one).
  void add(const StoreMutation& mutation, const Outcome& outcome, std::uint64_t sequence);

  // Every mutation up to `sequence` is now in the state: drops the entries
  // they left that nothing later has overwritten.
  void retire(std::uint64_t sequence);

  bool empty() const noexcept {
    return shards_.empty() && executions_.empty() && currents_.empty() && requests_.empty();
  }
  std::uint64_t last_sequence() const noexcept { return last_sequence_; }

 private:
  template <typename T>
  struct Tagged {
    T value;
    std::uint64_t sequence = 0;
  };

  // Erased entries' nodes, kept for the next add() to reuse: every write
  // adds an execution and a request id, and retire() drops them a batch
  // later, so without reuse each write cost two allocations and two frees.
  static constexpr std::size_t kSpareNodesMax = 256;

  const StoreState& state_;
  std::map<std::uint32_t, Tagged<ShardRecord>> shards_;
  // nullopt: the pending mutation deleted the run. Hashed like the state's
  // table, to be looked up by a borrowed key; only retire() iterates it, to
  // erase, which no order shows in.
  using Executions =
      std::unordered_map<ExecutionKey, Tagged<std::optional<ExecutionMeta>>, ExecutionKeyHash, ExecutionKeyEqual>;
  using Requests = std::map<std::string, RememberedRequest, std::less<>>;
  Executions executions_;
  std::map<std::string, Tagged<CurrentRecord>, std::less<>> currents_;
  Requests requests_;  // Tagged by their own sequence.
  std::vector<Executions::node_type> spare_executions_;
  std::vector<Requests::node_type> spare_requests_;
  std::uint64_t last_sequence_ = 0;
};

static_assert(StoreView<PendingWrites>);
static_assert(StoreView<StoreState>);

}  // namespace duro::engine::store
