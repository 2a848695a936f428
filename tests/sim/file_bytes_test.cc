// FileBytes against the std::string it replaces: the same operations, the
// same bytes, across chunk boundaries.
#include "sim/file_bytes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "sim/random.h"

namespace duro::sim {
namespace {

constexpr std::uint64_t kChunk = FileBytes::kChunkBytes;

std::string pattern(std::uint64_t length, std::uint64_t seed) {
  std::string bytes(length, '\0');
  for (std::uint64_t i = 0; i < length; i++) bytes[i] = static_cast<char>('a' + (seed + i * 7) % 26);
  return bytes;
}

TEST(FileBytes, AppendsAcrossChunksReadBackWhole) {
  FileBytes file;
  std::string model;
  for (std::uint64_t i = 0; i < 40; i++) {
    const std::string piece = pattern(kChunk / 3 + i, i);
    file.append(piece);
    model += piece;
  }
  ASSERT_EQ(file.size(), model.size());
  EXPECT_EQ(file.to_string(), model);
  // A read that straddles two chunk boundaries, and one past the end.
  EXPECT_EQ(file.read(kChunk - 5, 2 * kChunk + 10), model.substr(kChunk - 5, 2 * kChunk + 10));
  EXPECT_EQ(file.read(model.size() - 3, 100), model.substr(model.size() - 3));
  EXPECT_EQ(file.read(model.size() + 1, 100), "");
}

TEST(FileBytes, AWritePastTheEndReadsAsZerosInTheGap) {
  FileBytes file;
  file.append("head");
  file.write(kChunk + 2, "tail");
  std::string model = "head";
  model.resize(kChunk + 2, '\0');
  model += "tail";
  EXPECT_EQ(file.to_string(), model);
  file.resize(3);
  EXPECT_EQ(file.to_string(), "hea");
  file.resize(kChunk + 1);
  EXPECT_EQ(file.to_string(), std::string("hea") + std::string(kChunk - 2, '\0'));
}

// Random appends, overwrites, truncates and extensions, checked against a
// string after each: the model the disk used before.
TEST(FileBytes, RandomOperationsMatchAString) {
  Random random(7);
  FileBytes file;
  std::string model;
  for (int step = 0; step < 600; step++) {
    const std::uint64_t length = random.uniform(kChunk + kChunk / 2);
    switch (random.uniform(4)) {
      case 0: {
        const std::string bytes = pattern(length, static_cast<std::uint64_t>(step));
        file.append(bytes);
        model += bytes;
        break;
      }
      case 1: {
        const std::uint64_t offset = random.uniform(model.size() + kChunk);
        const std::string bytes = pattern(length, static_cast<std::uint64_t>(step));
        file.write(offset, bytes);
        if (offset + bytes.size() > model.size()) model.resize(offset + bytes.size(), '\0');
        std::copy(bytes.begin(), bytes.end(), model.begin() + static_cast<std::ptrdiff_t>(offset));
        break;
      }
      case 2: {
        const std::uint64_t size = random.uniform(model.size() + 1);
        file.resize(size);
        model.resize(size);
        break;
      }
      default: {
        const std::uint64_t size = model.size() + random.uniform(kChunk);
        file.resize(size);
        model.resize(size, '\0');
        break;
      }
    }
    ASSERT_EQ(file.size(), model.size()) << "step " << step;
    const std::uint64_t offset = random.uniform(model.size() + 1);
    ASSERT_EQ(file.read(offset, length), model.substr(offset, length)) << "step " << step;
    // Keep the model from growing without bound.
    if (model.size() > 8 * kChunk) {
      file.resize(kChunk);
      model.resize(kChunk);
    }
  }
  EXPECT_EQ(file.to_string(), model);
  file.assign("new");
  EXPECT_EQ(file.to_string(), "new");
  file.clear();
  EXPECT_TRUE(file.empty());
}

}  // namespace
}  // namespace duro::sim
