// The store node under a RapidCheck stateful test, inside a sim::World:
// random writes, shard compare-and-sets, task completions and reads against
// a simple model, with store crashes (at random instants: before, during or
// after a write's fsync, in a compaction) and I/O error windows (failed
// fsyncs: the store restarts itself). The disk keeps, drops or tears
// unsynced writes by seed.
//
// Properties, checked after every command:
//   - every acknowledged write survives every crash;
//   - a write whose outcome is unknown (timed out, the store crashed) is
//     all or nothing: after recovery it is either wholly visible or not at
//     all — the model is resolved by re-reading (or by retrying with the
//     same request id, which must then give the outcome the model predicts);
//   - a write on a stale condition (version, next event id, range id) never
//     applies, and gets the status the model predicts;
//   - reads after recovery equal the model.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>
#include <rapidcheck/state.h>

#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "engine/store/store_service.h"
#include "tests/engine/store_test_world.h"

namespace duro::engine::store {
namespace {

using namespace std::chrono_literals;

constexpr int kWorkflows = 4;
constexpr std::uint32_t kShards = 2;
constexpr sim::Duration kCallTimeout = 1s;

std::uint32_t shard_of(int workflow) { return static_cast<std::uint32_t>(workflow % kShards) + 1; }
std::string workflow_name(int workflow) { return "wf-" + std::to_string(workflow); }

// --- The model: what the store must hold, resolved as the test goes ----------------

struct RunModel {
  bool exists = false;
  std::uint64_t version = 0;
  std::int64_t next_event_id = 1;
  std::string mutable_state;
  std::vector<HistoryBatch> history;
  bool current = false;
};

using TimerKey = std::pair<sim::TimePoint, std::int64_t>;

struct Model {
  std::map<std::uint32_t, ShardRecord> shards;
  std::map<int, RunModel> runs;
  std::map<std::uint32_t, std::map<std::int64_t, std::string>> transfer;
  std::map<std::uint32_t, std::map<TimerKey, std::string>> timers;
  std::int64_t next_task_id = 1;

  Model() {
    for (std::uint32_t shard = 1; shard <= kShards; shard++) shards[shard].shard_id = shard;
  }
};

// The fault injected around one command.
struct Fault {
  enum class Kind : std::uint8_t { kNone, kCrash, kIoErrors } kind = Kind::kNone;
  sim::Duration delay{0};     // From the call to the crash, or to the window's opening.
  sim::Duration duration{0};  // Downtime, or how long the window stays open.
  double probability = 0;     // I/O errors.
  bool bit_flips_on_recovery = false;

  static Fault draw() {
    Fault fault;
    const int kind = *rc::gen::inRange(0, 8);
    if (kind < 4) return fault;
    fault.kind = kind < 6 ? Kind::kCrash : Kind::kIoErrors;
    // A write takes ~0.5 ms on the network and 1-4 ms in its fsync: crashes
    // land before, inside and after it; error windows open around it.
    fault.delay = std::chrono::microseconds{*rc::gen::inRange(0, kind < 6 ? 9000 : 2000)};
    if (fault.kind == Kind::kCrash) {
      fault.duration = std::chrono::milliseconds{*rc::gen::inRange(1, 300)};
      fault.bit_flips_on_recovery = *rc::gen::inRange(0, 4) == 0;
    } else {
      fault.duration = std::chrono::milliseconds{*rc::gen::inRange(5, 400)};
      fault.probability = *rc::gen::element(0.1, 0.5, 1.0);
    }
    return fault;
  }

  void show(std::ostream& os) const {
    switch (kind) {
      case Kind::kNone: return;
      case Kind::kCrash:
        os << " +crash after " << delay.count() / 1000 << "us for " << duration.count() / 1'000'000 << "ms"
           << (bit_flips_on_recovery ? " (bit flips on recovery)" : "");
        return;
      case Kind::kIoErrors:
        os << " +io errors p=" << probability << " after " << delay.count() / 1000 << "us for "
           << duration.count() / 1'000'000 << "ms";
        return;
    }
  }
};

// --- The system under test ---------------------------------------------------------

class Harness {
 public:
  explicit Harness(std::uint64_t seed) : world_(seed, options(), world_options(seed)) {}

