// The deterministic scheduler: one simulated world on one OS thread.
//
// The simulator owns virtual time, a queue of events ordered by (time,
// sequence), the fibers that model concurrency, and the nodes those fibers
// live on. It runs one event at a time: resume a fiber whose sleep ended or
// whose wait was answered, or call a scheduled callback. Nothing else moves
// time, and a fiber runs until it suspends, so a run is a function of its
// seed (DESIGN.md §2).
//
//   sim::Simulator sim({.seed = 42});
//   sim::NodeId n = sim.add_node("server");
//   sim.spawn(n, "tick", [] { sim::this_fiber::sleep_for(std::chrono::hours{1}); });
//   sim::RunResult result = sim.run();   // result.time is start + 1h
//
// A run ends on quiescence (nothing scheduled, no fiber waiting), deadlock
// (nothing scheduled, fibers still waiting: the report names each and what
// it waits on), a time limit, an event budget, or stop(). An exception that
// escapes a fiber ends the run and is rethrown from run().
//
// Daemon fibers (servers looping on a mailbox) may wait forever without
// that counting as a deadlock; the simulator unwinds them on destruction.
#pragma once

#include <boost/context/fiber.hpp>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sim/assert.h"
#include "sim/clock.h"
#include "sim/event_queue.h"
#include "sim/exception_state.h"
#include "sim/node.h"
#include "sim/random.h"
#include "sim/sanitizer.h"
#include "sim/stack_pool.h"
#include "sim/trace.h"

namespace duro::sim {

// 64 KiB; four times that under AddressSanitizer, whose redzones inflate
// every frame.
inline constexpr std::size_t kDefaultStackSizeBytes =
    sanitizer::kAddressSanitizer ? 256 * 1024 : 64 * 1024;

struct SimulatorOptions {
  std::uint64_t seed = 0;
  TimePoint start_time = kDefaultStartTime;
  // Order equal-time events by a draw from the seed instead of by the order
  // they were scheduled in, to explore interleavings (DESIGN.md §2.5).
  bool shuffle_ties = false;
  std::size_t stack_size_bytes = kDefaultStackSizeBytes;
  std::size_t fibers_max = 1 << 20;
  std::size_t events_max = 1 << 24;
  std::size_t nodes_max = 1 << 16;
};

struct RunLimits {
  TimePoint until = TimePoint::max();  // Events after this instant stay queued.
  std::uint64_t events_max = UINT64_MAX;  // Executed in this call.
};

enum class StopReason : std::uint8_t { kQuiescent, kDeadlock, kTimeLimit, kEventBudget, kStopped };
const char* stop_reason_name(StopReason reason) noexcept;

struct RunResult {
  StopReason reason;
  TimePoint time;                 // Virtual time when the run stopped.
  std::uint64_t events_executed;  // Since the simulator was created.
  std::uint64_t trace_hash;
  std::string deadlock_report;    // Set only for kDeadlock.
};

// Why a suspended fiber resumed.
enum class WakeReason : std::uint8_t { kNotified, kTimeout, kKilled };

// One particular suspension of one fiber. A notify() aimed at a suspension
// that already ended (the fiber woke for another reason, or died) is ignored,
// so waiters may be left registered in places without harm.
struct Waiter {
  std::uint32_t slot = UINT32_MAX;
  std::uint64_t token = 0;
};

// Thrown at a suspension point of a fiber that is being killed (its node
// crashed, or it was cancelled) to unwind its stack. Not a std::exception,
// so `catch (const std::exception&)` does not swallow it; code that catches
// `...` must rethrow.
struct FiberUnwind {};

struct SpawnOptions {
  bool daemon = false;  // May wait forever without being a deadlock.
  // Summarises what the fiber is handed (an RPC request's bytes) for the
  // trace hash, as a message's digest is: 0 for nothing.
  std::uint64_t digest = 0;
};

class Simulator;

namespace detail {
// The simulator current on this thread (see Simulator::Scope).
inline thread_local Simulator* current_simulator = nullptr;
}  // namespace detail

// Refers to a fiber; stays safe to use after the fiber has finished.
class FiberHandle {
 public:
  FiberHandle() = default;
  FiberHandle(Simulator* sim, std::uint32_t slot, std::uint64_t id) : sim_(sim), slot_(slot), id_(id) {}

