// retry-storm: a thousand entity workflows — digital twins of cells and
// namespaces — keep working while the cloud API and a cell database are down
// for half an hour, then the two recover without being knocked over again by
// the backlog ("retry storm after a blip", CONTROL_PLANE.md).
//
// A twin is a workflow that keeps one record of an external service at the
// generation its operator desires: cell twins in the cloud API, namespace
// twins in the cell database, half each. Signals bring new generations,
// queries read the twin's state, and an `apply` activity writes the record
// (a conditional write: a late, older generation cannot undo a newer one).
// Five minutes into the run both services go down for thirty minutes (a
// scripted outage, on top of whatever the profile draws); during it the
// operator pushes a new generation to the whole fleet at once, and some
// twins get a second change later. Every apply made meanwhile fails, and
// retries.
//
// What keeps the load bounded after recovery — each is needed (the
// invariants fail without it; docs/scenarios.md has the numbers):
//   coalescing  a twin applies only its newest generation, one apply at a
//               time: at recovery its backlog is one call in flight however
//               many changes came during the outage (the newest goes next),
//               so the backlog is at most the fleet.
//   jitter      capped exponential backoff (5 s, x2, at most 5 min) with
//               jitter 0.5 (engine RetryPolicy::jitter). Without it every
//               apply of the push fails at the same instant and retries at
//               the same instants, for the whole outage: at recovery the
//               backlog arrives in one burst, which the service throttles,
//               and the throttled calls come back together again, one
//               maximum interval later, and again.
//   a cap       each worker admits at most `capacity` calls per second to
//               each service, with a burst of one second's worth (a token
//               bucket, as the AWS SDKs' client-side rate limiting); an
//               apply waits up to 5 s for its turn, holding its worker slot
//               (backpressure on the task queue), and past that fails
//               without calling and retries with backoff. Retries also fire
//               together for
//               reasons jitter cannot see: a server whose clock jumps
//               forward fires the retry timers of its shards at once, a
//               shard's new owner fires the overdue ones.
//
// The default profile is `mild`: the outage is the fault under test, and a
// seed stays at 5-9 s of CPU. `chaos` and `swarm` pass too but cost 15-45 s
// a seed, nearly all of it the store recovering its log (docs/scenarios.md).
//
// Invariants:
//   load:       from the end of the outage on, the calls offered to each
//               service (throttled ones included) over any 10 s window
//               stay within kLoadFactorMax (3) x its capacity. Ten
//               seconds, not one: each worker may spend a second's worth of
//               tokens at once, which a 1 s window would count as double
//               rate; over 10 s two workers offer at most 2 x 11/10 of
//               capacity, under 3.
//   drain:      every twin's backlog at recovery (the newest generation
//               acknowledged before the outage ended) is in the service
//               within kDrainBound of the end.
//   monotonic:  a service's record of a twin never goes back a generation
//               and never runs ahead of what was sent; nor do the twin's
//               answers to the queries operators make during the outage.
//   outcome:    every twin saw each of its generations once, in order,
//               applied the last one and completed.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/sdk/activity_context.h"
#include "engine/sdk/workflow_context.h"
#include "scenarios/fakes/resource_service.h"
#include "scenarios/fakes/service_call.h"
#include "scenarios/harness.h"
#include "scenarios/registry.h"
#include "sim/assert.h"

