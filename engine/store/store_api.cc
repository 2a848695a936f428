#include "engine/store/store_api.h"

namespace duro::engine::store {

const char* write_status_name(WriteStatus status) noexcept {
  switch (status) {
    case WriteStatus::kOk: return "Ok";
    case WriteStatus::kShardOwnershipLost: return "ShardOwnershipLost";
    case WriteStatus::kConditionFailed: return "ConditionFailed";
    case WriteStatus::kInvalid: return "Invalid";
  }
  return "Unknown";
}

}  // namespace duro::engine::store