  std::uint64_t id() const noexcept { return id_; }
  bool valid() const noexcept { return sim_ != nullptr; }
  bool done() const;
  // Suspends the calling fiber until this one has finished (normally, by an
  // exception, or by being killed).
  void join() const;
  // Kills the fiber: its next (or current) suspension unwinds it.
  void cancel() const;

 private:
  Simulator* sim_ = nullptr;
  std::uint32_t slot_ = UINT32_MAX;
  std::uint64_t id_ = 0;
};

class Simulator {
 public:
  explicit Simulator(SimulatorOptions options = {});
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // The simulator running on this thread (inside run(), step(), or a Scope).
  static Simulator& current() noexcept {
    Simulator* sim = detail::current_simulator;
    if (sim == nullptr) [[unlikely]] detail::no_current_simulation();
    return *sim;
  }
  static Simulator* current_or_null() noexcept { return detail::current_simulator; }

  // Makes this simulator current for setup code outside run(): Clock::now()
  // and promises work inside the scope. Scopes nest.
  class Scope {
   public:
    explicit Scope(Simulator& sim) noexcept;
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    Simulator* previous_sim_;
    const std::int64_t* previous_time_;
  };

  TimePoint now() const noexcept { return TimePoint{Duration{now_ns_}}; }
  // now() + duration, saturating at TimePoint::max() ("never") instead of
  // wrapping into the past; negative durations count as zero.
  TimePoint deadline_after(Duration duration) const noexcept {
    if (duration.count() <= 0) return now();
    if (duration.count() >= INT64_MAX - now_ns_) return TimePoint::max();
    return now() + duration;
  }
  TimePoint start_time() const noexcept { return options_.start_time; }
  std::uint64_t seed() const noexcept { return options_.seed; }
  // The root random stream. Subsystems should fork() their own.
  Random& random() noexcept { return random_; }
  std::uint64_t trace_hash() const noexcept { return trace_hash_.value(); }
  // Mixes `digest` (of bytes handed over without a message or a spawn: a
  // direct call to a deferred RPC method) into the trace hash, with the
  // current node and time.
  void mix_digest(std::uint64_t digest) noexcept;
  std::uint64_t events_executed() const noexcept { return events_executed_; }
  std::size_t events_pending() const noexcept { return queue_.size(); }
  std::size_t fibers_live() const noexcept { return fibers_live_; }
  const StackPool& stacks() const noexcept { return stacks_; }

  // --- Nodes -------------------------------------------------------------

  // Adds a node and boots it (boot may be empty: a node with no process).
  // With `boot_now` false the node starts down (incarnation 0) until the
  // first restart(): for worlds that attach a disk to the id first.
  NodeId add_node(std::string name, BootFn boot = {}, bool boot_now = true);
  // Crashes a running node. From the scheduler (a callback, or between
  // runs) it happens at once. From a fiber it happens as an event at the
  // current time and the caller waits for it, so code after crash() sees
  // the node down (and a fiber crashing its own node dies in the call).
  void crash(NodeId node);
  // Boots a crashed node again.
  void restart(NodeId node);
  // Called (from the scheduler) after a node's fibers are unwound and its
  // process destroyed, in registration order: what outlives a process (its
  // disk, its sockets' in-flight traffic) learns of the crash here.
  using CrashListener = std::function<void(NodeId node)>;
  void add_crash_listener(CrashListener listener);
  bool is_up(NodeId node) const;
  const std::string& node_name(NodeId node) const;
  Address node_address(NodeId node) const;
  // The node with this address, or kNoNode.
  NodeId node_at(Address address) const noexcept;
  std::uint32_t incarnation(NodeId node) const;  // 1 at first boot.
  Process* process(NodeId node) const;
  std::size_t node_count() const noexcept { return nodes_.size(); }
  std::size_t fibers_on(NodeId node) const;