  static StoreOptions options() {
    StoreOptions options;
    options.compact_log_bytes = 6 << 10;  // Compact often: crashes land in compactions.
    options.compact_snapshot_ratio = 0;
    options.restart_delay = 20ms;
    return options;
  }
  static sim::WorldOptions world_options(std::uint64_t seed) {
    sim::WorldOptions options = testing::quiet_world(seed);
    options.network.loss_probability = 0.002;
    options.network.duplicate_probability = 0.01;
    return options;
  }

  Model model;
  int unknown_outcomes = 0;
  int crashes_injected = 0;

  std::string fresh_request_id() { return "req-" + std::to_string(next_request_id_++); }

  // Calls `call` from the client with `fault` injected around it; nullopt
  // when the outcome is unknown. Leaves the store serving, every fault over.
  template <typename Reply, typename Call>
  std::optional<Reply> call_with_fault(const Fault& fault, Call call) {
    arm(fault);
    std::optional<Reply> reply;
    RC_ASSERT(world_.on_client([&](StoreClient& store) {
      sim::Result<Reply> result = call(store);
      if (result.ok()) reply = std::move(result.value());
    }));
    settle();
    if (!reply.has_value()) unknown_outcomes++;
    return reply;
  }

  // Calls until the store answers (retries across restarts); from a client fiber.
  template <typename Reply, typename Call>
  Reply call_until_answered(Call call) {
    std::optional<Reply> reply;
    RC_ASSERT(world_.on_client([&](StoreClient& store) {
      for (int attempt = 0; attempt < 50 && !reply.has_value(); attempt++) {
        sim::Result<Reply> result = call(store);
        if (result.ok()) {
          reply = std::move(result.value());
        } else {
          sim::this_fiber::sleep_for(50ms);
        }
      }
    }));
    RC_ASSERT(reply.has_value());
    return *reply;
  }

  // A read, retried if the network lost it; from a client fiber.
  template <typename Call>
  static auto read(StoreClient&, Call call) {
    auto result = call();
    for (int attempt = 0; attempt < 5 && !result.ok(); attempt++) result = call();
    if (!result.ok()) RC_FAIL("read failed: " + sim::to_string(result.error()));
    return std::move(result.value());
  }

  void crash_now(sim::Duration downtime, bool bit_flips) {
    arm(Fault{Fault::Kind::kCrash, sim::Duration{0}, downtime, 0, bit_flips});
    settle();
  }

  // Everything the store serves must equal the model.
  void verify() {
    const Model expected = model;
    RC_ASSERT(world_.on_client([&](StoreClient& store) {
      for (std::uint32_t shard = 1; shard <= kShards; shard++) {
        const ShardRecord record = read(store, [&] { return store.get_shard(shard, kCallTimeout); });
        RC_ASSERT(record == expected.shards.at(shard));
        const ReadTransferTasksReply transfer =
            read(store, [&] { return store.read_transfer_tasks({shard, 0, 4096}, kCallTimeout); });
        std::map<std::int64_t, std::string> transfer_seen;
        for (const TransferTask& task : transfer.tasks) transfer_seen[task.task_id] = task.task;
        const auto expected_transfer = expected.transfer.find(shard);
        RC_ASSERT(transfer_seen == (expected_transfer == expected.transfer.end() ? decltype(transfer_seen){}
                                                                                 : expected_transfer->second));
        const ReadTimerTasksReply timers = read(store, [&] {
          return store.read_timer_tasks({shard, sim::TimePoint{}, 0, sim::TimePoint::max(), 4096}, kCallTimeout);
        });
        std::map<TimerKey, std::string> timers_seen;
        for (const TimerTask& task : timers.tasks) timers_seen[{task.fire_time, task.task_id}] = task.task;
        const auto expected_timers = expected.timers.find(shard);
        RC_ASSERT(timers_seen ==
                  (expected_timers == expected.timers.end() ? decltype(timers_seen){} : expected_timers->second));
      }
      for (int workflow = 0; workflow < kWorkflows; workflow++) {
        const ExecutionKey key{workflow_name(workflow), "r"};
        const auto found = expected.runs.find(workflow);
        const RunModel run = found == expected.runs.end() ? RunModel{} : found->second;
        const GetExecutionReply execution = read(store, [&] { return store.get_execution(key, kCallTimeout); });
        RC_ASSERT(execution.found == run.exists);
        const GetCurrentReply current = read(store, [&] { return store.get_current(key.workflow_id, kCallTimeout); });
        RC_ASSERT(current.found == run.current);
        if (!run.exists) continue;
        RC_ASSERT(execution.version == run.version);
        RC_ASSERT(execution.next_event_id == run.next_event_id);
        RC_ASSERT(execution.mutable_state == run.mutable_state);
        RC_ASSERT(execution.shard_id == shard_of(workflow));
        const ReadHistoryReply history = read(store, [&] { return store.read_history({key, 1, 4096}, kCallTimeout); });
        RC_ASSERT(history.batches == run.history);
        RC_ASSERT(history.next_event_id == run.next_event_id);
      }
    }));
  }

