// The store's durable log on its node's disk: group-committed batches,
// snapshots, and recovery.
//
//   StoreLog log(env.disk(), options);
//   StoreState state;
//   LogStatus recovered = log.recover(state);   // snapshot + log, torn tail dropped
//   ...
//   log.commit(payload, record_count);          // one append, one fsync
//   if (log.compaction_due()) log.compact(state);
//
// The format is store_format.h's. This class does the I/O, in order, from a
// fiber of the store's node, and holds the rules that make it safe:
//
// COMMIT. A batch is appended whole (one append) and made durable by one
// fsync; only then may its requests be acknowledged. The next batch is
// appended only after that fsync returned: so every batch is written when
// all before it is durable, which is what lets recovery tell a torn tail
// from corruption. A failed append or fsync is kIo: the caller must not
// acknowledge anything of the batch, and must not write again in this
// process — after a failed fsync the batch's bytes may be settled as a crash
// would settle them while reads still show them (sim/disk.h, "fsyncgate"),
// so the only safe continuation is to restart and recover from what is
// durable.
//
// COMPACTION. When the log passes both `compact_log_bytes` and
// `compact_snapshot_ratio` times the last snapshot, the state is written as
// a snapshot and a new log generation begins. Relative to the state, so
// that recovery (read the snapshot, replay the log) costs a bounded multiple
// of the state's size, not of the store's whole past: a store whose log is
// mostly overwrites (lease renewals) would otherwise replay each one at
// every restart. The floor keeps a tiny state from compacting at every batch.
// And whatever the ratio says, a log past half the disk's file size limit
// compacts: a state above a quarter of that limit would otherwise grow its
// log into the limit, fail the append (kNoSpace), restart, replay, and fail
// the same append again, forever (100,000 open workflows did).
// The steps:
//   1. create store.log.<G+1>, append its open batch, fsync it;
//   2. write store.snapshot.tmp (generation G+1, last sequence S), fsync it;
//   3. rename it over store.snapshot, fsync the directory;
//   4. remove store.log.<G>.
// The snapshot names the one log that follows it, so recovery never applies
// a log twice nor skips one: a crash before step 3 is durable leaves the old
// snapshot naming log G (log G+1 is a leftover and is removed); after it,
// the new snapshot naming G+1 (log G is a leftover). Between compactions the
// log grows at most to max(compact_log_bytes, compact_snapshot_ratio x the
// snapshot's bytes) plus one batch.
//
// RECOVERY. Reads the snapshot (if any), then its log; replays every valid
// batch; drops a torn tail (truncate + fsync); removes leftovers of an
// interrupted compaction. Anything the rules above cannot have produced is
// corruption: kCorrupt, with a message naming the file and the offset,
// and the store must not serve. Bit flips on read are transient (the media
// is intact), so before judging a file damaged recovery reads it again,
// until two reads agree or read_attempts_max is spent (then kIo: try later).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "engine/store/store_format.h"
#include "engine/store/store_state.h"
#include "sim/disk.h"

namespace duro::engine::store {

struct StoreLogOptions {
  // Compact once the log file passes this many bytes, and also
  // compact_snapshot_ratio times the last snapshot's (see COMPACTION; a
  // ratio of 0: the byte count alone, as tests that compact often use).
  std::uint64_t compact_log_bytes = std::uint64_t{256} << 10;
  std::uint64_t compact_snapshot_ratio = 4;
  // Reads of one file before recovery gives up on getting a stable copy.
  std::size_t read_attempts_max = 8;
  // The request-id table's bound for recovered states.
  std::size_t request_ids_max = kRequestIdsRemembered;
  // Tests only: called after each step of commit, compaction and recovery's
  // repairs (the names are below), so a test can crash the node exactly
  // there. Empty in production.
  std::function<void(std::string_view point)> test_point;
};

// Test points, in the order they are passed.
inline constexpr std::string_view kPointBatchAppended = "batch appended";
inline constexpr std::string_view kPointBatchSynced = "batch synced";
inline constexpr std::string_view kPointNewLogSynced = "compaction: new log synced";
inline constexpr std::string_view kPointSnapshotWritten = "compaction: snapshot written";
inline constexpr std::string_view kPointSnapshotSynced = "compaction: snapshot synced";
inline constexpr std::string_view kPointSnapshotRenamed = "compaction: snapshot renamed";
inline constexpr std::string_view kPointSnapshotDurable = "compaction: directory synced";
inline constexpr std::string_view kPointOldLogRemoved = "compaction: old log removed";
inline constexpr std::string_view kPointTailTruncated = "recovery: torn tail truncated";

struct LogStatus {
  enum class Kind : std::uint8_t {
    kOk,
    kIo,       // The disk failed an operation: nothing is known to be lost; restart and recover.
    kCorrupt,  // Durable data is damaged: refuse to serve.
  };
  Kind kind = Kind::kOk;
  std::string message;

