// StoreState and its conditions, without any simulation: fencing, versions,
// next event ids, current runs, request-id dedupe, all-or-nothing, reads,
// the snapshot image, and the pending overlay group commit judges against.
#include "engine/store/store_state.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <string>
#include <vector>

#include "engine/store/store_pending.h"

namespace duro::engine::store {
namespace {

using namespace std::chrono_literals;

UpdateShardRequest take_shard(std::uint32_t shard, std::int64_t from, std::string request_id,
                              std::string owner = "server-0") {
  UpdateShardRequest request;
  request.request_id = std::move(request_id);
  request.expected_range_id = from;
  request.record.shard_id = shard;
  request.record.range_id = from + 1;
  request.record.owner = std::move(owner);
  return request;
}

ExecutionWrite run_write(std::string workflow, std::string run, std::uint64_t expected_version,
                         std::int64_t first_event, std::int64_t events, std::string state = "ms") {
  ExecutionWrite write;
  write.workflow_id = std::move(workflow);
  write.run_id = std::move(run);
  write.expected_version = expected_version;
  if (events > 0) write.append = HistoryBatch{first_event, events, "events " + std::to_string(first_event)};
  write.mutable_state = std::move(state);
  return write;
}

WriteRequest write_request(std::string request_id, std::uint32_t shard, std::int64_t range,
                           std::vector<ExecutionWrite> executions = {}) {
  WriteRequest request;
  request.request_id = std::move(request_id);
  request.shard_id = shard;
  request.range_id = range;
  request.executions = std::move(executions);
  return request;
}

class StoreStateTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(state.apply(take_shard(1, 0, "take-1")).applies()); }
  StoreState state;
};

// A write names each run, current record and task once: a repeat is
// malformed (kInvalid, named), found among a few pairwise and among many by
// sorting; distinct keys pass, and nothing of a refused write applies.
TEST_F(StoreStateTest, AWriteThatNamesSomethingTwiceIsInvalid) {
  const auto refused_because = [&](const WriteRequest& request) {
    const Outcome outcome = state.apply(request);
    return outcome.status == WriteStatus::kInvalid ? outcome.detail : std::string("not refused");
  };
  EXPECT_EQ(refused_because(write_request("twice-run", 1, 1, {run_write("wf", "r1", 0, 1, 1), run_write("wf", "r1", 0, 1, 1)})),
            "execution wf/r1 written twice");
  WriteRequest deleted = write_request("written-deleted", 1, 1, {run_write("wf", "r1", 0, 1, 1)});
  deleted.deletes.push_back(ExecutionKey{"wf", "r1"});
  EXPECT_EQ(refused_because(deleted), "execution wf/r1 written twice");
  WriteRequest currents = write_request("twice-current", 1, 1, {run_write("wf", "r1", 0, 1, 1)});
  currents.currents.push_back(CurrentWrite{std::nullopt, CurrentRecord{"wf", "r1", true, "start", 0}});
  currents.currents.push_back(CurrentWrite{std::nullopt, CurrentRecord{"wf", "r2", true, "start", 0}});
  EXPECT_EQ(refused_because(currents), "current record of wf written twice");
  // Many transfer tasks (past the pairwise bound): the repeat is found by
  // sorting; without it the same write applies.
  WriteRequest many = write_request("many-tasks", 1, 1, {run_write("wf", "r1", 0, 1, 1)});
  for (std::int64_t id = 1; id <= 40; id++) many.transfer_tasks.push_back(TransferTask{id, "t"});
  many.transfer_tasks.push_back(TransferTask{17, "again"});
  EXPECT_EQ(refused_because(many), "transfer task 17 twice");
  WriteRequest timers = write_request("twice-timer", 1, 1, {run_write("wf", "r1", 0, 1, 1)});
  timers.timer_tasks.push_back(TimerTask{sim::TimePoint{} + 1h, 5, "t"});
  timers.timer_tasks.push_back(TimerTask{sim::TimePoint{} + 2h, 5, "t"});  // Same id, another time: allowed.
  timers.timer_tasks.push_back(TimerTask{sim::TimePoint{} + 1h, 5, "t"});
  EXPECT_EQ(refused_because(timers), "timer task 5 twice at the same fire time");
  EXPECT_EQ(state.current_record("wf"), nullptr) << "a refused write applied something";
  // It creates wf/r1 (expected version 0): had a refused write applied, the
  // run would exist and this would fail its condition.
  many.request_id = "many-tasks-once";
  many.transfer_tasks.pop_back();
  const Outcome applied = state.apply(many);
  EXPECT_TRUE(applied.applies()) << applied.detail;
}