// Named after the file, not anonymous: the library compiles several files
// to a unit (unity build), where the anonymous namespaces of different
// files are one and their same-named constants would collide.
namespace duro::scenarios::retry_storm {

struct TwinInput {
  std::string name;
  std::string service;             // Where the twin's record lives.
  std::int64_t generations = 0;    // How many changes the operator will send: the twin closes after the last.
};
DURO_CODEC_FIELDS(TwinInput, name, service, generations);

struct TwinState {
  std::string name;
  std::string service;
  std::int64_t generations = 0;
  std::int64_t desired = 0;       // The newest generation signalled.
  std::int64_t applied = 0;       // The newest generation the service holds.
  std::int64_t received = 0;      // Change signals seen.
  std::int64_t out_of_order = 0;  // Signals that were not desired + 1.
  std::int64_t applies = 0;       // Apply activities run (coalesced changes share one).
};
DURO_CODEC_FIELDS(TwinState, name, service, generations, desired, applied, received, out_of_order, applies);

struct TwinWrite {
  std::string name;
  std::string service;
  std::int64_t generation = 0;
};
DURO_CODEC_FIELDS(TwinWrite, name, service, generation);

namespace {

using namespace std::chrono_literals;
using sdk::ActivityContext;
using sdk::WorkflowContext;

constexpr int kTwins = 1000;
constexpr int kFleetClients = 10;  // Operators; each drives every tenth twin.
constexpr const char* kCloudApi = "cloud-api";
constexpr const char* kCellDb = "cell-db";

constexpr sim::Duration kOutageAt = 5min;
constexpr sim::Duration kOutageDuration = 30min;
constexpr sim::Duration kChaos = 40min;  // Five minutes of drawn faults after the recovery.
// The fleet push lands inside the outage, at least this long before its end:
// the retries have time to reach the maximum interval, or not, by seed.
constexpr sim::Duration kPushEarliest = 1min;
constexpr sim::Duration kPushBeforeEndMin = 10min;
// A quarter of the twins get a second change, at a time drawn between the
// push and the chaos phase's end: some during the outage (coalesced with
// the push), some after it (ordinary traffic on a recovering service).
constexpr std::uint64_t kSecondChangeOneIn = 4;

// Each service's capacity: calls per second it serves before throttling.
constexpr std::uint32_t kCapacityPerSecond = 10;
constexpr double kLoadFactorMax = 3.0;
constexpr std::int64_t kLoadWindowSeconds = 10;

// The retry policy of an apply. The maximum interval bounds how long a
// pending retry may sleep past the recovery; jitter spreads them over it.
constexpr sim::Duration kRetryInitial = 5s;
constexpr sim::Duration kRetryIntervalMax = 5min;
constexpr double kRetryJitter = 0.5;

// Per worker and service: one second's capacity at once, then `capacity`
// per second. A call waits up to kCallWaitMax for its turn (holding its
// worker slot: backpressure on the task queue) before it gives up.
constexpr sim::Duration kCallInterval = sim::Duration{1s} / kCapacityPerSecond;
constexpr std::int64_t kCallBurst = kCapacityPerSecond;
constexpr sim::Duration kCallWaitMax = 5s;

// Counted from when the service is up for good (the end of its last
// outage, scripted or drawn). Every pending retry fires within one maximum
// interval of then; an attempt that fails after it (a 500, a 429, a call
// cut by a crash or partition of the chaos phase's last minutes) retries
// within another. The bound allows two such failures in a row for a twin,
// and one more interval for each further failed call the twin's attempts
// met after then (a 2% server error rate makes three in a row likely
// somewhere among 1,000 twins: swarm seed 12 met a 429 and two 500s in a
// row). Serving the backlog (kTwins / 2 calls per service) at capacity
// takes under a minute.
constexpr sim::Duration kDrainBound = 3 * kRetryIntervalMax + 1min;
constexpr int kDrainFailuresAllowed = 2;
// During the outage each operator queries a few twins it changed until
// their state shows the change, for at most this long. (Not a bound the
// twins must meet: under the chaos profiles a signal's workflow task can
// wait minutes behind crashed and clogged workers.)
constexpr sim::Duration kQueryBound = 8min;
constexpr sim::Duration kQueryPause = 5s;
static_assert(kPushBeforeEndMin >= kQueryBound + 1min, "the push's queries fit in the outage");
// Sampled per operator: twins of the push, and second changes made during
// the outage (a twin that took changes one at a time would show these late).
constexpr int kQueriedPushesMax = 2;
constexpr int kQueriedSecondChangesMax = 2;

constexpr int kRoundsMax = 100;     // Applies per twin; it needs one per change at most.
constexpr int kSignalTriesMax = 10'000;

sdk::ActivityOptions apply_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 30s;
  options.retry.initial_interval = kRetryInitial;
  options.retry.backoff_coefficient = 2.0;
  options.retry.maximum_interval = kRetryIntervalMax;
  options.retry.jitter = kRetryJitter;
  return options;
}

// The twin: coalesces changes (applies the newest desired generation, one
// apply at a time) and keeps taking signals and queries while an apply is
// stuck retrying, since handlers run between workflow tasks.
TwinState twin(WorkflowContext& ctx, TwinInput input) {
  TwinState state{.name = input.name, .service = input.service, .generations = input.generations, .desired = 0,
                  .applied = 0, .received = 0, .out_of_order = 0, .applies = 0};
  ctx.on_signal<std::int64_t>("desire", [&](std::int64_t generation) {
    state.received++;
    if (generation != state.desired + 1) state.out_of_order++;
    state.desired = std::max(state.desired, generation);
  });
  ctx.on_query<TwinState>("state", [&] { return state; });
  const sdk::ActivityOptions options = apply_options();
  for (int round = 0; round < kRoundsMax; round++) {
    ctx.await([&] { return state.desired > state.applied; });
    const std::int64_t target = state.desired;
    ctx.activity<void>("apply", TwinWrite{state.name, state.service, target}, options);
    state.applied = target;
    state.applies++;
    if (state.applied >= state.generations) return state;
  }
  throw sdk::ApplicationError("TooManyRounds", "the twin did not settle");
}

// A client-side rate limit: a token bucket kept as a virtual time (GCRA).
// Each admitted call moves the bucket's "theoretical arrival time" on by one
// interval; a call may go once that time is at most a burst ahead of now.
// So over any span t a limiter admits at most kCallBurst + t / kCallInterval
// calls.
struct CallLimiter {
  std::uint32_t incarnation = 0;  // Of the worker process that holds it.
  sim::TimePoint theoretical_arrival{};

