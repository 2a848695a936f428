#include "sim/file_bytes.h"

#include <algorithm>

#include "sim/assert.h"

namespace duro::sim {

std::string& FileBytes::chunk_with_room() {
  if (chunks_.empty() || chunks_.back().size() == kChunkBytes) {
    DURO_ASSERT(size_ == chunks_.size() * kChunkBytes);
    std::string& chunk = chunks_.emplace_back();
    // The first chunk grows as a string does: a small file stays small.
    if (chunks_.size() > 1) chunk.reserve(kChunkBytes);
  }
  return chunks_.back();
}

void FileBytes::append(std::string_view bytes) {
  // One pass per chunk touched: bounded by the bytes' size.
  while (!bytes.empty()) {
    std::string& chunk = chunk_with_room();
    const std::size_t taken = std::min(bytes.size(), kChunkBytes - chunk.size());
    chunk.append(bytes.substr(0, taken));
    bytes.remove_prefix(taken);
    size_ += taken;
  }
}

void FileBytes::append_zeros(std::uint64_t count) {
  while (count > 0) {
    std::string& chunk = chunk_with_room();
    const std::size_t taken = static_cast<std::size_t>(std::min<std::uint64_t>(count, kChunkBytes - chunk.size()));
    chunk.append(taken, '\0');
    count -= taken;
    size_ += taken;
  }
}

void FileBytes::write(std::uint64_t offset, std::string_view bytes) {
  if (offset > size_) append_zeros(offset - size_);
  // Overwrite what lies below the end, then append the rest.
  while (!bytes.empty() && offset < size_) {
    std::string& chunk = chunks_[static_cast<std::size_t>(offset / kChunkBytes)];
    const std::size_t within = static_cast<std::size_t>(offset % kChunkBytes);
    const std::size_t taken = std::min(bytes.size(), chunk.size() - within);
    std::copy_n(bytes.data(), taken, chunk.begin() + static_cast<std::ptrdiff_t>(within));
    bytes.remove_prefix(taken);
    offset += taken;
  }
  append(bytes);
}

void FileBytes::resize(std::uint64_t size_bytes) {
  if (size_bytes >= size_) {
    append_zeros(size_bytes - size_);
    return;
  }
  const std::size_t kept = static_cast<std::size_t>((size_bytes + kChunkBytes - 1) / kChunkBytes);
  chunks_.resize(kept);
  if (kept > 0) chunks_.back().resize(static_cast<std::size_t>(size_bytes - (kept - 1) * kChunkBytes));
  size_ = size_bytes;
}

void FileBytes::assign(std::string_view bytes) {
  clear();
  append(bytes);
}

void FileBytes::clear() noexcept {
  chunks_.clear();
  size_ = 0;
}

void FileBytes::append_to(std::string& out, std::uint64_t offset, std::uint64_t length) const {
  DURO_ASSERT(offset <= size_ && length <= size_ - offset);
  out.reserve(out.size() + static_cast<std::size_t>(length));
  while (length > 0) {
    const std::string& chunk = chunks_[static_cast<std::size_t>(offset / kChunkBytes)];
    const std::size_t within = static_cast<std::size_t>(offset % kChunkBytes);
    const std::size_t taken = static_cast<std::size_t>(std::min<std::uint64_t>(length, chunk.size() - within));
    out.append(chunk, within, taken);
    offset += taken;
    length -= taken;
  }
}

std::string FileBytes::read(std::uint64_t offset, std::uint64_t length) const {
  std::string bytes;
  if (offset < size_) append_to(bytes, offset, std::min(length, size_ - offset));
  return bytes;
}

}  // namespace duro::sim
