#include "engine/history/history_file.h"

#include <fmt/format.h>
#include <zstd.h>

#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <utility>

#include "engine/history/history_json.h"
#include "sim/assert.h"
#include "sim/crc32c.h"

namespace duro::engine {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kMagic = "DUROHIST";
constexpr std::size_t kCrcBytes = 4;
constexpr std::array<unsigned char, 4> kZstdMagic = {0x28, 0xB5, 0x2F, 0xFD};
// zstd's default, and where its speed and ratio meet for small inputs:
// levels above 3 bought under 5% on the scenarios' histories.
constexpr int kCompressionLevel = 3;

sim::Error decode_error(std::string message) { return sim::Error{sim::ErrorCode::kDecode, std::move(message)}; }

void put_fixed32(std::string& output, std::uint32_t value) {
  for (int i = 0; i < 4; i++) output.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

std::uint32_t get_fixed32(std::string_view bytes) {
  DURO_ASSERT(bytes.size() >= 4);
  std::uint32_t value = 0;
  for (int i = 0; i < 4; i++) value |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return value;
}

const WorkflowExecutionStarted* started_event(const History& history) {
  if (history.events.empty()) return nullptr;
  return history.events.front().as<WorkflowExecutionStarted>();
}

struct CctxDeleter {
  void operator()(ZSTD_CCtx* context) const noexcept { ZSTD_freeCCtx(context); }
};

// The frame's content, decompressed, or why not.
sim::Result<std::string> decompress(std::string_view bytes) {
  if (bytes.empty()) return decode_error("not a history file: the file is empty");
  const bool zstd_magic =
      bytes.size() >= kZstdMagic.size() &&
      std::equal(kZstdMagic.begin(), kZstdMagic.end(), bytes.begin(),
                 [](unsigned char a, char b) { return a == static_cast<unsigned char>(b); });
  if (!zstd_magic) {
    const std::size_t first = bytes.find_first_not_of(" \t\r\n");
    if (first != std::string_view::npos && bytes[first] == '{') {
      return decode_error("not a history file: this looks like JSON (turn it into one with `duro history import`)");
    }
    return decode_error("not a history file: it does not start with a zstd frame (bytes 28 b5 2f fd)");
  }
  const unsigned long long content_bytes = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
  if (content_bytes == ZSTD_CONTENTSIZE_ERROR) return decode_error("corrupt history file: a bad zstd frame header");
  if (content_bytes == ZSTD_CONTENTSIZE_UNKNOWN) {
    return decode_error("not a history file: the zstd frame does not state its size (duro always writes it)");
  }
  if (content_bytes > kHistoryFileBytesMax) {
    return decode_error(fmt::format("history file too large: {} bytes decompressed, at most {}", content_bytes,
                                    kHistoryFileBytesMax));
  }
  const std::size_t frame_bytes = ZSTD_findFrameCompressedSize(bytes.data(), bytes.size());
  if (ZSTD_isError(frame_bytes)) {
    return decode_error(fmt::format("corrupt or truncated history file: {}", ZSTD_getErrorName(frame_bytes)));
  }
  if (frame_bytes != bytes.size()) {
    return decode_error(
        fmt::format("corrupt history file: {} bytes after the zstd frame", bytes.size() - frame_bytes));
  }
  std::string content(static_cast<std::size_t>(content_bytes), '\0');
  const std::size_t written = ZSTD_decompress(content.data(), content.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(written)) {
    return decode_error(fmt::format("corrupt history file: {}", ZSTD_getErrorName(written)));
  }
  if (written != content.size()) {
    return decode_error(fmt::format("corrupt history file: {} bytes decompressed, the frame says {}", written,
                                    content.size()));
  }
  return content;
}

std::string header_problem(const HistoryFile& file) {
  const WorkflowExecutionStarted* started = started_event(file.history);
  if (started == nullptr) return "the history does not begin with WorkflowExecutionStarted";
  if (started->workflow_type != file.header.workflow_type) {
    return fmt::format("the header says workflow type \"{}\", the first event \"{}\"", file.header.workflow_type,
                       started->workflow_type);
  }
  return "";
}

Json header_json(const HistoryFileHeader& header) {
  Json json = Json::object();
  json["format"] = kHistoryFileVersion;
  json["workflowType"] = header.workflow_type;
  json["workflowId"] = header.workflow_id;
  json["runId"] = header.run_id;
  json["buildId"] = header.build_id;
  json["scenario"] = header.scenario;
  json["seed"] = header.seed ? Json(*header.seed) : Json(nullptr);
  return json;
}

// The header object of the JSON form, or why not.
sim::Result<HistoryFileHeader> header_from_json(const Json& json) {
  auto invalid = [](std::string message) {
    return sim::Error{sim::ErrorCode::kInvalidArgument, "header: " + std::move(message)};
  };
  if (!json.is_object()) return invalid("expected an object");
  HistoryFileHeader header;
  bool format_seen = false;
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string& key = it.key();
    const Json& value = it.value();
    if (key == "format") {
      if (!value.is_number_unsigned() || value.get<std::uint64_t>() != kHistoryFileVersion) {
        return invalid(fmt::format("format: expected {}, got {}", kHistoryFileVersion, value.dump()));
      }
      format_seen = true;
    } else if (key == "seed") {
      if (value.is_null()) continue;
      if (!value.is_number_unsigned()) return invalid(fmt::format("seed: expected null or a seed, got {}", value.dump()));
      header.seed = value.get<std::uint64_t>();
    } else {
      std::string* field = key == "workflowType" ? &header.workflow_type
                           : key == "workflowId" ? &header.workflow_id
                           : key == "runId"      ? &header.run_id
                           : key == "buildId"    ? &header.build_id
                           : key == "scenario"   ? &header.scenario
                                                 : nullptr;
      if (field == nullptr) return invalid(fmt::format("unknown field \"{}\"", key));
      if (!value.is_string()) return invalid(fmt::format("{}: expected a string, got {}", key, value.dump()));
      *field = value.get<std::string>();
    }
  }
  if (!format_seen) return invalid("missing required field format");
  return header;
}

}  // namespace

