// The scheduler's hot paths, measured against references that bound them.
//
// At its core the simulator does two things per event: a hold on the event
// queue (pop the earliest event, push the next one) and a fiber round trip
// (switch into the fiber, and back when it suspends). The two raw
// benchmarks measure exactly those with nothing around them, so their sum is
// what a timer wakeup would cost if the simulator added nothing:
//
//   BM_raw_boost_fiber_switch  one resume of a bare boost::context fiber and
//                              its suspend back to the caller.
//   BM_raw_queue_hold          one pop + one push (at the popped time plus a
//                              random increment) on a std::priority_queue of
//                              24-byte events holding 1,000 pending.
//   BM_sim_yield               one event of Simulator::run() resuming a fiber that
//                              yields in a loop: the fiber round trip plus the
//                              simulator's per-event bookkeeping, on a queue
//                              of one event.
//   BM_sim_timer_wakeup        one event of run() among 1,000 fibers sleeping random
//                              durations: one timer fires, its fiber draws a
//                              new duration and sleeps again.
//
// After the table, ratios from the same run (so machine speed cancels out):
// the timer wakeup over the sum of the references, whose target is <= 1.5,
// and the yield over the bare switch. A miss is reported, not failed: the
// exit status is 0 either way.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <initializer_list>
#include <memory>
#include <optional>
#include <queue>
#include <vector>

#include <malloc.h>
#if defined(DURO_MIMALLOC)
#include <mimalloc.h>
#endif

#include "bench/allocation_counter.h"
#include "bench/ratio_reporter.h"
#include "sim/random.h"
#include "sim/sanitizer.h"
#include "sim/simulator.h"
#include "sim/stack_pool.h"

// Counts heap allocations, so the benchmarks can report allocations per
// event: the hot path's budget is zero (DESIGN.md §7). Not under ASan,
// whose own allocator must see every new and delete.
// This file replaces the global operator new and delete with malloc and
// free. Without LTO, GCC 12 inlines the replacement delete into static
// initializers and reports free() on memory from new: a false
// -Wmismatched-new-delete, off for this file only.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::uint64_t allocations = 0;
constexpr bool kCountingAllocations = !duro::sim::sanitizer::kAddressSanitizer;
}  // namespace