TEST_F(StoreStateTest, TakingAShardIsACompareAndSetOfItsRangeId) {
  EXPECT_EQ(state.get_shard(1).range_id, 1);
  EXPECT_EQ(state.get_shard(2).range_id, 0) << "a shard never taken is at range 0";

  // A stale taker loses, and learns the current record.
  Outcome stale = state.apply(take_shard(1, 0, "take-stale", "server-1"));
  EXPECT_EQ(stale.status, WriteStatus::kConditionFailed);
  EXPECT_EQ(stale.shard.range_id, 1);
  EXPECT_EQ(stale.shard.owner, "server-0");

  // A renewal keeps the range and bumps the lease epoch.
  UpdateShardRequest renew = take_shard(1, 1, "renew-1");
  renew.record.range_id = 1;
  renew.record.lease_epoch = 7;
  Outcome renewed = state.apply(renew);
  ASSERT_TRUE(renewed.applies());
  EXPECT_EQ(renewed.update_shard_reply().current.lease_epoch, 7U);

  // Range ids never go back: that would un-fence an old owner.
  UpdateShardRequest back = take_shard(1, 1, "back");
  back.record.range_id = 0;
  EXPECT_EQ(state.apply(back).status, WriteStatus::kInvalid);
  EXPECT_EQ(state.get_shard(1).range_id, 1);
}

TEST_F(StoreStateTest, RenewingShardsTogetherIsAllOrNothingAndFencedByEachRangeId) {
  ASSERT_TRUE(state.apply(take_shard(2, 0, "take-2")).applies());
  ASSERT_TRUE(state.apply(take_shard(3, 0, "take-3")).applies());
  const auto renewal = [](std::string id, std::vector<std::pair<std::uint32_t, std::int64_t>> shards) {
    RenewShardsRequest request{std::move(id), {}};
    for (const auto& [shard, range] : shards) request.records.push_back(ShardRecord{shard, range, "server-0", 5, "t"});
    return request;
  };
  const std::uint64_t before = state.last_sequence();
  ASSERT_TRUE(state.apply(renewal("renew-a", {{1, 1}, {2, 1}, {3, 1}})).applies());
  EXPECT_EQ(state.last_sequence(), before + 1) << "one mutation, whatever the number of shards";
  for (std::uint32_t shard = 1; shard <= 3; shard++) {
    EXPECT_EQ(state.get_shard(shard).lease_epoch, 5U);
    EXPECT_EQ(state.get_shard(shard).data, "t");
  }
  // Shard 2 moves on: a joint renewal holding it renews nothing at all.
  ASSERT_TRUE(state.apply(take_shard(2, 1, "take-2b", "server-1")).applies());
  RenewShardsRequest stale = renewal("renew-b", {{1, 1}, {2, 1}, {3, 1}});
  stale.records[0].lease_epoch = 6;
  const Outcome fenced = state.apply(stale);
  EXPECT_EQ(fenced.status, WriteStatus::kShardOwnershipLost);
  EXPECT_NE(fenced.detail.find("shard 2"), std::string::npos) << fenced.detail;
  EXPECT_EQ(state.get_shard(1).lease_epoch, 5U);
  EXPECT_EQ(state.get_shard(2).owner, "server-1");
  // A renewal never takes a shard, and contradicts itself in these ways.
  EXPECT_EQ(state.apply(renewal("renew-c", {{4, 1}})).status, WriteStatus::kShardOwnershipLost);
  EXPECT_EQ(state.apply(renewal("", {{1, 1}})).status, WriteStatus::kInvalid);
  EXPECT_EQ(state.apply(renewal("renew-d", {})).status, WriteStatus::kInvalid);
  EXPECT_EQ(state.apply(renewal("renew-e", {{1, 1}, {1, 1}})).status, WriteStatus::kInvalid);
  EXPECT_EQ(state.apply(renewal("renew-f", {{4, 0}})).status, WriteStatus::kInvalid);
  std::vector<std::pair<std::uint32_t, std::int64_t>> too_many;
  for (std::uint32_t shard = 0; shard <= kRenewShardsMax; shard++) too_many.emplace_back(shard, 1);
  EXPECT_EQ(state.apply(renewal("renew-g", too_many)).status, WriteStatus::kInvalid);
  // A retry of the applied one: its first outcome, nothing applied again.
  const std::uint64_t settled = state.last_sequence();
  EXPECT_TRUE(state.apply(renewal("renew-a", {{1, 1}})).duplicate);
  EXPECT_EQ(state.last_sequence(), settled);
  // The log record round-trips, and the snapshot keeps its request id.
  std::string record;
  encode_mutation(record, renewal("renew-h", {{1, 1}, {3, 1}}));
  sim::Decoder decoder(record);
  StoreMutation decoded;
  ASSERT_TRUE(decode_mutation(decoder, decoded));
  EXPECT_EQ(std::get<RenewShardsRequest>(decoded).records.size(), 2U);
  std::string image;
  state.encode(image);
  sim::Result<StoreState> restored = StoreState::decode(image);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(restored.value().remembered("renew-a")->kind, MutationKind::kRenewShards);
}

