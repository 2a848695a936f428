#include "engine/store/store_pending.h"

#include <iterator>

namespace duro::engine::store {
namespace {

// Erases the entries of `map` tagged at or below `sequence`. One pass.
template <typename Map, typename SequenceOf>
void erase_retired(Map& map, std::uint64_t sequence, SequenceOf sequence_of) {
  for (auto it = map.begin(); it != map.end();) {
    it = sequence_of(it->second) <= sequence ? map.erase(it) : std::next(it);
  }
}

}  // namespace

const ShardRecord* PendingWrites::shard_record(std::uint32_t shard_id) const {
  auto found = shards_.find(shard_id);
  return found != shards_.end() ? &found->second.value : state_.shard_record(shard_id);
}

std::optional<ExecutionMeta> PendingWrites::execution_meta(ExecutionKeyRef key) const {
  auto found = executions_.find(key);
  return found != executions_.end() ? found->second.value : state_.execution_meta(key);
}

const CurrentRecord* PendingWrites::current_record(std::string_view workflow_id) const {
  auto found = currents_.find(workflow_id);
  return found != currents_.end() ? &found->second.value : state_.current_record(workflow_id);
}

const RememberedRequest* PendingWrites::remembered(std::string_view request_id) const {
  auto found = requests_.find(request_id);
  return found != requests_.end() ? &found->second : state_.remembered(request_id);
}

void PendingWrites::add(const StoreMutation& mutation, const Outcome& outcome, std::uint64_t sequence) {
  DURO_ASSERT(outcome.applies());
  DURO_ASSERT(sequence > last_sequence_ && sequence > state_.last_sequence());
  last_sequence_ = sequence;
  if (const auto* update = std::get_if<UpdateShardRequest>(&mutation)) {
    shards_.insert_or_assign(update->record.shard_id, Tagged<ShardRecord>{update->record, sequence});
  } else if (const auto* renew = std::get_if<RenewShardsRequest>(&mutation)) {
    for (const ShardRecord& record : renew->records) {
      shards_.insert_or_assign(record.shard_id, Tagged<ShardRecord>{record, sequence});
    }
  } else if (const auto* write = std::get_if<WriteRequest>(&mutation)) {
    // Mirrors StoreState::apply_write on the fields conditions read.
    for (const ExecutionKey& key : write->deletes) {
      executions_.insert_or_assign(key, Tagged<std::optional<ExecutionMeta>>{std::nullopt, sequence});
    }
    for (const ExecutionWrite& execution : write->executions) {
      const ExecutionKeyRef key{execution.workflow_id, execution.run_id};
      ExecutionMeta meta = execution_meta(key).value_or(ExecutionMeta{write->shard_id, 0, 1});
      DURO_ASSERT(meta.version == execution.expected_version);
      meta.version++;
      if (execution.append.has_value()) meta.next_event_id += execution.append->event_count;
      const Tagged<std::optional<ExecutionMeta>> tagged{meta, sequence};
      // A key is built only for a run no pending write touched yet.
      if (auto found = executions_.find(key); found != executions_.end()) {
        found->second = tagged;
      } else {
        executions_.emplace(ExecutionKey{execution.workflow_id, execution.run_id}, tagged);
      }
    }
    for (const CurrentWrite& current : write->currents) {
      currents_.insert_or_assign(current.record.workflow_id, Tagged<CurrentRecord>{current.record, sequence});
    }
  }
  requests_.insert_or_assign(mutation_request_id(mutation),
                             RememberedRequest{mutation_kind(mutation), sequence, outcome.shard});
}

void PendingWrites::retire(std::uint64_t sequence) {
  DURO_ASSERT(sequence <= last_sequence_);
  DURO_ASSERT(state_.last_sequence() >= sequence);
  erase_retired(shards_, sequence, [](const auto& entry) { return entry.sequence; });
  erase_retired(executions_, sequence, [](const auto& entry) { return entry.sequence; });
  erase_retired(currents_, sequence, [](const auto& entry) { return entry.sequence; });
  erase_retired(requests_, sequence, [](const RememberedRequest& entry) { return entry.sequence; });
}

}  // namespace duro::engine::store