  // How long the caller must wait for its turn (reserved now), or nullopt
  // (nothing reserved) if that is longer than kCallWaitMax.
  std::optional<sim::Duration> reserve(sim::TimePoint now) {
    const sim::TimePoint arrival = std::max(theoretical_arrival, now);
    const sim::Duration wait = std::max(sim::Duration{0}, arrival - now - kCallInterval * (kCallBurst - 1));
    if (wait > kCallWaitMax) return std::nullopt;
    theoretical_arrival = arrival + kCallInterval;
    return wait;
  }
};

struct Change {
  sim::Duration at{};  // Since the run's start.
  int twin = 0;
  std::int64_t generation = 0;
};

// Ground truth from the operators: when each generation was acknowledged.
struct Acked {
  sim::TimePoint at{};
  std::int64_t generation = 0;
};

struct QuerySample {
  std::string twin;
  Acked acked;
};

class RetryStorm final : public Scenario {
 public:
  void setup(Harness& harness) override;
  void check_safety(Checker& checker) override;
  void check_end(Harness& harness, Checker& checker) override;

 private:
  void apply(ActivityContext& ctx, const TwinWrite& write);
  void operator_client(Harness& harness, sdk::Client& client, sim::Env& env, int index);
  void query_until_seen(Harness& harness, sdk::Client& client, sim::Env& env, const QuerySample& sample);
  struct Recovery {
    sim::TimePoint recovered{};   // The scripted outage really ended (drawn ones that overlap it lengthen it).
    sim::TimePoint up_for_good{};  // The service's last outage, of any kind, ended.
  };
  Recovery recovery_of(Harness& harness, const std::string& service) const;
  void check_load(Harness& harness, Checker& checker, const std::string& service, const Recovery& recovery);
  void check_drain(Checker& checker, const std::string& service, const Recovery& recovery);

  Harness* harness_ = nullptr;
  std::map<std::string, ResourceService*> services_;
  std::vector<TwinInput> twins_;
  std::vector<std::vector<Change>> changes_;  // Per operator, by time.
  // Client-side limits: (worker node, service) -> its limiter.
  std::map<std::pair<std::string, std::string>, CallLimiter> limiters_;
  std::map<std::string, std::int64_t> sent_;                // Twin -> newest generation sent.
  std::map<std::string, std::vector<Acked>> acked_;         // Twin -> acknowledgements, in order.
  std::map<std::string, std::vector<sim::TimePoint>> failed_calls_;  // Twin -> when its attempts' calls failed.
  std::map<std::string, std::size_t> log_checked_;          // Service -> log entries checked so far.
  std::map<std::string, std::int64_t> seen_;                // Record -> newest generation seen.
};

std::int64_t generation_of(const std::string& value) {
  std::int64_t generation = -1;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), generation);
  DURO_ASSERT_MSG(error == std::errc{} && end == value.data() + value.size(), "a twin's record holds a generation");
  return generation;
}

