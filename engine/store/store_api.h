// The store's contract: the messages of the persistence service.
//
// The store is what Postgres or Cassandra is to Temporal: one service, on
// its own simulated node, holding every shard's records on that node's
// disk. History nodes own shards and write through it; the store knows
// nothing of workflows beyond the keys and conditions below — mutable
// state, events and tasks are opaque bytes to it.
//
// Conditional writes are the contract (../shared/TEMPORAL_MODEL.md,
// "Persistence contract for history shards"):
//
// - Shards. Each shard has a record with a range_id. Taking a shard is a
//   compare-and-set of its record from range_id R to R + 1 (UpdateShard);
//   a lease renewal is the same CAS with R kept (and lease_epoch bumped, so
//   others can see the owner is alive).
// - Fencing. Every Write names a shard and the range_id its writer holds.
//   If the shard's range_id is no longer that, nothing is written and the
//   reply is kShardOwnershipLost: the writer lost the shard and must stop
//   using it.
// - Executions. A run's record has a version (1 after its creation, +1 per
//   write) and a next event id. An ExecutionWrite applies only if the
//   record's version is `expected_version` (0: the run must not exist), and
//   appends its events only at the record's next event id. The mutable
//   state, the events, the current-run pointer changes and the shard's new
//   transfer and timer tasks in one Write are applied atomically, all or
//   nothing (the transactional outbox).
// - Idempotency. Every Write carries a request id; a retried Write with an
//   id the store has applied (within the last kRequestIdsRemembered writes)
//   gets the first outcome again, and is not applied twice. The same holds
//   for UpdateShard (a retry gets the record it left) and CompleteTasks.
//   Only applied requests are remembered: a retry of one that failed a
//   condition is judged again.
// - Unknown outcomes. A Write that times out may or may not have happened.
//   The writer resolves it by re-reading (or by retrying with the same
//   request id), never by assuming either way.
// - Durability. A Write is acknowledged only once it is on disk (fsynced);
//   an acknowledged Write survives any crash of the store. Reads see only
//   acknowledged state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "sim/clock.h"
#include "sim/codec.h"

namespace duro::engine::store {

inline constexpr std::uint16_t kStorePort = 7100;
inline constexpr std::size_t kRequestIdsRemembered = 100'000;

// RPC method names.
inline constexpr const char* kGetShardMethod = "store.get_shard";
inline constexpr const char* kUpdateShardMethod = "store.update_shard";
inline constexpr const char* kRenewShardsMethod = "store.renew_shards";
inline constexpr const char* kWriteMethod = "store.write";
inline constexpr const char* kGetExecutionMethod = "store.get_execution";
inline constexpr const char* kGetCurrentMethod = "store.get_current";
inline constexpr const char* kReadHistoryMethod = "store.read_history";
inline constexpr const char* kReadTransferTasksMethod = "store.read_transfer_tasks";
inline constexpr const char* kReadTimerTasksMethod = "store.read_timer_tasks";
inline constexpr const char* kCompleteTasksMethod = "store.complete_tasks";
inline constexpr const char* kHeartbeatMethod = "store.heartbeat";

enum class WriteStatus : std::uint8_t {
  kOk,
  kShardOwnershipLost,  // The range_id moved on: nothing written; stop using the shard.
  kConditionFailed,     // A version, next event id or current-run condition failed: nothing written.
  kInvalid,             // The request contradicts itself (e.g. an append that does not start at the
                        // next event id it claims); nothing written. A bug in the caller.
};
const char* write_status_name(WriteStatus status) noexcept;

// --- Shards ---------------------------------------------------------------------

struct ShardRecord {
  std::uint32_t shard_id = 0;
  std::int64_t range_id = 0;     // 0: never owned.
  std::string owner;             // Node name of the owner that last took or renewed it.
  std::uint64_t lease_epoch = 0;  // Bumped by every renewal: a sign of life others can watch.
  std::string data;              // The owner's own bytes (ack levels, ...).

