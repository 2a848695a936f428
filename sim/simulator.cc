#include "sim/simulator.h"

#include <fmt/format.h>

#include <algorithm>

namespace duro::sim {

namespace {

// Kills that need more resumptions than this mean a fiber catches
// FiberUnwind and goes on waiting: a bug in that fiber's code.
constexpr int kKillResumesMax = 64;

}  // namespace

const char* stop_reason_name(StopReason reason) noexcept {
  switch (reason) {
    case StopReason::kQuiescent: return "quiescent";
    case StopReason::kDeadlock: return "deadlock";
    case StopReason::kTimeLimit: return "time_limit";
    case StopReason::kEventBudget: return "event_budget";
    case StopReason::kStopped: return "stopped";
  }
  return "unknown";
}

// --- FiberHandle -----------------------------------------------------------

bool FiberHandle::done() const {
  DURO_ASSERT(valid());
  const auto& fiber = sim_->fiber_at(slot_);
  return fiber.id != id_ || fiber.state == Simulator::FiberState::kFree;
}

void FiberHandle::join() const {
  if (done()) return;
  Simulator& sim = *sim_;
  DURO_ASSERT_MSG(sim.in_fiber(), "join() outside a fiber");
  DURO_ASSERT_MSG(sim.running_ != slot_, "a fiber cannot join itself");
  auto& target = sim.fiber_at(slot_);
  if (target.has_joiner) {
    // A joiner whose wait has ended (it was killed) gives up its place.
    const auto& joiner = sim.fiber_at(target.joiner.slot);
    const bool joiner_waiting =
        joiner.token == target.joiner.token && joiner.state == Simulator::FiberState::kWaiting;
    DURO_ASSERT_MSG(!joiner_waiting, "a fiber can be joined by one fiber at a time");
  }
  const Waiter waiter = sim.begin_wait();
  target.joiner = waiter;
  target.has_joiner = true;
  sim.suspend(waiter, "join");
}

void FiberHandle::cancel() const {
  if (done()) return;
  Simulator& sim = *sim_;
  if (auto& target = sim.fiber_at(slot_); target.cancel_deferred > 0) {
    target.cancel_pending = true;  // Its CancelDeferred scope ends, then it dies.
    return;
  }
  if (sim.running_ == slot_) throw FiberUnwind{};
  if (!sim.in_fiber()) {
    sim.kill_fiber(slot_);
    return;
  }
  // From another fiber: mark it, and wake it if it waits, so it unwinds at
  // its suspension point as the next event now.
  auto& target = sim.fiber_at(slot_);
  target.killed = true;
  if (target.state == Simulator::FiberState::kWaiting) {
    target.wake_reason = WakeReason::kKilled;
    target.state = Simulator::FiberState::kReady;
    sim.push_wake(slot_, target.token, Simulator::kWakeNotify, sim.now_ns_);
  }
}

// --- Scope -------------------------------------------------------------------

Simulator::Scope::Scope(Simulator& sim) noexcept
    : previous_sim_(detail::current_simulator), previous_time_(detail::current_time_ns) {
  detail::current_simulator = &sim;
  detail::current_time_ns = &sim.now_ns_;
}

Simulator::Scope::~Scope() {
  detail::current_simulator = previous_sim_;
  detail::current_time_ns = previous_time_;
}

// --- Construction ----------------------------------------------------------

Simulator::Simulator(SimulatorOptions options)
    : options_(options),
      now_ns_(options.start_time.time_since_epoch().count()),
      random_(options.seed),
      tie_random_(random_.fork("scheduler/ties")),
      queue_(options.events_max),
      stacks_(options.stack_size_bytes, options.fibers_max) {
  DURO_ASSERT(options.fibers_max > 0 && options.fibers_max <= kSlotMask);
  DURO_ASSERT(options.nodes_max > 0);
  trace_hash_.mix(options.seed);
}

Simulator::~Simulator() {
  Scope scope(*this);
  destroying_ = true;
  // Unwind every fiber still alive (daemons, deadlocked waiters) so their
  // destructors run and their stacks go back to the pool; only then the
  // processes, in node order, since a fiber may point into another node's
  // process.
  for (NodeId node = 0; node < nodes_.size(); node++) {
    for (std::size_t i = 0; nodes_[node].first_fiber != kNoSlot; i++) {
      DURO_ASSERT(i <= options_.fibers_max);
      kill_fiber(nodes_[node].first_fiber);
    }
  }
  for (NodeRecord& record : nodes_) record.process.reset();
  DURO_ASSERT(fibers_live_ == 0);
}

// --- Nodes ---------------------------------------------------------------

const Simulator::NodeRecord& Simulator::node_record(NodeId node) const {
  DURO_ASSERT_MSG(node < nodes_.size(), "unknown node id");
  return nodes_[node];
}

NodeId Simulator::add_node(std::string name, BootFn boot_fn, bool boot_now) {
  DURO_ASSERT_MSG(nodes_.size() < options_.nodes_max, "too many nodes");
  DURO_ASSERT(!name.empty());
  for (const NodeRecord& existing : nodes_) DURO_ASSERT_MSG(existing.name != name, "duplicate node name");
  const auto node = static_cast<NodeId>(nodes_.size());
  NodeRecord& record = nodes_.emplace_back();
  record.name = std::move(name);
  // 10.0.0.1, 10.0.0.2, ...: addresses are dense and stable per node id.
  record.address = Address{(10U << 24) + node + 1};
  record.boot = std::move(boot_fn);
  trace_hash_.mix(hash_label(record.name));
  if (boot_now) boot(node);
  return node;
}

void Simulator::boot(NodeId node) {
  NodeRecord& record = nodes_[node];
  DURO_ASSERT(!record.up && record.fibers == 0 && record.process == nullptr);
  record.up = true;
  record.incarnation++;
  trace_hash_.mix(0xB007, node, record.incarnation, static_cast<std::uint64_t>(now_ns_));
  if (tracing()) trace_slow("boot", fmt::format("incarnation {}", record.incarnation), node, 0);
  if (!record.boot) return;
  // A copy: the boot function may add nodes, which moves `record`.
  const BootFn boot_fn = record.boot;
  std::unique_ptr<Process> process = boot_fn(node);
  nodes_[node].process = std::move(process);
}

void Simulator::crash(NodeId node) {
  DURO_ASSERT_MSG(node_record(node).up, "crash() of a node that is down");
  if (!in_fiber()) {
    crash_now(node);
    return;
  }
  // Fibers cannot be unwound from inside another fiber: hand the crash to
  // the scheduler as the next event now, and wait until it is done (not a
  // yield: with shuffled ties a yield could come back first). A caller on
  // the crashing node is unwound by the crash itself.
  const Waiter waiter = begin_wait();
  schedule_at(now(), [this, node, waiter] {
    if (nodes_[node].up) crash_now(node);
    notify(waiter);
  });
  suspend(waiter, "crash");
}

void Simulator::crash_now(NodeId node) {
  DURO_ASSERT(!in_fiber());
  NodeRecord& record = nodes_[node];
  DURO_ASSERT(record.up && !record.crashing);
  record.crashing = true;
  trace_hash_.mix(0xC4A5, node, record.incarnation, static_cast<std::uint64_t>(now_ns_));
  if (tracing()) trace_slow("crash", fmt::format("{} fibers to unwind", record.fibers), node, 0);
  // Oldest fiber first. Unwinding may wake fibers elsewhere but cannot
  // spawn here (asserted), so the list only shrinks. (Unwinding runs user
  // code, which could add nodes and move the records: index, don't hold.)
  for (std::size_t i = 0; nodes_[node].first_fiber != kNoSlot; i++) {
    DURO_ASSERT(i <= options_.fibers_max);
    kill_fiber(nodes_[node].first_fiber);
  }
  DURO_ASSERT(nodes_[node].fibers == 0);
  // The process goes after its fibers: their destructors may still use it.
  nodes_[node].process.reset();
  nodes_[node].up = false;
  nodes_[node].crashing = false;
  // By index: a listener may add listeners.
  for (std::size_t i = 0; i < crash_listeners_.size(); i++) crash_listeners_[i](node);
}

void Simulator::add_crash_listener(CrashListener listener) {
  DURO_ASSERT(listener != nullptr);
  crash_listeners_.push_back(std::move(listener));
}

void Simulator::restart(NodeId node) {
  DURO_ASSERT_MSG(!node_record(node).up, "restart() of a node that is up");
  boot(node);
}

bool Simulator::is_up(NodeId node) const { return node_record(node).up; }
const std::string& Simulator::node_name(NodeId node) const { return node_record(node).name; }
Address Simulator::node_address(NodeId node) const { return node_record(node).address; }

NodeId Simulator::node_at(Address address) const noexcept {
  // Addresses are assigned densely from 10.0.0.1 (see add_node).
  const std::uint32_t base = (10U << 24) + 1;
  if (address.value < base || address.value - base >= nodes_.size()) return kNoNode;
  return address.value - base;
}
std::uint32_t Simulator::incarnation(NodeId node) const { return node_record(node).incarnation; }
Process* Simulator::process(NodeId node) const { return node_record(node).process.get(); }
std::size_t Simulator::fibers_on(NodeId node) const { return node_record(node).fibers; }

// --- Fibers --------------------------------------------------------------

NodeId Simulator::current_node() const noexcept {
  return running_ == kNoSlot ? kNoNode : fiber_at(running_).node;
}

std::uint64_t Simulator::current_fiber_id() const noexcept {
  return running_ == kNoSlot ? 0 : fiber_at(running_).id;
}

std::uint32_t Simulator::allocate_fiber(NodeId node, std::string name, SpawnOptions options) {
  DURO_ASSERT_MSG(node < nodes_.size(), "spawn() on an unknown node");
  NodeRecord& record = nodes_[node];
  DURO_ASSERT_MSG(record.up, "spawn() on a node that is down");
  DURO_ASSERT_MSG(!record.crashing, "spawn() on a node that is crashing");
  DURO_ASSERT_MSG(!destroying_, "spawn() while the simulator is being destroyed");
  DURO_ASSERT_MSG(fibers_live_ < options_.fibers_max, "too many live fibers");
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_count_);
    if (slot % kSlotsPerChunk == 0) slot_chunks_.push_back(std::make_unique<FiberSlot[]>(kSlotsPerChunk));
    slots_count_++;
  }
  FiberSlot& fiber = fiber_at(slot);
  DURO_ASSERT(fiber.state == FiberState::kFree && !fiber.context && !fiber.scheduler);
  fiber.name = std::move(name);
  fiber.waiting_on = nullptr;
  fiber.error = nullptr;
  fiber.id = fiber_id_next_++;
  fiber.token++;
  fiber.has_joiner = false;
  fiber.node = node;
  fiber.state = FiberState::kReady;
  fiber.wake_reason = WakeReason::kNotified;
  fiber.killed = false;
  fiber.daemon = options.daemon;
  fiber.suspend_forbidden = nullptr;
  fiber.cancel_deferred = 0;
  fiber.cancel_pending = false;
  // Append to the node's list: spawn order is crash-unwind order.
  fiber.node_prev = record.last_fiber;
  fiber.node_next = kNoSlot;
  if (record.last_fiber != kNoSlot) {
    fiber_at(record.last_fiber).node_next = slot;
  } else {
    record.first_fiber = slot;
  }
  record.last_fiber = slot;
  record.fibers++;
  fibers_live_++;
  trace_hash_.mix(0x5BA7, node, fiber.id, static_cast<std::uint64_t>(now_ns_));
  if (tracing()) trace_slow("spawn", fiber.name, node, fiber.id);
  return slot;
}

