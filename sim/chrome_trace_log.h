// ChromeTraceLog: writes a run's trace as a Chrome/Perfetto JSON trace
// (the "Trace Event Format"), which ui.perfetto.dev and chrome://tracing
// open: one track (process) per node, named after it.
//
//   std::FILE* out = std::fopen("trace.json", "w");
//   sim::ChromeTraceLog log(out, world.sim().start_time());
//   world.sim().set_trace_log(&log);
//   world.run(...);
//   log.finish();          // closes the JSON array
//
// What it draws: slices from TraceSlice (workflow tasks, activities, RPCs
// served), as async slices keyed by fiber so overlapping work on one node
// stacks in rows; faults the world applied, as instant events on the node
// they hit (or on a "world" track); fiber spawns and exits are left out
// (they would drown the picture). Times are simulated microseconds since
// the start.
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <string_view>

#include "sim/trace.h"

namespace duro::sim {

class ChromeTraceLog final : public TraceLog {
 public:
  ChromeTraceLog(std::FILE* file, TimePoint start_time);
  ~ChromeTraceLog() override;

  void record(const TraceRecord& record) override;
  // Ends the JSON document (idempotent; the destructor calls it).
  void finish();
  std::uint64_t events() const noexcept { return events_; }

 private:
  int pid_of(std::string_view node);
  void write_event(std::string_view json);

  std::FILE* file_;
  TimePoint start_time_;
  std::map<std::string, int, std::less<>> pids_;
  std::uint64_t events_ = 0;
  bool finished_ = false;
};

// `text` as the inside of a JSON string (quotes and control characters escaped).
std::string json_escape(std::string_view text);

}  // namespace duro::sim
