#include "engine/store/store_pending.h"

#include <iterator>

namespace duro::engine::store {
namespace {

// Erases the entries of `map` tagged at or below `sequence`, keeping up to
// `spares_max` of their nodes in `spares` (if given). One pass.
template <typename Map, typename SequenceOf>
void erase_retired(Map& map, std::uint64_t sequence, SequenceOf sequence_of,
                   std::vector<typename Map::node_type>* spares = nullptr, std::size_t spares_max = 0) {
  for (auto it = map.begin(); it != map.end();) {
    if (sequence_of(it->second) > sequence) {
      ++it;
    } else if (spares != nullptr && spares->size() < spares_max) {
      spares->push_back(map.extract(it++));
    } else {
      it = map.erase(it);
    }
  }
}

// Inserts make_key() -> `value`, a key not in `map`, in a node from
// `spares` if there is one.
template <typename Map, typename Value, typename MakeKey>
void insert_new(Map& map, std::vector<typename Map::node_type>& spares, Value value, MakeKey make_key) {
  if (spares.empty()) {
    map.emplace(make_key(), std::move(value));
    return;
  }
  typename Map::node_type node = std::move(spares.back());
  spares.pop_back();
  node.key() = make_key();
  node.mapped() = std::move(value);
  const auto inserted = map.insert(std::move(node));
  DURO_ASSERT(inserted.inserted);
}

// Inserts `key` -> `value`, or assigns `value` to the key's entry.
template <typename Map, typename Key, typename Value, typename MakeKey>
void put(Map& map, std::vector<typename Map::node_type>& spares, const Key& key, Value value, MakeKey make_key) {
  if (auto found = map.find(key); found != map.end()) {
    found->second = std::move(value);
    return;
  }
  insert_new(map, spares, std::move(value), make_key);
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
      // One lookup here, one in the state if no pending write has the run:
      // execution_meta() and then put() would look twice each.
      const ExecutionKeyRef key{execution.workflow_id, execution.run_id};
      const auto pending = executions_.find(key);
      const std::optional<ExecutionMeta> before =
          pending != executions_.end() ? pending->second.value : state_.execution_meta(key);
      ExecutionMeta meta = before.value_or(ExecutionMeta{write->shard_id, 0, 1});
      DURO_ASSERT(meta.version == execution.expected_version);
      meta.version++;
      if (execution.append.has_value()) meta.next_event_id += execution.append->event_count;
      Tagged<std::optional<ExecutionMeta>> tagged{meta, sequence};
      if (pending != executions_.end()) {
        pending->second = tagged;
      } else {
        insert_new(executions_, spare_executions_, tagged,
                   [&] { return ExecutionKey{execution.workflow_id, execution.run_id}; });
      }
    }
    for (const CurrentWrite& current : write->currents) {
      currents_.insert_or_assign(current.record.workflow_id, Tagged<CurrentRecord>{current.record, sequence});
    }
  }
  const std::string& request_id = mutation_request_id(mutation);
  put(requests_, spare_requests_, request_id, RememberedRequest{mutation_kind(mutation), sequence, outcome.shard},
      [&] { return request_id; });
}

void PendingWrites::retire(std::uint64_t sequence) {
  DURO_ASSERT(sequence <= last_sequence_);
  DURO_ASSERT(state_.last_sequence() >= sequence);
  erase_retired(shards_, sequence, [](const auto& entry) { return entry.sequence; });
  erase_retired(
      executions_, sequence, [](const auto& entry) { return entry.sequence; }, &spare_executions_, kSpareNodesMax);
  erase_retired(currents_, sequence, [](const auto& entry) { return entry.sequence; });
  erase_retired(
      requests_, sequence, [](const RememberedRequest& entry) { return entry.sequence; }, &spare_requests_,
      kSpareNodesMax);
}

}  // namespace duro::engine::store