  bool ok() const noexcept { return kind == Kind::kOk; }
  static LogStatus io(std::string message) { return LogStatus{Kind::kIo, std::move(message)}; }
  static LogStatus corrupt(std::string message) { return LogStatus{Kind::kCorrupt, std::move(message)}; }
};

struct StoreLogStats {
  std::uint64_t batches = 0;  // Committed by this process.
  std::uint64_t records = 0;
  std::uint64_t compactions = 0;
  std::uint64_t batches_replayed = 0;  // By recovery.
  std::uint64_t records_replayed = 0;
  std::uint64_t torn_bytes_dropped = 0;
  std::uint64_t rereads = 0;  // Reads repeated because a file did not check out.
  std::uint64_t leftovers_removed = 0;
};

class StoreLog {
 public:
  StoreLog(sim::Disk& disk, StoreLogOptions options);
  StoreLog(const StoreLog&) = delete;
  StoreLog& operator=(const StoreLog&) = delete;

  // Rebuilds `state` (which must be empty) from the disk and makes the log
  // ready to append. Call once, before anything else.
  LogStatus recover(StoreState& state);

  // Appends one batch holding `record_count` records (`payload`, encoded
  // by encode_mutation, sequences next_sequence() on) and makes it durable.
  LogStatus commit(std::string_view payload, std::uint32_t record_count);

  bool compaction_due() const noexcept {
    return log_bytes_ > log_bytes_max_ ||
           (log_bytes_ > options_.compact_log_bytes && log_bytes_ > options_.compact_snapshot_ratio * snapshot_bytes_);
  }
  // Snapshots `state` (which must hold every committed record) and starts
  // the next log generation.
  LogStatus compact(const StoreState& state);

  bool recovered() const noexcept { return recovered_; }
  std::uint64_t generation() const noexcept { return generation_; }
  std::uint64_t next_sequence() const noexcept { return next_sequence_; }
  std::uint64_t log_bytes() const noexcept { return log_bytes_; }
  // The last snapshot's size, read or written; 0 before the first.
  std::uint64_t snapshot_bytes() const noexcept { return snapshot_bytes_; }
  const StoreLogStats& stats() const noexcept { return stats_; }

 private:
  // A copy of `path` that checks out, or the one two reads agreed on; kIo if
  // neither could be had. `checks_out` judges a copy.
  template <typename ChecksOut>
  LogStatus read_stable(std::string_view path, std::string& bytes, ChecksOut checks_out);
  LogStatus start_fresh_log();
  LogStatus replay(std::string_view path, const LogScan& scan, StoreState& state);
  LogStatus remove_leftovers();
  void point(std::string_view name);

  sim::Disk& disk_;
  StoreLogOptions options_;
  StoreLogStats stats_;
  std::string log_path_;
  std::uint64_t generation_ = 0;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t log_bytes_ = 0;
  const std::uint64_t log_bytes_max_;  // Half the disk's file size limit (COMPACTION).
  std::uint64_t snapshot_bytes_ = 0;
  bool recovered_ = false;
};

}  // namespace duro::engine::store