  testing::StoreTestWorld& test_world() { return world_; }

 private:
  void arm(const Fault& fault) {
    sim::Simulator& sim = world_.sim();
    const sim::NodeId node = world_.store_node();
    sim::Disk& disk = world_.store_disk();
    const sim::TimePoint start = sim.now() + fault.delay;
    switch (fault.kind) {
      case Fault::Kind::kNone: return;
      case Fault::Kind::kCrash:
        sim.schedule_at(start, [this, &sim, &disk, node, fault] {
          if (!sim.is_up(node)) return;
          sim.crash(node);
          crashes_injected++;
          if (fault.bit_flips_on_recovery) {
            disk.set_corruption_probability(0.3, sim::CorruptionKinds{true, false, false});
          }
        });
        sim.schedule_at(start + fault.duration, [&sim, node] {
          if (!sim.is_up(node)) sim.restart(node);
        });
        break;
      case Fault::Kind::kIoErrors:
        sim.schedule_at(start, [&disk, p = fault.probability] { disk.set_io_error_probability(p); });
        sim.schedule_at(start + fault.duration, [&disk] { disk.clear_io_errors(); });
        break;
    }
    fault_over_at_ = std::max(fault_over_at_, start + fault.duration);
  }

  // Runs until every armed fault is over and the store serves again.
  void settle() {
    const sim::TimePoint over = fault_over_at_;
    world_.run_until([&] { return world_.sim().now() >= over; }, over - std::min(over, world_.sim().now()) + 1ms);
    RC_ASSERT(world_.sim().now() >= over);
    // Bit flips were for the recovery only; let it finish first.
    if (!world_.wait_serving(30s)) {
      StoreService* service = world_.service();
      RC_FAIL("the store did not come back: " + std::string(service ? service->failure() : "down"));
    }
    world_.store_disk().clear_corruption();
  }

  testing::StoreTestWorld world_;
  sim::TimePoint fault_over_at_{};
  std::uint64_t next_request_id_ = 1;
};

using Command = rc::state::Command<Model, Harness>;

// Commands hold only abstract choices: the request is built at run time
// from the harness's resolved model, so shrinking never makes one invalid.

struct WriteCommand : Command {
  enum class Mode : std::uint8_t { kGood, kStaleVersion, kEventGap, kStaleRange };
  int workflow = *rc::gen::inRange(0, kWorkflows);
  std::int64_t events = *rc::gen::inRange<std::int64_t>(0, 4);
  Mode mode = *rc::gen::weightedElement<Mode>(
      {{8, Mode::kGood}, {1, Mode::kStaleVersion}, {1, Mode::kEventGap}, {1, Mode::kStaleRange}});
  int transfer_tasks = *rc::gen::inRange(0, 3);
  int timer_tasks = *rc::gen::inRange(0, 3);
  std::size_t payload_bytes = *rc::gen::element<std::size_t>(10, 300, 2000);
  bool retry_on_unknown = *rc::gen::arbitrary<bool>();
  Fault fault = Fault::draw();