// A store logs a write as the bytes it received: the record is the one it
// would have encoded itself, and decodes to the same write.
TEST_F(StoreStateTest, AWriteLoggedAsReceivedIsTheRecordEncodedFromIt) {
  const WriteRequest write = write_request("w1", 1, 1, {run_write("wf", "r1", 0, 1, 3), run_write("wf", "r2", 0, 1, 2)});
  std::string encoded_here;
  encode_mutation(encoded_here, write);
  std::string as_received;
  encode_mutation(as_received, write, sim::encode(write));
  EXPECT_EQ(as_received, encoded_here);
  sim::Decoder decoder(as_received);
  StoreMutation decoded;
  ASSERT_TRUE(decode_mutation(decoder, decoded));
  EXPECT_EQ(decoder.remaining_bytes(), 0U);
  EXPECT_EQ(std::get<WriteRequest>(decoded).executions.size(), 2U);
  EXPECT_EQ(std::get<WriteRequest>(decoded).request_id, "w1");
}

TEST_F(StoreStateTest, WritesAreFencedByTheShardsRangeId) {
  ASSERT_TRUE(state.apply(write_request("w1", 1, 1, {run_write("wf", "r1", 0, 1, 3)})).applies());
  ASSERT_TRUE(state.apply(take_shard(1, 1, "take-2", "server-1")).applies());
  // The old owner, still holding range 1, is fenced out: nothing written.
  Outcome fenced = state.apply(write_request("w2", 1, 1, {run_write("wf", "r1", 1, 4, 2)}));
  EXPECT_EQ(fenced.status, WriteStatus::kShardOwnershipLost);
  EXPECT_EQ(state.get_execution({"wf", "r1"}).version, 1U);
  CompleteTasksRequest complete{.request_id = "c1", .shard_id = 1, .range_id = 1, .transfer_up_to_task_id = 10,
                                .transfer_task_ids = {}, .timer_tasks = {}};
  EXPECT_EQ(state.apply(complete).status, WriteStatus::kShardOwnershipLost);
  // The new owner writes.
  EXPECT_TRUE(state.apply(write_request("w3", 1, 2, {run_write("wf", "r1", 1, 4, 2)})).applies());
  // Range 0 is nobody's: a write there is a caller bug.
  EXPECT_EQ(state.apply(write_request("w4", 2, 0, {run_write("x", "r", 0, 1, 1)})).status, WriteStatus::kInvalid);
}

TEST_F(StoreStateTest, ExecutionsApplyOnlyAtTheirVersionAndNextEventId) {
  ASSERT_TRUE(state.apply(write_request("create", 1, 1, {run_write("wf", "r1", 0, 1, 3)})).applies());
  GetExecutionReply run = state.get_execution({"wf", "r1"});
  EXPECT_TRUE(run.found);
  EXPECT_EQ(run.version, 1U);
  EXPECT_EQ(run.next_event_id, 4);
  EXPECT_EQ(run.shard_id, 1U);

  EXPECT_EQ(state.apply(write_request("create-again", 1, 1, {run_write("wf", "r1", 0, 1, 3)})).status,
            WriteStatus::kConditionFailed);
  EXPECT_EQ(state.apply(write_request("stale-version", 1, 1, {run_write("wf", "r1", 2, 4, 1)})).status,
            WriteStatus::kConditionFailed);
  Outcome gap = state.apply(write_request("gap", 1, 1, {run_write("wf", "r1", 1, 5, 1)}));
  EXPECT_EQ(gap.status, WriteStatus::kConditionFailed);
  EXPECT_NE(gap.detail.find("next event id is 4"), std::string::npos) << gap.detail;
  EXPECT_EQ(state.apply(write_request("missing", 1, 1, {run_write("wf", "r9", 1, 1, 1)})).status,
            WriteStatus::kConditionFailed);
  // A new run's history starts at 1, and appends carry events.
  EXPECT_EQ(state.apply(write_request("bad-create", 1, 1, {run_write("wf", "r2", 0, 2, 1)})).status,
            WriteStatus::kInvalid);
  ExecutionWrite empty_append = run_write("wf", "r1", 1, 4, 1);
  empty_append.append->event_count = 0;
  EXPECT_EQ(state.apply(write_request("empty", 1, 1, {empty_append})).status, WriteStatus::kInvalid);

  ExecutionWrite closing = run_write("wf", "r1", 1, 4, 2, "final");
  closing.closed = true;
  ASSERT_TRUE(state.apply(write_request("close", 1, 1, {closing})).applies());
  run = state.get_execution({"wf", "r1"});
  EXPECT_EQ(run.version, 2U);
  EXPECT_EQ(run.next_event_id, 6);
  EXPECT_EQ(run.mutable_state, "final");
  EXPECT_TRUE(run.closed);
  // A run belongs to the shard that created it.
  ASSERT_TRUE(state.apply(take_shard(2, 0, "take-s2")).applies());
  EXPECT_EQ(state.apply(write_request("other-shard", 2, 1, {run_write("wf", "r1", 2, 6, 1)})).status,
            WriteStatus::kInvalid);
}