void Simulator::attach_stack(std::uint32_t slot, const boost::context::stack_context& stack) noexcept {
  FiberSlot& fiber = fiber_at(slot);
  fiber.stack_bottom = static_cast<const char*>(stack.sp) - stack.size;
  fiber.stack_size_bytes = stack.size;
}

void Simulator::enter_fiber(std::uint32_t slot, boost::context::fiber&& scheduler) noexcept {
  // First instructions on the new stack: complete the switch ASan was told
  // about, and learn the scheduler's stack bounds from it.
  sanitizer::finish_switch(nullptr, &scheduler_stack_bottom_, &scheduler_stack_size_bytes_);
  fiber_at(slot).scheduler = std::move(scheduler);
}

boost::context::fiber Simulator::leave_fiber(std::uint32_t slot) noexcept {
  // A null fake-stack slot: this fiber never comes back, ASan may free its
  // fake stack.
  sanitizer::start_switch(nullptr, scheduler_stack_bottom_, scheduler_stack_size_bytes_);
  return std::move(fiber_at(slot).scheduler);
}

void Simulator::fiber_failed(std::uint32_t slot, std::exception_ptr error) noexcept {
  fiber_at(slot).error = error;
  if (!fiber_error_) fiber_error_ = error;
}

void Simulator::resume(std::uint32_t slot) {
  DURO_ASSERT_MSG(running_ == kNoSlot, "fibers are resumed only by the scheduler");
  FiberSlot& fiber = fiber_at(slot);
  DURO_ASSERT(fiber.state == FiberState::kReady || fiber.state == FiberState::kWaiting);
  DURO_ASSERT(fiber.context);
  fiber.state = FiberState::kRunning;
  running_ = slot;
  sanitizer::start_switch(&scheduler_fake_stack_, fiber.stack_bottom, fiber.stack_size_bytes);
  fiber.exceptions.swap_with_thread();
  fiber.context = std::move(fiber.context).resume();
  fiber.exceptions.swap_with_thread();
  sanitizer::finish_switch(scheduler_fake_stack_, nullptr, nullptr);
  running_ = kNoSlot;
  if (!fiber.context) {
    DURO_ASSERT_MSG(fiber.exceptions.empty(), "a fiber ended while handling an exception");
    release_fiber(slot);
  } else {
    DURO_ASSERT(fiber.state == FiberState::kWaiting || fiber.state == FiberState::kReady);
  }
}