void RetryStorm::setup(Harness& harness) {
  harness_ = &harness;
  sim::Random& random = harness.random();
  DURO_ASSERT(harness.shape().chaos == kChaos);
  const FailureModel flaky{.server_error_probability = 0.02,
                           .timeout_after_apply_probability = 0.01,
                           .requests_per_second_max = kCapacityPerSecond,
                           .latency_min = 2ms,
                           .latency_max = 30ms,
                           .timeout_hold = 2min};
  for (const char* name : {kCloudApi, kCellDb}) {
    services_[name] = &harness.add_service<ResourceService>(name, flaky.draw(random));
    harness.script(sim::FaultAction{.at = kOutageAt, .kind = sim::FaultKind::kOutage, .nodes = {}, .others = {},
                                    .one_way = false, .duration = kOutageDuration, .clock_delta = {},
                                    .probability = 0, .service = name});
  }
  harness.registry().workflow("twin", twin);
  harness.registry().activity("apply", [this](ActivityContext& ctx, const TwinWrite& write) { apply(ctx, write); });

  const auto push_span = std::chrono::nanoseconds(kOutageDuration - kPushEarliest - kPushBeforeEndMin).count();
  const sim::Duration push_at =
      kOutageAt + kPushEarliest + sim::Duration{static_cast<std::int64_t>(random.uniform(push_span))};
  const auto second_span = std::chrono::nanoseconds(kChaos - push_at - 1min).count();
  changes_.resize(kFleetClients);
  for (int i = 0; i < kTwins; i++) {
    const bool cell = i % 2 == 0;
    TwinInput input{.name = fmt::format("{}-{}", cell ? "cell" : "ns", i / 2),
                    .service = cell ? kCloudApi : kCellDb,
                    .generations = 1};
    std::vector<Change>& changes = changes_[static_cast<std::size_t>(i % kFleetClients)];
    changes.push_back(Change{push_at, i, 1});
    if (random.uniform(kSecondChangeOneIn) == 0) {
      input.generations = 2;
      changes.push_back(
          Change{push_at + 30s + sim::Duration{static_cast<std::int64_t>(random.uniform(second_span))}, i, 2});
    }
    twins_.push_back(std::move(input));
  }
  for (int c = 0; c < kFleetClients; c++) {
    std::vector<Change>& changes = changes_[static_cast<std::size_t>(c)];
    std::stable_sort(changes.begin(), changes.end(), [](const Change& a, const Change& b) { return a.at < b.at; });
    harness.client(fmt::format("operator-{}", c), [this, &harness, c](sdk::Client& client, sim::Env& env) {
      operator_client(harness, client, env, c);
    });
  }
}

void RetryStorm::apply(ActivityContext& ctx, const TwinWrite& write) {
  DURO_ASSERT(write.generation > 0);
  sim::Env& env = ctx.env();
  // The limiter lives in the worker's memory: a restarted worker starts
  // with a full bucket.
  CallLimiter& limiter = limiters_[{env.name(), write.service}];
  if (limiter.incarnation != env.incarnation()) limiter = CallLimiter{env.incarnation(), {}};
  // Every way this attempt fails is noted for the drain check: that many
  // more retry intervals the twin may take.
  struct NoteFailure {
    RetryStorm* storm;
    const TwinWrite& write;
    sim::Env& env;
    bool failed = true;
    ~NoteFailure() {
      if (failed) storm->failed_calls_[write.name].push_back(env.sim().now());
    }
  } note{this, write, env};
  const std::optional<sim::Duration> wait = limiter.reserve(env.sim().now());
  if (!wait) throw sdk::ApplicationError("ClientThrottled", write.service + ": this worker's call budget is spent");
  if (*wait > sim::Duration{0}) env.sleep_for(*wait);
  sim::Result<ResourceReply> reply = call_service<ResourceReply>(
      env, harness_->address_of(write.service), "put",
      ResourcePut{write.name, fmt::format("{}", write.generation), "twin/" + write.name, ctx.idempotency_key(),
                  write.generation});
  // Stale: this generation or a newer one is there already (an earlier try
  // of this attempt applied it and timed out).
  note.failed = !reply.ok() && reply.error().code != sim::ErrorCode::kAlreadyExists;
  if (!note.failed) return;
  throw sdk::ApplicationError("ServiceError", write.service + ": " + sim::to_string(reply.error()));
}

