// The store's state in memory, and the pure, deterministic application of
// each mutation to it.
//
//   StoreState state;
//   Outcome outcome = state.apply(WriteRequest{...});   // judged, then all or nothing
//   GetExecutionReply run = state.get_execution({"order-7", "run-1"});
//
// This is everything the store knows, minus membership (soft state) and
// the writes still waiting for their fsync (store_pending.h): shards with
// their range ids, executions (version, next event id, mutable state,
// closed, history batches), current-run records, each shard's transfer
// tasks (by task id) and timer tasks (by fire time, task id), and the
// request-id table. It does no I/O and reads no clock: the same mutations
// in the same order give the same state, byte for byte, which is what lets
// recovery rebuild it by replaying the log (store_log.h), and what makes a
// snapshot (encode/decode below) an exact image.
//
// Mutations are judged by store_conditions.h, against this state, before
// anything changes; a mutation that fails changes nothing. Every applied
// mutation advances last_sequence() by one: it is the log sequence number
// of the mutation that was applied last.
//
// The request-id table keeps the ids of the last `request_ids_max` applied
// mutations (kRequestIdsRemembered by default), evicting the oldest first:
// deterministic, and bounded. Only applied mutations are remembered; a
// request that failed a condition changed nothing, and a retry of it is
// judged again.
//
// Containers are ordered (std::map), so iteration, encoding and every
// read's order are functions of the keys alone (DESIGN.md §2.4), except the
// three tables that grow with every workflow: executions and current-run
// records are hashed (key_hash.h), looked up one key at a time, and never
// iterated but to encode them, which sorts them first; request ids are in
// request_id_table.h, listed oldest first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "engine/store/key_hash.h"
#include "engine/store/request_id_table.h"
#include "engine/store/store_api.h"
#include "engine/store/store_conditions.h"
#include "engine/store/store_mutation.h"
#include "sim/result.h"

namespace duro::engine::store {

// Bounds on what one read returns, whatever the request asks: a reply must
// fit in a message, and a store must not spend unbounded time on one read.
struct ReadLimits {
  std::uint32_t items_max = 4096;                      // Tasks or history batches per reply.
  std::uint64_t reply_bytes_max = std::uint64_t{4} << 20;  // Opaque bytes per reply (at least one item is returned).
};

struct ExecutionRecord {
  std::uint32_t shard_id = 0;
  std::uint64_t version = 0;
  std::int64_t next_event_id = 1;
  std::string mutable_state;
  bool closed = false;
  // By first event id; the batches tile [1, next_event_id) without gaps.
  std::map<std::int64_t, HistoryBatch> history;

  bool operator==(const ExecutionRecord&) const = default;
};

class StoreState {
 public:
  explicit StoreState(std::size_t request_ids_max = kRequestIdsRemembered);

  // --- Mutations -------------------------------------------------------------

  // Judges `mutation` against this state and, when it applies, applies all
  // of it (and advances last_sequence()). Replay passes DuplicateCheck::kSkip.
  // The rvalue form moves the mutation's bytes (mutable states, history
  // batches, tasks) into the state instead of copying them.
  Outcome apply(StoreMutation&& mutation, DuplicateCheck duplicates = DuplicateCheck::kCheck);
  Outcome apply(const StoreMutation& mutation, DuplicateCheck duplicates = DuplicateCheck::kCheck) {
    return apply(StoreMutation(mutation), duplicates);
  }
  // A moved const mutation would be copied whole: refused, to be noticed.
  Outcome apply(const StoreMutation&& mutation, DuplicateCheck duplicates = DuplicateCheck::kCheck) = delete;

  std::uint64_t last_sequence() const noexcept { return last_sequence_; }
  std::size_t request_ids_max() const noexcept { return request_ids_.capacity(); }

  // --- The view conditions are judged against (StoreView) -----------------------

  const ShardRecord* shard_record(std::uint32_t shard_id) const;
  std::optional<ExecutionMeta> execution_meta(ExecutionKeyRef key) const;
  const CurrentRecord* current_record(std::string_view workflow_id) const;
  const RememberedRequest* remembered(std::string_view request_id) const;

  // --- Reads (store_api.h's replies) ---------------------------------------------

  ShardRecord get_shard(std::uint32_t shard_id) const;
  GetExecutionReply get_execution(const ExecutionKey& key) const;
  GetCurrentReply get_current(std::string_view workflow_id) const;
  ReadHistoryReply read_history(const ReadHistoryRequest& request, const ReadLimits& limits = {}) const;
  ReadTransferTasksReply read_transfer_tasks(const ReadTransferTasksRequest& request,
                                             const ReadLimits& limits = {}) const;
  ReadTimerTasksReply read_timer_tasks(const ReadTimerTasksRequest& request, const ReadLimits& limits = {}) const;

  std::size_t shard_count() const noexcept { return shards_.size(); }
  std::size_t execution_count() const noexcept { return executions_.size(); }
  std::size_t current_count() const noexcept { return currents_.size(); }
  std::size_t transfer_task_count() const noexcept;
  std::size_t timer_task_count() const noexcept;
  std::size_t remembered_count() const noexcept { return request_ids_.size(); }

  // --- Snapshot image ------------------------------------------------------------

  // Appends the whole state to `output`: canonical (equal states, equal bytes).
  void encode(std::string& output) const;
  // The state `bytes` encode; kDecode, naming the byte, if they are not an
  // image encode() could have written. A table above `request_ids_max`
  // (the bound shrank between runs) loses its oldest ids.
  static sim::Result<StoreState> decode(std::string_view bytes, std::size_t request_ids_max = kRequestIdsRemembered);

  // Equal images (encode()): the same store, whatever history of
  // evictions led to each.
  bool operator==(const StoreState& other) const;

 private:
  using TimerKey = std::pair<sim::TimePoint, std::int64_t>;

  void apply_update_shard(const UpdateShardRequest& request);
  void apply_write(WriteRequest&& request);
  void apply_complete_tasks(const CompleteTasksRequest& request);

  std::uint64_t last_sequence_ = 0;
  std::map<std::uint32_t, ShardRecord> shards_;
  std::unordered_map<ExecutionKey, ExecutionRecord, ExecutionKeyHash, ExecutionKeyEqual> executions_;
  std::unordered_map<std::string, CurrentRecord, StringHash, std::equal_to<>> currents_;
  std::map<std::uint32_t, std::map<std::int64_t, std::string>> transfer_tasks_;  // shard -> task id -> task
  std::map<std::uint32_t, std::map<TimerKey, std::string>> timer_tasks_;       // shard -> (fire, id) -> task
  RequestIdTable request_ids_;
};

}  // namespace duro::engine::store