  // --- Fibers ------------------------------------------------------------

  // Starts `fn` in a new fiber on `node`, as the next event at the current
  // time. The node must be up.
  template <typename Fn>
  FiberHandle spawn(NodeId node, std::string name, Fn&& fn, SpawnOptions options = {});

  bool in_fiber() const noexcept { return running_ != kNoSlot; }
  NodeId current_node() const noexcept;
  std::uint64_t current_fiber_id() const noexcept;

  // --- Callbacks -----------------------------------------------------------

  // Calls `fn` from the scheduler at `when` (not before now). If `owner` is
  // a node that crashes before then, the callback is dropped: in-flight
  // work of a dead process never lands. `digest` summarises the payload for
  // the trace hash.
  void schedule_at(TimePoint when, std::function<void()> fn, NodeId owner = kNoNode,
                   std::uint64_t digest = 0);
  void schedule_after(Duration delay, std::function<void()> fn, NodeId owner = kNoNode,
                      std::uint64_t digest = 0) {
    schedule_at(now() + delay, std::move(fn), owner, digest);
  }

  // --- Running ----------------------------------------------------------

  RunResult run(RunLimits limits = {});
  RunResult run_for(Duration duration) { return run({.until = now() + duration}); }
  // Executes exactly one event; false if none is pending.
  bool step();
  // Ends run() after the current event.
  void stop() noexcept { stop_requested_ = true; }

  // --- Waiting: the building block of futures and channels ----------------
  //
  //   Waiter w = sim.begin_wait();      // in a fiber
  //   register w where the answer will come from;
  //   WakeReason r = sim.suspend(w, "reply from store", deadline);
  //
  // and whoever answers calls sim.notify(w). No other fiber runs between
  // begin_wait() and suspend().

  // Marks code that must not suspend, in the current fiber (if any), for
  // its scope: a suspend() there is an assertion failure naming `what`.
  // For callbacks run in someone else's fiber (RpcServer's deferred
  // handlers), where a wait would stall that fiber's other work.
  class SuspendForbidden {
   public:
    SuspendForbidden(Simulator& sim, const char* what) noexcept;
    ~SuspendForbidden();
    SuspendForbidden(const SuspendForbidden&) = delete;
    SuspendForbidden& operator=(const SuspendForbidden&) = delete;

   private:
    Simulator& sim_;
    std::uint32_t slot_;
    const char* previous_;
  };

  // Defers FiberHandle::cancel() of the running fiber for as long as it is
  // in scope: a cancel meanwhile takes effect when the last such scope
  // ends (the fiber's next suspension unwinds it). A crash still unwinds
  // it at once. For someone else's code run in a fiber that may be
  // cancelled for its own reasons (an RPC handler run in its local
  // caller's fiber), which a cancel must not cut short halfway.
  class CancelDeferred {
   public:
    explicit CancelDeferred(Simulator& sim) noexcept;
    ~CancelDeferred();
    CancelDeferred(const CancelDeferred&) = delete;
    CancelDeferred& operator=(const CancelDeferred&) = delete;

   private:
    Simulator& sim_;
    std::uint32_t slot_;
  };

  Waiter begin_wait() noexcept;
  // `what` must outlive the wait (a string literal): the deadlock report
  // prints it. Throws FiberUnwind if the fiber is killed.
  WakeReason suspend(Waiter waiter, const char* what, TimePoint deadline = TimePoint::max());
  void notify(Waiter waiter);

  // --- Tracing ---------------------------------------------------------

  // Installs a structured trace sink (nullptr turns it off).
  void set_trace_log(TraceLog* log) noexcept { trace_log_ = log; }
  bool tracing() const noexcept { return trace_log_ != nullptr; }
  // Writes a record attributed to the current node and fiber, if tracing.
  void trace(std::string_view kind, std::string_view detail);

 private:
  friend class FiberHandle;