TEST_F(StoreStateTest, CurrentRecordsMoveOnlyFromTheExpectedRun) {
  WriteRequest start = write_request("start", 1, 1, {run_write("wf", "r1", 0, 1, 1)});
  start.currents.push_back(CurrentWrite{std::nullopt, CurrentRecord{"wf", "r1", true, "start-req", 0}});
  ASSERT_TRUE(state.apply(start).applies());
  EXPECT_EQ(state.get_current("wf").record.run_id, "r1");
  EXPECT_FALSE(state.get_current("other").found);

  // A second start of a running workflow id loses the race for the pointer.
  WriteRequest again = write_request("start-2", 1, 1, {run_write("wf", "r2", 0, 1, 1)});
  again.currents.push_back(CurrentWrite{std::nullopt, CurrentRecord{"wf", "r2", true, "start-req-2", 0}});
  EXPECT_EQ(state.apply(again).status, WriteStatus::kConditionFailed);
  EXPECT_FALSE(state.get_execution({"wf", "r2"}).found) << "all or nothing: the run was not created either";

  // Continue-as-new: close r1, start r2, move the pointer from r1.
  WriteRequest next = write_request("can", 1, 1, {run_write("wf", "r1", 1, 2, 1), run_write("wf", "r2", 0, 1, 1)});
  next.currents.push_back(CurrentWrite{std::string("r1"), CurrentRecord{"wf", "r2", true, "start-req", 0}});
  ASSERT_TRUE(state.apply(next).applies());
  EXPECT_EQ(state.get_current("wf").record.run_id, "r2");
  WriteRequest stale = write_request("stale-current", 1, 1);
  stale.currents.push_back(CurrentWrite{std::string("r1"), CurrentRecord{"wf", "r3", true, "", 0}});
  EXPECT_EQ(state.apply(stale).status, WriteStatus::kConditionFailed);
}

TEST_F(StoreStateTest, AWriteIsAllOrNothing) {
  ASSERT_TRUE(state.apply(write_request("create", 1, 1, {run_write("a", "r", 0, 1, 1)})).applies());
  // The second execution fails its condition: the first, the tasks and the
  // current record must not apply either.
  WriteRequest mixed = write_request("mixed", 1, 1, {run_write("a", "r", 1, 2, 1), run_write("b", "r", 5, 1, 1)});
  mixed.transfer_tasks.push_back(TransferTask{100, "t"});
  mixed.timer_tasks.push_back(TimerTask{sim::kDefaultStartTime + 1s, 101, "timer"});
  mixed.currents.push_back(CurrentWrite{std::nullopt, CurrentRecord{"a", "r", true, "", 0}});
  const StoreState before = state;
  EXPECT_EQ(state.apply(mixed).status, WriteStatus::kConditionFailed);
  EXPECT_EQ(state, before);
  EXPECT_EQ(state.transfer_task_count(), 0U);
  EXPECT_EQ(state.last_sequence(), before.last_sequence());
}

