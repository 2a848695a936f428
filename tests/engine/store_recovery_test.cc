// Recovery of the store node from its disk: torn tails dropped, corruption
// refused loudly (file and offset), bit flips on read re-read, a crash at
// every step of commit and compaction, and a failed fsync that restarts the
// store without acknowledging anything it may have lost.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "engine/store/store_format.h"
#include "engine/store/store_service.h"
#include "tests/engine/store_test_world.h"

namespace duro::engine::store {
namespace {

using namespace std::chrono_literals;
using testing::create_run_request;
using testing::quiet_world;
using testing::run_visible;
using testing::StoreTestWorld;
using testing::take_shard_request;

const std::string kFirstLog = log_file_name(1);

// Takes shard 1 and writes runs [first, first + count), one at a time;
// returns how many were acknowledged (stops at the first that is not).
int write_runs(StoreTestWorld& w, int first, int count, std::size_t payload_bytes = 64) {
  int acknowledged = 0;
  EXPECT_TRUE(w.on_client([&](StoreClient& store) {
    if (first == 0) {
      sim::Result<UpdateShardReply> taken = store.update_shard(take_shard_request(1, 0, "take"), 1s);
      if (!taken.ok() || taken.value().status != WriteStatus::kOk) return;
    }
    for (int i = first; i < first + count; i++) {
      sim::Result<WriteReply> reply = store.write(create_run_request(i, 1, payload_bytes), 1s);
      if (!reply.ok() || reply.value().status != WriteStatus::kOk) return;
      acknowledged++;
    }
  }));
  return acknowledged;
}

// Runs [0, acknowledged) must be whole; `maybe` may be whole or absent;
// everything from `absent_from` on must be absent.
void expect_runs(StoreTestWorld& w, int acknowledged, std::optional<int> maybe, int absent_from) {
  ASSERT_TRUE(w.on_client([&](StoreClient& store) {
    for (int i = 0; i < acknowledged; i++) EXPECT_EQ(run_visible(store, i), true) << "acknowledged run " << i;
    if (maybe.has_value()) {
      EXPECT_TRUE(run_visible(store, *maybe).has_value());
    }
    for (int i = absent_from; i < absent_from + 3; i++) EXPECT_EQ(run_visible(store, i), false) << "run " << i;
  }));
}

std::vector<std::uint64_t> batch_offsets(const std::string& log) {
  std::vector<std::uint64_t> offsets;
  for (const ScannedBatch& batch : scan_log(log, 1, 1).batches) offsets.push_back(batch.header.offset);
  return offsets;
}

TEST(StoreRecovery, ATornTailIsDroppedAndTheLogTruncated) {
  StoreTestWorld w(11, {}, quiet_world(11));
  ASSERT_TRUE(w.wait_serving());
  ASSERT_EQ(write_runs(w, 0, 5), 5);
  const std::string durable = w.store_disk().contents(kFirstLog).value();
  // What a crash in the middle of the next batch's append leaves: its
  // header sector and a later sector, with a hole between (zeros).
  w.on_store_disk([&](sim::Disk& disk) {
    WriteRequest next = create_run_request(5, 1, 2000);
    std::string payload;
    encode_mutation(payload, next);
    BatchHeader header;
    header.record_count = 1;
    header.generation = 1;
    header.offset = durable.size();
    header.durable_bytes = durable.size();
    header.first_sequence = 7;  // take + 5 writes before it.
    std::string torn = encode_batch(header, payload);
    ASSERT_GT(torn.size(), 3 * kBatchAlignBytes);
    std::fill(torn.begin() + kBatchAlignBytes, torn.begin() + 2 * kBatchAlignBytes, '\0');
    torn.resize(torn.size() - kBatchAlignBytes);
    ASSERT_TRUE(disk.append(kFirstLog, torn).ok());
    ASSERT_TRUE(disk.fsync(kFirstLog).ok());
  });
  w.restart_store();
  ASSERT_TRUE(w.wait_serving());
  EXPECT_GT(w.service()->log().stats().torn_bytes_dropped, 0U);
  EXPECT_EQ(w.store_disk().contents(kFirstLog).value(), durable) << "truncated back to the last good batch";
  expect_runs(w, 5, std::nullopt, 5);
  // And it goes on appending where the good log ended.
  ASSERT_EQ(write_runs(w, 5, 2), 2);
  w.crash_store();
  w.restart_store();
  ASSERT_TRUE(w.wait_serving());
  expect_runs(w, 7, std::nullopt, 7);
}

TEST(StoreRecovery, AFlippedByteInTheDurableLogStopsTheStoreNamingFileAndOffset) {
  StoreTestWorld w(12, {}, quiet_world(12));
  ASSERT_TRUE(w.wait_serving());
  ASSERT_EQ(write_runs(w, 0, 6), 6);
  const std::vector<std::uint64_t> offsets = batch_offsets(w.store_disk().contents(kFirstLog).value());
  ASSERT_EQ(offsets.size(), 8U);  // Open batch, take, six writes.
  const std::uint64_t victim = offsets[3];
  w.on_store_disk([&](sim::Disk& disk) {
    std::string byte = disk.read(kFirstLog, victim + kBatchHeaderBytes + 10, 1).value();
    byte[0] = static_cast<char>(byte[0] ^ 0x04);
    ASSERT_TRUE(disk.write(kFirstLog, victim + kBatchHeaderBytes + 10, byte).ok());
    ASSERT_TRUE(disk.fsync(kFirstLog).ok());
  });
  const std::string damaged = w.store_disk().contents(kFirstLog).value();
  w.restart_store();
  EXPECT_FALSE(w.wait_serving());
  StoreService* service = w.service();
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(service->status(), StoreStatus::kFailed);
  const std::string& why = service->failure();
  EXPECT_NE(why.find(kFirstLog), std::string::npos) << why;
  EXPECT_NE(why.find("offset " + std::to_string(victim)), std::string::npos) << why;
  // It serves nothing, and says why.
  ASSERT_TRUE(w.on_client([&](StoreClient& store) {
    sim::Result<GetExecutionReply> read = store.get_execution({"wf-0", "run"});
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.error().code, sim::ErrorCode::kUnavailable);
    EXPECT_NE(read.error().message.find("offset " + std::to_string(victim)), std::string::npos);
    EXPECT_FALSE(store.write(create_run_request(9)).ok());
  }));
  EXPECT_EQ(w.store_disk().contents(kFirstLog).value(), damaged) << "evidence left as found";
  // Restarting does not make it start.
  w.crash_store();
  w.restart_store();
  EXPECT_FALSE(w.wait_serving());
}

TEST(StoreRecovery, ADamagedSnapshotOrAMissingLogStopsTheStore) {
  StoreOptions options;
  options.compact_log_bytes = 4 << 10;
  options.compact_snapshot_ratio = 0;
  StoreTestWorld w(13, options, quiet_world(13));
  ASSERT_TRUE(w.wait_serving());
  ASSERT_EQ(write_runs(w, 0, 30), 30);
  ASSERT_GE(w.service()->log().stats().compactions, 1U);
  const std::string log = log_file_name(w.service()->log().generation());
  const std::string snapshot = w.store_disk().contents(kSnapshotFile).value();
  w.on_store_disk([&](sim::Disk& disk) { ASSERT_TRUE(disk.remove(log).ok()); });
  w.restart_store();
  EXPECT_FALSE(w.wait_serving());
  EXPECT_NE(w.service()->failure().find(log + " does not exist"), std::string::npos) << w.service()->failure();

  w.on_store_disk([&](sim::Disk& disk) {
    ASSERT_TRUE(disk.create(log).ok());  // Back, empty; and the snapshot damaged.
    std::string bytes = snapshot;
    bytes[kSnapshotHeaderBytes + 3] = static_cast<char>(bytes[kSnapshotHeaderBytes + 3] ^ 0x80);
    ASSERT_TRUE(disk.write(kSnapshotFile, 0, bytes).ok());
    ASSERT_TRUE(disk.fsync(kSnapshotFile).ok());
  });
  w.restart_store();
  EXPECT_FALSE(w.wait_serving());
  EXPECT_NE(w.service()->failure().find("store.snapshot: payload checksum mismatch at offset 64"), std::string::npos)
      << w.service()->failure();
}

TEST(StoreRecovery, BitFlipsOnReadAreReadAgainNotMistakenForCorruption) {
  std::uint64_t rereads = 0;
  for (std::uint64_t seed = 20; seed < 30; seed++) {
    StoreTestWorld w(seed, {}, quiet_world(seed));
    ASSERT_TRUE(w.wait_serving());
    ASSERT_EQ(write_runs(w, 0, 8), 8);
    w.crash_store();
    // Every read may flip a bit; the media is intact.
    w.store_disk().set_corruption_probability(
        0.4, sim::CorruptionKinds{.bit_flips = true, .misdirected_writes = false, .lost_writes = false});
    w.restart_store();
    ASSERT_TRUE(w.wait_serving()) << "seed " << seed << ": " << (w.service() ? w.service()->failure() : "down");
    rereads += w.service()->log().stats().rereads;
    w.store_disk().clear_corruption();
    expect_runs(w, 8, std::nullopt, 8);
  }
  EXPECT_GT(rereads, 0U) << "some recovery read a flipped bit and read again";
}

// A crash at each step of the write path and of compaction: everything
// acknowledged survives, the write in flight is all or nothing, and the
// files left are ones recovery knows (never a double-applied or skipped log).
TEST(StoreRecovery, ACrashAtEveryStepOfCommitAndCompactionRecovers) {
  const std::vector<std::string_view> points = {kPointBatchAppended,  kPointBatchSynced,     kPointNewLogSynced,
                                                kPointSnapshotWritten, kPointSnapshotSynced,  kPointSnapshotRenamed,
                                                kPointSnapshotDurable, kPointOldLogRemoved};
  std::set<std::vector<std::string>> file_sets;
  for (std::string_view point : points) {
    for (std::uint64_t seed = 40; seed < 46; seed++) {
      SCOPED_TRACE(std::string(point) + ", seed " + std::to_string(seed));
      StoreOptions options;
      options.compact_log_bytes = 3 << 10;
      options.compact_snapshot_ratio = 0;
      int hits = 0;
      const int crash_at_hit = 1 + static_cast<int>(seed % 3);  // Not always the first compaction.
      StoreTestWorld* world = nullptr;
      options.test_point = [&](std::string_view reached) {
        if (reached != point || ++hits != crash_at_hit) return;
        world->sim().crash(world->store_node());  // From the store's own fiber: dies here.
      };
      StoreTestWorld w(seed, options, quiet_world(seed));
      world = &w;
      ASSERT_TRUE(w.wait_serving());
      const int acknowledged = write_runs(w, 0, 40, 200);
      ASSERT_EQ(hits, crash_at_hit) << "the point was reached";
      ASSERT_FALSE(w.sim().is_up(w.store_node()));
      file_sets.insert(w.store_disk().list("store."));
      w.restart_store();
      ASSERT_TRUE(w.wait_serving()) << w.service()->failure();
      // The write in flight at the crash is the one after the last acknowledged.
      expect_runs(w, acknowledged, acknowledged, acknowledged + 1);
      // And it goes on: write, crash, recover again.
      const int more = write_runs(w, 100, 10);
      EXPECT_EQ(more, 10);
      w.crash_store();
      w.restart_store();
      ASSERT_TRUE(w.wait_serving());
      expect_runs(w, acknowledged, acknowledged, acknowledged + 1);
      ASSERT_TRUE(w.on_client([](StoreClient& store) {
        for (int i = 100; i < 110; i++) EXPECT_EQ(run_visible(store, i), true);
      }));
    }
  }
  // The crashes left the disk in several different shapes.
  EXPECT_GE(file_sets.size(), 4U);
}

TEST(StoreRecovery, AFailedFsyncRestartsTheStoreWithoutAcknowledging) {
  StoreOptions options;
  options.restart_delay = 50ms;
  StoreTestWorld w(50, options, quiet_world(50));
  ASSERT_TRUE(w.wait_serving());
  ASSERT_EQ(write_runs(w, 0, 5), 5);
  const int boots = w.boots();
  // Every operation fails for a while: the next write's append or fsync
  // fails, the store crashes itself, and keeps failing recovery (and
  // restarting) until the window closes.
  w.store_disk().set_io_error_probability(1.0);
  w.sim().schedule_after(400ms, [&] { w.store_disk().clear_io_errors(); });
  ASSERT_TRUE(w.on_client([](StoreClient& store) {
    sim::Result<WriteReply> reply = store.write(create_run_request(5), 200ms);
    EXPECT_FALSE(reply.ok() && reply.value().status == WriteStatus::kOk) << "acknowledged despite the failed fsync";
  }));
  ASSERT_TRUE(w.wait_serving(5s));
  EXPECT_GE(w.boots(), boots + 2) << "it restarted itself, and again after failing recovery";
  expect_runs(w, 5, 5, 6);
  ASSERT_EQ(write_runs(w, 6, 3), 3);
}

TEST(StoreRecovery, AnFsyncThatFailsMidBatchLosesNothingAcknowledged) {
  // Across seeds the failed fsync settles the batch differently (kept, lost,
  // torn): whatever it left, recovery must find a prefix of whole batches.
  for (std::uint64_t seed = 60; seed < 80; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    StoreOptions options;
    options.restart_delay = 10ms;
    StoreTestWorld w(seed, options, quiet_world(seed));
    ASSERT_TRUE(w.wait_serving());
    ASSERT_EQ(write_runs(w, 0, 3), 3);
    w.store_disk().set_io_error_probability(0.3);
    int acknowledged = 3;
    ASSERT_TRUE(w.on_client([&](StoreClient& store) {
      for (int i = 3; i < 20; i++) {
        sim::Result<WriteReply> reply = store.write(create_run_request(i, 1, 1500), 200ms);
        if (!reply.ok() || reply.value().status != WriteStatus::kOk) break;
        acknowledged++;
      }
    }));
    w.store_disk().clear_io_errors();
    ASSERT_TRUE(w.wait_serving(5s));
    expect_runs(w, acknowledged, acknowledged, acknowledged + 1);
  }
}

}  // namespace
}  // namespace duro::engine::store
