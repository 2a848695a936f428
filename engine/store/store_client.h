// The typed client of the store: one method per RPC of store_api.h.
//
//   sim::RpcClient rpc(env.network(), env.node(), 7200);
//   StoreClient store(rpc, env.network().endpoint(store_node, kStorePort));
//   sim::Result<WriteReply> reply = store.write(request, 2s);
//
// Every call has a timeout. Error{kTimeout} means the outcome is unknown: a
// write may have applied, or may still apply (it can sit in the store's
// group-commit queue, or on the network). Resolve it by re-reading, or by
// retrying with the same request id (the store answers a retry of an
// applied write with its first outcome) — never by assuming. kUnavailable
// means the store is recovering, restarting, or refusing to start; the
// message says which. A WriteStatus other than kOk arrives inside an ok
// Result: the store answered, and nothing was written.
//
// From fibers of the client's node only (as sim::RpcClient).
#pragma once

#include <string>

#include "engine/store/store_api.h"
#include "sim/result.h"
#include "sim/rpc.h"

namespace duro::engine::store {

class StoreClient {
 public:
  // `rpc` must outlive the client.
  StoreClient(sim::RpcClient& rpc, sim::Endpoint store, sim::Duration default_timeout = std::chrono::seconds{2})
      : rpc_(rpc), store_(store), default_timeout_(default_timeout) {}

  sim::Endpoint endpoint() const noexcept { return store_; }
  sim::Duration default_timeout() const noexcept { return default_timeout_; }

  sim::Result<ShardRecord> get_shard(std::uint32_t shard_id) { return get_shard(shard_id, default_timeout_); }
  sim::Result<ShardRecord> get_shard(std::uint32_t shard_id, sim::Duration timeout);

  sim::Result<UpdateShardReply> update_shard(const UpdateShardRequest& request) {
    return update_shard(request, default_timeout_);
  }
  sim::Result<UpdateShardReply> update_shard(const UpdateShardRequest& request, sim::Duration timeout);

  sim::Result<WriteReply> renew_shards(const RenewShardsRequest& request) { return renew_shards(request, default_timeout_); }
  sim::Result<WriteReply> renew_shards(const RenewShardsRequest& request, sim::Duration timeout);

  sim::Result<WriteReply> write(const WriteRequest& request) { return write(request, default_timeout_); }
  sim::Result<WriteReply> write(const WriteRequest& request, sim::Duration timeout);

  sim::Result<GetExecutionReply> get_execution(const ExecutionKey& key) { return get_execution(key, default_timeout_); }
  sim::Result<GetExecutionReply> get_execution(const ExecutionKey& key, sim::Duration timeout);

  sim::Result<GetCurrentReply> get_current(const std::string& workflow_id) {
    return get_current(workflow_id, default_timeout_);
  }
  sim::Result<GetCurrentReply> get_current(const std::string& workflow_id, sim::Duration timeout);

  sim::Result<ReadHistoryReply> read_history(const ReadHistoryRequest& request) {
    return read_history(request, default_timeout_);
  }
  sim::Result<ReadHistoryReply> read_history(const ReadHistoryRequest& request, sim::Duration timeout);

  sim::Result<ReadTransferTasksReply> read_transfer_tasks(const ReadTransferTasksRequest& request) {
    return read_transfer_tasks(request, default_timeout_);
  }
  sim::Result<ReadTransferTasksReply> read_transfer_tasks(const ReadTransferTasksRequest& request,
                                                          sim::Duration timeout);

  sim::Result<ReadTimerTasksReply> read_timer_tasks(const ReadTimerTasksRequest& request) {
    return read_timer_tasks(request, default_timeout_);
  }
  sim::Result<ReadTimerTasksReply> read_timer_tasks(const ReadTimerTasksRequest& request, sim::Duration timeout);

  sim::Result<WriteReply> complete_tasks(const CompleteTasksRequest& request) {
    return complete_tasks(request, default_timeout_);
  }
  sim::Result<WriteReply> complete_tasks(const CompleteTasksRequest& request, sim::Duration timeout);

  sim::Result<HeartbeatReply> heartbeat(const HeartbeatRequest& request) { return heartbeat(request, default_timeout_); }
  sim::Result<HeartbeatReply> heartbeat(const HeartbeatRequest& request, sim::Duration timeout);

 private:
  sim::RpcClient& rpc_;
  sim::Endpoint store_;
  sim::Duration default_timeout_;
};

}  // namespace duro::engine::store
