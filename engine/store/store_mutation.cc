#include "engine/store/store_mutation.h"

namespace duro::engine::store {

MutationKind mutation_kind(const StoreMutation& mutation) noexcept {
  switch (mutation.index()) {
    case 0: return MutationKind::kUpdateShard;
    case 1: return MutationKind::kWrite;
    case 2: return MutationKind::kCompleteTasks;
    default: return MutationKind::kRenewShards;
  }
}

const char* mutation_kind_name(MutationKind kind) noexcept {
  switch (kind) {
    case MutationKind::kUpdateShard: return "UpdateShard";
    case MutationKind::kWrite: return "Write";
    case MutationKind::kCompleteTasks: return "CompleteTasks";
    case MutationKind::kRenewShards: return "RenewShards";
  }
  return "Unknown";
}

const std::string& mutation_request_id(const StoreMutation& mutation) noexcept {
  return std::visit([](const auto& request) -> const std::string& { return request.request_id; }, mutation);
}

void encode_mutation(std::string& output, const StoreMutation& mutation) {
  sim::Encoder encoder(output);
  encoder.write_varint32(static_cast<std::uint32_t>(mutation_kind(mutation)));
  std::visit([&](const auto& request) { encoder.write(request); }, mutation);
}

void encode_mutation(std::string& output, const StoreMutation& mutation, std::string_view encoded) {
  DURO_ASSERT(!encoded.empty());
  sim::Encoder encoder(output);
  encoder.write_varint32(static_cast<std::uint32_t>(mutation_kind(mutation)));
  encoder.write_raw(encoded);
}

bool decode_mutation(sim::Decoder& decoder, StoreMutation& mutation) {
  const std::size_t offset = decoder.offset_bytes();
  std::uint32_t kind = 0;
  if (!decoder.read_varint32(kind)) return false;
  switch (static_cast<MutationKind>(kind)) {
    case MutationKind::kUpdateShard: return decoder.read(mutation.emplace<UpdateShardRequest>());
    case MutationKind::kWrite: return decoder.read(mutation.emplace<WriteRequest>());
    case MutationKind::kCompleteTasks: return decoder.read(mutation.emplace<CompleteTasksRequest>());
    case MutationKind::kRenewShards: return decoder.read(mutation.emplace<RenewShardsRequest>());
  }
  return decoder.fail_at(offset, "unknown mutation kind");
}

}  // namespace duro::engine::store
