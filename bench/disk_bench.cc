// The simulated disk's hot path: the persistence service's commit, one
// 4 KiB append and one fsync, in host CPU time per pair. Virtual time costs
// nothing, so the latencies stay at their defaults (each operation then
// suspends its fiber once: an event, as in a real run).
//
//   BM_disk_append_fsync             append 4 KiB + fsync, default latencies:
//                                    two fiber round trips, two timer events,
//                                    the copies, the bookkeeping.
//   BM_disk_append_fsync_no_latency  the same with zero latencies: the disk's
//                                    own work alone (nothing suspends).
//   BM_raw_disk_copy_4k              the reference: the three 4 KiB copies an
//                                    append + fsync cannot avoid (into the
//                                    page cache, into the unsynced record,
//                                    onto the media), into buffers that grow
//                                    and are cut back the same way.
//
// The benchmark loop runs inside a fiber of the disk's node: everything is
// one thread, and disk operations must come from a fiber. The log is cut
// back to empty every kRotateBytes, outside the timed region, so memory
// stays bounded however many iterations the library picks.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "sim/disk.h"
#include "sim/simulator.h"

namespace {

using duro::sim::Disk;
using duro::sim::DiskOptions;
using duro::sim::NodeId;
using duro::sim::Simulator;

constexpr std::uint64_t kRecordBytes = 4096;
constexpr std::uint64_t kRotateBytes = std::uint64_t{4} << 20;

void run_append_fsync(benchmark::State& state, DiskOptions options) {
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("bench");
  options.capacity_bytes = 2 * kRotateBytes;
  Disk disk(sim, node, options, sim.random().fork("disk/bench"));
  const std::string record(kRecordBytes, 'r');
  sim.spawn(node, "log", [&] {
    if (!disk.create("log").ok()) {
      state.SkipWithError("create failed");
      return;
    }
    std::uint64_t size_bytes = 0;
    for (auto _ : state) {
      if (!disk.append("log", record).ok() || !disk.fsync("log").ok()) {
        state.SkipWithError("append or fsync failed");
        break;
      }
      size_bytes += kRecordBytes;
      if (size_bytes >= kRotateBytes) {
        state.PauseTiming();
        if (!disk.truncate("log", 0).ok() || !disk.fsync("log").ok()) {
          state.SkipWithError("truncate failed");
          break;
        }
        size_bytes = 0;
        state.ResumeTiming();
      }
    }
  });
  (void)sim.run();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kRecordBytes));
  state.counters["fsyncs"] = static_cast<double>(disk.stats().fsyncs);
}

void BM_disk_append_fsync(benchmark::State& state) { run_append_fsync(state, DiskOptions{}); }
BENCHMARK(BM_disk_append_fsync);

void BM_disk_append_fsync_no_latency(benchmark::State& state) {
  DiskOptions options;
  options.read_latency = {};
  options.write_latency = {};
  options.metadata_latency = {};
  options.fsync_latency = {};
  run_append_fsync(state, options);
}
BENCHMARK(BM_disk_append_fsync_no_latency);

void BM_raw_disk_copy_4k(benchmark::State& state) {
  const std::string record(kRecordBytes, 'r');
  std::string cache;
  std::string unsynced;
  std::string durable;
  for (auto _ : state) {
    cache.append(record);
    unsynced.append(record);
    durable.append(std::string_view(unsynced).substr(unsynced.size() - kRecordBytes));
    unsynced.clear();
    benchmark::DoNotOptimize(durable.data());
    if (cache.size() >= kRotateBytes) {
      state.PauseTiming();
      cache.clear();
      durable.clear();
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kRecordBytes));
}
BENCHMARK(BM_raw_disk_copy_4k);

}  // namespace