std::string encode_history_file(const HistoryFile& file) {
  DURO_ASSERT_MSG(header_problem(file).empty(), "a history file's header must match its history");
  std::string content(kMagic);
  put_fixed32(content, 0);  // The CRC, once the rest is written.
  sim::Encoder encoder(content);
  encoder.write(kHistoryFileVersion);
  encoder.write(file.header);
  encode_events_append(content, file.history.events);
  const std::uint32_t crc = sim::crc32c(std::string_view(content).substr(kMagic.size() + kCrcBytes));
  std::string crc_bytes;
  put_fixed32(crc_bytes, crc);
  content.replace(kMagic.size(), kCrcBytes, crc_bytes);

  std::unique_ptr<ZSTD_CCtx, CctxDeleter> context(ZSTD_createCCtx());
  DURO_ASSERT(context != nullptr);
  DURO_ASSERT(!ZSTD_isError(ZSTD_CCtx_setParameter(context.get(), ZSTD_c_compressionLevel, kCompressionLevel)));
  DURO_ASSERT(!ZSTD_isError(ZSTD_CCtx_setParameter(context.get(), ZSTD_c_checksumFlag, 1)));
  DURO_ASSERT(!ZSTD_isError(ZSTD_CCtx_setParameter(context.get(), ZSTD_c_contentSizeFlag, 1)));
  std::string frame(ZSTD_compressBound(content.size()), '\0');
  const std::size_t frame_bytes =
      ZSTD_compress2(context.get(), frame.data(), frame.size(), content.data(), content.size());
  DURO_ASSERT_MSG(!ZSTD_isError(frame_bytes), "zstd cannot fail with a buffer of its bound");
  frame.resize(frame_bytes);
  return frame;
}

