// A mutation of the store: one request that changes durable state, as the
// log records it.
//
// Four requests change the store: UpdateShard, Write, CompleteTasks and
// RenewShards.
// Each one that is applied becomes one log record, so that replaying the
// log after a crash applies exactly the same requests in exactly the same
// order. A record is the kind, then the request in the codec's format:
//
//   record = kind (varint: 1 UpdateShard, 2 Write, 3 CompleteTasks,
//                  4 RenewShards)
//            request (sim/codec.h, the fields store_api.h lists)
//
// Records carry no checksum of their own: they travel inside a batch
// (store_format.h), whose checksum covers them all.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "engine/store/store_api.h"
#include "sim/codec.h"

namespace duro::engine::store {

using StoreMutation = std::variant<UpdateShardRequest, WriteRequest, CompleteTasksRequest, RenewShardsRequest>;

enum class MutationKind : std::uint8_t { kUpdateShard = 1, kWrite = 2, kCompleteTasks = 3, kRenewShards = 4 };
inline constexpr MutationKind kMutationKindLast = MutationKind::kRenewShards;

MutationKind mutation_kind(const StoreMutation& mutation) noexcept;
const char* mutation_kind_name(MutationKind kind) noexcept;
const std::string& mutation_request_id(const StoreMutation& mutation) noexcept;

// Appends the record of `mutation` to `output`.
void encode_mutation(std::string& output, const StoreMutation& mutation);
// The same record, from `encoded`: bytes the request of `mutation` decoded
// from whole (as received), so that a store need not encode again what it
// was sent. A record decodes to the same mutation either way.
void encode_mutation(std::string& output, const StoreMutation& mutation, std::string_view encoded);

// Reads one record. False (and the decoder failed, naming the byte) on
// anything but a whole, valid record: an unknown kind included.
bool decode_mutation(sim::Decoder& decoder, StoreMutation& mutation);

}  // namespace duro::engine::store