  enum class FiberState : std::uint8_t { kFree, kReady, kRunning, kWaiting };
  enum EventKind : std::uint64_t { kWakeTimeout = 0, kWakeNotify = 1, kCallback = 2 };

  static constexpr std::uint32_t kNoSlot = UINT32_MAX;
  static constexpr std::int64_t kDeadEventsPurgeMin = 4096;
  static constexpr std::uint32_t kSlotsPerChunkLog2 = 8;
  static constexpr std::uint32_t kSlotsPerChunk = 1U << kSlotsPerChunkLog2;
  static constexpr int kKindShift = 62;
  static constexpr int kSlotShift = 38;
  static constexpr std::uint64_t kSlotMask = (1ULL << 24) - 1;
  static constexpr std::uint64_t kTokenMask = (1ULL << kSlotShift) - 1;

  // Hot fields (touched on every wake) first: they share one cache line.
  struct FiberSlot {
    boost::context::fiber context;    // The fiber, while it is not running.
    boost::context::fiber scheduler;  // The scheduler, while the fiber runs.
    ExceptionState exceptions;        // The fiber's, while it is not running.
    // Counts suspensions over the slot's whole life (never reset on reuse),
    // so an event aimed at an earlier suspension or an earlier fiber in the
    // slot never matches.
    std::uint64_t token = 0;
    std::uint64_t id = 0;
    const char* waiting_on = nullptr;
    NodeId node = kNoNode;
    FiberState state = FiberState::kFree;
    WakeReason wake_reason = WakeReason::kNotified;
    bool killed = false;
    bool daemon = false;
    bool timer_armed = false;  // This suspension queued a timeout event.
    const char* suspend_forbidden = nullptr;  // SuspendForbidden's `what`, in its scope.
    // Cold: spawn, exit, join, reports; the stack only for ASan's switches.
    std::uint32_t cancel_deferred = 0;  // CancelDeferred scopes open.
    bool cancel_pending = false;        // Cancelled in one of them.
    const void* stack_bottom = nullptr;
    std::size_t stack_size_bytes = 0;
    std::string name;
    std::exception_ptr error;
    Waiter joiner;
    std::uint32_t node_prev = kNoSlot;
    std::uint32_t node_next = kNoSlot;
    bool has_joiner = false;
  };

  struct NodeRecord {
    std::string name;
    Address address;
    BootFn boot;
    std::unique_ptr<Process> process;
    std::uint32_t incarnation = 0;
    std::uint32_t first_fiber = kNoSlot;  // Oldest first.
    std::uint32_t last_fiber = kNoSlot;
    std::size_t fibers = 0;
    bool up = false;
    bool crashing = false;
  };

  struct CallbackSlot {
    std::function<void()> fn;
    std::uint64_t digest = 0;
    NodeId owner = kNoNode;
    std::uint32_t incarnation = 0;
  };

  FiberSlot& fiber_at(std::uint32_t index) noexcept {
    return slot_chunks_[index >> kSlotsPerChunkLog2][index & (kSlotsPerChunk - 1)];
  }
  const FiberSlot& fiber_at(std::uint32_t index) const noexcept {
    return slot_chunks_[index >> kSlotsPerChunkLog2][index & (kSlotsPerChunk - 1)];
  }

  std::uint32_t allocate_fiber(NodeId node, std::string name, SpawnOptions options);
  void attach_stack(std::uint32_t slot, const boost::context::stack_context& stack) noexcept;
  void enter_fiber(std::uint32_t slot, boost::context::fiber&& scheduler) noexcept;
  boost::context::fiber leave_fiber(std::uint32_t slot) noexcept;
  void fiber_failed(std::uint32_t slot, std::exception_ptr error) noexcept;
  void resume(std::uint32_t slot);
  void switch_to_scheduler(FiberSlot& fiber);
  void release_fiber(std::uint32_t slot);
  void kill_fiber(std::uint32_t slot);
  void crash_now(NodeId node);
  void boot(NodeId node);
  void push_wake(std::uint32_t slot, std::uint64_t token, EventKind kind, std::int64_t time_ns,
                 std::uint64_t digest = 0);
  void push_event(std::int64_t time_ns, std::uint64_t target, std::uint64_t node_word, std::uint64_t digest);
  void dispatch(const Event& event);
  void timer_disarmed(FiberSlot& fiber) noexcept;
  void purge_dead_events();
  bool event_live(const Event& event) const noexcept;
  void rethrow_fiber_error();
  std::string deadlock_report() const;
  std::size_t blocked_fibers() const;
  void trace_slow(std::string_view kind, std::string_view detail, NodeId node, std::uint64_t fiber_id);
  const NodeRecord& node_record(NodeId node) const;