void Simulator::switch_to_scheduler(FiberSlot& fiber) {
  void* fake_stack = nullptr;
  sanitizer::start_switch(&fake_stack, scheduler_stack_bottom_, scheduler_stack_size_bytes_);
  fiber.scheduler = std::move(fiber.scheduler).resume();
  sanitizer::finish_switch(fake_stack, nullptr, nullptr);
}

void Simulator::release_fiber(std::uint32_t slot) {
  FiberSlot& fiber = fiber_at(slot);
  NodeRecord& record = nodes_[fiber.node];
  trace_hash_.mix(0xE817, fiber.node, fiber.id, static_cast<std::uint64_t>(now_ns_));
  if (tracing()) trace_slow(fiber.killed ? "killed" : "exit", fiber.name, fiber.node, fiber.id);
  if (fiber.node_prev != kNoSlot) {
    fiber_at(fiber.node_prev).node_next = fiber.node_next;
  } else {
    record.first_fiber = fiber.node_next;
  }
  if (fiber.node_next != kNoSlot) {
    fiber_at(fiber.node_next).node_prev = fiber.node_prev;
  } else {
    record.last_fiber = fiber.node_prev;
  }
  DURO_ASSERT(record.fibers > 0 && fibers_live_ > 0);
  record.fibers--;
  fibers_live_--;
  fiber.state = FiberState::kFree;
  fiber.error = nullptr;
  fiber.name.clear();
  // Pending events for this slot carry an old token and are skipped.
  fiber.token++;
  if (fiber.has_joiner) {
    fiber.has_joiner = false;
    notify(fiber.joiner);
  }
  free_slots_.push_back(slot);
}