void RetryStorm::operator_client(Harness& harness, sdk::Client& client, sim::Env& env, int index) {
  const sim::TimePoint start = env.sim().start_time();
  for (int i = index; i < kTwins; i += kFleetClients) {
    const TwinInput& input = twins_[static_cast<std::size_t>(i)];
    sim::Result<engine::WorkflowExecution> run = sim::Error{sim::ErrorCode::kTimeout, "not started"};
    for (int tries = 0; tries < kSignalTriesMax && !run.ok() && env.sim().now() < harness.quiet_at(); tries++) {
      run = client.start("twin", "twin/" + input.name, input);
    }
    if (!run.ok()) return;  // The outcome checks then fail: the run is hopeless.
    const std::int64_t generations = input.generations;
    harness.expect(run.value(), "twin " + input.name,
                   [generations](const sdk::WorkflowOutcome<sdk::Payload>& outcome) -> std::string {
                     if (!outcome.completed() || !outcome.value) return "the twin completes after its last change";
                     const TwinState state = sdk::from_payload<TwinState>(*outcome.value);
                     if (state.received != generations || state.out_of_order != 0) {
                       return fmt::format("it saw {} change signals ({} out of order) of {} sent", state.received,
                                          state.out_of_order, generations);
                     }
                     if (state.applied != generations) return fmt::format("it applied {}", state.applied);
                     return "";
                   });
  }
  const sim::TimePoint outage_end = start + kOutageAt + kOutageDuration;
  int pushes_queried = 0;
  int second_changes_queried = 0;
  std::vector<QuerySample> to_query;
  const std::vector<Change>& changes = changes_[static_cast<std::size_t>(index)];
  for (std::size_t c = 0; c < changes.size(); c++) {
    const Change& change = changes[c];
    if (env.sim().now() < start + change.at) env.sleep_for(start + change.at - env.sim().now());
    const TwinInput& input = twins_[static_cast<std::size_t>(change.twin)];
    sent_[input.name] = change.generation;
    // The same request id on every try: one signal however many tries.
    const std::string request_id = fmt::format("desire/{}/{}", input.name, change.generation);
    bool delivered = false;
    for (int tries = 0; tries < kSignalTriesMax && !delivered; tries++) {
      delivered = client.signal(engine::WorkflowExecution{"twin/" + input.name, ""}, "desire", change.generation,
                                request_id, 2min)
                      .ok();
    }
    if (!delivered) return;
    const Acked acked{env.sim().now(), change.generation};
    acked_[input.name].push_back(acked);
    // Sample a few changes acknowledged well inside the outage; ask once
    // the changes due at this instant (the push) are all sent.
    int& queried = change.generation == 1 ? pushes_queried : second_changes_queried;
    const int queried_max = change.generation == 1 ? kQueriedPushesMax : kQueriedSecondChangesMax;
    if (queried < queried_max && acked.at + kQueryBound < outage_end) {
      to_query.push_back(QuerySample{input.name, acked});
      queried++;
    }
    const bool more_now = c + 1 < changes.size() && changes[c + 1].at <= change.at;
    if (!more_now) {
      for (const QuerySample& sample : to_query) query_until_seen(harness, client, env, sample);
      to_query.clear();
    }
  }
}