#if !defined(DURO_ASAN)
namespace {
// A count, nothing more: asking the allocator each block's size here cost
// the end-to-end benchmark 6% of its instructions. Live bytes are read off
// the allocator's heap when asked (live_heap_bytes()).
void* counted_malloc(std::size_t size) noexcept {
  allocations++;
  return std::malloc(size == 0 ? 1 : size);
}
void* counted_aligned(std::size_t size, std::align_val_t alignment) noexcept {
  allocations++;
  const auto align = static_cast<std::size_t>(alignment);
  // aligned_alloc wants a size that is a multiple of the alignment.
  return std::aligned_alloc(align, (std::max<std::size_t>(size, 1) + align - 1) / align * align);
}
void counted_free(void* p) noexcept { std::free(p); }
void* or_throw(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

// Every form, so that no allocation goes around the count: a form left
// out is served by the allocator's own (mimalloc exports them all), and
// its blocks would then come back through the counted delete.
void* operator new(std::size_t size) { return or_throw(counted_malloc(size)); }
void* operator new[](std::size_t size) { return or_throw(counted_malloc(size)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_malloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return counted_malloc(size); }
void* operator new(std::size_t size, std::align_val_t alignment) { return or_throw(counted_aligned(size, alignment)); }
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return or_throw(counted_aligned(size, alignment));
}
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return counted_aligned(size, alignment);
}
void* operator new[](std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return counted_aligned(size, alignment);
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
#endif

namespace duro::bench {
bool counting_allocations() noexcept { return kCountingAllocations; }
std::uint64_t allocations() noexcept { return ::allocations; }
std::int64_t live_heap_bytes() noexcept {
#if defined(DURO_MIMALLOC)
  // Every block in use in the (one) thread's heap, at its size class.
  std::size_t bytes = 0;
  mi_heap_visit_blocks(
      mi_heap_get_default(), false,
      [](const mi_heap_t*, const mi_heap_area_t* area, void*, std::size_t, void* total) {
        *static_cast<std::size_t*>(total) += area->used * area->block_size;
        return true;
      },
      &bytes);
  return static_cast<std::int64_t>(bytes);
#else
  const struct mallinfo2 info = ::mallinfo2();
  return static_cast<std::int64_t>(info.uordblks + info.hblkhd);
#endif
}
}  // namespace duro::bench

namespace {

using duro::sim::Duration;
using duro::sim::NodeId;
using duro::sim::Random;
using duro::sim::Simulator;
namespace this_fiber = duro::sim::this_fiber;

constexpr std::size_t kPendingEvents = 1'000;
constexpr std::uint64_t kIncrementBoundNs = 1'000'000;
// The simulator benchmarks drive Simulator::run() a batch of events at a
// time, as a simulation does, so the run loop's per-call set-up is
// amortized as it is in real use; each item is one event.
constexpr std::uint64_t kEventsPerBatch = 1'000;

void BM_raw_boost_fiber_switch(benchmark::State& state) {
  duro::sim::StackPool pool(duro::sim::kDefaultStackSizeBytes, 1);
  bool done = false;
  boost::context::fiber fiber(std::allocator_arg, duro::sim::PooledStackAllocator(&pool),
                              [&done](boost::context::fiber&& caller) {
                                while (!done) caller = std::move(caller).resume();
                                return std::move(caller);
                              });
  fiber = std::move(fiber).resume();  // Start it: the first entry is not a switch like the others.
  for (auto _ : state) {
    fiber = std::move(fiber).resume();
  }
  done = true;
  fiber = std::move(fiber).resume();  // Lets it return; its stack goes back to the pool.
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_raw_boost_fiber_switch);

struct RawEvent {
  std::int64_t time;
  std::uint64_t seq;
  std::uint64_t target;
};
static_assert(sizeof(RawEvent) == 24);

// std::priority_queue is a max-heap of its comparator: "later" puts the
// earliest (time, seq) on top.
struct Later {
  bool operator()(const RawEvent& a, const RawEvent& b) const noexcept {
    return a.time > b.time || (a.time == b.time && a.seq > b.seq);
  }
};

void BM_raw_queue_hold(benchmark::State& state) {
  Random random(1);
  std::uint64_t seq = 0;
  std::vector<RawEvent> storage;
  storage.reserve(kPendingEvents + 1);
  std::priority_queue<RawEvent, std::vector<RawEvent>, Later> queue(Later{}, std::move(storage));
  for (std::size_t i = 0; i < kPendingEvents; i++) {
    queue.push(RawEvent{static_cast<std::int64_t>(random.uniform(kIncrementBoundNs)), seq++, i});
  }
  for (auto _ : state) {
    const RawEvent next = queue.top();
    queue.pop();
    benchmark::DoNotOptimize(next);
    queue.push(RawEvent{next.time + static_cast<std::int64_t>(random.uniform(kIncrementBoundNs)), seq++,
                        next.target});
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_raw_queue_hold);

void BM_sim_yield(benchmark::State& state) {
  bool stop = false;
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("bench");
  sim.spawn(node, "yielder", [&stop] {
    while (!stop) this_fiber::yield();
  });
  sim.step();  // Starts the fiber, which yields: one event pending from here on.
  const std::uint64_t allocations_before = allocations;
  while (state.KeepRunningBatch(kEventsPerBatch)) {
    if (sim.run({.events_max = kEventsPerBatch}).reason != duro::sim::StopReason::kEventBudget) {
      state.SkipWithError("the yielding fiber stopped");
      break;
    }
  }
  if (kCountingAllocations) {
    state.counters["allocs_per_event"] =
        static_cast<double>(allocations - allocations_before) / static_cast<double>(state.iterations());
  }
  stop = true;
  sim.run();  // The fiber sees the flag and returns.
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_sim_yield);

void BM_sim_timer_wakeup(benchmark::State& state) {
  bool stop = false;
  Simulator sim({.seed = 1});
  const NodeId node = sim.add_node("bench");
  for (std::uint64_t i = 0; i < kPendingEvents; i++) {
    sim.spawn(node, "sleeper", [&stop, random = sim.random().fork(i)]() mutable {
      while (!stop) {
        this_fiber::sleep_for(Duration{static_cast<std::int64_t>(random.uniform(kIncrementBoundNs)) + 1});
      }
    });
  }
  // Start every fiber; each goes to sleep, leaving one timer per fiber.
  for (std::size_t i = 0; i < kPendingEvents; i++) sim.step();
  const std::uint64_t allocations_before = allocations;
  while (state.KeepRunningBatch(kEventsPerBatch)) {
    if (sim.run({.events_max = kEventsPerBatch}).reason != duro::sim::StopReason::kEventBudget) {
      state.SkipWithError("the sleeping fibers stopped");
      break;
    }
  }
  if (kCountingAllocations) {
    state.counters["allocs_per_event"] =
        static_cast<double>(allocations - allocations_before) / static_cast<double>(state.iterations());
  }
  stop = true;
  sim.run();  // Each fiber wakes once more, sees the flag and returns.
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_sim_timer_wakeup);

void print_ratio(const duro::bench::RatioReporter& reporter, const char* label,
                 const char* numerator, std::initializer_list<const char*> denominator,
                 std::optional<double> target) {
  const std::optional<double> top = reporter.cpu_seconds_per_iteration(numerator);
  if (!top) return;
  double bottom = 0;
  for (const char* name : denominator) {
    const std::optional<double> seconds = reporter.cpu_seconds_per_iteration(name);
    if (!seconds) return;
    bottom += *seconds;
  }
  if (bottom <= 0) return;
  const double ratio = *top / bottom;
  if (target) {
    std::printf("ratio %s = %.2f (target <= %.2f) %s\n", label, ratio, *target, ratio <= *target ? "OK" : "MISS");
  } else {
    std::printf("ratio %s = %.2f\n", label, ratio);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // Colour only on a terminal, as the library's own console reporter does.
  duro::bench::RatioReporter reporter(isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_Color
                                                                  : benchmark::ConsoleReporter::OO_None);
  benchmark::RunSpecifiedBenchmarks(&reporter);

  print_ratio(reporter, "BM_sim_timer_wakeup / (BM_raw_queue_hold + BM_raw_boost_fiber_switch)",
              "BM_sim_timer_wakeup", {"BM_raw_queue_hold", "BM_raw_boost_fiber_switch"}, 1.50);
  print_ratio(reporter, "BM_sim_yield / BM_raw_boost_fiber_switch", "BM_sim_yield",
              {"BM_raw_boost_fiber_switch"}, std::nullopt);
  print_ratio(reporter, "BM_net_message / BM_raw_queue_hold", "BM_net_message", {"BM_raw_queue_hold"}, 3.0);
  print_ratio(reporter, "BM_rpc_roundtrip / BM_net_message", "BM_rpc_roundtrip", {"BM_net_message"}, std::nullopt);
  // A workflow of three activities costs some 70 round trips' worth of
  // messages (simulated_messages/workflow); the ratio tracks the rest.
  print_ratio(reporter, "BM_engine_workflow_roundtrip / BM_rpc_roundtrip", "BM_engine_workflow_roundtrip",
              {"BM_rpc_roundtrip"}, std::nullopt);
  print_ratio(reporter, "BM_disk_append_fsync / BM_raw_disk_copy_4k", "BM_disk_append_fsync",
              {"BM_raw_disk_copy_4k"}, std::nullopt);
  // Replay: the whole ~23,000-event history, over the cost of decoding
  // (or copying) the same events once.
  print_ratio(reporter, "BM_replay_events / BM_replay_decode_reference", "BM_replay_events",
              {"BM_replay_decode_reference"}, std::nullopt);
  print_ratio(reporter, "BM_replay_events_worker_run / BM_replay_decode_reference", "BM_replay_events_worker_run",
              {"BM_replay_decode_reference"}, std::nullopt);
  print_ratio(reporter, "BM_replay_events / BM_replay_copy_reference", "BM_replay_events",
              {"BM_replay_copy_reference"}, std::nullopt);
  // The same three-activity workflow on an SDK worker (many in flight) over
  // the raw-command worker (one at a time): time per completed workflow.
  print_ratio(reporter, "BM_workflow_end_to_end_1_server / BM_engine_workflow_roundtrip",
              "BM_workflow_end_to_end_1_server", {"BM_engine_workflow_roundtrip"}, std::nullopt);
  print_ratio(reporter, "BM_workflow_end_to_end_1_server_batch_100 / BM_engine_workflow_roundtrip",
              "BM_workflow_end_to_end_1_server_batch_100", {"BM_engine_workflow_roundtrip"}, std::nullopt);
  print_ratio(reporter, "BM_workflow_end_to_end_3_servers / BM_engine_workflow_roundtrip",
              "BM_workflow_end_to_end_3_servers", {"BM_engine_workflow_roundtrip"}, std::nullopt);
  benchmark::Shutdown();
  return 0;
}
