#include "engine/store/store_log.h"

#include <fmt/format.h>

#include <utility>

#include "engine/store/store_format.h"

namespace duro::engine::store {
namespace {

std::string describe(const sim::Error& error) { return sim::to_string(error); }

// The empty batch every log starts with: it names the generation and the
// first sequence the file will hold.
BatchHeader open_batch_header(std::uint64_t generation, std::uint64_t first_sequence) {
  BatchHeader header;
  header.generation = generation;
  header.first_sequence = first_sequence;
  return header;
}

}  // namespace

StoreLog::StoreLog(sim::Disk& disk, StoreLogOptions options)
    : disk_(disk), options_(std::move(options)), log_bytes_max_(disk.options().file_size_bytes_max / 2) {
  DURO_ASSERT(options_.read_attempts_max >= 2);  // Two reads must be able to agree.
  DURO_ASSERT(options_.compact_log_bytes > 0);
}

void StoreLog::point(std::string_view name) {
  if (options_.test_point) options_.test_point(name);
}

template <typename ChecksOut>
LogStatus StoreLog::read_stable(std::string_view path, std::string& bytes, ChecksOut checks_out) {
  std::string previous;
  bool have_previous = false;
  for (std::size_t attempt = 0; attempt < options_.read_attempts_max; attempt++) {
    sim::Result<std::uint64_t> size = disk_.size(path);
    if (!size.ok()) return LogStatus::io(fmt::format("{}: size: {}", path, describe(size.error())));
    sim::Result<std::string> read = disk_.read(path, 0, size.value());
    if (!read.ok()) return LogStatus::io(fmt::format("{}: read: {}", path, describe(read.error())));
    if (attempt > 0) stats_.rereads++;
    // A copy that checks out is the media's: a bit flip cannot make a bad
    // checksum good. One that does not may be a flip on this read: only two
    // reads that agree say the damage is on the media.
    if (checks_out(std::string_view(read.value())) || (have_previous && read.value() == previous)) {
      bytes = std::move(read.value());
      return LogStatus{};
    }
    previous = std::move(read.value());
    have_previous = true;
  }
  return LogStatus::io(fmt::format("{}: {} reads, no two alike (bit flips on read?)", path, options_.read_attempts_max));
}

LogStatus StoreLog::recover(StoreState& state) {
  DURO_ASSERT_MSG(!recovered_, "recover() twice");
  DURO_ASSERT(state.last_sequence() == 0);
  // A snapshot that was being written: never renamed, so never part of the state.
  if (disk_.exists(kSnapshotTmpFile)) {
    if (sim::Result<void> removed = disk_.remove(kSnapshotTmpFile); !removed.ok()) {
      return LogStatus::io(fmt::format("{}: remove: {}", kSnapshotTmpFile, describe(removed.error())));
    }
    stats_.leftovers_removed++;
  }

  const bool have_snapshot = disk_.exists(kSnapshotFile);
  generation_ = 1;
  std::uint64_t last_sequence = 0;
  if (have_snapshot) {
    std::string bytes;
    // As for the log below: the parse of the copy read_stable keeps is
    // reused (each parse checksums the whole image), if `bytes` holds that
    // very buffer.
    std::optional<ParsedSnapshot> parsed;
    const char* parsed_data = nullptr;
    LogStatus read = read_stable(kSnapshotFile, bytes, [&](std::string_view copy) {
      parsed = parse_snapshot(copy, nullptr);
      parsed_data = copy.data();
      return parsed.has_value();
    });
    if (!read.ok()) return read;
    std::string why;
    if (!parsed.has_value() || parsed_data != bytes.data()) parsed = parse_snapshot(bytes, &why);
    if (!parsed.has_value()) return LogStatus::corrupt(fmt::format("{}: {}", kSnapshotFile, why));
    sim::Result<StoreState> decoded = StoreState::decode(parsed->payload, options_.request_ids_max);
    if (!decoded.ok()) {
      return LogStatus::corrupt(fmt::format("{}: the state image (from offset {}) does not decode: {}", kSnapshotFile,
                                            kSnapshotHeaderBytes, decoded.error().message));
    }
    if (decoded.value().last_sequence() != parsed->header.last_sequence) {
      return LogStatus::corrupt(fmt::format("{}: header says sequence {}, the image holds {} (offset 24)",
                                            kSnapshotFile, parsed->header.last_sequence,
                                            decoded.value().last_sequence()));
    }
    state = std::move(decoded.value());
    snapshot_bytes_ = bytes.size();
    generation_ = parsed->header.generation;
    last_sequence = parsed->header.last_sequence;
  }
  log_path_ = log_file_name(generation_);
  next_sequence_ = last_sequence + 1;

  if (!disk_.exists(log_path_)) {
    // Compaction makes the next log durable before the snapshot that names it.
    if (have_snapshot) {
      return LogStatus::corrupt(fmt::format("{} names log generation {}, but {} does not exist", kSnapshotFile,
                                            generation_, log_path_));
    }
    // Without a snapshot the first log is the only one there can be.
    for (const std::string& name : disk_.list(kLogFilePrefix)) {
      if (parse_log_file_name(name).has_value()) {
        return LogStatus::corrupt(fmt::format("{} exists without {} or {}", name, kSnapshotFile, log_path_));
      }
    }
    if (LogStatus fresh = start_fresh_log(); !fresh.ok()) return fresh;
  } else {
    std::string bytes;
    // Keeps the scan of the copy read_stable keeps: each scan checksums the
    // whole log, and once is enough. Its batches point into the copy, so it
    // is reused only if `bytes` holds that very buffer (a move keeps a heap
    // buffer in place) and the copy was taken for checking out.
    LogScan scan;
    const char* scanned_data = nullptr;
    LogStatus read = read_stable(log_path_, bytes, [&](std::string_view copy) {
      scan = scan_log(copy, generation_, next_sequence_);
      scanned_data = copy.data();
      return !scan.damaged;
    });
    if (!read.ok()) return read;
    if (scan.damaged || scanned_data != bytes.data()) scan = scan_log(bytes, generation_, next_sequence_);
    if (scan.corrupt()) {
      return LogStatus::corrupt(fmt::format(
          "{}: corrupt batch at offset {} ({}); the batch header at offset {} was written after it was durable",
          log_path_, scan.valid_bytes, scan.damage, *scan.proof_offset));
    }
    if (scan.batches.empty()) {
      // Not even the open batch. Compaction syncs it before the snapshot
      // that names the file is renamed; only the very first log can lack it
      // (a crash while the store first started).
      if (have_snapshot) {
        return LogStatus::corrupt(fmt::format("{}: no valid open batch at offset 0 ({}), though {} names it",
                                              log_path_, scan.damage, kSnapshotFile));
      }
      if (LogStatus fresh = start_fresh_log(); !fresh.ok()) return fresh;
    } else {
      if (LogStatus replayed = replay(log_path_, scan, state); !replayed.ok()) return replayed;
      if (scan.damaged) {
        // A torn tail: the last batch's append never became durable whole,
        // so it was never acknowledged. Cut it off, durably, before anything
        // is appended after it (the next batch will claim this offset durable).
        if (sim::Result<void> cut = disk_.truncate(log_path_, scan.valid_bytes); !cut.ok()) {
          return LogStatus::io(fmt::format("{}: truncate to {}: {}", log_path_, scan.valid_bytes, describe(cut.error())));
        }
        if (sim::Result<void> synced = disk_.fsync(log_path_); !synced.ok()) {
          return LogStatus::io(fmt::format("{}: fsync after truncate: {}", log_path_, describe(synced.error())));
        }
        stats_.torn_bytes_dropped += bytes.size() - scan.valid_bytes;
        point(kPointTailTruncated);
      }
      log_bytes_ = scan.valid_bytes;
    }
  }
  if (LogStatus removed = remove_leftovers(); !removed.ok()) return removed;
  DURO_ASSERT(next_sequence_ == state.last_sequence() + 1);
  recovered_ = true;
  return LogStatus{};
}

LogStatus StoreLog::start_fresh_log() {
  DURO_ASSERT(next_sequence_ == 1 && generation_ == 1);
  sim::Result<void> ready = disk_.exists(log_path_) ? disk_.truncate(log_path_, 0) : disk_.create(log_path_);
  if (!ready.ok()) return LogStatus::io(fmt::format("{}: create: {}", log_path_, describe(ready.error())));
  const std::string open = encode_batch(
      open_batch_header(generation_, next_sequence_),
      {});
  if (sim::Result<std::uint64_t> appended = disk_.append(log_path_, open); !appended.ok()) {
    return LogStatus::io(fmt::format("{}: append: {}", log_path_, describe(appended.error())));
  }
  if (sim::Result<void> synced = disk_.fsync(log_path_); !synced.ok()) {
    return LogStatus::io(fmt::format("{}: fsync: {}", log_path_, describe(synced.error())));
  }
  log_bytes_ = open.size();
  return LogStatus{};
}

LogStatus StoreLog::replay(std::string_view path, const LogScan& scan, StoreState& state) {
  for (const ScannedBatch& batch : scan.batches) {
    sim::Decoder decoder(batch.payload);
    for (std::uint32_t i = 0; i < batch.header.record_count; i++) {
      StoreMutation mutation;
      if (!decode_mutation(decoder, mutation)) break;
      // The record passed its conditions when it was logged, against exactly
      // the state replay has rebuilt up to it: failing now is a store bug.
      const Outcome outcome = state.apply(std::move(mutation), DuplicateCheck::kSkip);
      DURO_ASSERT_MSG(outcome.applies(),
                      fmt::format("{}: replaying sequence {} (batch at offset {}): {}: {}", path,
                                  batch.header.first_sequence + i, batch.header.offset,
                                  write_status_name(outcome.status), outcome.detail)
                          .c_str());
      stats_.records_replayed++;
    }
    if (!decoder.finish()) {
      return LogStatus::corrupt(fmt::format("{}: the batch at offset {} passed its checksum but does not decode: {}",
                                            path, batch.header.offset, decoder.error().message));
    }
    stats_.batches_replayed++;
  }
  next_sequence_ = state.last_sequence() + 1;
  return LogStatus{};
}

LogStatus StoreLog::remove_leftovers() {
  // Logs of other generations: the one before a compaction whose remove was
  // not durable, or the next one of a compaction that did not finish. No
  // fsync_directory: a leftover that comes back after a crash is removed
  // again then.
  for (const std::string& name : disk_.list(kLogFilePrefix)) {
    const std::optional<std::uint64_t> generation = parse_log_file_name(name);
    if (!generation.has_value() || *generation == generation_) continue;
    if (sim::Result<void> removed = disk_.remove(name); !removed.ok()) {
      return LogStatus::io(fmt::format("{}: remove: {}", name, describe(removed.error())));
    }
    stats_.leftovers_removed++;
  }
  return LogStatus{};
}

LogStatus StoreLog::commit(std::string_view payload, std::uint32_t record_count) {
  DURO_ASSERT_MSG(recovered_, "commit() before recover()");
  DURO_ASSERT(record_count > 0);
  BatchHeader header;
  header.record_count = record_count;
  header.generation = generation_;
  header.offset = log_bytes_;
  // Everything before this batch is durable: the previous commit's fsync
  // returned before this one began (recovery relies on it).
  header.durable_bytes = log_bytes_;
  header.first_sequence = next_sequence_;
  const std::string bytes = encode_batch(header, payload);
  sim::Result<std::uint64_t> appended = disk_.append(log_path_, bytes);
  if (!appended.ok()) {
    return LogStatus::io(fmt::format("{}: append at offset {}: {}", log_path_, log_bytes_, describe(appended.error())));
  }
  DURO_ASSERT_MSG(appended.value() == log_bytes_, "the log file changed behind the store's back");
  point(kPointBatchAppended);
  if (sim::Result<void> synced = disk_.fsync(log_path_); !synced.ok()) {
    return LogStatus::io(fmt::format("{}: fsync of the batch at offset {}: {}", log_path_, log_bytes_,
                                     describe(synced.error())));
  }
  point(kPointBatchSynced);
  log_bytes_ += bytes.size();
  next_sequence_ += record_count;
  stats_.batches++;
  stats_.records += record_count;
  return LogStatus{};
}

LogStatus StoreLog::compact(const StoreState& state) {
  DURO_ASSERT_MSG(recovered_, "compact() before recover()");
  DURO_ASSERT_MSG(state.last_sequence() + 1 == next_sequence_, "compact() of a state that is not the log's");
  const std::uint64_t next_generation = generation_ + 1;
  const std::string next_path = log_file_name(next_generation);
  auto io = [](std::string_view file, const char* what, const sim::Error& error) {
    return LogStatus::io(fmt::format("compaction: {}: {}: {}", file, what, describe(error)));
  };

  // 1. The next log, durable before any snapshot names it.
  if (disk_.exists(next_path)) {
    if (sim::Result<void> r = disk_.remove(next_path); !r.ok()) return io(next_path, "remove", r.error());
  }
  if (sim::Result<void> r = disk_.create(next_path); !r.ok()) return io(next_path, "create", r.error());
  const std::string open = encode_batch(
      open_batch_header(next_generation, next_sequence_),
      {});
  if (sim::Result<std::uint64_t> r = disk_.append(next_path, open); !r.ok()) return io(next_path, "append", r.error());
  if (sim::Result<void> r = disk_.fsync(next_path); !r.ok()) return io(next_path, "fsync", r.error());
  point(kPointNewLogSynced);

  // 2. The snapshot, under a temporary name, durable.
  // Encoded after room for its header, in a buffer reserved at once:
  // growing a buffer the size of the store by doubling copies it again and
  // again into memory the kernel must fault in. The reservation is a guess
  // (the last snapshot plus what was logged since, about the most the state
  // can have grown; pages never written are never resident), and a state
  // that outgrows it only grows the buffer.
  std::string snapshot;
  snapshot.reserve(kSnapshotHeaderBytes + snapshot_bytes_ + log_bytes_);
  snapshot.resize(kSnapshotHeaderBytes);
  state.encode(snapshot);
  seal_snapshot(snapshot, next_generation, next_sequence_ - 1);
  const std::uint64_t snapshot_bytes = snapshot.size();
  if (disk_.exists(kSnapshotTmpFile)) {
    if (sim::Result<void> r = disk_.remove(kSnapshotTmpFile); !r.ok()) return io(kSnapshotTmpFile, "remove", r.error());
  }
  if (sim::Result<void> r = disk_.create(kSnapshotTmpFile); !r.ok()) return io(kSnapshotTmpFile, "create", r.error());
  if (sim::Result<void> r = disk_.write(kSnapshotTmpFile, 0, snapshot); !r.ok()) {
    return io(kSnapshotTmpFile, "write", r.error());
  }
  point(kPointSnapshotWritten);
  if (sim::Result<void> r = disk_.fsync(kSnapshotTmpFile); !r.ok()) return io(kSnapshotTmpFile, "fsync", r.error());
  point(kPointSnapshotSynced);

  // 3. The switch: atomic by rename, durable by the directory's fsync.
  if (sim::Result<void> r = disk_.rename(kSnapshotTmpFile, kSnapshotFile); !r.ok()) {
    return io(kSnapshotTmpFile, "rename", r.error());
  }
  point(kPointSnapshotRenamed);
  if (sim::Result<void> r = disk_.fsync_directory(); !r.ok()) return io(kSnapshotFile, "fsync_directory", r.error());
  point(kPointSnapshotDurable);

  // 4. The old log is garbage now. Failing to remove it is harmless:
  // recovery removes logs of other generations.
  const std::string old_path = std::exchange(log_path_, next_path);
  generation_ = next_generation;
  log_bytes_ = open.size();
  snapshot_bytes_ = snapshot_bytes;
  stats_.compactions++;
  if (disk_.remove(old_path).ok()) point(kPointOldLogRemoved);
  return LogStatus{};
}

}  // namespace duro::engine::store
