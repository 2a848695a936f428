#include "engine/store/store_client.h"

namespace duro::engine::store {

sim::Result<ShardRecord> StoreClient::get_shard(std::uint32_t shard_id, sim::Duration timeout) {
  return rpc_.call<ShardRecord>(store_, kGetShardMethod, GetShardRequest{shard_id}, timeout);
}

// Mutations without a request id cannot be retried safely: a caller bug,
// caught here as well as by the store (kInvalid).

sim::Result<UpdateShardReply> StoreClient::update_shard(const UpdateShardRequest& request, sim::Duration timeout) {
  DURO_ASSERT_MSG(!request.request_id.empty(), "UpdateShard without a request id");
  return rpc_.call<UpdateShardReply>(store_, kUpdateShardMethod, request, timeout);
}

sim::Result<WriteReply> StoreClient::renew_shards(const RenewShardsRequest& request, sim::Duration timeout) {
  DURO_ASSERT_MSG(!request.request_id.empty(), "RenewShards without a request id");
  return rpc_.call<WriteReply>(store_, kRenewShardsMethod, request, timeout);
}

sim::Result<WriteReply> StoreClient::write(const WriteRequest& request, sim::Duration timeout) {
  DURO_ASSERT_MSG(!request.request_id.empty(), "Write without a request id");
  return rpc_.call<WriteReply>(store_, kWriteMethod, request, timeout);
}

sim::Result<GetExecutionReply> StoreClient::get_execution(const ExecutionKey& key, sim::Duration timeout) {
  return rpc_.call<GetExecutionReply>(store_, kGetExecutionMethod, GetExecutionRequest{key}, timeout);
}

sim::Result<GetCurrentReply> StoreClient::get_current(const std::string& workflow_id, sim::Duration timeout) {
  return rpc_.call<GetCurrentReply>(store_, kGetCurrentMethod, GetCurrentRequest{workflow_id}, timeout);
}

sim::Result<ReadHistoryReply> StoreClient::read_history(const ReadHistoryRequest& request, sim::Duration timeout) {
  return rpc_.call<ReadHistoryReply>(store_, kReadHistoryMethod, request, timeout);
}

sim::Result<ReadTransferTasksReply> StoreClient::read_transfer_tasks(const ReadTransferTasksRequest& request,
                                                                     sim::Duration timeout) {
  return rpc_.call<ReadTransferTasksReply>(store_, kReadTransferTasksMethod, request, timeout);
}

sim::Result<ReadTimerTasksReply> StoreClient::read_timer_tasks(const ReadTimerTasksRequest& request,
                                                               sim::Duration timeout) {
  return rpc_.call<ReadTimerTasksReply>(store_, kReadTimerTasksMethod, request, timeout);
}

sim::Result<WriteReply> StoreClient::complete_tasks(const CompleteTasksRequest& request, sim::Duration timeout) {
  DURO_ASSERT_MSG(!request.request_id.empty(), "CompleteTasks without a request id");
  return rpc_.call<WriteReply>(store_, kCompleteTasksMethod, request, timeout);
}

sim::Result<HeartbeatReply> StoreClient::heartbeat(const HeartbeatRequest& request, sim::Duration timeout) {
  return rpc_.call<HeartbeatReply>(store_, kHeartbeatMethod, request, timeout);
}

}  // namespace duro::engine::store