TEST_F(StoreStateTest, ARetriedRequestIdGetsItsFirstOutcome) {
  const WriteRequest create = write_request("req-1", 1, 1, {run_write("wf", "r", 0, 1, 2)});
  ASSERT_TRUE(state.apply(create).applies());
  const std::uint64_t sequence = state.last_sequence();
  // The retry would fail its condition if judged again; it is not judged.
  Outcome retry = state.apply(create);
  EXPECT_EQ(retry.status, WriteStatus::kOk);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_EQ(state.last_sequence(), sequence);
  EXPECT_EQ(state.get_execution({"wf", "r"}).version, 1U);
  // An UpdateShard retry gets the record it left, even after it moved on.
  ASSERT_TRUE(state.apply(take_shard(1, 1, "take-2")).applies());
  ASSERT_TRUE(state.apply(take_shard(1, 2, "take-3")).applies());
  Outcome shard_retry = state.apply(take_shard(1, 1, "take-2"));
  EXPECT_TRUE(shard_retry.duplicate);
  EXPECT_EQ(shard_retry.shard.range_id, 2);
  // The same id for another method is a caller bug.
  EXPECT_EQ(state.apply(write_request("take-2", 1, 3)).status, WriteStatus::kInvalid);
  // A failed request is not remembered: its retry is judged again.
  const WriteRequest early = write_request("req-2", 1, 3, {run_write("wf", "r", 2, 4, 1)});
  EXPECT_EQ(state.apply(early).status, WriteStatus::kConditionFailed);
  ASSERT_TRUE(state.apply(write_request("req-3", 1, 3, {run_write("wf", "r", 1, 3, 1)})).applies());
  EXPECT_TRUE(state.apply(early).applies());
}

TEST(StoreState, TheRequestIdTableForgetsTheOldestBeyondItsBound) {
  StoreState state(3);
  ASSERT_TRUE(state.apply(take_shard(1, 0, "take")).applies());
  for (int i = 0; i < 3; i++) {
    ASSERT_TRUE(state.apply(write_request("w" + std::to_string(i), 1, 1)).applies());
  }
  EXPECT_EQ(state.remembered_count(), 3U);
  EXPECT_EQ(state.remembered("take"), nullptr);
  EXPECT_NE(state.remembered("w0"), nullptr);
  EXPECT_TRUE(state.apply(write_request("w0", 1, 1)).duplicate);
  ASSERT_TRUE(state.apply(write_request("w3", 1, 1)).applies());
  EXPECT_EQ(state.remembered("w0"), nullptr);
  EXPECT_FALSE(state.apply(write_request("w0", 1, 1)).duplicate) << "forgotten: applied again";
}

TEST(StoreState, TheRequestIdTablesEvictionOrderSurvivesSnapshotsAndCopies) {
  // Ids applied in an order unlike their sorting ("take", "z", "m", "a"):
  // eviction goes by application, whether the state was copied or decoded.
  StoreState state(4);
  ASSERT_TRUE(state.apply(take_shard(1, 0, "take")).applies());
  for (const char* id : {"z", "m", "a"}) ASSERT_TRUE(state.apply(write_request(id, 1, 1)).applies());
  std::string image;
  state.encode(image);
  sim::Result<StoreState> decoded = StoreState::decode(image, 4);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  StoreState copy = state;
  for (StoreState* each : {&decoded.value(), &copy, &state}) {
    ASSERT_TRUE(each->apply(write_request("b", 1, 1)).applies());
    EXPECT_EQ(each->remembered("take"), nullptr) << "the first applied goes first";
    ASSERT_TRUE(each->apply(write_request("c", 1, 1)).applies());
    EXPECT_EQ(each->remembered("z"), nullptr);
    EXPECT_NE(each->remembered("a"), nullptr);
    EXPECT_NE(each->remembered("m"), nullptr);
  }
  EXPECT_EQ(decoded.value(), state);
  EXPECT_EQ(copy, state);
  // Decoded under a smaller bound, it keeps the newest.
  sim::Result<StoreState> smaller = StoreState::decode(image, 2);
  ASSERT_TRUE(smaller.ok()) << smaller.error().message;
  EXPECT_EQ(smaller.value().remembered_count(), 2U);
  EXPECT_NE(smaller.value().remembered("m"), nullptr);
  EXPECT_NE(smaller.value().remembered("a"), nullptr);
}

