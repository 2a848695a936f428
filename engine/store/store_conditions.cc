#include "engine/store/store_conditions.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <set>
#include <string_view>
#include <utility>
#include <vector>

namespace duro::engine::store {
namespace {

std::string key_text(const std::string& workflow_id, const std::string& run_id) {
  return fmt::format("{}/{}", workflow_id, run_id);
}

std::optional<std::string> invalid_update_shard(const UpdateShardRequest& request) {
  if (request.request_id.empty()) return "UpdateShard without a request id";
  if (request.expected_range_id < 0) return "negative expected_range_id";
  // Fencing works only if range ids never go back: a taker that writes a
  // lower range_id would let a fenced-out owner write again.
  if (request.record.range_id < request.expected_range_id) {
    return fmt::format("range_id would go back from {} to {}", request.expected_range_id, request.record.range_id);
  }
  return std::nullopt;
}

std::optional<std::string> invalid_renew_shards(const RenewShardsRequest& request) {
  if (request.request_id.empty()) return "RenewShards without a request id";
  if (request.records.empty()) return "RenewShards without records";
  if (request.records.size() > kRenewShardsMax) {
    return fmt::format("RenewShards of {} shards, above the bound of {}", request.records.size(), kRenewShardsMax);
  }
  std::set<std::uint32_t> shards;
  for (const ShardRecord& record : request.records) {
    if (record.range_id <= 0) return fmt::format("shard {}: range_id must be positive", record.shard_id);
    if (!shards.insert(record.shard_id).second) return fmt::format("shard {} renewed twice", record.shard_id);
  }
  return std::nullopt;
}

std::optional<std::string> invalid_fencing(const std::string& request_id, std::int64_t range_id) {
  if (request_id.empty()) return "a write without a request id";
  if (range_id <= 0) return "range_id must be positive: take the shard first";
  return std::nullopt;
}

// The first item of `items` whose key an earlier one has, or nullptr. A
// write carries a few of each kind: they are compared pairwise, without
// allocating; a long list is sorted.
template <typename Item, typename KeyOf>
const Item* first_repeat(const std::vector<Item>& items, KeyOf key_of) {
  constexpr std::size_t kPairwiseMax = 16;
  if (items.size() <= kPairwiseMax) {
    for (std::size_t i = 1; i < items.size(); i++) {
      for (std::size_t j = 0; j < i; j++) {
        if (key_of(items[j]) == key_of(items[i])) return &items[i];
      }
    }
    return nullptr;
  }
  std::vector<std::pair<decltype(key_of(items.front())), std::size_t>> keys;
  keys.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); i++) keys.emplace_back(key_of(items[i]), i);
  std::sort(keys.begin(), keys.end());
  const auto repeat = std::adjacent_find(keys.begin(), keys.end(),
                                         [](const auto& a, const auto& b) { return a.first == b.first; });
  return repeat == keys.end() ? nullptr : &items[std::next(repeat)->second];
}

