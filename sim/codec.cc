#include "sim/codec.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

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

namespace {

// Buffers kept per thread between leases. More leases than this at once
// (encode() nested deeper) still work: the extra buffers are freed on return.
constexpr std::size_t kScratchBuffersKept = 8;
// A buffer that grew past this (a snapshot image, a long history) is freed
// on return rather than kept: a thread keeps at most
// kScratchBuffersKept x this much.
constexpr std::size_t kScratchBytesKeptMax = std::size_t{1} << 20;

struct ScratchPool {
  ScratchPool() { free.reserve(kScratchBuffersKept); }
  std::vector<std::unique_ptr<std::string>> free;
};

thread_local ScratchPool scratch_pool;

}  // namespace

EncodeScratch::EncodeScratch() {
  if (scratch_pool.free.empty()) {
    buffer_ = std::make_unique<std::string>();
  } else {
    buffer_ = std::move(scratch_pool.free.back());
    scratch_pool.free.pop_back();
  }
  DURO_ASSERT(buffer_->empty());
}

EncodeScratch::~EncodeScratch() {
  if (scratch_pool.free.size() >= kScratchBuffersKept || buffer_->capacity() > kScratchBytesKeptMax) return;
  buffer_->clear();
  scratch_pool.free.push_back(std::move(buffer_));
}

Error Decoder::error() const {
  DURO_ASSERT_MSG(!ok(), "Decoder::error() without an error");
  std::string message = error_what_;
  message += " at byte ";
  message += std::to_string(error_offset_bytes_);
  return Error{ErrorCode::kDecode, std::move(message)};
}

}  // namespace duro::sim