// The request-id table closes the image: its ids oldest first, each with
// its sequence. Decoding refuses a table whose sequences do not rise, or
// that lists an id twice.
TEST(StoreState, DecodingRefusesARequestIdTableOutOfOrderOrWithAnIdTwice) {
  StoreState state(2);
  ASSERT_TRUE(state.apply(take_shard(1, 0, "take")).applies());
  ASSERT_TRUE(state.apply(write_request("w1", 1, 1)).applies());  // Sequence 2.
  ASSERT_TRUE(state.apply(write_request("w2", 1, 1)).applies());  // Sequence 3; "take" is forgotten.
  std::string image;
  state.encode(image);
  const auto table = [](std::vector<std::pair<std::string, std::uint64_t>> entries) {
    std::string bytes;
    sim::Encoder encoder(bytes);
    encoder.write_count(entries.size());
    for (const auto& [id, sequence] : entries) {
      encoder.write(id);
      encoder.write(static_cast<std::uint8_t>(MutationKind::kWrite));
      encoder.write(sequence);
      encoder.write(ShardRecord{});
    }
    return bytes;
  };
  const std::string written = table({{"w1", 2}, {"w2", 3}});
  ASSERT_TRUE(image.ends_with(written)) << "the table is where this test expects it";
  const std::string before_table = image.substr(0, image.size() - written.size());
  ASSERT_TRUE(StoreState::decode(before_table + written, 2).ok());
  sim::Result<StoreState> out_of_order = StoreState::decode(before_table + table({{"w2", 3}, {"w1", 2}}), 2);
  ASSERT_FALSE(out_of_order.ok());
  EXPECT_NE(out_of_order.error().message.find("request-id table out of order"), std::string::npos)
      << out_of_order.error().message;
  sim::Result<StoreState> twice = StoreState::decode(before_table + table({{"w1", 2}, {"w1", 3}}), 2);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.error().message.find("an id twice"), std::string::npos) << twice.error().message;
}

TEST_F(StoreStateTest, ReadsHistoryInWholeBatchesFromTheOneHoldingTheEvent) {
  ASSERT_TRUE(state.apply(write_request("a", 1, 1, {run_write("wf", "r", 0, 1, 3)})).applies());
  ASSERT_TRUE(state.apply(write_request("b", 1, 1, {run_write("wf", "r", 1, 4, 2)})).applies());
  ASSERT_TRUE(state.apply(write_request("c", 1, 1, {run_write("wf", "r", 2, 6, 4)})).applies());
  ReadHistoryReply all = state.read_history({{"wf", "r"}, 1, 256});
  ASSERT_TRUE(all.found);
  ASSERT_EQ(all.batches.size(), 3U);
  EXPECT_EQ(all.next_event_id, 10);
  ReadHistoryReply from5 = state.read_history({{"wf", "r"}, 5, 1});
  ASSERT_EQ(from5.batches.size(), 1U);
  EXPECT_EQ(from5.batches[0].first_event_id, 4) << "the batch that holds event 5";
  EXPECT_TRUE(state.read_history({{"wf", "r"}, 10, 5}).batches.empty());
  EXPECT_FALSE(state.read_history({{"wf", "nope"}, 1, 5}).found);
  // The reply-size bound stops early, but never before one batch.
  ReadHistoryReply small = state.read_history({{"wf", "r"}, 1, 256}, ReadLimits{.items_max = 10, .reply_bytes_max = 1});
  EXPECT_EQ(small.batches.size(), 1U);
}

TEST_F(StoreStateTest, ReadsAndCompletesTasksInOrder) {
  WriteRequest tasks = write_request("tasks", 1, 1);
  for (std::int64_t id = 1; id <= 5; id++) tasks.transfer_tasks.push_back(TransferTask{id, "t" + std::to_string(id)});
  const sim::TimePoint t0 = sim::kDefaultStartTime;
  tasks.timer_tasks = {TimerTask{t0 + 2s, 7, "b"}, TimerTask{t0 + 1s, 9, "a"}, TimerTask{t0 + 2s, 6, "c"},
                       TimerTask{t0 + 5s, 8, "d"}};
  ASSERT_TRUE(state.apply(tasks).applies());

  ReadTransferTasksReply first = state.read_transfer_tasks({1, 0, 2});
  ASSERT_EQ(first.tasks.size(), 2U);
  EXPECT_EQ(first.tasks[0].task_id, 1);
  EXPECT_TRUE(first.more);
  ReadTransferTasksReply rest = state.read_transfer_tasks({1, 2, 10});
  ASSERT_EQ(rest.tasks.size(), 3U);
  EXPECT_FALSE(rest.more);
  EXPECT_TRUE(state.read_transfer_tasks({2, 0, 10}).tasks.empty());

  ReadTimerTasksReply due = state.read_timer_tasks({1, sim::TimePoint{}, 0, t0 + 2s, 10});
  ASSERT_EQ(due.tasks.size(), 3U);
  EXPECT_EQ(due.tasks[0].task_id, 9);
  EXPECT_EQ(due.tasks[1].task_id, 6);
  EXPECT_EQ(due.tasks[2].task_id, 7);
  EXPECT_FALSE(due.more);
  ReadTimerTasksReply after = state.read_timer_tasks({1, t0 + 2s, 6, t0 + 10s, 1});
  ASSERT_EQ(after.tasks.size(), 1U);
  EXPECT_EQ(after.tasks[0].task_id, 7);
  EXPECT_TRUE(after.more);

  CompleteTasksRequest complete{.request_id = "done", .shard_id = 1, .range_id = 1, .transfer_up_to_task_id = 2,
                                .transfer_task_ids = {4}, .timer_tasks = {{t0 + 1s, 9}, {t0 + 3s, 1}}};
  ASSERT_TRUE(state.apply(complete).applies());
  ReadTransferTasksReply left = state.read_transfer_tasks({1, 0, 10});
  ASSERT_EQ(left.tasks.size(), 2U);
  EXPECT_EQ(left.tasks[0].task_id, 3);
  EXPECT_EQ(left.tasks[1].task_id, 5);
  EXPECT_EQ(state.timer_task_count(), 3U);

  WriteRequest duplicate_ids = write_request("dup", 1, 1);
  duplicate_ids.transfer_tasks = {TransferTask{10, "x"}, TransferTask{10, "y"}};
  EXPECT_EQ(state.apply(duplicate_ids).status, WriteStatus::kInvalid);
}