void Simulator::kill_fiber(std::uint32_t slot) {
  DURO_ASSERT(!in_fiber());
  // Kills also come from setup code between runs: destructors that run
  // during the unwind may read the clock.
  Scope scope(*this);
  FiberSlot& fiber = fiber_at(slot);
  DURO_ASSERT(fiber.state == FiberState::kReady || fiber.state == FiberState::kWaiting);
  const std::uint64_t id = fiber.id;
  fiber.killed = true;
  for (int resumes = 0; fiber.id == id && fiber.state != FiberState::kFree; resumes++) {
    DURO_ASSERT_MSG(resumes < kKillResumesMax, "a killed fiber keeps suspending: does it catch (...) without rethrowing?");
    fiber.wake_reason = WakeReason::kKilled;
    resume(slot);
  }
}

// --- Waiting -------------------------------------------------------------

Waiter Simulator::begin_wait() noexcept {
  DURO_ASSERT_MSG(in_fiber(), "waiting outside a fiber");
  FiberSlot& fiber = fiber_at(running_);
  fiber.token++;
  DURO_ASSERT(fiber.token <= kTokenMask);
  return Waiter{running_, fiber.token};
}

void Simulator::mix_digest(std::uint64_t digest) noexcept {
  const NodeId node = running_ == kNoSlot ? kNoNode : fiber_at(running_).node;
  trace_hash_.mix(0xD16E, node, static_cast<std::uint64_t>(now_ns_), digest);
}

