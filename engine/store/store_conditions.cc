#include "engine/store/store_conditions.h"

#include <fmt/format.h>

#include <set>
#include <utility>

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

std::optional<std::string> invalid_write(const WriteRequest& request) {
  if (auto reason = invalid_fencing(request.request_id, request.range_id)) return reason;
  std::set<ExecutionKey> keys;
  for (const ExecutionWrite& execution : request.executions) {
    if (execution.workflow_id.empty() || execution.run_id.empty()) return "an execution without workflow or run id";
    if (!keys.insert(ExecutionKey{execution.workflow_id, execution.run_id}).second) {
      return "execution " + key_text(execution.workflow_id, execution.run_id) + " written twice";
    }
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
    if (!keys.insert(key).second) return "execution " + key_text(key.workflow_id, key.run_id) + " written twice";
  }
  std::set<std::string_view> workflows;
  for (const CurrentWrite& current : request.currents) {
    if (current.record.workflow_id.empty() || current.record.run_id.empty()) {
      return "a current record without workflow or run id";
    }
    if (!workflows.insert(current.record.workflow_id).second) {
      return "current record of " + current.record.workflow_id + " written twice";
    }
  }
  std::set<std::int64_t> transfer_ids;
  for (const TransferTask& task : request.transfer_tasks) {
    if (task.task_id <= 0) return fmt::format("transfer task id {} is not positive", task.task_id);
    if (!transfer_ids.insert(task.task_id).second) return fmt::format("transfer task {} twice", task.task_id);
  }
  std::set<std::pair<sim::TimePoint, std::int64_t>> timer_keys;
  for (const TimerTask& task : request.timer_tasks) {
    if (task.task_id <= 0) return fmt::format("timer task id {} is not positive", task.task_id);
    if (!timer_keys.emplace(task.fire_time, task.task_id).second) {
      return fmt::format("timer task {} twice at the same fire time", task.task_id);
    }
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
  const std::string key = key_text(write.workflow_id, write.run_id);
  status = WriteStatus::kConditionFailed;
  if (write.expected_version == 0) {
    if (meta.has_value()) return fmt::format("{}: run exists (version {})", key, meta->version);
    return std::nullopt;
  }
  if (!meta.has_value()) return fmt::format("{}: no such run (expected version {})", key, write.expected_version);
  if (meta->shard_id != shard_id) {
    status = WriteStatus::kInvalid;
    return fmt::format("{}: the run belongs to shard {}, not {}", key, meta->shard_id, shard_id);
  }
  if (meta->version != write.expected_version) {
    return fmt::format("{}: version is {}, expected {}", key, meta->version, write.expected_version);
  }
  if (write.append.has_value() && write.append->first_event_id != meta->next_event_id) {
    return fmt::format("{}: next event id is {}, the append starts at {}", key, meta->next_event_id,
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