TEST_F(StoreStateTest, DeletesRemoveRunsOfTheirShard) {
  ASSERT_TRUE(state.apply(write_request("a", 1, 1, {run_write("wf", "r", 0, 1, 3)})).applies());
  WriteRequest remove = write_request("del", 1, 1);
  remove.deletes.push_back({"wf", "r"});
  remove.deletes.push_back({"wf", "never-existed"});
  ASSERT_TRUE(state.apply(remove).applies());
  EXPECT_FALSE(state.get_execution({"wf", "r"}).found);
  EXPECT_FALSE(state.read_history({{"wf", "r"}, 1, 10}).found);
  // A key both written and deleted in one request contradicts itself.
  WriteRequest both = write_request("both", 1, 1, {run_write("wf", "r", 0, 1, 1)});
  both.deletes.push_back({"wf", "r"});
  EXPECT_EQ(state.apply(both).status, WriteStatus::kInvalid);
}

TEST_F(StoreStateTest, TheSnapshotImageRoundTripsAndRefusesDamage) {
  WriteRequest busy = write_request("busy", 1, 1, {run_write("wf", "r", 0, 1, 3), run_write("wf2", "r", 0, 1, 1)});
  busy.currents.push_back(CurrentWrite{std::nullopt, CurrentRecord{"wf", "r", true, "s", 0}});
  busy.transfer_tasks.push_back(TransferTask{3, "t"});
  busy.timer_tasks.push_back(TimerTask{sim::kDefaultStartTime, 4, "timer"});
  ASSERT_TRUE(state.apply(busy).applies());
  ASSERT_TRUE(state.apply(write_request("more", 1, 1, {run_write("wf", "r", 1, 4, 2)})).applies());

  std::string image;
  state.encode(image);
  sim::Result<StoreState> decoded = StoreState::decode(image);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded.value(), state);
  EXPECT_EQ(decoded.value().last_sequence(), state.last_sequence());
  EXPECT_TRUE(decoded.value().remembered("busy") != nullptr);
  // Every truncation is refused, never misread.
  for (std::size_t cut = 0; cut < image.size(); cut++) {
    EXPECT_FALSE(StoreState::decode(std::string_view(image).substr(0, cut)).ok()) << "cut at " << cut;
  }
  EXPECT_FALSE(StoreState::decode(image + "x").ok());
}

TEST_F(StoreStateTest, PendingWritesSeeEachOtherBeforeTheStateDoes) {
  PendingWrites pending(state);
  const WriteRequest create = write_request("p1", 1, 1, {run_write("wf", "r", 0, 1, 2)});
  Outcome first = evaluate(pending, create);
  ASSERT_TRUE(first.applies());
  pending.add(create, first, state.last_sequence() + 1);
  // A second create of the run is judged against the first, not yet applied.
  EXPECT_EQ(evaluate(pending, write_request("p2", 1, 1, {run_write("wf", "r", 0, 1, 2)})).status,
            WriteStatus::kConditionFailed);
  EXPECT_TRUE(evaluate(pending, create).duplicate);
  const WriteRequest next = write_request("p3", 1, 1, {run_write("wf", "r", 1, 3, 1)});
  Outcome second = evaluate(pending, next);
  ASSERT_TRUE(second.applies());
  pending.add(next, second, state.last_sequence() + 2);
  EXPECT_FALSE(state.get_execution({"wf", "r"}).found) << "the state holds acknowledged writes only";

  // The first is durable: applied, retired; the second still pending.
  ASSERT_TRUE(state.apply(create).applies());
  pending.retire(state.last_sequence());
  EXPECT_EQ(pending.execution_meta({"wf", "r"})->version, 2U);
  ASSERT_TRUE(state.apply(next).applies());
  pending.retire(state.last_sequence());
  EXPECT_TRUE(pending.empty());
}

