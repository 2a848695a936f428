// TraceSlice: marks a span of work — a workflow task, an activity, an RPC
// being served — in the trace log, as a "begin" record now and an "end"
// record when it goes out of scope (also when a crash unwinds it).
//
//   sim::TraceSlice slice(env.sim(), [&] { return "activity " + type; });
//
// The name is built only while a trace log is installed: off, a slice
// costs one branch. Viewers (ChromeTraceLog) pair a fiber's begins and ends
// into nested slices on the node's track.
#pragma once

#include <string>
#include <utility>

#include "sim/simulator.h"

namespace duro::sim {

class TraceSlice {
 public:
  template <typename MakeName>
  TraceSlice(Simulator& sim, MakeName&& make_name) : sim_(sim) {
    if (!sim_.tracing()) return;
    name_ = std::forward<MakeName>(make_name)();
    open_ = true;
    sim_.trace("begin", name_);
  }
  ~TraceSlice() {
    if (open_) sim_.trace("end", name_);
  }
  TraceSlice(const TraceSlice&) = delete;
  TraceSlice& operator=(const TraceSlice&) = delete;

 private:
  Simulator& sim_;
  std::string name_;
  bool open_ = false;
};

}  // namespace duro::sim