  bool operator==(const ShardRecord&) const = default;
};
DURO_CODEC_FIELDS(ShardRecord, shard_id, range_id, owner, lease_epoch, data);

struct GetShardRequest {
  std::uint32_t shard_id = 0;
};
DURO_CODEC_FIELDS(GetShardRequest, shard_id);
// Reply: ShardRecord (range_id 0 if the shard was never taken).

struct UpdateShardRequest {
  std::string request_id;
  std::int64_t expected_range_id = 0;
  ShardRecord record;  // The new record; record.shard_id names the shard.
};
DURO_CODEC_FIELDS(UpdateShardRequest, request_id, expected_range_id, record);

struct UpdateShardReply {
  // kOk or kConditionFailed; kInvalid for no request id, or a record whose
  // range_id is below expected_range_id (range ids never go back).
  WriteStatus status = WriteStatus::kOk;
  ShardRecord current;  // The record after the call.
};
DURO_CODEC_FIELDS(UpdateShardReply, status, current);

// Renews the leases of shards one owner holds, in one logged mutation: a
// server renews all of its shards at once, one record per round instead of
// one per shard (renewals were most of an idle cluster's log). Each record
// replaces its shard's and must carry the shard's current range_id: a
// renewal never takes a shard. All or nothing.
inline constexpr std::size_t kRenewShardsMax = 1024;
struct RenewShardsRequest {
  std::string request_id;
  std::vector<ShardRecord> records;  // Distinct shard ids; 1 to kRenewShardsMax of them.
};
DURO_CODEC_FIELDS(RenewShardsRequest, request_id, records);
// Reply: WriteReply. kShardOwnershipLost if any shard's range_id moved on
// (nothing renewed; the detail names the first such shard: renew one by one
// with UpdateShard to learn the rest); kInvalid for no request id, no
// records, too many, a shard twice, or a range_id that is not positive.

// --- Executions -------------------------------------------------------------------

// A contiguous run of events, encoded by the history layer; opaque here
// but for its first id and count.
struct HistoryBatch {
  std::int64_t first_event_id = 0;
  std::int64_t event_count = 0;
  std::string events;

  bool operator==(const HistoryBatch&) const = default;
};
DURO_CODEC_FIELDS(HistoryBatch, first_event_id, event_count, events);

struct ExecutionWrite {
  std::string workflow_id;
  std::string run_id;
  std::uint64_t expected_version = 0;   // 0: create (the run must not exist).
  std::optional<HistoryBatch> append;   // Must start at the record's next event id (1 on create).
  std::string mutable_state;            // Replaces the record's.
  bool closed = false;                  // The run has closed (informational for readers).
};
DURO_CODEC_FIELDS(ExecutionWrite, workflow_id, run_id, expected_version, append, mutable_state, closed);

// The pointer from a workflow id to its current (latest) run.
struct CurrentRecord {
  std::string workflow_id;
  std::string run_id;
  bool running = false;
  std::string start_request_id;  // The request that started the run: a retried start finds it.
  std::uint8_t close_status = 0;  // The history layer's close status, when closed.

  bool operator==(const CurrentRecord&) const = default;
};
DURO_CODEC_FIELDS(CurrentRecord, workflow_id, run_id, running, start_request_id, close_status);

struct CurrentWrite {
  // Condition: nullopt = the workflow id must have no current record;
  // otherwise its current run id must be this.
  std::optional<std::string> expected_run_id;
  CurrentRecord record;
};
DURO_CODEC_FIELDS(CurrentWrite, expected_run_id, record);

struct TransferTask {
  std::int64_t task_id = 0;  // Unique and increasing within the shard.
  std::string task;          // Opaque.

  bool operator==(const TransferTask&) const = default;
};
DURO_CODEC_FIELDS(TransferTask, task_id, task);

struct TimerTask {
  sim::TimePoint fire_time{};
  std::int64_t task_id = 0;
  std::string task;

  bool operator==(const TimerTask&) const = default;
};
DURO_CODEC_FIELDS(TimerTask, fire_time, task_id, task);

struct ExecutionKey {
  std::string workflow_id;
  std::string run_id;