  template <typename Fn>
  void run_fiber_body(std::uint32_t slot, Fn& fn) noexcept {
    try {
      if (!fiber_at(slot).killed) {
        Fn body = std::move(fn);  // Captures die on this stack, in this fiber.
        body();
      }
    } catch (const FiberUnwind&) {
      // Killed: unwinding is the whole point.
    } catch (...) {
      fiber_failed(slot, std::current_exception());
    }
  }

  SimulatorOptions options_;
  std::int64_t now_ns_;
  Random random_;
  Random tie_random_;
  EventQueue queue_;
  StackPool stacks_;
  // Fiber slots in fixed chunks: references stay valid as it grows, and an
  // index is a shift and a mask (a std::deque's is a division).
  std::vector<std::unique_ptr<FiberSlot[]>> slot_chunks_;
  std::size_t slots_count_ = 0;
  std::vector<std::uint32_t> free_slots_;
  std::vector<NodeRecord> nodes_;
  std::vector<CrashListener> crash_listeners_;
  std::vector<CallbackSlot> callbacks_;
  std::vector<std::uint32_t> free_callbacks_;
  TraceHash trace_hash_;
  TraceLog* trace_log_ = nullptr;
  std::exception_ptr fiber_error_;
  std::uint64_t seq_next_ = 0;
  std::uint64_t fiber_id_next_ = 1;
  std::uint64_t events_executed_ = 0;
  // Signed: a dead timer may be popped just before the wake that made it
  // dead is counted.
  std::int64_t events_dead_ = 0;
  std::size_t fibers_live_ = 0;
  std::uint32_t running_ = kNoSlot;
  // The scheduler's own stack, learned on the first switch into a fiber;
  // ASan needs it to announce switches back.
  const void* scheduler_stack_bottom_ = nullptr;
  std::size_t scheduler_stack_size_bytes_ = 0;
  void* scheduler_fake_stack_ = nullptr;
  bool stop_requested_ = false;
  bool destroying_ = false;
};

// Calls for the fiber that is running, in the manner of std::this_thread.
namespace this_fiber {
void sleep_for(Duration duration);
void sleep_until(TimePoint deadline);
// Lets the events already due now run first (with shuffle_ties, a random
// subset of them: ties are then ordered by the seed).
void yield();
NodeId node();
std::uint64_t id();
}  // namespace this_fiber

template <typename Fn>
FiberHandle Simulator::spawn(NodeId node, std::string name, Fn&& fn, SpawnOptions options) {
  static_assert(std::is_invocable_v<std::decay_t<Fn>&>, "a fiber body takes no arguments");
  const std::uint32_t slot = allocate_fiber(node, std::move(name), options);
  const boost::context::stack_context stack = stacks_.allocate();
  attach_stack(slot, stack);
  fiber_at(slot).context = boost::context::fiber(
      std::allocator_arg, boost::context::preallocated(stack.sp, stack.size, stack),
      PooledStackAllocator(&stacks_),
      [this, slot, body = std::decay_t<Fn>(std::forward<Fn>(fn))](
          boost::context::fiber&& scheduler) mutable {
        enter_fiber(slot, std::move(scheduler));
        run_fiber_body(slot, body);
        return leave_fiber(slot);
      });
  push_wake(slot, fiber_at(slot).token, kWakeNotify, now_ns_, options.digest);
  return FiberHandle(this, slot, fiber_at(slot).id);
}

}  // namespace duro::sim
