#include "sim/chrome_trace_log.h"

#include <fmt/format.h>

#include "sim/assert.h"

namespace duro::sim {

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out;
}

ChromeTraceLog::ChromeTraceLog(std::FILE* file, TimePoint start_time) : file_(file), start_time_(start_time) {
  DURO_ASSERT(file_ != nullptr);
  std::fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", file_);
}

ChromeTraceLog::~ChromeTraceLog() { finish(); }

void ChromeTraceLog::finish() {
  if (finished_) return;
  finished_ = true;
  std::fputs("\n]}\n", file_);
  std::fflush(file_);
}

void ChromeTraceLog::write_event(std::string_view json) {
  DURO_ASSERT(!finished_);
  if (events_++ > 0) std::fputs(",\n", file_);
  std::fwrite(json.data(), 1, json.size(), file_);
}

int ChromeTraceLog::pid_of(std::string_view node) {
  const std::string_view name = node.empty() ? std::string_view("world") : node;
  auto it = pids_.find(name);
  if (it != pids_.end()) return it->second;
  const int pid = static_cast<int>(pids_.size()) + 1;
  pids_.emplace(std::string(name), pid);
  write_event(fmt::format(R"({{"name":"process_name","ph":"M","pid":{},"args":{{"name":"{}"}}}})", pid,
                          json_escape(name)));
  write_event(fmt::format(R"({{"name":"process_sort_index","ph":"M","pid":{},"args":{{"sort_index":{}}}}})", pid,
                          pid));
  return pid;
}

void ChromeTraceLog::record(const TraceRecord& record) {
  const bool begin = record.kind == "begin";
  const bool end = record.kind == "end";
  const bool fault = record.kind == "fault";
  if (!begin && !end && !fault) return;
  const double ts_us = static_cast<double>(std::chrono::nanoseconds(record.time - start_time_).count()) / 1000.0;
  const int pid = pid_of(record.node);
  if (fault) {
    write_event(fmt::format(R"({{"name":"{}","cat":"fault","ph":"i","s":"p","pid":{},"tid":0,"ts":{:.3f}}})",
                            json_escape(record.detail), pid, ts_us));
    return;
  }
  // Async slices, one id per fiber: a fiber's slices nest; fibers on one
  // node get rows of their own.
  write_event(fmt::format(R"({{"name":"{}","cat":"{}","ph":"{}","id":"{}","pid":{},"tid":0,"ts":{:.3f}}})",
                          json_escape(record.detail), json_escape(record.node.empty() ? "world" : record.node),
                          begin ? "b" : "e", record.fiber, pid, ts_us));
}

}  // namespace duro::sim
