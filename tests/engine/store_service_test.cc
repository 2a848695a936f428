// The store node over RPC: the contract end to end, group commit, reads
// that see only acknowledged writes, membership, and the compaction bound.
#include "engine/store/store_service.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/engine/store_test_world.h"

namespace duro::engine::store {
namespace {

using namespace std::chrono_literals;
using testing::create_run_request;
using testing::quiet_world;
using testing::run_visible;
using testing::StoreTestWorld;
using testing::take_shard_request;

TEST(StoreService, ServesTheContractOverRpc) {
  StoreTestWorld w(1, {}, quiet_world(1));
  ASSERT_TRUE(w.wait_serving());
  ASSERT_TRUE(w.on_client([](StoreClient& store) {
    sim::Result<ShardRecord> never = store.get_shard(1);
    ASSERT_TRUE(never.ok());
    EXPECT_EQ(never.value().range_id, 0);
    sim::Result<UpdateShardReply> taken = store.update_shard(take_shard_request(1, 0, "take"));
    ASSERT_TRUE(taken.ok());
    EXPECT_EQ(taken.value().status, WriteStatus::kOk);
    EXPECT_EQ(taken.value().current.range_id, 1);

    sim::Result<WriteReply> created = store.write(create_run_request(7));
    ASSERT_TRUE(created.ok());
    EXPECT_EQ(created.value().status, WriteStatus::kOk) << created.value().detail;
    EXPECT_EQ(run_visible(store, 7), true);

    // A retry gets the first outcome; a stale condition gets nothing written.
    sim::Result<WriteReply> retried = store.write(create_run_request(7));
    ASSERT_TRUE(retried.ok());
    EXPECT_EQ(retried.value().status, WriteStatus::kOk);
    WriteRequest again = create_run_request(7);
    again.request_id = "another";
    sim::Result<WriteReply> conflict = store.write(again);
    ASSERT_TRUE(conflict.ok());
    EXPECT_EQ(conflict.value().status, WriteStatus::kConditionFailed);
    EXPECT_EQ(store.get_execution({"wf-7", "run"}).value().version, 1U);

    // Fencing: once another owner takes the shard, the old range is refused.
    ASSERT_EQ(store.update_shard(take_shard_request(1, 1, "take-2")).value().status, WriteStatus::kOk);
    sim::Result<WriteReply> fenced = store.write(create_run_request(8, /*range_id=*/1));
    ASSERT_TRUE(fenced.ok());
    EXPECT_EQ(fenced.value().status, WriteStatus::kShardOwnershipLost);
    EXPECT_EQ(run_visible(store, 8), false);

    sim::Result<WriteReply> completed =
        store.complete_tasks(CompleteTasksRequest{"done", 1, 2, 100, {}, {}});
    ASSERT_TRUE(completed.ok());
    EXPECT_EQ(completed.value().status, WriteStatus::kOk);
    EXPECT_TRUE(store.read_transfer_tasks({1, 0, 10}).value().tasks.empty());
    EXPECT_TRUE(store.read_timer_tasks({1, sim::TimePoint{}, 0, sim::TimePoint::max(), 10}).value().tasks.empty());
  }));
  const StoreServiceStats& stats = w.service()->stats();
  EXPECT_EQ(stats.writes, 4U);
  EXPECT_EQ(stats.duplicates, 1U);
  EXPECT_EQ(stats.write_failures, 2U);
}

TEST(StoreService, GroupCommitBatchesConcurrentWriters) {
  StoreTestWorld w(2, {}, quiet_world(2));
  ASSERT_TRUE(w.wait_serving());
  ASSERT_TRUE(w.on_client([](StoreClient& store) {
    ASSERT_EQ(store.update_shard(take_shard_request(1, 0, "take")).value().status, WriteStatus::kOk);
  }));
  const std::uint64_t fsyncs_before = w.store_disk().stats().fsyncs;
  const std::uint64_t batches_before = w.service()->log().stats().batches;
  constexpr int kWriters = 40;
  ASSERT_TRUE(w.on_client([&](StoreClient& store) {
    std::vector<sim::FiberHandle> writers;
    int acknowledged = 0;
    for (int i = 0; i < kWriters; i++) {
      writers.push_back(sim::Simulator::current().spawn(sim::this_fiber::node(), "writer", [&store, &acknowledged, i] {
        sim::Result<WriteReply> reply = store.write(create_run_request(i));
        if (reply.ok() && reply.value().status == WriteStatus::kOk) acknowledged++;
      }));
    }
    for (const sim::FiberHandle& writer : writers) writer.join();
    EXPECT_EQ(acknowledged, kWriters);
    for (int i = 0; i < kWriters; i++) EXPECT_EQ(run_visible(store, i), true) << i;
  }));
  const std::uint64_t fsyncs = w.store_disk().stats().fsyncs - fsyncs_before;
  const std::uint64_t batches = w.service()->log().stats().batches - batches_before;
  EXPECT_LT(fsyncs, static_cast<std::uint64_t>(kWriters) / 4) << "one fsync per batch, several writes per batch";
  EXPECT_EQ(fsyncs, batches);
  EXPECT_GE(batches, 2U) << "those arriving during the first fsync form the second batch";
}

TEST(StoreService, ReadsSeeOnlyAcknowledgedWrites) {
  sim::WorldOptions world = quiet_world(3);
  world.disk.fsync_latency = {50ms, 50ms};  // A slow disk: a wide window to look through.
  StoreTestWorld w(3, {}, world);
  ASSERT_TRUE(w.wait_serving());
  ASSERT_TRUE(w.on_client([&](StoreClient& store) {
    ASSERT_EQ(store.update_shard(take_shard_request(1, 0, "take")).value().status, WriteStatus::kOk);
    bool acknowledged = false;
    sim::FiberHandle writer = sim::Simulator::current().spawn(sim::this_fiber::node(), "writer", [&] {
      acknowledged = store.write(create_run_request(1)).value().status == WriteStatus::kOk;
    });
    sim::this_fiber::sleep_for(20ms);  // The write is judged and in its fsync.
    EXPECT_EQ(w.service()->writes_pending(), 1U);
    EXPECT_FALSE(acknowledged);
    EXPECT_EQ(run_visible(store, 1), false) << "a write not yet durable is not visible";
    // A conflicting create is judged against the pending one, and told so
    // only once that one is durable.
    WriteRequest rival = create_run_request(1);
    rival.request_id = "rival";
    sim::Result<WriteReply> lost = store.write(rival);
    EXPECT_TRUE(w.service()->state().get_execution({"wf-1", "run"}).found)
        << "the rival was answered before the write it lost to was durable";
    ASSERT_TRUE(lost.ok());
    EXPECT_EQ(lost.value().status, WriteStatus::kConditionFailed);
    writer.join();
    EXPECT_TRUE(acknowledged);
    EXPECT_EQ(run_visible(store, 1), true);
  }));
}

TEST(StoreService, MembershipIsJudgedByTheStoresClock) {
  StoreTestWorld w(4, {}, quiet_world(4));
  ASSERT_TRUE(w.wait_serving());
  ASSERT_TRUE(w.on_client([](StoreClient& store) {
    auto beat = [&](const std::string& node, std::uint32_t incarnation, sim::Duration ttl) {
      sim::Result<HeartbeatReply> reply = store.heartbeat(HeartbeatRequest{node, "10.0.0.9", incarnation, ttl});
      EXPECT_TRUE(reply.ok());
      return reply.ok() ? reply.value().members : std::vector<Member>{};
    };
    EXPECT_EQ(beat("server-b", 1, 1s).size(), 1U);
    std::vector<Member> both = beat("server-a", 1, 5s);
    ASSERT_EQ(both.size(), 2U);
    EXPECT_EQ(both[0].node, "server-a") << "sorted by name";
    EXPECT_EQ(both[0].age, sim::Duration{0});
    EXPECT_GT(both[1].age, sim::Duration{0});
    sim::this_fiber::sleep_for(2s);
    std::vector<Member> after = beat("server-a", 1, 5s);
    ASSERT_EQ(after.size(), 1U) << "server-b's ttl ran out";
    // A late heartbeat of an older incarnation does not hide the newer one.
    beat("server-a", 2, 5s);
    std::vector<Member> late = beat("server-a", 1, 5s);
    ASSERT_EQ(late.size(), 1U);
    EXPECT_EQ(late[0].incarnation, 2U);
    EXPECT_FALSE(store.heartbeat(HeartbeatRequest{"", "", 1, 1s}).ok());
  }));
}

// A state above a quarter of the disk's file size limit would, by the ratio
// alone, let its log grow into that limit: the append fails, the store
// restarts, replays, and fails the same append again. Past half the limit
// the log compacts whatever the ratio says, and the store keeps serving.
TEST(StoreService, TheLogCompactsBeforeItReachesTheDisksFileSizeLimit) {
  StoreOptions options;
  options.compact_log_bytes = 4 << 10;
  sim::WorldOptions world = quiet_world(6);
  world.disk.file_size_bytes_max = 64 << 10;
  StoreTestWorld w(6, options, world);
  ASSERT_TRUE(w.wait_serving());
  const StoreLog& log = w.service()->log();
  ASSERT_TRUE(w.on_client([&](StoreClient& store) {
    ASSERT_EQ(store.update_shard(take_shard_request(1, 0, "take")).value().status, WriteStatus::kOk);
  }));
  std::uint64_t largest_snapshot_bytes = 0;
  for (int i = 0; i < 120; i++) {
    ASSERT_TRUE(w.on_client([&](StoreClient& store) {
      sim::Result<WriteReply> written = store.write(create_run_request(i, 1, 300));
      ASSERT_TRUE(written.ok()) << "write " << i << ": " << sim::to_string(written.error());
      ASSERT_EQ(written.value().status, WriteStatus::kOk);
    }));
    for (const std::string& name : w.store_disk().list(kLogFilePrefix)) {
      EXPECT_LE(w.store_disk().size(name).value(), (32 << 10) + 1024) << name << " after write " << i;
    }
    largest_snapshot_bytes = std::max(largest_snapshot_bytes, log.snapshot_bytes());
  }
  EXPECT_GT(largest_snapshot_bytes, std::uint64_t{16} << 10) << "the state passed a quarter of the limit";
  EXPECT_EQ(w.boots(), 1) << "the store restarted";
}

TEST(StoreService, TheLogStaysBoundedByCompaction) {
  StoreOptions options;
  options.compact_log_bytes = 8 << 10;
  StoreTestWorld w(5, options, quiet_world(5));
  ASSERT_TRUE(w.wait_serving());
  const StoreLog& log = w.service()->log();
  ASSERT_TRUE(w.on_client([&](StoreClient& store) {
    ASSERT_EQ(store.update_shard(take_shard_request(1, 0, "take")).value().status, WriteStatus::kOk);
  }));
  std::uint64_t largest_snapshot_bytes = 0;
  for (int i = 0; i < 200; i++) {
    ASSERT_TRUE(w.on_client([&](StoreClient& store) {
      ASSERT_EQ(store.write(create_run_request(i, 1, 300)).value().status, WriteStatus::kOk);
    }));
    // The threshold, relative to the state, plus one batch (here one write
    // per batch: under 1 KiB).
    const std::uint64_t bound =
        std::max(options.compact_log_bytes, options.compact_snapshot_ratio * log.snapshot_bytes()) + 1024;
    for (const std::string& name : w.store_disk().list(kLogFilePrefix)) {
      EXPECT_LE(w.store_disk().size(name).value(), bound) << name << " after write " << i;
    }
    largest_snapshot_bytes = std::max(largest_snapshot_bytes, log.snapshot_bytes());
  }
  // The state grows by about as much as the log each write: the log waits
  // for 4 snapshots' worth, so compactions space out as the state grows
  // (8 KiB, then about 3x the runs each time).
  EXPECT_GE(log.stats().compactions, 2U);
  EXPECT_LE(log.stats().compactions, 6U);
  EXPECT_GT(largest_snapshot_bytes, options.compact_log_bytes / 4) << "the relative bound was exercised";
  EXPECT_EQ(w.store_disk().list(kLogFilePrefix).size(), 1U) << "old generations are removed";
  EXPECT_TRUE(w.store_disk().exists(kSnapshotFile));

  // And everything survives a restart from snapshot + log.
  w.crash_store();
  w.restart_store();
  ASSERT_TRUE(w.wait_serving());
  ASSERT_TRUE(w.on_client([](StoreClient& store) {
    for (int i = 0; i < 200; i++) EXPECT_EQ(run_visible(store, i), true) << i;
  }));
}

TEST(StoreService, AnswersUnavailableWhileRecovering) {
  sim::WorldOptions world = quiet_world(6);
  world.disk.read_latency = {200ms, 200ms};  // A slow recovery.
  StoreTestWorld w(6, {}, world);
  ASSERT_TRUE(w.wait_serving());
  ASSERT_TRUE(w.on_client([](StoreClient& store) {
    ASSERT_EQ(store.update_shard(take_shard_request(1, 0, "take")).value().status, WriteStatus::kOk);
  }));
  w.crash_store();
  w.restart_store();
  ASSERT_TRUE(w.on_client([](StoreClient& store) {
    sim::Result<ShardRecord> early = store.get_shard(1);
    ASSERT_FALSE(early.ok());
    EXPECT_EQ(early.error().code, sim::ErrorCode::kUnavailable);
    EXPECT_EQ(early.error().message, "store is recovering");
    sim::this_fiber::sleep_for(1s);
    EXPECT_EQ(store.get_shard(1).value().range_id, 1);
  }));
}

}  // namespace
}  // namespace duro::engine::store
