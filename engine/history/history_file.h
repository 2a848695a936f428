// A history file: one run's history on disk, with where it came from.
//
// What `duro run --record-histories` writes, what `replays/` keeps as
// golden histories, what `duro replay` checks new workflow code against
// and what `duro history show | export | import` read and write.
//
// The file is one zstd frame (level 3, content size and zstd's own
// checksum in the frame header and trailer). Its content:
//
//   magic      8 bytes "DUROHIST"
//   crc        fixed32, little-endian: CRC-32C (sim/crc32c.h) of every
//              byte after it
//   version    varint: kHistoryFileVersion
//   header     sim::encode(HistoryFileHeader)
//   events     encode_events(history.events) (history.h): to the end
//
// Why this shape: the varint codec is the one the store and the network
// already use, so a file costs no new encoder; zstd then takes it to
// about 16 bytes an event on the scenarios' histories (49 before zstd),
// against 28 for our JSON under the same zstd and 277 without
// (docs/replays.md has the measurements, and why there is no dictionary). The magic and version come before anything else so that a
// file from another program, or a newer duro, is named as such rather
// than reported as garbage; the CRC covers what zstd's checksum does not
// (a decoder bug, a file assembled by hand).
//
// Reading never trusts the bytes: a file that is not a zstd frame, a
// frame larger than kHistoryFileBytesMax, trailing bytes, a wrong magic or
// version, a bad CRC, a history that does not decode or whose header does
// not match its first event are each an Error naming the problem, never a
// crash and never an allocation sized by an unchecked length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/history/history.h"
#include "sim/codec.h"
#include "sim/result.h"

namespace duro::engine {

inline constexpr std::uint64_t kHistoryFileVersion = 1;
// Of the decompressed content: the longest history a scenario checks is
// tens of thousands of events, a few megabytes.
inline constexpr std::size_t kHistoryFileBytesMax = std::size_t{256} << 20;

struct HistoryFileHeader {
  std::string workflow_type;  // Equal to the first event's (checked on read).
  std::string workflow_id;    // The run's own: replay needs it (child ids derive from it).
  std::string run_id;
  std::string build_id;       // Of the duro that recorded it.
  std::string scenario;       // Empty when not recorded from a scenario.
  std::optional<std::uint64_t> seed;

  bool operator==(const HistoryFileHeader&) const = default;
};
DURO_CODEC_FIELDS(HistoryFileHeader, workflow_type, workflow_id, run_id, build_id, scenario, seed);

struct HistoryFile {
  HistoryFileHeader header;
  History history;

  bool operator==(const HistoryFile&) const = default;
};

// The file's bytes. Asserts that the history is not empty and that the
// header's workflow type is the first event's.
std::string encode_history_file(const HistoryFile& file);

// The inverse; an Error{kDecode, "..."} whose message names the problem.
sim::Result<HistoryFile> decode_history_file(std::string_view bytes);

// The JSON form (`duro history export --json`, `import`): the header's
// fields in camelCase under "header", then the events as history_json.h
// writes them:
//   {"header": {"format": 1, "workflowType": "provision", "workflowId": "p-1",
//               "runId": "...", "buildId": "...", "scenario": "", "seed": null},
//    "events": [...]}
std::string history_file_to_json(const HistoryFile& file, bool pretty);
// Reads that form back: exact round trip. Errors as history_from_json's.
sim::Result<HistoryFile> history_file_from_json(std::string_view json);

}  // namespace duro::engine
