// What a mutation must satisfy to apply, judged against a view of the store.
//
// The same rules judge every mutation twice:
//   - when it arrives, against the acknowledged state plus the writes still
//     waiting for their fsync (store_pending.h), so that two requests in one
//     group-commit batch see each other in order;
//   - when it is applied — after its batch is durable, or when recovery
//     replays the log — against the state it lands on.
// Both views hold exactly the effect of every earlier mutation, in log
// order, so both give the same answer; the store asserts that they do.
//
// Order of judgement, first failure wins:
//   1. duplicate: a request id already applied gets its first outcome again,
//      with `duplicate` set, and nothing else is checked (idempotency);
//   2. kInvalid: the request contradicts itself (no request id, an append
//      not starting at 1 on create, a key twice, a task id <= 0, ...);
//   3. kShardOwnershipLost: Write and CompleteTasks are fenced by the
//      shard's range_id, RenewShards by each of its shards';
//   4. kConditionFailed: every execution's version and next event id, every
//      current-run expectation, UpdateShard's expected range_id.
// Only a kOk outcome that is not a duplicate changes anything.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/store/key_hash.h"
#include "engine/store/store_api.h"
#include "engine/store/store_mutation.h"

namespace duro::engine::store {

// The part of an execution record that conditions look at.
struct ExecutionMeta {
  std::uint32_t shard_id = 0;
  std::uint64_t version = 0;
  std::int64_t next_event_id = 1;
};

// What the request-id table keeps of an applied request: enough to give a
// retry the first reply again.
struct RememberedRequest {
  MutationKind kind = MutationKind::kWrite;
  std::uint64_t sequence = 0;  // Its log sequence: the order of eviction.
  ShardRecord shard;           // UpdateShard: the record it left.

  bool operator==(const RememberedRequest&) const = default;
};

// The verdict on one mutation.
struct Outcome {
  WriteStatus status = WriteStatus::kOk;
  std::string detail;      // Which rule failed, for logs and callers.
  bool duplicate = false;  // A retry of an applied request: its first outcome, nothing new applied.
  ShardRecord shard;       // UpdateShard: the record after the call (the current one if it failed).

  // True when this mutation changes the store (and so is logged).
  bool applies() const noexcept { return status == WriteStatus::kOk && !duplicate; }

