// The store's process: the persistence service on its own simulated node.
//
//   sim::World world({.seed = 42});
//   sim::NodeId store = world.add_node("store-0", [](sim::Env& env) {
//     return store::boot_store(env, store::StoreOptions{});
//   });
//
// At boot it recovers its state from the node's disk (store_log.h), then
// serves store_api.h's methods with a sim::RpcServer on kStorePort.
//
// WRITES (UpdateShard, RenewShards, Write, CompleteTasks) go through group commit:
//   1. judged on arrival (store_conditions.h) against the acknowledged state
//      plus every write still waiting for its fsync (store_pending.h);
//   2. queued, in arrival order. One committer fiber takes everything queued
//      (up to batch_records_max records / batch_bytes_max bytes) as one
//      batch, appends it in one append and fsyncs it once; requests that
//      arrive meanwhile wait for the next batch;
//   3. after the fsync, applied to the acknowledged state, and only then
//      answered. A reply that changes nothing (a failed condition, a retry of
//      an applied request) also waits its turn, so no one is told anything
//      that rests on a write not yet durable.
// READS are answered at once from the acknowledged state: they never see a
// write that a crash could still take back.
//
// FAULTS. An I/O error in the write path (an append, an fsync, a step of
// compaction) or in recovery means the disk may now hold less than the
// process believes (an fsync that fails has already settled the batch as a
// crash would). The process then stops answering, arranges its own restart
// after `restart_delay` (a supervisor's job: systemd's Restart=always), and
// crashes its own node: nothing of the failed batch is acknowledged, and the
// next incarnation recovers from what is durable. Corruption found by
// recovery is different: restarting cannot fix it. The process then refuses
// every request with Error{kUnavailable, "<file>: ... offset ..."}, says so
// on stderr and in the trace, and serves no data, until an operator
// intervenes.
//
// MEMBERSHIP (Heartbeat) is soft state in memory, judged by this node's
// clock; it rebuilds from heartbeats after a restart.
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/store/store_api.h"
#include "engine/store/store_log.h"
#include "engine/store/store_pending.h"
#include "engine/store/store_state.h"
#include "sim/channel.h"
#include "sim/env.h"
#include "sim/rpc.h"

namespace duro::engine::store {

struct StoreOptions {
  // Requests running or waiting for their answer at once (a queued write
  // holds its answer); beyond it the RPC server answers kOverloaded. So
  // also the bound on queued writes. A server holds at most one write in
  // flight per workflow it is running: at 256, a thousand workflows started
  // at once had 1.4 writes each refused and sent again after a backoff
  // (a round trip and a timer for nothing). A queued write costs a few KiB.
  std::size_t requests_concurrent_max = 1024;
  // One batch holds at most this many records and (unless one record alone
  // is larger) this many payload bytes.
  std::size_t batch_records_max = 256;
  std::uint64_t batch_bytes_max = std::uint64_t{1} << 20;
  // How long the committer waits for more writes before it starts a batch.
  // Zero: batches form only from what queues during the previous fsync.
  sim::Duration batch_delay{0};
  // Snapshot and start a new log once the log passes this and
  // compact_snapshot_ratio times the last snapshot (store_log.h, COMPACTION).
  std::uint64_t compact_log_bytes = std::uint64_t{256} << 10;
  std::uint64_t compact_snapshot_ratio = 4;
  std::size_t request_ids_max = kRequestIdsRemembered;
  std::size_t read_attempts_max = 8;
  ReadLimits read_limits{};
  std::size_t members_max = 1024;
  // How long after a self-inflicted crash the supervisor restarts the store.
  sim::Duration restart_delay = std::chrono::milliseconds{100};
  // Tests only: see StoreLogOptions::test_point.
  std::function<void(std::string_view point)> test_point;
};

enum class StoreStatus : std::uint8_t {
  kRecovering,  // Reading the disk; writes and reads answer kUnavailable.
  kServing,
  kStopping,    // An I/O error: crashing itself, to be restarted.
  kFailed,      // Corruption: refuses everything; see failure().
};
const char* store_status_name(StoreStatus status) noexcept;

struct StoreServiceStats {
  std::uint64_t writes = 0;            // Mutations logged.
  std::uint64_t write_failures = 0;    // Judged not to apply (conditions, fencing, invalid).
  std::uint64_t duplicates = 0;        // Retries answered with their first outcome.
  std::uint64_t batches = 0;
  std::uint64_t reads = 0;
  std::uint64_t heartbeats = 0;
};

class StoreService final : public sim::Process {
 public:
  // Binds kStorePort and starts recovery on `env`'s node (from boot).
  StoreService(sim::Env& env, StoreOptions options);
  ~StoreService() override;
  StoreService(const StoreService&) = delete;
  StoreService& operator=(const StoreService&) = delete;