Simulator::SuspendForbidden::SuspendForbidden(Simulator& sim, const char* what) noexcept
    : sim_(sim), slot_(sim.running_), previous_(nullptr) {
  DURO_ASSERT(what != nullptr);
  if (slot_ == kNoSlot) return;
  FiberSlot& fiber = sim_.fiber_at(slot_);
  previous_ = fiber.suspend_forbidden;
  fiber.suspend_forbidden = what;
}

Simulator::SuspendForbidden::~SuspendForbidden() {
  if (slot_ == kNoSlot) return;
  DURO_ASSERT(sim_.running_ == slot_);
  sim_.fiber_at(slot_).suspend_forbidden = previous_;
}

Simulator::CancelDeferred::CancelDeferred(Simulator& sim) noexcept : sim_(sim), slot_(sim.running_) {
  if (slot_ == kNoSlot) return;
  FiberSlot& fiber = sim_.fiber_at(slot_);
  DURO_ASSERT(fiber.cancel_deferred < UINT32_MAX);
  fiber.cancel_deferred++;
}

Simulator::CancelDeferred::~CancelDeferred() {
  if (slot_ == kNoSlot) return;
  DURO_ASSERT(sim_.running_ == slot_);
  FiberSlot& fiber = sim_.fiber_at(slot_);
  DURO_ASSERT(fiber.cancel_deferred > 0);
  if (--fiber.cancel_deferred > 0 || !fiber.cancel_pending) return;
  // The cancel that waited: the fiber's next suspension unwinds it.
  fiber.cancel_pending = false;
  fiber.killed = true;
}