  void run(const Model&, Harness& h) const override {
    Model& m = h.model;
    RunModel& run = m.runs[workflow];
    const std::uint32_t shard = shard_of(workflow);
    const std::int64_t range = m.shards[shard].range_id;

    WriteRequest request;
    request.request_id = h.fresh_request_id();
    request.shard_id = shard;
    request.range_id = mode == Mode::kStaleRange ? range - 1 : range;
    ExecutionWrite write;
    write.workflow_id = workflow_name(workflow);
    write.run_id = "r";
    write.expected_version = run.exists ? run.version : 0;
    if (mode == Mode::kStaleVersion) write.expected_version = run.exists ? run.version + 1 : 1;
    std::int64_t appended = mode == Mode::kEventGap ? std::max<std::int64_t>(events, 1) : events;
    if (appended > 0) {
      const std::int64_t first = run.next_event_id + (mode == Mode::kEventGap ? 1 : 0);
      write.append = HistoryBatch{first, appended, request.request_id + std::string(payload_bytes, 'e')};
    }
    write.mutable_state = "ms of " + request.request_id;
    request.executions.push_back(write);
    if (!run.exists) {
      request.currents.push_back(
          CurrentWrite{std::nullopt, CurrentRecord{write.workflow_id, "r", true, request.request_id, 0}});
    }
    for (int i = 0; i < transfer_tasks; i++) request.transfer_tasks.push_back({m.next_task_id++, "t"});
    for (int i = 0; i < timer_tasks; i++) {
      const std::int64_t id = m.next_task_id++;
      request.timer_tasks.push_back({sim::kDefaultStartTime + std::chrono::seconds{id % 7}, id, "timer"});
    }

    // What the store must answer, by the contract's rules.
    WriteStatus expected = WriteStatus::kOk;
    if (request.range_id <= 0) {
      expected = WriteStatus::kInvalid;
    } else if (mode == Mode::kEventGap && !run.exists) {
      expected = WriteStatus::kInvalid;  // A create must start at event 1.
    } else if (request.range_id != range) {
      expected = WriteStatus::kShardOwnershipLost;
    } else if (mode == Mode::kStaleVersion || mode == Mode::kEventGap) {
      expected = WriteStatus::kConditionFailed;
    }

    auto send = [&](StoreClient& store) { return store.write(request, kCallTimeout); };
    std::optional<WriteReply> reply = h.call_with_fault<WriteReply>(fault, send);
    if (!reply.has_value() && retry_on_unknown) {
      reply = h.call_until_answered<WriteReply>(send);  // Same request id: applied once at most.
    }
    if (reply.has_value()) {
      RC_ASSERT(reply->status == expected);
      if (expected == WriteStatus::kOk) apply(m, request);
    } else {
      resolve(h, request, expected);
    }
    h.verify();
  }

  static void apply(Model& m, const WriteRequest& request) {
    for (const ExecutionWrite& write : request.executions) {
      RunModel& run = m.runs[std::stoi(write.workflow_id.substr(3))];
      run.exists = true;
      run.version++;
      run.mutable_state = write.mutable_state;
      if (write.append.has_value()) {
        run.history.push_back(*write.append);
        run.next_event_id += write.append->event_count;
      }
    }
    for (const CurrentWrite& current : request.currents) m.runs[std::stoi(current.record.workflow_id.substr(3))].current = true;
    for (const TransferTask& task : request.transfer_tasks) m.transfer[request.shard_id][task.task_id] = task.task;
    for (const TimerTask& task : request.timer_tasks) m.timers[request.shard_id][{task.fire_time, task.task_id}] = task.task;
  }

  // Unknown outcome: re-read. A write that could not apply must not have;
  // one that could is wholly there or wholly absent (verify() then checks
  // every part against the model resolved here).
  void resolve(Harness& h, const WriteRequest& request, WriteStatus expected) const {
    const ExecutionKey key{request.executions[0].workflow_id, "r"};
    const GetExecutionReply now = h.call_until_answered<GetExecutionReply>(
        [&](StoreClient& store) { return store.get_execution(key, kCallTimeout); });
    const RunModel& run = h.model.runs[workflow];
    const bool applied = now.found && now.version == run.version + 1;
    RC_ASSERT(applied || (now.found == run.exists && now.version == run.version));
    if (applied) {
      RC_ASSERT(expected == WriteStatus::kOk);
      apply(h.model, request);
    }
  }