  StoreStatus status() const noexcept { return status_; }
  // Why the store refused to start (kFailed), or stopped (kStopping).
  const std::string& failure() const noexcept { return failure_; }
  // The acknowledged state.
  const StoreState& state() const noexcept { return state_; }
  const StoreLog& log() const noexcept { return log_; }
  const StoreServiceStats& stats() const noexcept { return stats_; }
  // Writes judged but not yet durable, queued or in the batch being written.
  std::size_t writes_pending() const noexcept { return queue_.size() + in_flight_; }

 private:
  struct QueuedWrite {
    std::optional<StoreMutation> mutation;  // Empty: a reply that only waits its turn.
    std::uint64_t sequence = 0;
    std::string record;                     // encode_mutation(*mutation).
    Outcome outcome;
    bool shard_reply = false;                     // Answered with an UpdateShardReply, else a WriteReply.
    std::optional<sim::RpcServer::Answer> answer;  // The request's, sent once durable.
  };

  struct MemberEntry {
    std::string address;
    std::uint32_t incarnation = 0;
    sim::TimePoint last_seen{};
    sim::Duration ttl{0};
  };

  void boot();
  void register_methods();
  // Registers a write method (deferred: answered once durable). With
  // `log_as_received`, the request's bytes are its log record.
  template <typename Request>
  void handle_write(const char* method, bool log_as_received);
  // Judges `mutation` and, if it applies, queues it for the next batch,
  // whose commit sends `answer` once durable; answers at once if nothing
  // is pending. `encoded`: the request's bytes as received, if the caller
  // has them, logged as they are. Does not suspend (a deferred handler).
  void submit(StoreMutation mutation, std::string_view encoded, sim::RpcServer::Answer answer);
  static void send_outcome(sim::RpcServer::Answer& answer, const Outcome& outcome, bool shard_reply);
  void commit_loop();
  void commit_batch();
  [[noreturn]] void restart_self(std::string why);
  void refuse(std::string why);
  sim::Result<void> check_serving() const;
  sim::Result<HeartbeatReply> heartbeat(const HeartbeatRequest& request);

  sim::Env& env_;
  StoreOptions options_;
  StoreState state_;
  PendingWrites pending_;
  StoreLog log_;
  StoreStatus status_ = StoreStatus::kRecovering;
  std::string failure_;
  StoreServiceStats stats_;
  // Bounded by requests_concurrent_max: each request queues at most one,
  // and its answer counts as running until sent.
  // A list, not a deque: a QueuedWrite is too large for a deque to keep two
  // in a block, so each push allocated one. A batch is spliced out of the
  // queue, and its entries into spare_writes_ once answered, for the next
  // submits to reuse, record buffer included (up to kSpareRecordBytesMax):
  // once warm, queueing a write allocates nothing (a caller on the store's
  // own node: its answer's handle to the caller's frame).
  using WriteQueue = std::list<QueuedWrite>;
  WriteQueue queue_;
  WriteQueue spare_writes_;  // Reset, ready for reuse; at most kSpareWritesMax.
  static constexpr std::size_t kSpareWritesMax = 1024;
  static constexpr std::size_t kSpareRecordBytesMax = std::size_t{16} << 10;
  std::size_t in_flight_ = 0;  // Writes of the batch being committed.
  std::uint64_t next_sequence_ = 0;
  sim::Channel<bool> doorbell_{1};
  std::map<std::string, MemberEntry, std::less<>> members_;
  sim::TimePoint started_at_{};  // Monotonic time at boot: how long members_ has been filling.
  // Declared last: destroyed first, so no handler outlives what it uses.
  std::unique_ptr<sim::RpcServer> server_;
};

// A boot function for sim::World::add_node.
std::unique_ptr<sim::Process> boot_store(sim::Env& env, StoreOptions options = {});

}  // namespace duro::engine::store