WakeReason Simulator::suspend(Waiter waiter, const char* what, TimePoint deadline) {
  DURO_ASSERT_MSG(in_fiber(), "suspend() outside a fiber");
  FiberSlot& fiber = fiber_at(running_);
  DURO_ASSERT(what != nullptr);
  if (fiber.suspend_forbidden != nullptr) [[unlikely]] {
    assert_fail("fiber.suspend_forbidden == nullptr", __FILE__, __LINE__,
                fmt::format("a fiber waited ('{}') in {}, which must not suspend", what, fiber.suspend_forbidden)
                    .c_str());
  }
  DURO_ASSERT_MSG(waiter.slot == running_ && waiter.token == fiber.token,
                  "suspend() with a waiter from another begin_wait()");
  if (fiber.killed) {
    // Already dying: while unwinding (a destructor that waits) a second
    // exception would terminate, so report the kill instead of throwing.
    if (std::uncaught_exceptions() > 0) return WakeReason::kKilled;
    throw FiberUnwind{};
  }
  const std::int64_t deadline_ns = deadline.time_since_epoch().count();
  fiber.timer_armed = deadline != TimePoint::max();
  if (fiber.timer_armed) push_wake(running_, fiber.token, kWakeTimeout, std::max(deadline_ns, now_ns_));
  fiber.state = FiberState::kWaiting;
  fiber.waiting_on = what;
  switch_to_scheduler(fiber);
  // Resumed by the scheduler (which set state kRunning).
  fiber.waiting_on = nullptr;
  timer_disarmed(fiber);
  if (fiber.killed || fiber.wake_reason == WakeReason::kKilled) {
    fiber.killed = true;
    if (std::uncaught_exceptions() > 0) return WakeReason::kKilled;
    throw FiberUnwind{};
  }
  return fiber.wake_reason;
}

void Simulator::notify(Waiter waiter) {
  if (waiter.slot >= slots_count_) return;
  FiberSlot& fiber = fiber_at(waiter.slot);
  if (fiber.token != waiter.token || fiber.state != FiberState::kWaiting) return;
  fiber.state = FiberState::kReady;
  fiber.wake_reason = WakeReason::kNotified;
  push_wake(waiter.slot, waiter.token, kWakeNotify, now_ns_);
}

// --- Events ----------------------------------------------------------------

void Simulator::push_event(std::int64_t time_ns, std::uint64_t target, std::uint64_t node_word,
                                  std::uint64_t digest) {
  DURO_ASSERT(time_ns >= now_ns_);
  std::uint64_t seq = seq_next_++;
  if (options_.shuffle_ties) {
    // A random high word orders equal-time events by the seed; the counter
    // in the low word keeps sequences unique.
    seq = (tie_random_.next() & 0xFFFFFFFF00000000ULL) | (seq & 0xFFFFFFFFULL);
  }
  trace_hash_.mix_event(static_cast<std::uint64_t>(time_ns), target >> kKindShift, node_word, digest);
  queue_.push(Event{time_ns, seq, target});
}

void Simulator::push_wake(std::uint32_t slot, std::uint64_t token, EventKind kind, std::int64_t time_ns,
                          std::uint64_t digest) {
  DURO_ASSERT(slot <= kSlotMask && token <= kTokenMask);
  const std::uint64_t target =
      (static_cast<std::uint64_t>(kind) << kKindShift) | (static_cast<std::uint64_t>(slot) << kSlotShift) | token;
  const FiberSlot& fiber = fiber_at(slot);
  push_event(time_ns, target, fiber.node, fiber.id ^ digest);
}

void Simulator::schedule_at(TimePoint when, std::function<void()> fn, NodeId owner, std::uint64_t digest) {
  DURO_ASSERT(fn != nullptr);
  DURO_ASSERT_MSG(when >= now(), "schedule_at() in the past");
  std::uint32_t index;
  if (!free_callbacks_.empty()) {
    index = free_callbacks_.back();
    free_callbacks_.pop_back();
  } else {
    DURO_ASSERT_MSG(callbacks_.size() < options_.events_max, "too many pending callbacks");
    index = static_cast<std::uint32_t>(callbacks_.size());
    callbacks_.emplace_back();
  }
  CallbackSlot& callback = callbacks_[index];
  callback.fn = std::move(fn);
  callback.digest = digest;
  callback.owner = owner;
  callback.incarnation = owner == kNoNode ? 0 : node_record(owner).incarnation;
  push_event(when.time_since_epoch().count(), (static_cast<std::uint64_t>(kCallback) << kKindShift) | index,
             owner, digest);
}

