#include "sim/codec.h"

#include <string>
#include <utility>

namespace duro::sim {

// Out of line: errors are rare, and keeping this off the inline read paths
// keeps those small.
bool Decoder::fail_at(std::size_t offset_bytes, const char* what) noexcept {
  DURO_ASSERT(what != nullptr);
  DURO_ASSERT(offset_bytes <= static_cast<std::size_t>(end_ - begin_));
  if (error_what_ == nullptr) {
    error_what_ = what;
    error_offset_bytes_ = offset_bytes;
  }
  // Every read needs at least one byte (read_raw checks ok() itself), so
  // from here on every read fails without looking at the input.
  cursor_ = end_;
  return false;
}

Error Decoder::error() const {
  DURO_ASSERT_MSG(!ok(), "Decoder::error() without an error");
  std::string message = error_what_;
  message += " at byte ";
  message += std::to_string(error_offset_bytes_);
  return Error{ErrorCode::kDecode, std::move(message)};
}

}  // namespace duro::sim