std::optional<std::string> invalid_write(const WriteRequest& request) {
  if (auto reason = invalid_fencing(request.request_id, request.range_id)) return reason;
  for (const ExecutionWrite& execution : request.executions) {
    if (execution.workflow_id.empty() || execution.run_id.empty()) return "an execution without workflow or run id";
    if (execution.append.has_value()) {
      const HistoryBatch& batch = *execution.append;
      if (batch.first_event_id < 1 || batch.event_count < 1) {
        return fmt::format("{}: an append needs first_event_id >= 1 and event_count >= 1 (got {} and {})",
                           key_text(execution.workflow_id, execution.run_id), batch.first_event_id,
                           batch.event_count);
      }
      if (execution.expected_version == 0 && batch.first_event_id != 1) {
        return fmt::format("{}: a new run's history starts at event 1, not {}",
                           key_text(execution.workflow_id, execution.run_id), batch.first_event_id);
      }
    }
  }
  for (const ExecutionKey& key : request.deletes) {
    if (key.workflow_id.empty() || key.run_id.empty()) return "a delete without workflow or run id";
  }
  // A run is written or deleted once per write. Deletes are rare (history
  // retention): only a write with some gathers both kinds into one list.
  using KeyView = std::pair<std::string_view, std::string_view>;
  if (request.deletes.empty()) {
    const auto written_key = [](const ExecutionWrite& write) { return KeyView{write.workflow_id, write.run_id}; };
    if (const ExecutionWrite* twice = first_repeat(request.executions, written_key)) {
      return "execution " + key_text(twice->workflow_id, twice->run_id) + " written twice";
    }
  } else {
    std::vector<KeyView> keys;
    keys.reserve(request.executions.size() + request.deletes.size());
    for (const ExecutionWrite& write : request.executions) keys.emplace_back(write.workflow_id, write.run_id);
    for (const ExecutionKey& key : request.deletes) keys.emplace_back(key.workflow_id, key.run_id);
    if (const KeyView* twice = first_repeat(keys, [](const KeyView& key) { return key; })) {
      return fmt::format("execution {}/{} written twice", twice->first, twice->second);
    }
  }
  for (const CurrentWrite& current : request.currents) {
    if (current.record.workflow_id.empty() || current.record.run_id.empty()) {
      return "a current record without workflow or run id";
    }
  }
  if (const CurrentWrite* twice = first_repeat(
          request.currents, [](const CurrentWrite& current) { return std::string_view(current.record.workflow_id); })) {
    return "current record of " + twice->record.workflow_id + " written twice";
  }
  for (const TransferTask& task : request.transfer_tasks) {
    if (task.task_id <= 0) return fmt::format("transfer task id {} is not positive", task.task_id);
  }
  if (const TransferTask* twice =
          first_repeat(request.transfer_tasks, [](const TransferTask& task) { return task.task_id; })) {
    return fmt::format("transfer task {} twice", twice->task_id);
  }
  for (const TimerTask& task : request.timer_tasks) {
    if (task.task_id <= 0) return fmt::format("timer task id {} is not positive", task.task_id);
  }
  if (const TimerTask* twice = first_repeat(
          request.timer_tasks, [](const TimerTask& task) { return std::pair{task.fire_time, task.task_id}; })) {
    return fmt::format("timer task {} twice at the same fire time", twice->task_id);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> invalid_reason(const StoreMutation& mutation) {
  if (const auto* update = std::get_if<UpdateShardRequest>(&mutation)) return invalid_update_shard(*update);
  if (const auto* complete = std::get_if<CompleteTasksRequest>(&mutation)) {
    return invalid_fencing(complete->request_id, complete->range_id);
  }
  if (const auto* renew = std::get_if<RenewShardsRequest>(&mutation)) return invalid_renew_shards(*renew);
  return invalid_write(std::get<WriteRequest>(mutation));
}

namespace detail {

Outcome duplicate_outcome(MutationKind kind, const RememberedRequest& remembered) {
  if (remembered.kind != kind) {
    return failed(WriteStatus::kInvalid, fmt::format("request id already applied as {}, not {}",
                                                     mutation_kind_name(remembered.kind), mutation_kind_name(kind)));
  }
  Outcome outcome;
  outcome.duplicate = true;
  outcome.shard = remembered.shard;
  return outcome;
}

Outcome failed(WriteStatus status, std::string detail) {
  DURO_ASSERT(status != WriteStatus::kOk);
  Outcome outcome;
  outcome.status = status;
  outcome.detail = std::move(detail);
  return outcome;
}

std::optional<std::string> fencing_failure(const ShardRecord* shard, std::uint32_t shard_id, std::int64_t range_id) {
  const std::int64_t current = shard != nullptr ? shard->range_id : 0;
  if (current == range_id) return std::nullopt;
  return fmt::format("shard {} is at range_id {}, the writer holds {}", shard_id, current, range_id);
}

std::optional<std::string> execution_condition_failure(const ExecutionWrite& write,
                                                       const std::optional<ExecutionMeta>& meta,
                                                       std::uint32_t shard_id, WriteStatus& status) {
  // Named only in a failure: the check runs twice for every write.
  const auto key = [&] { return key_text(write.workflow_id, write.run_id); };
  status = WriteStatus::kConditionFailed;
  if (write.expected_version == 0) {
    if (meta.has_value()) return fmt::format("{}: run exists (version {})", key(), meta->version);
    return std::nullopt;
  }
  if (!meta.has_value()) return fmt::format("{}: no such run (expected version {})", key(), write.expected_version);
  if (meta->shard_id != shard_id) {
    status = WriteStatus::kInvalid;
    return fmt::format("{}: the run belongs to shard {}, not {}", key(), meta->shard_id, shard_id);
  }
  if (meta->version != write.expected_version) {
    return fmt::format("{}: version is {}, expected {}", key(), meta->version, write.expected_version);
  }
  if (write.append.has_value() && write.append->first_event_id != meta->next_event_id) {
    return fmt::format("{}: next event id is {}, the append starts at {}", key(), meta->next_event_id,
                       write.append->first_event_id);
  }
  return std::nullopt;
}

std::optional<std::string> current_condition_failure(const CurrentWrite& write, const CurrentRecord* current) {
  const std::string& workflow_id = write.record.workflow_id;
  if (!write.expected_run_id.has_value()) {
    if (current != nullptr) return fmt::format("{}: has a current run ({})", workflow_id, current->run_id);
    return std::nullopt;
  }
  if (current == nullptr) {
    return fmt::format("{}: no current run (expected {})", workflow_id, *write.expected_run_id);
  }
  if (current->run_id != *write.expected_run_id) {
    return fmt::format("{}: current run is {}, expected {}", workflow_id, current->run_id, *write.expected_run_id);
  }
  return std::nullopt;
}

std::optional<std::string> delete_condition_failure(const ExecutionKey& key, const std::optional<ExecutionMeta>& meta,
                                                    std::uint32_t shard_id) {
  if (meta.has_value() && meta->shard_id != shard_id) {
    return fmt::format("{}: delete from shard {}, but the run belongs to shard {}",
                       key_text(key.workflow_id, key.run_id), shard_id, meta->shard_id);
  }
  return std::nullopt;
}

}  // namespace detail
}  // namespace duro::engine::store
