// ChromeTraceLog: what it writes is a JSON document in the Trace Event
// Format, with a named track per node, balanced slices, and faults as
// instants; and tracing does not change the run (same trace hash).
#include "sim/chrome_trace_log.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <set>
#include <memory>
#include <string>

#include "sim/trace_slice.h"
#include "sim/world.h"

namespace duro::sim {
namespace {

using namespace std::chrono_literals;

class NoProcess final : public Process {};

// Two nodes doing sliced work; returns the trace hash.
std::uint64_t run_world(TraceLog* log) {
  World world({.seed = 9});
  if (log != nullptr) world.sim().set_trace_log(log);
  for (const char* name : {"alpha", "beta"}) {
    const NodeId node = world.add_node(name, [](Env&) -> std::unique_ptr<Process> { return std::make_unique<NoProcess>(); });
    for (int i = 0; i < 3; i++) {
      world.env(node).spawn("work", [&world, node, i] {
        const TraceSlice outer(world.sim(), [&] { return "outer " + std::to_string(i); });
        world.env(node).sleep_for(std::chrono::milliseconds{10 * (i + 1)});
        const TraceSlice inner(world.sim(), [] { return std::string("inner \"quoted\""); });
        world.env(node).sleep_for(5ms);
      });
    }
  }
  return world.run_for(1s).trace_hash;
}

TEST(ChromeTraceLog, WritesBalancedSlicesOnATrackPerNode) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  {
    ChromeTraceLog log(file, kDefaultStartTime);
    run_world(&log);
    log.finish();
  }
  std::rewind(file);
  std::string text;
  char chunk[4096];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, file)) > 0;) text.append(chunk, n);
  std::fclose(file);

  const nlohmann::json trace = nlohmann::json::parse(text);  // Throws (fails) if not JSON.
  std::map<int, std::string> tracks;
  std::map<std::string, int> depth;  // Open slices per id.
  int begins = 0;
  double last_ts = -1;
  for (const nlohmann::json& event : trace["traceEvents"]) {
    const std::string ph = event["ph"];
    if (ph == "M" && event["name"] == "process_name") tracks[event["pid"]] = event["args"]["name"];
    if (ph != "b" && ph != "e") continue;
    ASSERT_TRUE(tracks.contains(event["pid"].get<int>())) << "a slice on a track with no name";
    const double ts = event["ts"];
    EXPECT_GE(ts, last_ts) << "events in time order";
    last_ts = ts;
    const std::string id = event["id"];
    if (ph == "b") {
      begins++;
      depth[id]++;
    } else {
      ASSERT_GT(depth[id], 0) << "an end without a begin";
      depth[id]--;
    }
  }
  EXPECT_EQ(begins, 12);  // Six fibers, two slices each.
  for (const auto& [id, open] : depth) EXPECT_EQ(open, 0) << "slice " << id << " left open";
  std::set<std::string> names;
  for (const auto& [pid, name] : tracks) names.insert(name);
  EXPECT_TRUE(names.contains("alpha"));
  EXPECT_TRUE(names.contains("beta"));
}

TEST(ChromeTraceLog, TracingDoesNotChangeTheRun) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  std::uint64_t traced = 0;
  {
    ChromeTraceLog log(file, kDefaultStartTime);
    traced = run_world(&log);
  }
  std::fclose(file);
  EXPECT_EQ(traced, run_world(nullptr));
}

}  // namespace
}  // namespace duro::sim
