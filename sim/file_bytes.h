// A simulated file's bytes, kept in chunks of kChunkBytes.
//
//   FileBytes log;
//   log.append(record);              // never moves the bytes already there
//   log.write(8, header);            // overwrite; a gap past the end reads as zeros
//   std::string page = log.read(0, 4096);
//
// Not one std::string: a store's log grows by appends to tens of megabytes,
// and a string that doubles its buffer copies the whole log at each step
// into fresh memory the kernel must fault in (that was 2-3% of a workflow's
// time end to end). Here an append fills the last chunk and then starts a
// new one; a removed file's chunks go back to the allocator, which hands
// them to the next log. Every chunk but the last holds exactly kChunkBytes;
// the first grows like a string until then, so a small file costs little.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace duro::sim {

class FileBytes {
 public:
  static constexpr std::size_t kChunkBytes = std::size_t{64} << 10;

  std::uint64_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  void append(std::string_view bytes);
  // Writes `bytes` at `offset`; past the end, the gap is zero-filled.
  void write(std::uint64_t offset, std::string_view bytes);
  // Truncates, or extends with zeros.
  void resize(std::uint64_t size_bytes);
  void assign(std::string_view bytes);
  void clear() noexcept;

  // Appends [offset, offset + length) to `out`; the range must be inside.
  void append_to(std::string& out, std::uint64_t offset, std::uint64_t length) const;
  // Up to `length` bytes from `offset`: fewer at the end, none past it.
  std::string read(std::uint64_t offset, std::uint64_t length) const;
  std::string to_string() const { return read(0, size_); }

 private:
  // The last chunk, with room for at least one more byte.
  std::string& chunk_with_room();
  void append_zeros(std::uint64_t count);

  std::vector<std::string> chunks_;
  std::uint64_t size_ = 0;
};

}  // namespace duro::sim