  void show(std::ostream& os) const override {
    static const char* kModes[] = {"good", "stale-version", "event-gap", "stale-range"};
    os << "Write(wf-" << workflow << ", " << events << " events, " << kModes[static_cast<int>(mode)] << ", "
       << transfer_tasks << "+" << timer_tasks << " tasks, " << payload_bytes << "B"
       << (retry_on_unknown ? ", retry" : ", reread") << ")";
    fault.show(os);
  }
};

struct UpdateShardCommand : Command {
  enum class Mode : std::uint8_t { kTake, kRenew, kStale };
  std::uint32_t shard = *rc::gen::inRange<std::uint32_t>(1, kShards + 1);
  Mode mode = *rc::gen::weightedElement<Mode>({{3, Mode::kTake}, {2, Mode::kRenew}, {1, Mode::kStale}});
  bool retry_on_unknown = *rc::gen::arbitrary<bool>();
  Fault fault = Fault::draw();

  void run(const Model&, Harness& h) const override {
    const ShardRecord current = h.model.shards[shard];
    UpdateShardRequest request;
    request.request_id = h.fresh_request_id();
    request.expected_range_id = mode == Mode::kStale ? current.range_id + 1 : current.range_id;
    request.record = current;
    request.record.owner = "owner-" + request.request_id;
    request.record.data = "ack levels " + request.request_id;
    if (mode == Mode::kRenew) {
      request.record.lease_epoch++;
    } else {
      request.record.range_id = request.expected_range_id + 1;
    }
    const WriteStatus expected = mode == Mode::kStale ? WriteStatus::kConditionFailed : WriteStatus::kOk;

    auto send = [&](StoreClient& store) { return store.update_shard(request, kCallTimeout); };
    std::optional<UpdateShardReply> reply = h.call_with_fault<UpdateShardReply>(fault, send);
    if (!reply.has_value() && retry_on_unknown) reply = h.call_until_answered<UpdateShardReply>(send);
    if (reply.has_value()) {
      RC_ASSERT(reply->status == expected);
      RC_ASSERT(reply->current == (expected == WriteStatus::kOk ? request.record : current));
      if (expected == WriteStatus::kOk) h.model.shards[shard] = request.record;
    } else {
      const ShardRecord now = h.call_until_answered<ShardRecord>(
          [&](StoreClient& store) { return store.get_shard(shard, kCallTimeout); });
      RC_ASSERT(now == current || (expected == WriteStatus::kOk && now == request.record));
      h.model.shards[shard] = now;
    }
    h.verify();
  }

  void show(std::ostream& os) const override {
    static const char* kModes[] = {"take", "renew", "stale"};
    os << "UpdateShard(" << shard << ", " << kModes[static_cast<int>(mode)]
       << (retry_on_unknown ? ", retry" : ", reread") << ")";
    fault.show(os);
  }
};

struct CompleteTasksCommand : Command {
  std::uint32_t shard = *rc::gen::inRange<std::uint32_t>(1, kShards + 1);
  int up_to_percent = *rc::gen::inRange(0, 101);
  int timers_to_complete = *rc::gen::inRange(0, 3);
  bool stale = *rc::gen::inRange(0, 5) == 0;
  Fault fault = Fault::draw();