  auto operator<=>(const ExecutionKey&) const = default;
};
DURO_CODEC_FIELDS(ExecutionKey, workflow_id, run_id);

struct WriteRequest {
  std::string request_id;
  std::uint32_t shard_id = 0;
  std::int64_t range_id = 0;  // The writer's; > 0 (a shard at 0 was never taken).
  std::vector<ExecutionWrite> executions;
  std::vector<CurrentWrite> currents;
  std::vector<TransferTask> transfer_tasks;
  std::vector<TimerTask> timer_tasks;
  std::vector<ExecutionKey> deletes;  // Runs to remove entirely (retention), with their history;
                                      // current records are left as they are.
};
DURO_CODEC_FIELDS(WriteRequest, request_id, shard_id, range_id, executions, currents, transfer_tasks,
                  timer_tasks, deletes);

struct WriteReply {
  WriteStatus status = WriteStatus::kOk;
  std::string detail;  // Which condition failed, for errors and logs.
};
DURO_CODEC_FIELDS(WriteReply, status, detail);

struct GetExecutionRequest {
  ExecutionKey key;
};
DURO_CODEC_FIELDS(GetExecutionRequest, key);

struct GetExecutionReply {
  bool found = false;
  std::uint32_t shard_id = 0;
  std::uint64_t version = 0;
  std::int64_t next_event_id = 0;
  std::string mutable_state;
  bool closed = false;
};
DURO_CODEC_FIELDS(GetExecutionReply, found, shard_id, version, next_event_id, mutable_state, closed);

struct GetCurrentRequest {
  std::string workflow_id;
};
DURO_CODEC_FIELDS(GetCurrentRequest, workflow_id);

struct GetCurrentReply {
  bool found = false;
  CurrentRecord record;
};
DURO_CODEC_FIELDS(GetCurrentReply, found, record);

struct ReadHistoryRequest {
  ExecutionKey key;
  std::int64_t from_event_id = 1;
  std::uint32_t max_batches = 256;
};
DURO_CODEC_FIELDS(ReadHistoryRequest, key, from_event_id, max_batches);

struct ReadHistoryReply {
  bool found = false;
  std::vector<HistoryBatch> batches;  // Whole batches; the first contains from_event_id.
  std::int64_t next_event_id = 0;     // The run's next event id: read on from the last batch's end while below.
};
DURO_CODEC_FIELDS(ReadHistoryReply, found, batches, next_event_id);

// --- Task queues of a shard -------------------------------------------------------

struct ReadTransferTasksRequest {
  std::uint32_t shard_id = 0;
  std::int64_t after_task_id = 0;  // Exclusive.
  std::uint32_t limit = 256;
};
DURO_CODEC_FIELDS(ReadTransferTasksRequest, shard_id, after_task_id, limit);

struct ReadTransferTasksReply {
  std::vector<TransferTask> tasks;  // Ascending task id.
  bool more = false;
};
DURO_CODEC_FIELDS(ReadTransferTasksReply, tasks, more);

struct ReadTimerTasksRequest {
  std::uint32_t shard_id = 0;
  // Tasks with (fire_time, task_id) > (after_time, after_task_id) and
  // fire_time <= up_to, ascending.
  sim::TimePoint after_time{};
  std::int64_t after_task_id = 0;
  sim::TimePoint up_to{};
  std::uint32_t limit = 256;
};
DURO_CODEC_FIELDS(ReadTimerTasksRequest, shard_id, after_time, after_task_id, up_to, limit);

struct ReadTimerTasksReply {
  std::vector<TimerTask> tasks;
  bool more = false;
};
DURO_CODEC_FIELDS(ReadTimerTasksReply, tasks, more);

// Deletes processed tasks: fenced by range_id like a Write.
struct CompleteTasksRequest {
  std::string request_id;
  std::uint32_t shard_id = 0;
  std::int64_t range_id = 0;
  std::int64_t transfer_up_to_task_id = 0;  // Deletes transfer tasks with id <= this (0: none).
  std::vector<std::int64_t> transfer_task_ids;  // And these.
  std::vector<std::pair<sim::TimePoint, std::int64_t>> timer_tasks;  // And these timer tasks.
};
DURO_CODEC_FIELDS(CompleteTasksRequest, request_id, shard_id, range_id, transfer_up_to_task_id,
                  transfer_task_ids, timer_tasks);
// Reply: WriteReply.

// --- Membership -------------------------------------------------------------------

// A server node says it is alive, and learns who else is. The store judges
// ages by its own clock, so servers' skewed clocks do not matter here.
// Membership is soft state: it lives in the store's memory only and
// rebuilds from heartbeats after a store restart. So a store that started
// less than a ttl ago may not yet have heard from members that are alive:
// the reply says how long it has been listening, and a member missing from
// a younger table is only unknown, not gone (Membership::complete()).
struct HeartbeatRequest {
  std::string node;     // Node name.
  std::string address;  // Where its RPC services listen ("10.0.0.3").
  std::uint32_t incarnation = 0;
  sim::Duration ttl{0};  // Consider it gone if no heartbeat for this long.
};
DURO_CODEC_FIELDS(HeartbeatRequest, node, address, incarnation, ttl);

struct Member {
  std::string node;
  std::string address;
  std::uint32_t incarnation = 0;
  sim::Duration age{0};  // Since its last heartbeat, by the store's clock.

  bool operator==(const Member&) const = default;
};
DURO_CODEC_FIELDS(Member, node, address, incarnation, age);

struct HeartbeatReply {
  std::vector<Member> members;  // Live ones (age <= their ttl), sorted by node name.
  sim::Duration listening{0};   // Since this store process started, by its monotonic time.
};
DURO_CODEC_FIELDS(HeartbeatReply, members, listening);

}  // namespace duro::engine::store