void Simulator::dispatch(const Event& event) {
  DURO_ASSERT_MSG(event.time_ns >= now_ns_, "an event ran before the current time");
  const auto kind = static_cast<EventKind>(event.target >> kKindShift);
  if (kind == kCallback) {
    const auto index = static_cast<std::uint32_t>(event.target & 0xFFFFFFFFULL);
    DURO_ASSERT(index < callbacks_.size());
    CallbackSlot& callback = callbacks_[index];
    std::function<void()> fn = std::move(callback.fn);
    callback.fn = nullptr;
    const NodeId owner = callback.owner;
    const bool owner_alive = owner == kNoNode || (nodes_[owner].up && nodes_[owner].incarnation == callback.incarnation);
    const std::uint64_t digest = callback.digest;
    free_callbacks_.push_back(index);
    // A dropped callback does not move the clock, as a skipped timer does not.
    if (owner_alive) now_ns_ = event.time_ns;
    events_executed_++;
    trace_hash_.mix_event(static_cast<std::uint64_t>(event.time_ns), kCallback + (owner_alive ? 0 : 8), owner, digest);
    if (owner_alive) fn();
    return;
  }
  const auto slot = static_cast<std::uint32_t>((event.target >> kSlotShift) & kSlotMask);
  const std::uint64_t token = event.target & kTokenMask;
  FiberSlot& fiber = fiber_at(slot);
  if (kind == kWakeTimeout && (fiber.token != token || fiber.state != FiberState::kWaiting)) {
    // A wait that already ended, or a notify made the fiber ready and its
    // own event will resume it: a dead timer.
    events_dead_--;
    return;
  }
  if (fiber.token != token) return;  // A wake for a fiber killed meanwhile.
  if (kind == kWakeTimeout) {
    fiber.wake_reason = WakeReason::kTimeout;
  } else {
    DURO_ASSERT(fiber.state == FiberState::kReady);
  }
  // Time moves only for live events: a cancelled sleep's timer is skipped
  // without dragging the clock to its deadline.
  now_ns_ = event.time_ns;
  events_executed_++;
  trace_hash_.mix_event(static_cast<std::uint64_t>(event.time_ns), kind, fiber.node, fiber.id);
  if (tracing()) {
    trace_log_->record(TraceRecord{now(), nodes_[fiber.node].name, fiber.id, kind == kWakeTimeout ? "timeout" : "wake", fiber.name});
  }
  resume(slot);
}

void Simulator::timer_disarmed(FiberSlot& fiber) noexcept {
  // Woken before its deadline (notified, or killed): the timeout event it
  // queued is dead weight until popped or purged.
  if (fiber.timer_armed && fiber.wake_reason != WakeReason::kTimeout) events_dead_++;
  fiber.timer_armed = false;
}

bool Simulator::event_live(const Event& event) const noexcept {
  const auto kind = static_cast<EventKind>(event.target >> kKindShift);
  if (kind == kCallback) return true;
  const FiberSlot& fiber = fiber_at(static_cast<std::uint32_t>((event.target >> kSlotShift) & kSlotMask));
  if (fiber.token != (event.target & kTokenMask)) return false;
  return kind == kWakeTimeout ? fiber.state == FiberState::kWaiting : fiber.state == FiberState::kReady;
}

void Simulator::purge_dead_events() {
  const std::size_t before = queue_.size();
  queue_.remove_if([this](const Event& event) { return !event_live(event); });
  trace_hash_.mix(0xDEAD, before, queue_.size(), static_cast<std::uint64_t>(now_ns_));
  events_dead_ = 0;
}

void Simulator::rethrow_fiber_error() {
  if (fiber_error_) {
    std::exception_ptr error = std::exchange(fiber_error_, nullptr);
    std::rethrow_exception(error);
  }
}

bool Simulator::step() {
  DURO_ASSERT_MSG(!in_fiber(), "step() from inside a fiber");
  if (queue_.empty()) return false;
  Scope scope(*this);
  dispatch(queue_.pop());
  rethrow_fiber_error();
  return true;
}

