#include "engine/store/store_state.h"

#include <algorithm>
#include <vector>

namespace duro::engine::store {
namespace {

// The snapshot image's own version, inside the snapshot file's framing.
// 3: request ids oldest first (2 listed them by id).
constexpr std::uint32_t kImageFormat = 3;

std::uint32_t clamp_limit(std::uint32_t requested, const ReadLimits& limits) {
  return std::min(requested, limits.items_max);
}

// A hashed table's entries in ascending key order.
template <typename Table>
std::vector<const typename Table::value_type*> sorted_by_key(const Table& table) {
  std::vector<const typename Table::value_type*> entries;
  entries.reserve(table.size());
  for (const auto& entry : table) entries.push_back(&entry);
  std::sort(entries.begin(), entries.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  return entries;
}

}  // namespace

StoreState::StoreState(std::size_t request_ids_max) : request_ids_(request_ids_max) {}

// --- Mutations -------------------------------------------------------------------

Outcome StoreState::apply(StoreMutation&& mutation, DuplicateCheck duplicates) {
  Outcome outcome = evaluate(*this, mutation, duplicates);
  if (!outcome.applies()) return outcome;
  last_sequence_++;
  std::visit(
      [&](auto& request) {
        using Request = std::decay_t<decltype(request)>;
        if constexpr (std::is_same_v<Request, UpdateShardRequest>) {
          apply_update_shard(request);
        } else if constexpr (std::is_same_v<Request, WriteRequest>) {
          apply_write(std::move(request));  // Leaves the request id.
        } else if constexpr (std::is_same_v<Request, RenewShardsRequest>) {
          for (const ShardRecord& record : request.records) shards_[record.shard_id] = record;
        } else {
          static_assert(std::is_same_v<Request, CompleteTasksRequest>);
          apply_complete_tasks(request);
        }
      },
      mutation);
  const bool fresh = request_ids_.remember(mutation_request_id(mutation),
                                          RememberedRequest{mutation_kind(mutation), last_sequence_, outcome.shard});
  DURO_ASSERT_MSG(fresh || duplicates != DuplicateCheck::kAssertFresh,
                  "a write judged fresh at submit found its request id already applied");
  return outcome;
}

void StoreState::apply_update_shard(const UpdateShardRequest& request) {
  shards_[request.record.shard_id] = request.record;
}

void StoreState::apply_write(WriteRequest&& request) {
  // Deletes first: the conditions made sure no key is both deleted and written.
  for (const ExecutionKey& key : request.deletes) executions_.erase(key);
  for (ExecutionWrite& write : request.executions) {
    // Looked up by the write's own ids: a key is built only for a new run.
    auto found = executions_.find(write);
    if (found == executions_.end()) found = executions_.try_emplace(ExecutionKey{write.workflow_id, write.run_id}).first;
    ExecutionRecord& record = found->second;
    if (write.expected_version == 0) {
      DURO_ASSERT(record.version == 0);
      record.shard_id = request.shard_id;
    }
    DURO_ASSERT(record.version == write.expected_version && record.shard_id == request.shard_id);
    record.version++;
    record.mutable_state = std::move(write.mutable_state);
    record.closed = write.closed;
    if (write.append.has_value()) {
      DURO_ASSERT(write.append->first_event_id == record.next_event_id && write.append->event_count > 0);
      record.next_event_id += write.append->event_count;
      const std::int64_t first_event_id = write.append->first_event_id;
      record.history.emplace_hint(record.history.end(), first_event_id, std::move(*write.append));
    }
  }
  for (CurrentWrite& current : request.currents) {
    std::string workflow_id = current.record.workflow_id;
    currents_.insert_or_assign(std::move(workflow_id), std::move(current.record));
  }
  // A task id already present is replaced: ids are the writer's to keep
  // unique (they come from its range), and replacing is idempotent.
  if (!request.transfer_tasks.empty()) {
    auto& tasks = transfer_tasks_[request.shard_id];
    for (TransferTask& task : request.transfer_tasks) tasks.insert_or_assign(task.task_id, std::move(task.task));
  }
  if (!request.timer_tasks.empty()) {
    auto& tasks = timer_tasks_[request.shard_id];
    for (TimerTask& task : request.timer_tasks) {
      tasks.insert_or_assign(TimerKey{task.fire_time, task.task_id}, std::move(task.task));
    }
  }
}

void StoreState::apply_complete_tasks(const CompleteTasksRequest& request) {
  if (auto found = transfer_tasks_.find(request.shard_id); found != transfer_tasks_.end()) {
    auto& tasks = found->second;
    tasks.erase(tasks.begin(), tasks.upper_bound(request.transfer_up_to_task_id));
    for (std::int64_t id : request.transfer_task_ids) tasks.erase(id);
    if (tasks.empty()) transfer_tasks_.erase(found);
  }
  if (auto found = timer_tasks_.find(request.shard_id); found != timer_tasks_.end()) {
    auto& tasks = found->second;
    for (const auto& key : request.timer_tasks) tasks.erase(key);
    if (tasks.empty()) timer_tasks_.erase(found);
  }
}

// --- View -------------------------------------------------------------------------

const ShardRecord* StoreState::shard_record(std::uint32_t shard_id) const {
  auto found = shards_.find(shard_id);
  return found == shards_.end() ? nullptr : &found->second;
}

std::optional<ExecutionMeta> StoreState::execution_meta(ExecutionKeyRef key) const {
  auto found = executions_.find(key);
  if (found == executions_.end()) return std::nullopt;
  return ExecutionMeta{found->second.shard_id, found->second.version, found->second.next_event_id};
}

const CurrentRecord* StoreState::current_record(std::string_view workflow_id) const {
  auto found = currents_.find(workflow_id);
  return found == currents_.end() ? nullptr : &found->second;
}

const RememberedRequest* StoreState::remembered(std::string_view request_id) const {
  return request_ids_.find(request_id);
}

// --- Reads ------------------------------------------------------------------------

ShardRecord StoreState::get_shard(std::uint32_t shard_id) const {
  const ShardRecord* record = shard_record(shard_id);
  if (record != nullptr) return *record;
  ShardRecord never_taken;
  never_taken.shard_id = shard_id;
  return never_taken;
}

GetExecutionReply StoreState::get_execution(const ExecutionKey& key) const {
  auto found = executions_.find(key);
  if (found == executions_.end()) return GetExecutionReply{};
  const ExecutionRecord& record = found->second;
  return GetExecutionReply{.found = true,
                           .shard_id = record.shard_id,
                           .version = record.version,
                           .next_event_id = record.next_event_id,
                           .mutable_state = record.mutable_state,
                           .closed = record.closed};
}

GetCurrentReply StoreState::get_current(std::string_view workflow_id) const {
  const CurrentRecord* record = current_record(workflow_id);
  if (record == nullptr) return GetCurrentReply{};
  return GetCurrentReply{.found = true, .record = *record};
}

ReadHistoryReply StoreState::read_history(const ReadHistoryRequest& request, const ReadLimits& limits) const {
  ReadHistoryReply reply;
  auto found = executions_.find(request.key);
  if (found == executions_.end()) return reply;
  const ExecutionRecord& record = found->second;
  reply.found = true;
  reply.next_event_id = record.next_event_id;
  const auto& history = record.history;
  // The batch that holds from_event_id: the last one starting at or before it.
  auto it = history.upper_bound(request.from_event_id);
  if (it != history.begin()) {
    auto holder = std::prev(it);
    if (holder->first + holder->second.event_count > request.from_event_id) it = holder;
  }
  const std::uint32_t batches_max = clamp_limit(request.max_batches, limits);
  std::uint64_t bytes = 0;
  for (; it != history.end() && reply.batches.size() < batches_max; ++it) {
    const std::uint64_t batch_bytes = it->second.events.size();
    if (!reply.batches.empty() && bytes + batch_bytes > limits.reply_bytes_max) break;
    bytes += batch_bytes;
    reply.batches.push_back(it->second);
  }
  return reply;
}

ReadTransferTasksReply StoreState::read_transfer_tasks(const ReadTransferTasksRequest& request,
                                                       const ReadLimits& limits) const {
  ReadTransferTasksReply reply;
  auto shard = transfer_tasks_.find(request.shard_id);
  if (shard == transfer_tasks_.end()) return reply;
  const std::uint32_t limit = clamp_limit(request.limit, limits);
  std::uint64_t bytes = 0;
  for (auto it = shard->second.upper_bound(request.after_task_id); it != shard->second.end(); ++it) {
    if (reply.tasks.size() >= limit ||
        (!reply.tasks.empty() && bytes + it->second.size() > limits.reply_bytes_max)) {
      reply.more = true;
      break;
    }
    bytes += it->second.size();
    reply.tasks.push_back(TransferTask{it->first, it->second});
  }
  return reply;
}

ReadTimerTasksReply StoreState::read_timer_tasks(const ReadTimerTasksRequest& request,
                                                 const ReadLimits& limits) const {
  ReadTimerTasksReply reply;
  auto shard = timer_tasks_.find(request.shard_id);
  if (shard == timer_tasks_.end()) return reply;
  const std::uint32_t limit = clamp_limit(request.limit, limits);
  std::uint64_t bytes = 0;
  for (auto it = shard->second.upper_bound(TimerKey{request.after_time, request.after_task_id});
       it != shard->second.end() && it->first.first <= request.up_to; ++it) {
    if (reply.tasks.size() >= limit ||
        (!reply.tasks.empty() && bytes + it->second.size() > limits.reply_bytes_max)) {
      reply.more = true;
      break;
    }
    bytes += it->second.size();
    reply.tasks.push_back(TimerTask{it->first.first, it->first.second, it->second});
  }
  return reply;
}

std::size_t StoreState::transfer_task_count() const noexcept {
  std::size_t count = 0;
  for (const auto& [shard, tasks] : transfer_tasks_) count += tasks.size();
  return count;
}

std::size_t StoreState::timer_task_count() const noexcept {
  std::size_t count = 0;
  for (const auto& [shard, tasks] : timer_tasks_) count += tasks.size();
  return count;
}

// --- Snapshot image -----------------------------------------------------------------
//
//   image = format (varint 1), last_sequence
//           shards:      count, ShardRecord ...                    (ascending shard id)
//           executions:  count, { key, shard_id, version, next_event_id,
//                                 mutable_state, closed,
//                                 count, HistoryBatch ... } ...       (ascending key)
//           currents:    count, CurrentRecord ...                   (ascending workflow id)
//           transfers:   count, { shard_id, TransferTask } ...      (ascending (shard, id))
//           timers:      count, { shard_id, TimerTask } ...         (ascending (shard, fire, id))
//           request ids: count, { id, kind, sequence, ShardRecord } (ascending id;
//                        the sequences give the eviction order back)
//
// Decoding checks every invariant the state keeps (keys strictly
// ascending, histories without gaps, sequences in range), so an image that
// passed its checksum but was written by a bug is refused, not served.

void StoreState::encode(std::string& output) const {
  sim::Encoder encoder(output);
  encoder.write_varint32(kImageFormat);
  encoder.write_varint64(last_sequence_);
  encoder.write_count(shards_.size());
  for (const auto& [id, record] : shards_) encoder.write(record);
  // The hashed tables by key, whatever their own order, so that equal
  // states encode alike.
  encoder.write_count(executions_.size());
  for (const auto* entry : sorted_by_key(executions_)) {
    const auto& [key, record] = *entry;
    encoder.write(key);
    encoder.write(record.shard_id);
    encoder.write(record.version);
    encoder.write(record.next_event_id);
    encoder.write(record.mutable_state);
    encoder.write(record.closed);
    encoder.write_count(record.history.size());
    for (const auto& [first, batch] : record.history) encoder.write(batch);
  }
  encoder.write_count(currents_.size());
  for (const auto* entry : sorted_by_key(currents_)) encoder.write(entry->second);
  encoder.write_count(transfer_task_count());
  for (const auto& [shard, tasks] : transfer_tasks_) {
    for (const auto& [id, task] : tasks) {
      encoder.write(shard);
      encoder.write(id);
      encoder.write(task);
    }
  }
  encoder.write_count(timer_task_count());
  for (const auto& [shard, tasks] : timer_tasks_) {
    for (const auto& [key, task] : tasks) {
      encoder.write(shard);
      encoder.write(key.first);
      encoder.write(key.second);
      encoder.write(task);
    }
  }
  // Oldest first: the order of eviction, by increasing sequence.
  encoder.write_count(request_ids_.size());
  request_ids_.for_each([&](std::string_view id, const RememberedRequest& remembered) {
    encoder.write_bytes(id);
    encoder.write(static_cast<std::uint8_t>(remembered.kind));
    encoder.write(remembered.sequence);
    encoder.write(remembered.shard);
  });
}

bool StoreState::operator==(const StoreState& other) const {
  std::string mine;
  std::string theirs;
  encode(mine);
  other.encode(theirs);
  return mine == theirs;
}

sim::Result<StoreState> StoreState::decode(std::string_view bytes, std::size_t request_ids_max) {
  StoreState state(request_ids_max);
  sim::Decoder decoder(bytes);
  // Each section reads a count checked against the remaining input, then
  // that many entries: every loop below is bounded by the input's size.
  auto fail = [&](const char* what) -> sim::Error {
    decoder.fail(what);
    return decoder.error();
  };
  std::uint32_t format = 0;
  if (!decoder.read_varint32(format)) return decoder.error();
  if (format != kImageFormat) return fail("unknown snapshot image format");
  if (!decoder.read_varint64(state.last_sequence_)) return decoder.error();

  std::size_t count = 0;
  if (!decoder.read_count(count, 1)) return decoder.error();
  for (std::size_t i = 0; i < count; i++) {
    ShardRecord record;
    if (!decoder.read(record)) return decoder.error();
    if (!state.shards_.empty() && state.shards_.rbegin()->first >= record.shard_id) return fail("shards out of order");
    state.shards_.emplace_hint(state.shards_.end(), record.shard_id, std::move(record));
  }

  if (!decoder.read_count(count, 1)) return decoder.error();
  state.executions_.reserve(count);
  const ExecutionKey* previous_key = nullptr;  // The last one read; table nodes do not move.
  for (std::size_t i = 0; i < count; i++) {
    ExecutionKey key;
    ExecutionRecord record;
    std::size_t batches = 0;
    if (!decoder.read(key) || !decoder.read(record.shard_id) || !decoder.read(record.version) ||
        !decoder.read(record.next_event_id) || !decoder.read(record.mutable_state) || !decoder.read(record.closed) ||
        !decoder.read_count(batches, 1)) {
      return decoder.error();
    }
    if (previous_key != nullptr && !(*previous_key < key)) return fail("executions out of order");
    if (record.version == 0) return fail("execution with version 0");
    std::int64_t next = 1;
    for (std::size_t b = 0; b < batches; b++) {
      HistoryBatch batch;
      if (!decoder.read(batch)) return decoder.error();
      if (batch.first_event_id != next || batch.event_count < 1) return fail("history batches not contiguous");
      next += batch.event_count;
      record.history.emplace_hint(record.history.end(), batch.first_event_id, std::move(batch));
    }
    if (next != record.next_event_id) return fail("history does not end at the next event id");
    previous_key = &state.executions_.emplace(std::move(key), std::move(record)).first->first;
  }

  if (!decoder.read_count(count, 1)) return decoder.error();
  state.currents_.reserve(count);
  const std::string* previous_workflow = nullptr;
  for (std::size_t i = 0; i < count; i++) {
    CurrentRecord record;
    if (!decoder.read(record)) return decoder.error();
    if (previous_workflow != nullptr && *previous_workflow >= record.workflow_id) {
      return fail("current records out of order");
    }
    std::string workflow_id = record.workflow_id;
    previous_workflow = &state.currents_.emplace(std::move(workflow_id), std::move(record)).first->first;
  }

  if (!decoder.read_count(count, 1)) return decoder.error();
  std::optional<std::pair<std::uint32_t, std::int64_t>> previous_transfer;
  for (std::size_t i = 0; i < count; i++) {
    std::uint32_t shard = 0;
    std::int64_t id = 0;
    std::string task;
    if (!decoder.read(shard) || !decoder.read(id) || !decoder.read(task)) return decoder.error();
    if (previous_transfer.has_value() && *previous_transfer >= std::pair{shard, id}) {
      return fail("transfer tasks out of order");
    }
    previous_transfer = std::pair{shard, id};
    auto& tasks = state.transfer_tasks_[shard];
    tasks.emplace_hint(tasks.end(), id, std::move(task));
  }

  if (!decoder.read_count(count, 1)) return decoder.error();
  std::optional<std::pair<std::uint32_t, TimerKey>> previous_timer;
  for (std::size_t i = 0; i < count; i++) {
    std::uint32_t shard = 0;
    TimerKey key;
    std::string task;
    if (!decoder.read(shard) || !decoder.read(key.first) || !decoder.read(key.second) || !decoder.read(task)) {
      return decoder.error();
    }
    if (previous_timer.has_value() && *previous_timer >= std::pair{shard, key}) {
      return fail("timer tasks out of order");
    }
    previous_timer = std::pair{shard, key};
    auto& tasks = state.timer_tasks_[shard];
    tasks.emplace_hint(tasks.end(), key, std::move(task));
  }

  if (!decoder.read_count(count, 1)) return decoder.error();
  std::uint64_t previous_sequence = 0;
  for (std::size_t i = 0; i < count; i++) {
    std::string id;
    std::uint8_t kind = 0;
    RememberedRequest entry;
    if (!decoder.read(id) || !decoder.read(kind) || !decoder.read(entry.sequence) || !decoder.read(entry.shard)) {
      return decoder.error();
    }
    if (kind < static_cast<std::uint8_t>(MutationKind::kUpdateShard) ||
        kind > static_cast<std::uint8_t>(kMutationKindLast)) {
      return fail("unknown mutation kind in the request-id table");
    }
    entry.kind = static_cast<MutationKind>(kind);
    if (entry.sequence == 0 || entry.sequence > state.last_sequence_) {
      return fail("request-id table: a sequence out of range");
    }
    if (entry.sequence <= previous_sequence) return fail("request-id table out of order");
    previous_sequence = entry.sequence;
    // A table above request_ids_max (the bound shrank between runs) loses
    // its oldest ids as the newer ones come in.
    if (!state.request_ids_.remember(id, entry)) return fail("request-id table: an id twice");
  }
  if (!decoder.finish()) return decoder.error();
  return state;
}

}  // namespace duro::engine::store
