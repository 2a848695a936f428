// libFuzzer target for the history file decoder (engine/history/
// history_file.h): no input may crash it, hang it or make it allocate
// without bound, and whatever it accepts must re-encode to a file that
// decodes to the same thing.
//
// The first byte picks what the rest is:
//   even  a whole file, as read from disk: this exercises the frame checks;
//   odd   the content inside the frame, given a correct CRC and wrapped in
//         a zstd frame here: without that, nearly every mutation would die
//         at zstd's checksum or ours, and the decoder of the header and the
//         events behind them would go unfuzzed.
// Also the JSON reader (`duro history import`) on the same bytes.
//
//   make fuzz FUZZ_SECONDS=60          # the seed corpus is replays/golden
#include <zstd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/history/history_file.h"
#include "sim/crc32c.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void round_trip(const duro::engine::HistoryFile& file) {
  const std::string bytes = duro::engine::encode_history_file(file);
  duro::sim::Result<duro::engine::HistoryFile> again = duro::engine::decode_history_file(bytes);
  check(again.ok());
  check(again.value() == file);
}

std::string framed(std::string_view body) {
  std::string content = "DUROHIST";
  const std::uint32_t crc = duro::sim::crc32c(body);
  for (int i = 0; i < 4; i++) content.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  content += body;
  std::string frame(ZSTD_compressBound(content.size()), '\0');
  const std::size_t size = ZSTD_compress(frame.data(), frame.size(), content.data(), content.size(), 1);
  check(!ZSTD_isError(size));
  frame.resize(size);
  return frame;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string bytes = (data[0] & 1) != 0 ? framed(rest) : std::string(rest);
  duro::sim::Result<duro::engine::HistoryFile> file = duro::engine::decode_history_file(bytes);
  if (file.ok()) round_trip(file.value());
  duro::sim::Result<duro::engine::HistoryFile> from_json = duro::engine::history_file_from_json(rest);
  if (from_json.ok()) {
    // What import accepts, export writes back: the JSON forms agree.
    const std::string json = duro::engine::history_file_to_json(from_json.value(), false);
    duro::sim::Result<duro::engine::HistoryFile> again = duro::engine::history_file_from_json(json);
    check(again.ok());
  }
  return 0;
}