RunResult Simulator::run(RunLimits limits) {
  DURO_ASSERT_MSG(!in_fiber(), "run() from inside a fiber");
  Scope scope(*this);
  stop_requested_ = false;
  const std::int64_t until_ns = limits.until.time_since_epoch().count();
  std::uint64_t executed_here = 0;
  for (;;) {
    if (stop_requested_) {
      stop_requested_ = false;
      return RunResult{StopReason::kStopped, now(), events_executed_, trace_hash(), {}};
    }
    if (events_dead_ > kDeadEventsPurgeMin && 2 * static_cast<std::size_t>(events_dead_) > queue_.size()) {
      purge_dead_events();
    }
    if (queue_.empty()) {
      if (blocked_fibers() > 0) {
        return RunResult{StopReason::kDeadlock, now(), events_executed_, trace_hash(), deadlock_report()};
      }
      return RunResult{StopReason::kQuiescent, now(), events_executed_, trace_hash(), {}};
    }
    if (queue_.top().time_ns > until_ns) {
      now_ns_ = std::max(now_ns_, until_ns);
      return RunResult{StopReason::kTimeLimit, now(), events_executed_, trace_hash(), {}};
    }
    if (executed_here >= limits.events_max) {
      return RunResult{StopReason::kEventBudget, now(), events_executed_, trace_hash(), {}};
    }
    executed_here++;
    dispatch(queue_.pop());
    rethrow_fiber_error();
  }
}

std::size_t Simulator::blocked_fibers() const {
  std::size_t blocked = 0;
  for (std::uint32_t index = 0; index < slots_count_; index++) {
    const FiberSlot& fiber = fiber_at(index);
    if (fiber.state == FiberState::kWaiting && !fiber.daemon) blocked++;
  }
  return blocked;
}

std::string Simulator::deadlock_report() const {
  std::string report = fmt::format("deadlock at {} (+{}): nothing is scheduled and {} fibers wait forever:\n",
                                   format_time(now()), format_duration(now() - start_time()), blocked_fibers());
  // Slot order is deterministic (slots are reused last-freed first).
  for (std::uint32_t index = 0; index < slots_count_; index++) {
    const FiberSlot& fiber = fiber_at(index);
    if (fiber.state != FiberState::kWaiting || fiber.daemon) continue;
    const NodeRecord& record = nodes_[fiber.node];
    report += fmt::format("  fiber {} '{}' on node '{}' (incarnation {}) waits on {}\n", fiber.id, fiber.name,
                          record.name, record.incarnation, fiber.waiting_on != nullptr ? fiber.waiting_on : "?");
  }
  return report;
}

// --- Tracing -----------------------------------------------------------------

void Simulator::trace(std::string_view kind, std::string_view detail) {
  if (tracing()) trace_slow(kind, detail, current_node(), current_fiber_id());
}

void Simulator::trace_slow(std::string_view kind, std::string_view detail, NodeId node, std::uint64_t fiber_id) {
  trace_log_->record(TraceRecord{now(), node == kNoNode ? std::string_view{} : std::string_view{nodes_[node].name},
                                 fiber_id, kind, detail});
}

// --- this_fiber ----------------------------------------------------------------

namespace this_fiber {

void sleep_until(TimePoint deadline) {
  Simulator& sim = Simulator::current();
  const Waiter waiter = sim.begin_wait();
  sim.suspend(waiter, "sleep", deadline);
}

void sleep_for(Duration duration) {
  DURO_ASSERT_MSG(duration.count() >= 0, "sleep_for() a negative duration");
  sleep_until(Simulator::current().deadline_after(duration));
}

void yield() {
  Simulator& sim = Simulator::current();
  const Waiter waiter = sim.begin_wait();
  // A timeout at the current time: queued behind every event already due
  // now (its sequence is larger), ahead of anything later.
  sim.suspend(waiter, "yield", sim.now());
}

NodeId node() { return Simulator::current().current_node(); }
std::uint64_t id() { return Simulator::current().current_fiber_id(); }

}  // namespace this_fiber

}  // namespace duro::sim