void RetryStorm::query_until_seen(Harness& harness, sdk::Client& client, sim::Env& env, const QuerySample& sample) {
  const std::string& name = sample.twin;
  const sim::TimePoint deadline = sample.acked.at + kQueryBound;
  std::int64_t shown = 0;
  constexpr int kQueryTriesMax = 1000;
  for (int tries = 0; tries < kQueryTriesMax && env.sim().now() < deadline && shown < sample.acked.generation;
       tries++) {
    sim::Result<TwinState> state =
        client.query<TwinState>(engine::WorkflowExecution{"twin/" + name, ""}, "state", std::monostate{},
                                std::max(sim::Duration{1s}, deadline - env.sim().now()));
    if (state.ok()) {
      const std::int64_t desired = state.value().desired;
      harness.checker().check(desired >= shown && desired <= sent_[name], "monotonic",
                              "a query of {} shows generation {} after {} (sent: {})", name, desired, shown,
                              sent_[name]);
      shown = std::max(shown, desired);
    }
    if (shown < sample.acked.generation && env.sim().now() < deadline) env.sleep_for(kQueryPause);
  }
}

void RetryStorm::check_safety(Checker& checker) {
  // Only the log entries added since the last call: this runs after every
  // change to a service.
  for (const auto& [service, fake] : services_) {
    const std::vector<AppliedChange>& log = fake->log();
    std::size_t& checked = log_checked_[service];
    for (; checked < log.size(); checked++) {
      const AppliedChange& change = log[checked];
      DURO_ASSERT(change.method == "put");
      const std::int64_t generation = generation_of(change.value);
      std::int64_t& seen = seen_[change.key];
      checker.check(generation >= seen, "monotonic", "{}'s record in {} went back from generation {} to {}",
                    change.key, service, seen, generation);
      checker.check(generation <= sent_[change.key], "monotonic",
                    "{}'s record in {} holds generation {}; only {} was sent", change.key, service, generation,
                    sent_[change.key]);
      seen = std::max(seen, generation);
    }
  }
}

RetryStorm::Recovery RetryStorm::recovery_of(Harness& harness, const std::string& service) const {
  sim::World& world = harness.world();
  const sim::TimePoint start = world.sim().start_time();
  std::vector<std::pair<sim::TimePoint, sim::TimePoint>> windows;
  for (const sim::AppliedFault& fault : world.fault_log()) {
    if (fault.outcome != "applied" || fault.action.kind != sim::FaultKind::kOutage) continue;
    if (fault.action.service != service) continue;
    windows.emplace_back(fault.at, std::min(fault.at + fault.action.duration, world.quiet_since()));
  }
  std::sort(windows.begin(), windows.end());
  // A plan shrunk without the scripted outage has no recovery: the checks
  // then hold from the time it would have begun.
  Recovery recovery{start + kOutageAt, start + kOutageAt};
  for (const auto& [from, until] : windows) {
    if (from <= recovery.recovered) recovery.recovered = std::max(recovery.recovered, until);
    recovery.up_for_good = std::max(recovery.up_for_good, until);
  }
  recovery.up_for_good = std::max(recovery.up_for_good, recovery.recovered);
  return recovery;
}

void RetryStorm::check_load(Harness& harness, Checker& checker, const std::string& service,
                            const Recovery& recovery) {
  const sim::TimePoint recovered = recovery.recovered;
  const std::map<std::int64_t, std::uint32_t>& per_second = services_.at(service)->stats().calls_per_second;
  const std::int64_t first =
      std::chrono::ceil<std::chrono::seconds>(recovered - harness.world().sim().start_time()).count();
  const auto bound = static_cast<std::uint64_t>(kLoadFactorMax * kCapacityPerSecond * kLoadWindowSeconds);
  // A sliding window over the seconds with calls (only those are keys).
  std::uint64_t in_window = 0;
  std::uint64_t peak = 0;
  std::int64_t peak_at = first;
  auto tail = per_second.lower_bound(first);
  for (auto head = tail; head != per_second.end(); ++head) {
    in_window += head->second;
    while (tail->first <= head->first - kLoadWindowSeconds) in_window -= (tail++)->second;
    if (in_window > peak) {
      peak = in_window;
      peak_at = tail->first;
    }
  }
  checker.check(peak <= bound, "load",
                "{} got {} calls in the {} s from {} ({:.1f} x its capacity of {}/s; the bound is {:.1f} x), "
                "{} after it recovered",
                service, peak, kLoadWindowSeconds, sim::format_duration(std::chrono::seconds{peak_at}),
                static_cast<double>(peak) / static_cast<double>(kCapacityPerSecond * kLoadWindowSeconds),
                kCapacityPerSecond, kLoadFactorMax,
                sim::format_duration(harness.world().sim().start_time() + std::chrono::seconds{peak_at} - recovered));
}

