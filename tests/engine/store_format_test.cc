// The store's on-disk format, as bytes: batches, snapshots, file names, and
// the scan that tells a torn tail from corruption.
#include "engine/store/store_format.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/store/store_mutation.h"

namespace duro::engine::store {
namespace {

BatchHeader header_at(std::uint64_t offset, std::uint64_t generation, std::uint64_t first_sequence,
                      std::uint32_t records) {
  BatchHeader header;
  header.record_count = records;
  header.generation = generation;
  header.offset = offset;
  header.durable_bytes = offset;
  header.first_sequence = first_sequence;
  return header;
}

std::string records_payload(std::uint64_t first, std::uint32_t count, std::size_t bytes_each = 40) {
  std::string payload;
  for (std::uint32_t i = 0; i < count; i++) {
    WriteRequest request;
    request.request_id = "req-" + std::to_string(first + i);
    request.shard_id = 1;
    request.range_id = 1;
    request.transfer_tasks.push_back(TransferTask{static_cast<std::int64_t>(first + i), std::string(bytes_each, 'x')});
    encode_mutation(payload, request);
  }
  return payload;
}

// A log of generation `generation`: the open batch, then `batches` batches
// of `records` records each. Returns each batch's offset in `offsets`.
std::string make_log(std::uint64_t generation, std::uint64_t first_sequence, int batches, std::uint32_t records,
                     std::vector<std::uint64_t>* offsets = nullptr, std::size_t bytes_each = 40) {
  std::string file = encode_batch(header_at(0, generation, first_sequence, 0), {});
  std::uint64_t sequence = first_sequence;
  for (int b = 0; b < batches; b++) {
    if (offsets != nullptr) offsets->push_back(file.size());
    file += encode_batch(header_at(file.size(), generation, sequence, records),
                         records_payload(sequence, records, bytes_each));
    sequence += records;
  }
  return file;
}

TEST(StoreFormat, LogFileNamesSortByGeneration) {
  EXPECT_EQ(log_file_name(1), "store.log.00000000000000000001");
  EXPECT_LT(log_file_name(9), log_file_name(10));
  EXPECT_EQ(parse_log_file_name(log_file_name(123456789)), 123456789U);
  EXPECT_EQ(parse_log_file_name("store.log.12"), std::nullopt);
  EXPECT_EQ(parse_log_file_name("store.snapshot"), std::nullopt);
  EXPECT_EQ(parse_log_file_name("store.log.0000000000000000000x"), std::nullopt);
}

TEST(StoreFormat, BatchesAreSectorAlignedAndParseBack) {
  const std::string payload = records_payload(5, 3);
  const std::string batch = encode_batch(header_at(1024, 7, 5, 3), payload);
  EXPECT_EQ(batch.size() % kBatchAlignBytes, 0U);
  const std::string file = std::string(1024, '\0') + batch;
  std::optional<BatchHeader> header = parse_batch_header(file, 1024);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->generation, 7U);
  EXPECT_EQ(header->first_sequence, 5U);
  EXPECT_EQ(header->record_count, 3U);
  EXPECT_EQ(header->payload_bytes, payload.size());
  EXPECT_EQ(header->end(), file.size());
  EXPECT_FALSE(parse_batch_header(file, 0).has_value());
  // Every bit of the header is covered by its checksum.
  for (std::size_t byte = 0; byte < kBatchHeaderBytes; byte++) {
    std::string damaged = file;
    damaged[1024 + byte] = static_cast<char>(damaged[1024 + byte] ^ 0x10);
    EXPECT_FALSE(parse_batch_header(damaged, 1024).has_value()) << "byte " << byte;
  }
}

TEST(StoreFormat, AWholeLogScansClean) {
  const std::string file = make_log(3, 11, 4, 5);
  const LogScan scan = scan_log(file, 3, 11);
  EXPECT_FALSE(scan.damaged);
  ASSERT_EQ(scan.batches.size(), 5U);
  EXPECT_EQ(scan.batches[0].header.record_count, 0U);
  EXPECT_EQ(scan.batches[4].header.first_sequence, 26U);
  EXPECT_EQ(scan.valid_bytes, file.size());
  // The same bytes are not a log of another generation, or from another sequence.
  EXPECT_TRUE(scan_log(file, 4, 11).damaged);
  EXPECT_EQ(scan_log(file, 4, 11).valid_bytes, 0U);
  EXPECT_TRUE(scan_log(file, 3, 12).damaged);
}

TEST(StoreFormat, ATornLastBatchIsATailNotCorruption) {
  std::vector<std::uint64_t> offsets;
  const std::string file = make_log(1, 1, 3, 20, &offsets, 100);
  const std::uint64_t last = offsets.back();
  ASSERT_GT(file.size() - last, 2 * kBatchAlignBytes) << "the last batch spans several sectors";
  // Cut anywhere inside the last batch.
  for (std::uint64_t cut = last + 1; cut < file.size(); cut += 97) {
    const LogScan scan = scan_log(std::string_view(file).substr(0, cut), 1, 1);
    EXPECT_TRUE(scan.damaged);
    EXPECT_FALSE(scan.corrupt()) << "cut at " << cut;
    EXPECT_EQ(scan.valid_bytes, last);
    EXPECT_EQ(scan.batches.size(), 3U);
  }
  // Its first sector lost (zeros) while later ones survived: still a tail.
  std::string holes = file;
  std::fill(holes.begin() + static_cast<std::ptrdiff_t>(last),
            holes.begin() + static_cast<std::ptrdiff_t>(last + kBatchAlignBytes), '\0');
  const LogScan scan = scan_log(holes, 1, 1);
  EXPECT_TRUE(scan.damaged);
  EXPECT_FALSE(scan.corrupt());
  EXPECT_EQ(scan.valid_bytes, last);
}

TEST(StoreFormat, DamageFollowedByALaterBatchIsCorruption) {
  std::vector<std::uint64_t> offsets;
  const std::string file = make_log(1, 1, 4, 3, &offsets);
  std::string flipped = file;
  flipped[offsets[1] + kBatchHeaderBytes + 5] ^= 0x01;
  const LogScan scan = scan_log(flipped, 1, 1);
  EXPECT_TRUE(scan.damaged);
  ASSERT_TRUE(scan.corrupt());
  EXPECT_EQ(scan.valid_bytes, offsets[1]);
  EXPECT_EQ(*scan.proof_offset, offsets[2]);
  EXPECT_EQ(scan.damage, "payload checksum mismatch");
  // A lost write in the middle (its bytes zero) is caught the same way.
  std::string lost = file;
  std::fill(lost.begin() + static_cast<std::ptrdiff_t>(offsets[0]),
            lost.begin() + static_cast<std::ptrdiff_t>(offsets[1]), '\0');
  EXPECT_TRUE(scan_log(lost, 1, 1).corrupt());
  EXPECT_EQ(scan_log(lost, 1, 1).valid_bytes, offsets[0]);
}

TEST(StoreFormat, AMisdirectedBatchIsRefusedWhereItLanded) {
  std::vector<std::uint64_t> offsets;
  const std::string file = make_log(1, 1, 3, 2, &offsets);
  // The last batch's bytes landed over the second one.
  std::string misdirected = file;
  const std::string last = file.substr(offsets[2]);
  misdirected.replace(offsets[1], last.size(), last);
  misdirected.resize(offsets[2]);
  const LogScan scan = scan_log(misdirected, 1, 1);
  EXPECT_TRUE(scan.damaged);
  EXPECT_EQ(scan.valid_bytes, offsets[1]);
  EXPECT_NE(scan.damage.find("misdirected"), std::string::npos) << scan.damage;
}

TEST(StoreFormat, SnapshotsParseBackAndNameTheirDamage) {
  const std::string snapshot = encode_snapshot(4, 99, "the image");
  std::string why;
  std::optional<ParsedSnapshot> parsed = parse_snapshot(snapshot, &why);
  ASSERT_TRUE(parsed.has_value()) << why;
  EXPECT_EQ(parsed->header.generation, 4U);
  EXPECT_EQ(parsed->header.last_sequence, 99U);
  EXPECT_EQ(parsed->payload, "the image");

  std::string flipped = snapshot;
  flipped[kSnapshotHeaderBytes + 2] ^= 0x40;
  EXPECT_FALSE(parse_snapshot(flipped, &why).has_value());
  EXPECT_EQ(why, "payload checksum mismatch at offset 64");
  EXPECT_FALSE(parse_snapshot(snapshot.substr(0, snapshot.size() - 1), &why).has_value());
  EXPECT_FALSE(parse_snapshot(snapshot.substr(0, 10), &why).has_value());
  EXPECT_FALSE(parse_snapshot("", &why).has_value());
}

}  // namespace
}  // namespace duro::engine::store