  WriteReply write_reply() const { return WriteReply{status, detail}; }
  UpdateShardReply update_shard_reply() const { return UpdateShardReply{status, shard}; }
};

// Anything conditions can be judged against. Pointers are null for "never
// written" (a shard never taken, a workflow id with no current run) and
// stay valid until the view changes.
template <typename View>
concept StoreView = requires(const View& view, std::uint32_t shard_id, ExecutionKeyRef key,
                             std::string_view text) {
  { view.shard_record(shard_id) } -> std::same_as<const ShardRecord*>;
  { view.execution_meta(key) } -> std::same_as<std::optional<ExecutionMeta>>;
  { view.current_record(text) } -> std::same_as<const CurrentRecord*>;
  { view.remembered(text) } -> std::same_as<const RememberedRequest*>;
};

// Whether a request id already applied counts: live requests check it;
// replay does not (the log holds only mutations that passed it, and the
// table's bound may differ between incarnations). The store applying a
// durable write whose id submit() checked (store_service.cc) does not look
// it up either, but asserts the id was new once it is remembered: a free
// check of the pending overlay.
enum class DuplicateCheck : std::uint8_t { kCheck, kSkip, kAssertFresh };

// Why the request contradicts itself, or nullopt. Needs no view.
std::optional<std::string> invalid_reason(const StoreMutation& mutation);

namespace detail {

Outcome duplicate_outcome(MutationKind kind, const RememberedRequest& remembered);
Outcome failed(WriteStatus status, std::string detail);
std::optional<std::string> fencing_failure(const ShardRecord* shard, std::uint32_t shard_id, std::int64_t range_id);
std::optional<std::string> execution_condition_failure(const ExecutionWrite& write,
                                                       const std::optional<ExecutionMeta>& meta,
                                                       std::uint32_t shard_id, WriteStatus& status);
std::optional<std::string> current_condition_failure(const CurrentWrite& write, const CurrentRecord* current);
std::optional<std::string> delete_condition_failure(const ExecutionKey& key, const std::optional<ExecutionMeta>& meta,
                                                    std::uint32_t shard_id);

}  // namespace detail

template <StoreView View>
Outcome evaluate(const View& view, const StoreMutation& mutation,
                 DuplicateCheck duplicates = DuplicateCheck::kCheck) {
  const MutationKind kind = mutation_kind(mutation);
  if (duplicates == DuplicateCheck::kCheck) {
    if (const RememberedRequest* remembered = view.remembered(mutation_request_id(mutation))) {
      return detail::duplicate_outcome(kind, *remembered);
    }
  }
  if (std::optional<std::string> reason = invalid_reason(mutation)) {
    return detail::failed(WriteStatus::kInvalid, std::move(*reason));
  }

  if (const auto* update = std::get_if<UpdateShardRequest>(&mutation)) {
    Outcome outcome;
    const ShardRecord* current = view.shard_record(update->record.shard_id);
    if (current != nullptr) {
      outcome.shard = *current;
    } else {
      outcome.shard.shard_id = update->record.shard_id;  // Never taken: range_id 0.
    }
    if (outcome.shard.range_id != update->expected_range_id) {
      outcome.status = WriteStatus::kConditionFailed;
      outcome.detail = "shard " + std::to_string(update->record.shard_id) + " is at range_id " +
                       std::to_string(outcome.shard.range_id) + ", not the expected " +
                       std::to_string(update->expected_range_id);
      return outcome;
    }
    outcome.shard = update->record;
    return outcome;
  }

  if (const auto* renew = std::get_if<RenewShardsRequest>(&mutation)) {
    for (const ShardRecord& record : renew->records) {
      if (auto failure = detail::fencing_failure(view.shard_record(record.shard_id), record.shard_id, record.range_id)) {
        return detail::failed(WriteStatus::kShardOwnershipLost, std::move(*failure));
      }
    }
    return Outcome{};
  }

  if (const auto* complete = std::get_if<CompleteTasksRequest>(&mutation)) {
    if (auto failure = detail::fencing_failure(view.shard_record(complete->shard_id), complete->shard_id,
                                               complete->range_id)) {
      return detail::failed(WriteStatus::kShardOwnershipLost, std::move(*failure));
    }
    return Outcome{};
  }

  const auto& write = std::get<WriteRequest>(mutation);
  if (auto failure = detail::fencing_failure(view.shard_record(write.shard_id), write.shard_id, write.range_id)) {
    return detail::failed(WriteStatus::kShardOwnershipLost, std::move(*failure));
  }
  for (const ExecutionWrite& execution : write.executions) {
    WriteStatus status = WriteStatus::kConditionFailed;
    if (auto failure = detail::execution_condition_failure(
            execution, view.execution_meta(ExecutionKeyRef{execution.workflow_id, execution.run_id}), write.shard_id,
            status)) {
      return detail::failed(status, std::move(*failure));
    }
  }
  for (const CurrentWrite& current : write.currents) {
    if (auto failure = detail::current_condition_failure(current, view.current_record(current.record.workflow_id))) {
      return detail::failed(WriteStatus::kConditionFailed, std::move(*failure));
    }
  }
  for (const ExecutionKey& key : write.deletes) {
    if (auto failure = detail::delete_condition_failure(key, view.execution_meta(key), write.shard_id)) {
      return detail::failed(WriteStatus::kInvalid, std::move(*failure));
    }
  }
  return Outcome{};
}

}  // namespace duro::engine::store