void RetryStorm::check_drain(Checker& checker, const std::string& service, const Recovery& recovery) {
  const sim::TimePoint recovered = recovery.recovered;
  // The first time each record reached each generation.
  std::map<std::string, std::vector<std::pair<std::int64_t, sim::TimePoint>>> reached;
  for (const AppliedChange& change : services_.at(service)->log()) {
    std::vector<std::pair<std::int64_t, sim::TimePoint>>& times = reached[change.key];
    const std::int64_t generation = generation_of(change.value);
    if (times.empty() || times.back().first < generation) times.emplace_back(generation, change.at);
  }
  for (const TwinInput& twin : twins_) {
    if (twin.service != service) continue;
    std::int64_t backlog = 0;
    for (const Acked& acked : acked_[twin.name]) {
      if (acked.at < recovered) backlog = std::max(backlog, acked.generation);
    }
    if (backlog == 0) continue;
    std::optional<sim::TimePoint> drained;
    for (const auto& [generation, at] : reached[twin.name]) {
      if (generation >= backlog) {
        drained = at;
        break;
      }
    }
    // Failed calls after the service was up for good, before the backlog
    // landed: beyond kDrainFailuresAllowed, each may take one more interval.
    int failures = 0;
    for (const sim::TimePoint at : failed_calls_[twin.name]) {
      if (at >= recovery.up_for_good && (!drained || at < *drained)) failures++;
    }
    const sim::Duration bound = kDrainBound + std::max(0, failures - kDrainFailuresAllowed) * kRetryIntervalMax;
    checker.check(drained.has_value() && *drained <= recovery.up_for_good + bound, "drain",
                  "{}'s generation {}, acknowledged before {} recovered, {} (bound: {} after its last outage, "
                  "which ended {} after the recovery; {} failed calls since)",
                  twin.name, backlog, service,
                  drained ? "was applied " + sim::format_duration(*drained - recovered) + " after the recovery"
                          : std::string("was never applied"),
                  sim::format_duration(bound), sim::format_duration(recovery.up_for_good - recovered), failures);
  }
}

void RetryStorm::check_end(Harness& harness, Checker& checker) {
  for (const auto& [service, fake] : services_) {
    const Recovery recovery = recovery_of(harness, service);
    check_load(harness, checker, service, recovery);
    check_drain(checker, service, recovery);
  }
}

}  // namespace
}  // namespace duro::scenarios::retry_storm

namespace duro::scenarios {

using namespace std::chrono_literals;

ScenarioDefinition retry_storm_scenario() {
  ScenarioDefinition definition;
  definition.name = "retry-storm";
  definition.summary =
      "a thousand digital twins of cells and namespaces keep working while the cloud API and a cell database are "
      "down for half an hour; after it, coalescing, jittered backoff and a client-side cap keep the load on them "
      "within 3x capacity and the backlog drains within a bound";
  definition.invariants = {
      "load: after the outage, calls to each service over any 10 s stay within 3 x its capacity",
      "drain: every twin's backlog at recovery is applied within the drain bound after it",
      "monotonic: a service's record of a twin, and its answers to queries, never go back or run ahead of what "
      "was sent",
      "outcome: every twin saw each change once, in order, applied the last and completed",
  };
  definition.shape.chaos = retry_storm::kChaos;
  definition.shape.liveness_bound = 30min;
  definition.shape.default_profile = "mild";
  definition.make = [] { return std::make_unique<retry_storm::RetryStorm>(); };
  return definition;
}

}  // namespace duro::scenarios