// --- Properties ------------------------------------------------------------------

// A small random mutation over few keys, so conditions collide often.
StoreMutation random_mutation(std::uint64_t index) {
  const auto kind = *rc::gen::inRange(0, 10);
  const std::uint32_t shard = *rc::gen::inRange<std::uint32_t>(1, 3);
  const std::int64_t range = *rc::gen::inRange<std::int64_t>(0, 4);
  std::string id = "req-" + std::to_string(*rc::gen::inRange<std::uint64_t>(0, index + 1));
  if (kind == 0) {
    UpdateShardRequest request = take_shard(shard, range, std::move(id));
    request.record.range_id = range + *rc::gen::inRange<std::int64_t>(0, 2);
    return request;
  }
  if (kind == 9) {
    RenewShardsRequest request{std::move(id), {}};
    for (std::uint32_t renewed = 1; renewed <= 3; renewed++) {
      if (renewed == shard || *rc::gen::inRange(0, 2) == 0) {
        request.records.push_back(ShardRecord{renewed, std::max<std::int64_t>(range, 1), "server-0", index, ""});
      }
    }
    return request;
  }
  if (kind == 1) {
    CompleteTasksRequest request;
    request.request_id = std::move(id);
    request.shard_id = shard;
    request.range_id = range;
    request.transfer_up_to_task_id = *rc::gen::inRange<std::int64_t>(0, 20);
    return request;
  }
  WriteRequest request = write_request(std::move(id), shard, range);
  const int executions = *rc::gen::inRange(0, 3);
  for (int i = 0; i < executions; i++) {
    const std::string workflow = "wf" + std::to_string(*rc::gen::inRange(0, 3));
    const std::uint64_t version = *rc::gen::inRange<std::uint64_t>(0, 4);
    const std::int64_t first = *rc::gen::inRange<std::int64_t>(1, 8);
    request.executions.push_back(run_write(workflow, "r", version, version == 0 ? 1 : first, *rc::gen::inRange(0, 3)));
  }
  if (*rc::gen::inRange(0, 4) == 0) {
    std::optional<std::string> expected_run;
    if (*rc::gen::arbitrary<bool>()) expected_run = "r";
    request.currents.push_back(CurrentWrite{expected_run,
                                            CurrentRecord{"wf" + std::to_string(*rc::gen::inRange(0, 3)), "r", true,
                                                          "", 0}});
  }
  if (*rc::gen::inRange(0, 3) == 0) {
    request.transfer_tasks.push_back(TransferTask{*rc::gen::inRange<std::int64_t>(1, 20), "task"});
  }
  if (*rc::gen::inRange(0, 6) == 0) request.deletes.push_back({"wf" + std::to_string(*rc::gen::inRange(0, 3)), "r"});
  return request;
}

// Group commit judges each request against the state plus what is pending,
// and applies batches later; that must equal judging and applying each
// request at once, in order. And the result round-trips through a snapshot.
RC_GTEST_PROP(StoreStateProperty, PendingViewAndBatchedApplyEqualImmediateApply, ()) {
  const std::size_t count = *rc::gen::inRange<std::size_t>(1, 60);
  StoreState immediate(8);
  StoreState batched(8);
  PendingWrites pending(batched);
  std::vector<StoreMutation> unapplied;
  std::uint64_t sequence = 0;
  for (std::size_t i = 0; i < count; i++) {
    const StoreMutation mutation = random_mutation(i);
    const Outcome expected = immediate.apply(mutation);
    const Outcome judged = evaluate(pending, mutation);
    RC_ASSERT(judged.status == expected.status);
    RC_ASSERT(judged.duplicate == expected.duplicate);
    RC_ASSERT(judged.shard == expected.shard);
    if (judged.applies()) {
      pending.add(mutation, judged, ++sequence);
      unapplied.push_back(mutation);
    }
    if (*rc::gen::inRange(0, 4) == 0 || i + 1 == count) {  // A batch becomes durable.
      for (const StoreMutation& durable : unapplied) RC_ASSERT(batched.apply(durable).applies());
      unapplied.clear();
      pending.retire(batched.last_sequence());
      RC_ASSERT(pending.empty());
    }
  }
  RC_ASSERT(batched == immediate);
  std::string image;
  immediate.encode(image);
  sim::Result<StoreState> decoded = StoreState::decode(image, 8);
  RC_ASSERT(decoded.ok());
  RC_ASSERT(decoded.value() == immediate);
}

}  // namespace
}  // namespace duro::engine::store
