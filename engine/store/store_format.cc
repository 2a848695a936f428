#include "engine/store/store_format.h"

#include <fmt/format.h>

#include <charconv>

#include "sim/crc32c.h"

namespace duro::engine::store {
namespace {

constexpr std::uint32_t kBatchMagic = 0x424C5344;     // "DSLB" read little-endian.
constexpr std::uint32_t kSnapshotMagic = 0x4E535344;  // "DSSN".
constexpr std::size_t kGenerationDigits = 20;         // Every u64 fits.

void put_u32(std::string& out, std::size_t at, std::uint32_t value) {
  for (std::size_t i = 0; i < 4; i++) out[at + i] = static_cast<char>(value >> (8 * i));
}
void put_u64(std::string& out, std::size_t at, std::uint64_t value) {
  for (std::size_t i = 0; i < 8; i++) out[at + i] = static_cast<char>(value >> (8 * i));
}
std::uint32_t get_u32(std::string_view in, std::size_t at) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; i++) value |= static_cast<std::uint32_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return value;
}
std::uint64_t get_u64(std::string_view in, std::size_t at) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < 8; i++) value |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return value;
}

std::uint64_t align_up(std::uint64_t value) {
  return (value + kBatchAlignBytes - 1) / kBatchAlignBytes * kBatchAlignBytes;
}

// Why the batch at `offset` is not the valid batch the scan expects next,
// or nullopt (and `header` filled) if it is.
std::optional<std::string> check_batch(std::string_view file, std::uint64_t offset, std::uint64_t generation,
                                       std::uint64_t sequence, BatchHeader& header) {
  std::optional<BatchHeader> parsed = parse_batch_header(file, offset);
  if (!parsed.has_value()) return std::string("no valid batch header");
  header = *parsed;
  if (header.generation != generation) {
    return fmt::format("a batch of log generation {} in the file of generation {}", header.generation, generation);
  }
  if (header.offset != offset) return fmt::format("a batch written for offset {} (misdirected)", header.offset);
  if (header.durable_bytes > offset) {
    return fmt::format("a batch claiming {} durable bytes before its own offset", header.durable_bytes);
  }
  if ((offset == 0) != (header.record_count == 0)) {
    return std::string(offset == 0 ? "the first batch is not the open batch" : "an empty batch past the first");
  }
  if (header.first_sequence != sequence) {
    return fmt::format("sequence {} where {} was next", header.first_sequence, sequence);
  }
  if (header.payload_bytes > file.size() - offset - kBatchHeaderBytes || header.end() > file.size()) {
    return std::string("a batch cut short by the end of the file");
  }
  if (sim::crc32c(file.substr(offset + kBatchHeaderBytes, header.payload_bytes)) != header.payload_crc) {
    return std::string("payload checksum mismatch");
  }
  return std::nullopt;
}

}  // namespace

std::string log_file_name(std::uint64_t generation) {
  return fmt::format("{}{:0{}}", kLogFilePrefix, generation, kGenerationDigits);
}

std::optional<std::uint64_t> parse_log_file_name(std::string_view name) {
  if (!name.starts_with(kLogFilePrefix)) return std::nullopt;
  const std::string_view digits = name.substr(kLogFilePrefix.size());
  if (digits.size() != kGenerationDigits) return std::nullopt;
  std::uint64_t generation = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), generation);
  if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return generation;
}

// --- Batches ---------------------------------------------------------------------

std::uint64_t BatchHeader::end() const noexcept { return offset + align_up(kBatchHeaderBytes + payload_bytes); }

std::string encode_batch(BatchHeader header, std::string_view payload) {
  DURO_ASSERT(header.offset % kBatchAlignBytes == 0);
  DURO_ASSERT(header.durable_bytes <= header.offset);
  header.payload_bytes = payload.size();
  header.payload_crc = sim::crc32c(payload);
  std::string bytes(align_up(kBatchHeaderBytes + payload.size()), '\0');
  put_u32(bytes, 0, kBatchMagic);
  put_u32(bytes, 8, kStoreFormatVersion);
  put_u32(bytes, 12, header.record_count);
  put_u64(bytes, 16, header.generation);
  put_u64(bytes, 24, header.offset);
  put_u64(bytes, 32, header.durable_bytes);
  put_u64(bytes, 40, header.first_sequence);
  put_u64(bytes, 48, header.payload_bytes);
  put_u32(bytes, 56, header.payload_crc);
  put_u32(bytes, 4, sim::crc32c(std::string_view(bytes).substr(8, kBatchHeaderBytes - 8)));
  bytes.replace(kBatchHeaderBytes, payload.size(), payload);
  DURO_ASSERT(bytes.size() == header.end() - header.offset);
  return bytes;
}