  void run(const Model&, Harness& h) const override {
    Model& m = h.model;
    const std::int64_t range = m.shards[shard].range_id;
    CompleteTasksRequest request;
    request.request_id = h.fresh_request_id();
    request.shard_id = shard;
    request.range_id = stale ? range - 1 : range;
    request.transfer_up_to_task_id = m.next_task_id * up_to_percent / 100;
    int picked = 0;
    for (const auto& [key, task] : m.timers[shard]) {
      if (picked++ >= timers_to_complete) break;
      request.timer_tasks.push_back(key);
    }
    WriteStatus expected = WriteStatus::kOk;
    if (request.range_id <= 0) {
      expected = WriteStatus::kInvalid;
    } else if (request.range_id != range) {
      expected = WriteStatus::kShardOwnershipLost;
    }
    Model after = m;
    auto& transfer = after.transfer[shard];
    transfer.erase(transfer.begin(), transfer.upper_bound(request.transfer_up_to_task_id));
    for (const TimerKey& key : request.timer_tasks) after.timers[shard].erase(key);

    std::optional<WriteReply> reply = h.call_with_fault<WriteReply>(
        fault, [&](StoreClient& store) { return store.complete_tasks(request, kCallTimeout); });
    if (reply.has_value()) {
      RC_ASSERT(reply->status == expected);
      if (expected == WriteStatus::kOk) m = after;
    } else {
      const ReadTransferTasksReply now = h.call_until_answered<ReadTransferTasksReply>(
          [&](StoreClient& store) { return store.read_transfer_tasks({shard, 0, 4096}, kCallTimeout); });
      const ReadTimerTasksReply timers_now = h.call_until_answered<ReadTimerTasksReply>([&](StoreClient& store) {
        return store.read_timer_tasks({shard, sim::TimePoint{}, 0, sim::TimePoint::max(), 4096}, kCallTimeout);
      });
      // Applied iff the transfer tasks or the timers moved: then both must have.
      const bool transfer_applied = now.tasks.size() != m.transfer[shard].size();
      const bool timers_applied = timers_now.tasks.size() != m.timers[shard].size();
      RC_ASSERT(expected == WriteStatus::kOk || (!transfer_applied && !timers_applied));
      if (transfer_applied || timers_applied) m = after;
    }
    h.verify();
  }

  void show(std::ostream& os) const override {
    os << "CompleteTasks(" << shard << ", up to " << up_to_percent << "%, " << timers_to_complete << " timers"
       << (stale ? ", stale" : "") << ")";
    fault.show(os);
  }
};

struct ReadCommand : Command {
  void run(const Model&, Harness& h) const override { h.verify(); }
  void show(std::ostream& os) const override { os << "Read"; }
};

struct CrashCommand : Command {
  int downtime_ms = *rc::gen::inRange(0, 500);
  bool bit_flips = *rc::gen::inRange(0, 3) == 0;

  void run(const Model&, Harness& h) const override {
    h.crash_now(std::chrono::milliseconds{downtime_ms}, bit_flips);
    h.verify();  // Every acknowledged write survived.
  }
  void show(std::ostream& os) const override {
    os << "CrashRestart(" << downtime_ms << "ms" << (bit_flips ? ", bit flips on recovery" : "") << ")";
  }
};

RC_GTEST_PROP(StoreStateful, AcknowledgedWritesSurviveAndConditionsHoldAcrossCrashes, ()) {
  const std::uint64_t seed = *rc::gen::arbitrary<std::uint64_t>();
  Harness h(seed);
  RC_ASSERT(h.test_world().wait_serving());
  rc::state::check(Model{}, h,
                   rc::state::gen::execOneOfWithArgs<WriteCommand, WriteCommand, WriteCommand, WriteCommand,
                                                     UpdateShardCommand, UpdateShardCommand, CompleteTasksCommand,
                                                     ReadCommand, CrashCommand>());
  // One last crash: everything acknowledged is still there.
  h.crash_now(10ms, false);
  h.verify();
  // How much of the fault space this case reached (printed as a distribution).
  const sim::DiskStats& disk = h.test_world().store_disk().stats();
  RC_CLASSIFY(h.unknown_outcomes > 0, "unknown outcomes");
  RC_CLASSIFY(disk.unsynced_writes_torn > 0, "torn writes");
  RC_CLASSIFY(disk.io_errors_injected > 0, "I/O errors");
  RC_CLASSIFY(h.test_world().boots() > 1 + h.crashes_injected, "self-restarts");
  RC_CLASSIFY(h.test_world().service()->log().generation() > 1, "compacted");
}

}  // namespace
}  // namespace duro::engine::store
