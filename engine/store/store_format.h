// The store's bytes on disk: file names, log batches, snapshots, and the
// scan that tells a torn tail from corruption. Pure functions of bytes: no
// disk, no clock (store_log.h does the I/O).
//
// FILES (one flat namespace on the store node's disk):
//   store.log.<generation>   the log: batches of mutations. The generation
//                            is 20 decimal digits, so names sort by it.
//   store.snapshot           the whole state after the mutations up to a
//                            sequence, and which log generation follows it.
//   store.snapshot.tmp       a snapshot being written (safe replace).
//
// LOG. A log file is a sequence of batches, each starting at a multiple of
// 512 bytes (the disk's sector: a batch never shares a sector with the one
// before it, so tearing one cannot touch another, on this disk or a real
// one). The first batch of every log is an empty "open" batch that names
// the generation; then one batch per group commit, each written by one
// append and made durable by one fsync:
//
//   offset  size  field            (integers little-endian)
//   0       4     magic            "DSLB"
//   4       4     header_crc       CRC-32C of bytes [8, 64)
//   8       4     format_version   1
//   12      4     record_count
//   16      8     generation       the file's generation
//   24      8     offset           where this batch starts in the file
//   32      8     durable_bytes    how much of the file was durable when
//                                  this batch was written
//   40      8     first_sequence   the first record's sequence; the rest follow by one
//   48      8     payload_bytes
//   56      4     payload_crc      CRC-32C of the payload
//   60      4     reserved         0
//   64      ...   payload          record_count records (store_mutation.h)
//   ...           zeros            up to the next multiple of 512
//
// Why each field: the offset and generation inside the checksum catch a
// misdirected write (valid bytes in the wrong place, or a batch of another
// file); the sequence catches a lost batch between two good ones; the
// header has its own checksum so a batch whose payload was torn still
// proves, by its durable_bytes, what was durable before it.
//
// TORN OR CORRUPT. The writer appends a batch only after everything before
// it is durable, so durable_bytes is always the batch's own offset. Scanning
// from the start, the first batch that does not check out at offset X is
//   - a torn tail if no later valid header claims durable_bytes > X: the
//     bytes from X on were never acknowledged; recovery drops them;
//   - corruption if one does: that header was written when X was already
//     durable, so the damage hit acknowledged data. Recovery refuses.
//
// SNAPSHOT. One header, then the state's image (StoreState::encode):
//
//   0   4  magic "DSSN"     4   4  header_crc (of [8, 64))   8  4  format_version 1
//   12  4  reserved 0       16  8  generation (of the log that follows it)
//   24  8  last_sequence    32  8  payload_bytes             40 4  payload_crc
//   44  20 reserved 0       64  ... payload
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/disk.h"

namespace duro::engine::store {

inline constexpr std::string_view kLogFilePrefix = "store.log.";
inline constexpr std::string_view kSnapshotFile = "store.snapshot";
inline constexpr std::string_view kSnapshotTmpFile = "store.snapshot.tmp";

inline constexpr std::uint64_t kBatchAlignBytes = sim::kDiskSectorBytes;
inline constexpr std::uint64_t kBatchHeaderBytes = 64;
inline constexpr std::uint64_t kSnapshotHeaderBytes = 64;
inline constexpr std::uint32_t kStoreFormatVersion = 1;

std::string log_file_name(std::uint64_t generation);
// The generation of a log file's name; nullopt for any other name.
std::optional<std::uint64_t> parse_log_file_name(std::string_view name);

// --- Batches ---------------------------------------------------------------------

struct BatchHeader {
  std::uint32_t record_count = 0;
  std::uint64_t generation = 0;
  std::uint64_t offset = 0;
  std::uint64_t durable_bytes = 0;
  std::uint64_t first_sequence = 0;
  std::uint64_t payload_bytes = 0;
  std::uint32_t payload_crc = 0;

  // Where the next batch starts.
  std::uint64_t end() const noexcept;
};

// The bytes of one batch: header (checksums filled in), payload, padding.
std::string encode_batch(BatchHeader header, std::string_view payload);

// The header at `offset` of `file` if its magic, version and header
// checksum are right; says nothing about the payload.
std::optional<BatchHeader> parse_batch_header(std::string_view file, std::uint64_t offset);

// A valid batch of a scanned log.
struct ScannedBatch {
  BatchHeader header;
  std::string_view payload;  // Into the scanned bytes.
};

struct LogScan {
  std::vector<ScannedBatch> batches;  // The valid prefix, the open batch first.
  std::uint64_t valid_bytes = 0;      // Where the valid prefix ends.
  // Set when the file holds more than the valid prefix.
  bool damaged = false;
  std::string damage;                 // Why the batch at valid_bytes is not valid.
  // Set when the damage is corruption: the offset of a later header that
  // proves valid_bytes was durable.
  std::optional<std::uint64_t> proof_offset;

  bool corrupt() const noexcept { return proof_offset.has_value(); }
};

// Scans a log file's bytes. `generation` is the file's; `first_sequence`
// the sequence its first record must have (the snapshot's last + 1). Work
// is linear in the file's size: one pass over batches, then (if damaged)
// one look at each later sector boundary.
LogScan scan_log(std::string_view file, std::uint64_t generation, std::uint64_t first_sequence);

// --- Snapshots -------------------------------------------------------------------

struct SnapshotHeader {
  std::uint64_t generation = 0;
  std::uint64_t last_sequence = 0;
  std::uint64_t payload_bytes = 0;
  std::uint32_t payload_crc = 0;
};

std::string encode_snapshot(std::uint64_t generation, std::uint64_t last_sequence, std::string_view payload);
// The same, in place: `bytes` holds kSnapshotHeaderBytes of room and then
// the payload; fills the header. A snapshot is the whole store: this spares
// copying it once more.
void seal_snapshot(std::string& bytes, std::uint64_t generation, std::uint64_t last_sequence);

struct ParsedSnapshot {
  SnapshotHeader header;
  std::string_view payload;  // Into the parsed bytes.
};

// The snapshot in `file`, or why not (naming the offset of the damage).
std::optional<ParsedSnapshot> parse_snapshot(std::string_view file, std::string* why_not);

}  // namespace duro::engine::store