std::optional<BatchHeader> parse_batch_header(std::string_view file, std::uint64_t offset) {
  if (offset > file.size() || file.size() - offset < kBatchHeaderBytes) return std::nullopt;
  const std::string_view bytes = file.substr(offset, kBatchHeaderBytes);
  if (get_u32(bytes, 0) != kBatchMagic) return std::nullopt;
  if (get_u32(bytes, 4) != sim::crc32c(bytes.substr(8))) return std::nullopt;
  if (get_u32(bytes, 8) != kStoreFormatVersion) return std::nullopt;
  BatchHeader header;
  header.record_count = get_u32(bytes, 12);
  header.generation = get_u64(bytes, 16);
  header.offset = get_u64(bytes, 24);
  header.durable_bytes = get_u64(bytes, 32);
  header.first_sequence = get_u64(bytes, 40);
  header.payload_bytes = get_u64(bytes, 48);
  header.payload_crc = get_u32(bytes, 56);
  // A checksummed header with an absurd size is still absurd: keep end()
  // from overflowing.
  if (header.payload_bytes > (std::uint64_t{1} << 40) || header.offset > (std::uint64_t{1} << 50)) return std::nullopt;
  return header;
}

LogScan scan_log(std::string_view file, std::uint64_t generation, std::uint64_t first_sequence) {
  LogScan scan;
  std::uint64_t offset = 0;
  std::uint64_t sequence = first_sequence;
  // Each pass accepts one batch and moves past it (end() > offset): at most
  // file.size() / 512 passes.
  while (offset < file.size()) {
    BatchHeader header;
    if (std::optional<std::string> why = check_batch(file, offset, generation, sequence, header)) {
      scan.damaged = true;
      scan.damage = std::move(*why);
      break;
    }
    scan.batches.push_back(ScannedBatch{header, file.substr(offset + kBatchHeaderBytes, header.payload_bytes)});
    // The open batch carries the first sequence without using it.
    sequence += header.record_count;
    offset = header.end();
  }
  scan.valid_bytes = offset;
  if (!scan.damaged) return scan;
  // Is anything after the damage a batch written once the damage was durable?
  for (std::uint64_t later = offset + kBatchAlignBytes; later < file.size(); later += kBatchAlignBytes) {
    std::optional<BatchHeader> header = parse_batch_header(file, later);
    if (header.has_value() && header->generation == generation && header->durable_bytes > offset) {
      scan.proof_offset = later;
      break;
    }
  }
  return scan;
}

// --- Snapshots -------------------------------------------------------------------

std::string encode_snapshot(std::uint64_t generation, std::uint64_t last_sequence, std::string_view payload) {
  std::string bytes;
  bytes.reserve(kSnapshotHeaderBytes + payload.size());
  bytes.resize(kSnapshotHeaderBytes);
  bytes.append(payload);
  seal_snapshot(bytes, generation, last_sequence);
  return bytes;
}

void seal_snapshot(std::string& bytes, std::uint64_t generation, std::uint64_t last_sequence) {
  DURO_ASSERT(bytes.size() >= kSnapshotHeaderBytes);
  const std::string_view payload = std::string_view(bytes).substr(kSnapshotHeaderBytes);
  std::fill_n(bytes.begin(), kSnapshotHeaderBytes, '\0');
  put_u32(bytes, 0, kSnapshotMagic);
  put_u32(bytes, 8, kStoreFormatVersion);
  put_u64(bytes, 16, generation);
  put_u64(bytes, 24, last_sequence);
  put_u64(bytes, 32, payload.size());
  put_u32(bytes, 40, sim::crc32c(payload));
  put_u32(bytes, 4, sim::crc32c(std::string_view(bytes).substr(8, kSnapshotHeaderBytes - 8)));
}

std::optional<ParsedSnapshot> parse_snapshot(std::string_view file, std::string* why_not) {
  auto fail = [&](std::string why) -> std::optional<ParsedSnapshot> {
    if (why_not != nullptr) *why_not = std::move(why);
    return std::nullopt;
  };
  if (file.size() < kSnapshotHeaderBytes) return fail(fmt::format("only {} bytes: no header at offset 0", file.size()));
  const std::string_view header_bytes = file.substr(0, kSnapshotHeaderBytes);
  if (get_u32(header_bytes, 0) != kSnapshotMagic) return fail("bad magic at offset 0");
  if (get_u32(header_bytes, 4) != sim::crc32c(header_bytes.substr(8))) return fail("header checksum mismatch at offset 0");
  if (get_u32(header_bytes, 8) != kStoreFormatVersion) return fail("unknown format version at offset 8");
  ParsedSnapshot parsed;
  parsed.header.generation = get_u64(header_bytes, 16);
  parsed.header.last_sequence = get_u64(header_bytes, 24);
  parsed.header.payload_bytes = get_u64(header_bytes, 32);
  parsed.header.payload_crc = get_u32(header_bytes, 40);
  if (parsed.header.payload_bytes != file.size() - kSnapshotHeaderBytes) {
    return fail(fmt::format("header says {} payload bytes, the file holds {} at offset {}", parsed.header.payload_bytes,
                            file.size() - kSnapshotHeaderBytes, kSnapshotHeaderBytes));
  }
  parsed.payload = file.substr(kSnapshotHeaderBytes);
  if (sim::crc32c(parsed.payload) != parsed.header.payload_crc) {
    return fail(fmt::format("payload checksum mismatch at offset {}", kSnapshotHeaderBytes));
  }
  if (parsed.header.generation == 0) return fail("generation 0 at offset 16");
  return parsed;
}

}  // namespace duro::engine::store