sim::Result<HistoryFile> decode_history_file(std::string_view bytes) {
  sim::Result<std::string> decompressed = decompress(bytes);
  if (!decompressed.ok()) return decompressed.error();
  const std::string_view content = decompressed.value();
  if (content.size() < kMagic.size() || content.substr(0, kMagic.size()) != kMagic) {
    return decode_error("not a history file: a zstd frame, but not one duro wrote (no DUROHIST magic)");
  }
  if (content.size() < kMagic.size() + kCrcBytes) return decode_error("corrupt history file: truncated after the magic");
  const std::string_view body = content.substr(kMagic.size() + kCrcBytes);
  sim::Decoder decoder(body);
  std::uint64_t version = 0;
  // The version is read before the CRC is checked, so that a file from a
  // newer duro is named as such even if this one computes it differently.
  if (!decoder.read(version)) return decode_error("corrupt history file: no format version");
  if (version != kHistoryFileVersion) {
    return decode_error(fmt::format("history file format version {}; this duro reads version {}{}", version,
                                    kHistoryFileVersion, version > kHistoryFileVersion ? " (written by a newer duro)" : ""));
  }
  const std::uint32_t stored_crc = get_fixed32(content.substr(kMagic.size(), kCrcBytes));
  const std::uint32_t actual_crc = sim::crc32c(body);
  if (stored_crc != actual_crc) {
    return decode_error(fmt::format("corrupt history file: CRC-32C {:08x}, the file says {:08x}", actual_crc, stored_crc));
  }
  HistoryFile file;
  if (!decoder.read(file.header) || !decoder.ok()) {
    return decode_error(fmt::format("corrupt history file header: {}", sim::to_string(decoder.error())));
  }
  sim::Result<std::vector<HistoryEvent>> events = decode_events(body.substr(decoder.offset_bytes()));
  if (!events.ok()) return decode_error(fmt::format("corrupt history file events: {}", events.error().message));
  file.history.events = std::move(events.value());
  if (std::string problem = header_problem(file); !problem.empty()) {
    return decode_error("inconsistent history file: " + problem);
  }
  return file;
}

std::string history_file_to_json(const HistoryFile& file, bool pretty) {
  Json root = Json::object();
  root["header"] = header_json(file.header);
  // history_json.h owns the events' form: its text, parsed, becomes ours.
  Json history = Json::parse(to_json(file.history, false));
  root["events"] = std::move(history["events"]);
  return pretty ? root.dump(2) : root.dump();
}

sim::Result<HistoryFile> history_file_from_json(std::string_view json) {
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::parse_error& error) {
    return sim::Error{sim::ErrorCode::kDecode, fmt::format("JSON parse error at byte {}: {}", error.byte, error.what())};
  } catch (const Json::exception& error) {
    // Not only parse_error: a number too large for a double is out_of_range
    // (found by fuzz/history_file_fuzzer.cc).
    return sim::Error{sim::ErrorCode::kDecode, fmt::format("JSON parse error: {}", error.what())};
  }
  if (!root.is_object()) return sim::Error{sim::ErrorCode::kInvalidArgument, "expected an object {\"header\": ..., \"events\": [...]}"};
  const auto header_it = root.find("header");
  if (header_it == root.end()) {
    return sim::Error{sim::ErrorCode::kInvalidArgument,
                      "missing required field header (what `duro history export --json` writes)"};
  }
  sim::Result<HistoryFileHeader> header = header_from_json(*header_it);
  if (!header.ok()) return header.error();
  Json events_only = Json::object();
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it.key() != "header") events_only[it.key()] = std::move(it.value());
  }
  sim::Result<History> history = history_from_json(events_only.dump());
  if (!history.ok()) return history.error();
  HistoryFile file{std::move(header.value()), std::move(history.value())};
  if (std::string problem = header_problem(file); !problem.empty()) {
    return sim::Error{sim::ErrorCode::kInvalidArgument, problem};
  }
  return file;
}

}  // namespace duro::engine
