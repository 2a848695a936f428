// fail-static: the control plane loses its inputs for hours — cut off from
// the services it manages, its signal source answering with nothing or
// with stale data — and must keep the cells as they were rather than act on
// what it cannot see (CONTROL_PLANE.md: "acting on missing or stale
// signals"; GCE, April 2016, where the fail-safe path removed everything).
//
// Per cell, two entity workflows:
//
// - `cell_controller/<cell>` reads the signal source every ten minutes (the
//   cell's published configuration, its health, whether it was
//   decommissioned) and reconciles the cell-config service: it pushes a
//   newer configuration generation (a conditional write, so a late retry
//   cannot go back), drains an unhealthy cell and undrains it once healthy,
//   and removes a decommissioned cell's configuration and has its
//   certificate revoked. It fails static: a reading that failed, came back
//   empty or is stale (older than ten minutes by the source's own clock,
//   which a jump of the worker's or server's clock cannot fool) changes
//   nothing. A destructive action (drain, removal, revocation) runs in an
//   activity that reads the source again and acts only on fresh positive
//   evidence seen just then: a decision taken before a cut-off is not
//   carried out after it on evidence that has gone old.
// - `cell_cert/<cell>` keeps the cell's certificate renewed at the issuer.
//   Its timers run on the servers' clocks, which jump, so a timer only
//   wakes it: it asks the issuer how long the certificate has left by the
//   issuer's clock, renews only when that is under the renewal window, and
//   renews by compare-and-swap on the serial it replaces (so two renewals
//   of one certificate issue one).
//
// The run (12 h of chaos) scripts a cut-off of 2 to 3.5 hours in which the
// signal source, the cell-config service and the issuer all fail every
// call, and a forward clock jump of 1 hour to 3 days on one server or
// worker; the signal source has windows, drawn from the seed, in which it
// answers empty or stale for one cell or for all; cells change
// configuration, fall ill and recover, and on some seeds one is
// decommissioned. At the quiet phase the workload stops the controllers,
// which reconcile once more on fresh data and stop their certificate
// workflows.
//
// Invariants (ground truth: the signal source's timeline, the cell-config
// service's log, the issuer's certificates):
//   last-good-config: a cell's configuration, once pushed, is always one
//                     the source really published, never an older
//                     generation than it held, and never removed except
//                     for a decommissioned cell.
//   no-destructive-without-evidence: a drain happens only within the
//                     freshness bound (plus slack for the call) of a moment
//                     the cell really was unhealthy; a removal or a
//                     revocation only after the cell was decommissioned.
//   cert-valid:       no live cell's certificate ever expires by the
//                     issuer's clock: each renewal comes while the one it
//                     replaces is valid, and the current one is valid at
//                     every check and at the end.
//   no-mass-reissue:  a certificate is replaced only when it has at most the
//                     renewal window left by the issuer's clock — so issues
//                     per certificate are at most the renewals due plus one,
//                     and a clock jump issues nothing extra.
//   converged:        at the end every live cell holds its last published
//                     generation, undrained, with a valid certificate; a
//                     decommissioned one has no configuration and a revoked
//                     certificate.
//   outcome:          every workflow completes when stopped, saying whether
//                     its cell was retired.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "engine/sdk/activity_context.h"
#include "engine/sdk/workflow_context.h"
#include "scenarios/fakes/cert_issuer.h"
#include "scenarios/fakes/resource_service.h"
#include "scenarios/fakes/service_call.h"
#include "scenarios/fakes/signal_source.h"
#include "scenarios/harness.h"
#include "scenarios/registry.h"
#include "sim/assert.h"

// Named after the file, not anonymous: the library compiles several files
// to a unit (unity build), where the anonymous namespaces of different
// files are one and their same-named constants would collide.
namespace duro::scenarios::fail_static {

struct CellControllerState {
  std::string cell;
  std::int64_t applied = 0;   // The last generation pushed to cell-config.
  bool drained = false;
  bool retired = false;       // Decommissioned: configuration removed.
  bool stopping = false;
  std::int64_t cycles = 0;    // Readings taken, over all runs.
  std::int64_t held = 0;      // ... that changed nothing: failed, empty or stale.
  std::int64_t runs = 1;
};
DURO_CODEC_FIELDS(CellControllerState, cell, applied, drained, retired, stopping, cycles, held, runs);

struct CellCertState {
  std::string cell;
  std::uint64_t serial = 0;   // The current certificate, as last seen.
  std::int64_t renewals = 0;  // Certificates this workflow had issued.
  std::int64_t checks = 0;    // Status reads, over all runs.
  bool retire = false;        // Its controller found the cell decommissioned.
  bool retired = false;       // Revoked.
  bool stopping = false;
  std::int64_t runs = 1;
};
DURO_CODEC_FIELDS(CellCertState, cell, serial, renewals, checks, retire, retired, stopping, runs);

struct ConfigPush {
  std::string cell;
  std::int64_t generation = 0;
  std::int64_t hosts = 0;
};
DURO_CODEC_FIELDS(ConfigPush, cell, generation, hosts);

struct CertRenewal {
  std::string cell;
  std::uint64_t replaces = 0;
};
DURO_CODEC_FIELDS(CertRenewal, cell, replaces);

namespace {

using namespace std::chrono_literals;
using sdk::ActivityContext;
using sdk::WorkflowContext;

constexpr int kCells = 4;
constexpr sim::Duration kChaos = 12h;
// Ends of every drawn degradation, health episode and the cut-off come this
// long before the chaos phase ends, so the controllers see fresh data again
// before they are stopped.
constexpr sim::Duration kSettle = 2h;
constexpr sim::Duration kCutOffMin = 2h;
constexpr sim::Duration kCutOffMax = 3h + 30min;
constexpr sim::Duration kClockJumpMin = 1h;
constexpr sim::Duration kClockJumpMax = 72h;

// The controller's cycle, and how old (by the source's clock) a reading
// may be to act on.
constexpr sim::Duration kPeriod = 10min;
constexpr sim::Duration kFreshness = 10min;
// The checker's allowance for a destructive action: the freshness bound,
// plus the time from the activity's reading to its write (two calls, a
// clogged network).
constexpr sim::Duration kEvidenceWindow = kFreshness + 10min;
// While stopping without fresh data yet: read again this often.
constexpr sim::Duration kStopRetry = 1min;
constexpr int kCyclesPerRun = 24;  // Then continue as new: four hours.

// Certificates: valid 8 h, renewed with 4 h left, which outlasts the
// longest cut-off with half an hour to spare.
constexpr sim::Duration kValidity = 8h;
constexpr sim::Duration kRenewBefore = 4h;
static_assert(kCutOffMax + 30min <= kRenewBefore, "a cut-off must not outlast the renewal window");
// The certificate workflow wakes at least this often (a stop, a retire).
constexpr sim::Duration kCertCheckMax = 2h;
constexpr int kCertCyclesPerRun = 12;
constexpr int kSignalTriesMax = 100;

constexpr int kGenerationsMax = 12;
constexpr int kEpisodesPerCellMax = 2;
constexpr int kWindowsMin = 2;
constexpr int kWindowsMax = 4;

const std::vector<std::string> kJumpableNodes = {"server-1", "server-2", "server-3", "worker-1", "worker-2"};

std::string controller_id(const std::string& cell) { return "cell_controller/" + cell; }
std::string cert_id(const std::string& cell) { return "cell_cert/" + cell; }
std::string drain_key(const std::string& cell) { return cell + "/drain"; }
std::string owner_of(const std::string& cell) { return "controller/" + cell; }
std::string config_value(std::int64_t generation, std::int64_t hosts) {
  return fmt::format("generation {} hosts {}", generation, hosts);
}

// The generation and hosts of a config_value(), or nullopt if it is not one.
std::optional<ConfigPush> parse_config(std::string_view value) {
  constexpr std::string_view kGeneration = "generation ";
  constexpr std::string_view kHosts = " hosts ";
  if (!value.starts_with(kGeneration)) return std::nullopt;
  ConfigPush push;
  const char* end = value.data() + value.size();
  auto [after_generation, error] = std::from_chars(value.data() + kGeneration.size(), end, push.generation);
  if (error != std::errc{}) return std::nullopt;
  const std::string_view rest(after_generation, static_cast<std::size_t>(end - after_generation));
  if (!rest.starts_with(kHosts)) return std::nullopt;
  auto [after_hosts, hosts_error] = std::from_chars(rest.data() + kHosts.size(), end, push.hosts);
  if (hosts_error != std::errc{} || after_hosts != end) return std::nullopt;
  return push;
}

// Usable evidence: there is a datum, and it is fresh by the source's clock.
bool fresh(const SignalReading& reading) {
  return reading.found && reading.as_of - reading.datum.observed_at <= kFreshness;
}

sim::Duration draw(sim::Random& random, sim::Duration min, sim::Duration max) {
  DURO_ASSERT(min <= max);
  return sim::Duration{random.uniform_range(std::chrono::nanoseconds(min).count(),
                                            std::chrono::nanoseconds(max).count())};
}
// To the minute, so the printed plan reads easily.
sim::Duration draw_minutes(sim::Random& random, sim::Duration min, sim::Duration max) {
  return std::chrono::duration_cast<std::chrono::minutes>(draw(random, min, max));
}

// A reading may fail (outage, cut-off): a few tries, then the controller
// holds for this cycle.
sdk::ActivityOptions observe_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 30s;
  options.retry.initial_interval = 5s;
  options.retry.maximum_interval = 30s;
  options.retry.maximum_attempts = 3;
  return options;
}

// Actions are retried until they land (each idempotent).
sdk::ActivityOptions act_options() {
  sdk::ActivityOptions options;
  options.start_to_close = 1min;
  options.retry.initial_interval = 5s;
  options.retry.maximum_interval = 2min;
  return options;
}

// --- The workflows ---------------------------------------------------------

// Signals the cell's certificate workflow, retrying while it is between
// runs (continue-as-new). The wait is outside the catch: a workflow fiber
// must not suspend while an exception is being handled.
void signal_cert(WorkflowContext& ctx, const std::string& cell, std::string_view signal) {
  const engine::WorkflowExecution cert{cert_id(cell), ""};
  for (int tries = 0; tries < kSignalTriesMax; tries++) {
    bool sent = false;
    try {
      ctx.signal_workflow(cert, signal, true).get();
      sent = true;
    } catch (const sdk::ExternalWorkflowError&) {
    }
    if (sent) return;
    ctx.sleep(kStopRetry);
  }
}

// Applies one fresh reading.
void reconcile(WorkflowContext& ctx, CellControllerState& state, const CellDatum& datum) {
  const sdk::ActivityOptions act = act_options();
  if (datum.decommissioned) {
    // The activity reads again and removes only on fresh evidence then.
    if (!ctx.activity<bool>("retire_cell", state.cell, act)) return;
    state.retired = true;
    signal_cert(ctx, state.cell, "retire");
    return;
  }
  if (datum.generation > state.applied) {
    ctx.activity<void>("push_config", ConfigPush{state.cell, datum.generation, datum.hosts}, act);
    state.applied = datum.generation;
  }
  if (!datum.healthy && !state.drained) {
    // Re-checks the evidence; answers whether the cell is drained after.
    state.drained = ctx.activity<bool>("drain", state.cell, act);
  } else if (datum.healthy && state.drained) {
    ctx.activity<void>("undrain", state.cell, act);
    state.drained = false;
  }
}

CellControllerState cell_controller(WorkflowContext& ctx, CellControllerState state) {
  ctx.on_signal<bool>("stop", [&](bool) { state.stopping = true; });
  ctx.on_query<CellControllerState>("state", [&] { return state; });
  for (int cycle = 0; cycle < kCyclesPerRun; cycle++) {
    state.cycles++;
    std::optional<SignalReading> reading;
    try {
      reading = ctx.activity<SignalReading>("observe", state.cell, observe_options());
    } catch (const sdk::ActivityError&) {
      // No reading: nothing to act on (fail static).
    }
    const bool usable = reading.has_value() && fresh(*reading);
    if (!usable) {
      state.held++;
    } else if (!state.retired) {
      reconcile(ctx, state, reading->datum);
    }
    // Stopping: once reconciled on fresh data, stop the certificate
    // workflow too (after any "retire": signals from one sender keep
    // their order) and close.
    if (state.stopping && (usable || state.retired)) {
      signal_cert(ctx, state.cell, "stop");
      return state;
    }
    if (state.stopping) {
      ctx.sleep(kStopRetry);
    } else {
      sdk::Future<void> tick = ctx.timer(kPeriod);
      ctx.await([&] { return tick.ready() || state.stopping; });
    }
  }
  state.runs++;
  ctx.continue_as_new(state);
}

CellCertState cell_cert(WorkflowContext& ctx, CellCertState state) {
  ctx.on_signal<bool>("retire", [&](bool) { state.retire = true; });
  ctx.on_signal<bool>("stop", [&](bool) { state.stopping = true; });
  ctx.on_query<CellCertState>("state", [&] { return state; });
  const sdk::ActivityOptions act = act_options();
  for (int cycle = 0; cycle < kCertCyclesPerRun; cycle++) {
    if (state.retire && !state.retired) {
      // Revocation is destructive: the activity confirms the decommission
      // with fresh evidence, or does nothing and we try again later.
      state.retired = ctx.activity<bool>("revoke_cert", state.cell, act);
      if (!state.retired) {
        ctx.sleep(kPeriod);
        continue;
      }
    }
    if (state.retired) {
      ctx.await([&] { return state.stopping; });
      return state;
    }
    // The timer that woke us ran on a server's clock, which may have
    // jumped: how long the certificate has left is the issuer's to say.
    const CertReply status = ctx.activity<CertReply>("cert_status", state.cell, act);
    state.checks++;
    state.serial = status.serial;
    const sim::Duration left = status.not_after - status.now;
    if (!status.revoked && (!status.found || left <= kRenewBefore)) {
      const CertReply renewed = ctx.activity<CertReply>("renew_cert", CertRenewal{state.cell, status.serial}, act);
      state.serial = renewed.serial;
      if (renewed.issued) state.renewals++;
      continue;  // Read the status again: one renewal per reading.
    }
    if (state.stopping && !state.retire) return state;
    sdk::Future<void> tick = ctx.timer(std::min(left - kRenewBefore, kCertCheckMax));
    ctx.await([&] { return tick.ready() || state.stopping || state.retire; });
  }
  state.runs++;
  ctx.continue_as_new(state);
}

// --- The scenario ----------------------------------------------------------

class FailStatic final : public Scenario {
 public:
  void setup(Harness& harness) override;
  void check_safety(Checker& checker) override;
  void check_end(Harness& harness, Checker& checker) override;

 private:
  void draw_truth(Harness& harness);
  void register_activities(Harness& harness);
  void operator_client(Harness& harness, sdk::Client& client, sim::Env& env);
  // The reading an activity acts on, read just now.
  SignalReading read_signals(ActivityContext& ctx, const std::string& cell);
  void check_config_change(Checker& checker, const AppliedChange& change);

  Harness* harness_ = nullptr;
  const sim::Simulator* sim_ = nullptr;
  SignalSource* signals_ = nullptr;
  ResourceService* config_ = nullptr;
  CertIssuer* issuer_ = nullptr;
  std::vector<std::string> cells_;
  std::size_t config_log_checked_ = 0;
  std::map<std::string, std::int64_t> generation_seen_;       // Cell -> highest generation config held.
  std::map<std::string, std::size_t> certs_checked_;          // Cell -> certificates judged.
  std::set<std::uint64_t> revocations_checked_;               // Serials.
};

void FailStatic::draw_truth(Harness& harness) {
  sim::Random& random = harness.random();
  const sim::TimePoint start = harness.world().sim().now();
  const sim::TimePoint settled = start + kChaos - kSettle;
  for (const std::string& cell : cells_) {
    // Configuration generations: the first from before the run, then one
    // every half hour to three hours.
    std::int64_t hosts = random.uniform_range(8, 32);
    signals_->publish(cell, start - 24h, 1, hosts);
    sim::TimePoint at = start + draw(random, 30min, 3h);
    for (std::int64_t generation = 2; generation <= kGenerationsMax && at < start + kChaos - 1h; generation++) {
      hosts = std::max<std::int64_t>(4, hosts + random.uniform_range(-4, 4));
      signals_->publish(cell, at, generation, hosts);
      at += draw(random, 30min, 3h);
    }
    // Unhealthy episodes, over before the settling time.
    const auto episodes = static_cast<int>(random.uniform_range(1, kEpisodesPerCellMax));
    for (int e = 0; e < episodes; e++) {
      const sim::Duration length = draw(random, 20min, 90min);
      const sim::TimePoint from = start + draw(random, 0min, kChaos - kSettle - length);
      signals_->unhealthy(cell, from, from + length);
    }
  }
  // On half the seeds one cell is decommissioned.
  if (random.chance(1, 2)) {
    const std::string& cell = cells_[random.uniform(cells_.size())];
    signals_->decommission(cell, start + draw(random, 2h, kChaos - kSettle - 1h));
  }
  // The feed's bad windows: empty or stale, for one cell or all.
  const auto windows = static_cast<int>(random.uniform_range(kWindowsMin, kWindowsMax));
  for (int w = 0; w < windows; w++) {
    DegradedWindow window;
    window.cell = random.chance(1, 2) ? std::string() : cells_[random.uniform(cells_.size())];
    window.kind = random.chance(1, 2) ? Degradation::kEmpty : Degradation::kStale;
    // Half the stale windows are stuck, half a replica running behind.
    if (window.kind == Degradation::kStale && random.chance(1, 2)) window.behind = draw(random, 30min, 3h);
    const sim::Duration length = draw(random, 30min, 3h);
    window.from = start + draw(random, 0min, kChaos - kSettle - length);
    window.until = window.from + length;
    DURO_ASSERT(window.until <= settled);
    signals_->degrade(std::move(window));
  }
  // The cut-off: every service the control plane manages fails every call.
  const sim::Duration cut_off = draw_minutes(random, kCutOffMin, kCutOffMax);
  const sim::Duration cut_at = draw_minutes(random, 30min, kChaos - kSettle - cut_off);
  for (const char* service : {"signals", "cell-config", "issuer"}) {
    sim::FaultAction outage;
    outage.at = cut_at;
    outage.kind = sim::FaultKind::kOutage;
    outage.duration = cut_off;
    outage.service = service;
    harness.script(std::move(outage));
  }
  // A clock on one server or worker jumps forward hours to days.
  sim::FaultAction jump;
  jump.at = draw_minutes(random, 30min, kChaos - 1h);
  jump.kind = sim::FaultKind::kClockJump;
  jump.nodes = {kJumpableNodes[random.uniform(kJumpableNodes.size())]};
  jump.clock_delta = draw_minutes(random, kClockJumpMin, kClockJumpMax);
  harness.script(std::move(jump));
  // Certificates from before the run, expiring 3 to 8 hours in: some are
  // due for renewal at once.
  for (const std::string& cell : cells_) {
    const sim::TimePoint not_after = start + draw_minutes(random, 3h, kValidity);
    issuer_->preissue(cell, not_after - kValidity, not_after);
  }
}

SignalReading FailStatic::read_signals(ActivityContext& ctx, const std::string& cell) {
  sim::Result<SignalReading> reading =
      call_service<SignalReading>(ctx.env(), harness_->address_of("signals"), "read", SignalQuery{cell});
  if (!reading.ok()) throw sdk::ApplicationError("SignalsUnavailable", sim::to_string(reading.error()));
  DURO_ASSERT(!reading.value().found || reading.value().datum.observed_at <= reading.value().as_of);
  return reading.value();
}

void FailStatic::register_activities(Harness& harness) {
  sdk::Registry& registry = harness.registry();
  registry.activity("observe",
                    [this](ActivityContext& ctx, const std::string& cell) { return read_signals(ctx, cell); });
  registry.activity("push_config", [this](ActivityContext& ctx, const ConfigPush& push) {
    DURO_ASSERT(push.generation > 0 && push.hosts > 0);
    sim::Result<ResourceReply> reply = call_service<ResourceReply>(
        ctx.env(), harness_->address_of("cell-config"), "put",
        ResourcePut{push.cell, config_value(push.generation, push.hosts), owner_of(push.cell), ctx.idempotency_key(),
                    push.generation});
    // kAlreadyExists: as new already (an earlier try applied it): done.
    if (reply.ok() || reply.error().code == sim::ErrorCode::kAlreadyExists) return;
    throw sdk::ApplicationError("ConfigError", sim::to_string(reply.error()));
  });
  registry.activity("drain", [this](ActivityContext& ctx, const std::string& cell) {
    const sim::Address config = harness_->address_of("cell-config");
    const SignalReading reading = read_signals(ctx, cell);
    if (fresh(reading) && !reading.datum.healthy && !reading.datum.decommissioned) {
      sim::Result<ResourceReply> put = call_service<ResourceReply>(
          ctx.env(), config, "put", ResourcePut{drain_key(cell), "drained", owner_of(cell), ctx.idempotency_key(), 0});
      if (!put.ok()) throw sdk::ApplicationError("ConfigError", sim::to_string(put.error()));
    }
    // Whether it is drained now (an earlier try of ours may have drained it).
    sim::Result<ResourceReply> now = call_service<ResourceReply>(ctx.env(), config, "get", ResourceGet{drain_key(cell)});
    if (!now.ok()) throw sdk::ApplicationError("ConfigError", sim::to_string(now.error()));
    return now.value().found;
  });
  registry.activity("undrain", [this](ActivityContext& ctx, const std::string& cell) {
    sim::Result<ResourceReply> reply =
        call_service<ResourceReply>(ctx.env(), harness_->address_of("cell-config"), "delete",
                                    ResourceDelete{drain_key(cell), owner_of(cell), ctx.idempotency_key()});
    if (!reply.ok()) throw sdk::ApplicationError("ConfigError", sim::to_string(reply.error()));
  });
  registry.activity("retire_cell", [this](ActivityContext& ctx, const std::string& cell) {
    const SignalReading reading = read_signals(ctx, cell);
    if (!fresh(reading) || !reading.datum.decommissioned) return false;
    const sim::Address config = harness_->address_of("cell-config");
    // One key per delete, derived from the activity's: a retry repeats both.
    for (const std::string& key : {drain_key(cell), cell}) {
      sim::Result<ResourceReply> reply = call_service<ResourceReply>(
          ctx.env(), config, "delete", ResourceDelete{key, owner_of(cell), ctx.idempotency_key() + "/" + key});
      if (!reply.ok()) throw sdk::ApplicationError("ConfigError", sim::to_string(reply.error()));
    }
    return true;
  });
  registry.activity("cert_status", [this](ActivityContext& ctx, const std::string& cell) {
    sim::Result<CertReply> reply =
        call_service<CertReply>(ctx.env(), harness_->address_of("issuer"), "status", CertStatusRequest{cell});
    if (!reply.ok()) throw sdk::ApplicationError("IssuerError", sim::to_string(reply.error()));
    return reply.value();
  });
  registry.activity("renew_cert", [this](ActivityContext& ctx, const CertRenewal& renewal) {
    sim::Result<CertReply> reply =
        call_service<CertReply>(ctx.env(), harness_->address_of("issuer"), "issue",
                                CertIssueRequest{renewal.cell, renewal.replaces, ctx.idempotency_key()});
    if (!reply.ok()) throw sdk::ApplicationError("IssuerError", sim::to_string(reply.error()));
    return reply.value();
  });
  registry.activity("revoke_cert", [this](ActivityContext& ctx, const std::string& cell) {
    const SignalReading reading = read_signals(ctx, cell);
    if (!fresh(reading) || !reading.datum.decommissioned) return false;
    sim::Result<CertReply> reply = call_service<CertReply>(ctx.env(), harness_->address_of("issuer"), "revoke",
                                                           CertRevokeRequest{cell, ctx.idempotency_key()});
    if (!reply.ok()) throw sdk::ApplicationError("IssuerError", sim::to_string(reply.error()));
    return true;
  });
}

void FailStatic::setup(Harness& harness) {
  harness_ = &harness;
  sim_ = &harness.world().sim();
  sim::Random& random = harness.random();
  for (int i = 0; i < kCells; i++) cells_.push_back(fmt::format("cell-{}", i));
  const FailureModel flaky{.server_error_probability = 0.05, .timeout_after_apply_probability = 0.03};
  signals_ = &harness.add_service<SignalSource>("signals", flaky.draw(random));
  config_ = &harness.add_service<ResourceService>("cell-config", flaky.draw(random));
  // The issuer is slow and rate-limited.
  FailureModel slow = flaky;
  slow.latency_min = 100ms;
  slow.latency_max = 3s;
  slow.requests_per_second_max = 2;
  issuer_ = &harness.add_service<CertIssuer>("issuer", slow.draw(random), CertIssuerOptions{.validity = kValidity});
  draw_truth(harness);
  harness.registry().workflow("cell_controller", cell_controller);
  harness.registry().workflow("cell_cert", cell_cert);
  register_activities(harness);
  harness.client("operator", [this, &harness](sdk::Client& client, sim::Env& env) {
    operator_client(harness, client, env);
  });
}

void FailStatic::operator_client(Harness& harness, sdk::Client& client, sim::Env& env) {
  std::vector<std::string> started;
  for (const std::string& cell : cells_) {
    const bool decommissioned = signals_->decommissioned_at(cell).has_value();
    sim::Result<engine::WorkflowExecution> cert = sim::Error{sim::ErrorCode::kTimeout, "not started"};
    while (!cert.ok() && env.sim().now() < harness.quiet_at()) {
      cert = client.start("cell_cert", cert_id(cell), CellCertState{.cell = cell});
    }
    if (!cert.ok()) return;
    harness.expect(cert.value(), "certificate of " + cell,
                   [decommissioned](const sdk::WorkflowOutcome<sdk::Payload>& outcome) -> std::string {
                     if (!outcome.completed() || !outcome.value) return "it completes when stopped";
                     const auto state = sdk::from_payload<CellCertState>(*outcome.value);
                     if (state.retired != decommissioned) {
                       return fmt::format("retired = {} for a cell {}", state.retired,
                                          decommissioned ? "decommissioned" : "in service");
                     }
                     return "";
                   });
    // The controller only after its certificate workflow: it signals it.
    sim::Result<engine::WorkflowExecution> controller = sim::Error{sim::ErrorCode::kTimeout, "not started"};
    while (!controller.ok() && env.sim().now() < harness.quiet_at()) {
      controller = client.start("cell_controller", controller_id(cell), CellControllerState{.cell = cell});
    }
    if (!controller.ok()) return;
    harness.expect(controller.value(), "controller of " + cell,
                   [decommissioned](const sdk::WorkflowOutcome<sdk::Payload>& outcome) -> std::string {
                     if (!outcome.completed() || !outcome.value) return "it completes when stopped";
                     const auto state = sdk::from_payload<CellControllerState>(*outcome.value);
                     if (state.retired != decommissioned) {
                       return fmt::format("retired = {} for a cell {}", state.retired,
                                          decommissioned ? "decommissioned" : "in service");
                     }
                     return "";
                   });
    started.push_back(cell);
  }
  // The run's hours pass; at the quiet phase, stop the controllers (they
  // stop their certificate workflows).
  if (env.sim().now() < harness.quiet_at()) env.sleep_for(harness.quiet_at() - env.sim().now());
  constexpr int kTriesMax = 10'000;
  for (const std::string& cell : started) {
    const engine::WorkflowExecution controller{controller_id(cell), ""};
    for (int tries = 0; tries < kTriesMax; tries++) {
      if (client.signal(controller, "stop", true, "stop/" + cell, 2min).ok()) break;
    }
  }
}

void FailStatic::check_config_change(Checker& checker, const AppliedChange& change) {
  const bool drain = change.key.ends_with("/drain");
  const std::string cell = drain ? change.key.substr(0, change.key.size() - std::string_view("/drain").size())
                                 : change.key;
  const std::optional<sim::TimePoint> decommissioned = signals_->decommissioned_at(cell);
  const std::string at = sim::format_duration(change.at - sim_->start_time());
  if (drain) {
    if (change.method != "put") return;  // An undrain restores: never destructive.
    checker.check(signals_->unhealthy_between(cell, change.at - kEvidenceWindow, change.at),
                  "no-destructive-without-evidence",
                  "{} was drained at {} but was healthy throughout the {} before", cell, at,
                  sim::format_duration(kEvidenceWindow));
    return;
  }
  if (change.method == "delete") {
    const bool evident = decommissioned && *decommissioned <= change.at;
    checker.check(evident, "last-good-config", "the configuration of {} ({}) was removed at {}, in service", cell,
                  change.value, at);
    checker.check(evident, "no-destructive-without-evidence", "{} was removed at {} without being decommissioned",
                  cell, at);
    return;
  }
  // A put: one the source published, never older than what it held.
  const std::optional<ConfigPush> pushed = parse_config(change.value);
  const std::int64_t generation = pushed ? pushed->generation : 0;
  const std::optional<std::int64_t> published = pushed ? signals_->hosts_of(cell, generation) : std::nullopt;
  checker.check(published.has_value() && *published == pushed->hosts && pushed->hosts > 0, "last-good-config",
                "{} got configuration '{}' at {}, which the source never published", cell, change.value, at);
  std::int64_t& seen = generation_seen_[cell];
  checker.check(generation >= seen, "last-good-config", "{} went back from generation {} to {} at {}", cell, seen,
                generation, at);
  seen = std::max(seen, generation);
}

void FailStatic::check_safety(Checker& checker) {
  const std::vector<AppliedChange>& log = config_->log();
  for (; config_log_checked_ < log.size(); config_log_checked_++) check_config_change(checker, log[config_log_checked_]);
  const sim::TimePoint now = sim_->now();
  for (const std::string& cell : cells_) {
    const std::vector<Certificate>& certs = issuer_->certificates(cell);
    std::size_t& judged = certs_checked_[cell];
    // Each renewal, once: the one it replaced was valid, and due.
    for (; judged < certs.size(); judged++) {
      if (judged == 0) continue;  // From before the run.
      const Certificate& before = certs[judged - 1];
      const Certificate& renewal = certs[judged];
      checker.check(renewal.issued_at <= before.not_after, "cert-valid",
                    "{}'s certificate {} expired at {}; its renewal {} came at {}", cell, before.serial,
                    sim::format_duration(before.not_after - sim_->start_time()), renewal.serial,
                    sim::format_duration(renewal.issued_at - sim_->start_time()));
      checker.check(before.not_after - renewal.issued_at <= kRenewBefore, "no-mass-reissue",
                    "{}'s certificate {} was replaced at {} with {} left (renewal is due with {} left)", cell,
                    before.serial, sim::format_duration(renewal.issued_at - sim_->start_time()),
                    sim::format_duration(before.not_after - renewal.issued_at), sim::format_duration(kRenewBefore));
    }
    for (const Certificate& cert : certs) {
      if (!cert.revoked_at || !revocations_checked_.insert(cert.serial).second) continue;
      const std::optional<sim::TimePoint> decommissioned = signals_->decommissioned_at(cell);
      checker.check(decommissioned && *decommissioned <= *cert.revoked_at, "no-destructive-without-evidence",
                    "{}'s certificate {} was revoked at {} without the cell being decommissioned", cell, cert.serial,
                    sim::format_duration(*cert.revoked_at - sim_->start_time()));
    }
    // The current certificate of a cell in service is valid now.
    if (!certs.empty() && !certs.back().revoked_at) {
      checker.check(now < certs.back().not_after, "cert-valid", "{}'s certificate {} expired at {} (now {})", cell,
                    certs.back().serial, sim::format_duration(certs.back().not_after - sim_->start_time()),
                    sim::format_duration(now - sim_->start_time()));
    }
  }
}

void FailStatic::check_end(Harness& harness, Checker& checker) {
  (void)harness;
  for (const std::string& cell : cells_) {
    const Record* config = config_->find(cell);
    const Record* drained = config_->find(drain_key(cell));
    const std::vector<Certificate>& certs = issuer_->certificates(cell);
    const bool revoked = !certs.empty() && certs.back().revoked_at.has_value();
    if (signals_->decommissioned_at(cell)) {
      checker.check(config == nullptr && drained == nullptr && revoked, "converged",
                    "decommissioned {}: configuration {}, {}, certificate {}", cell,
                    config == nullptr ? "removed" : "'" + config->value + "' kept", drained ? "drained" : "undrained",
                    revoked ? "revoked" : "not revoked");
      continue;
    }
    const std::int64_t last = signals_->last_generation(cell);
    checker.check(config != nullptr && config->generation == last && drained == nullptr && !revoked, "converged",
                  "{} in service ends with configuration {} (last published: generation {}), {}, certificate {}",
                  cell, config == nullptr ? "none" : "'" + config->value + "'", last,
                  drained ? "drained" : "undrained", revoked ? "revoked" : "live");
  }
}

}  // namespace
}  // namespace duro::scenarios::fail_static

namespace duro::scenarios {

using namespace std::chrono_literals;

ScenarioDefinition fail_static_scenario() {
  ScenarioDefinition definition;
  definition.name = "fail-static";
  definition.summary =
      "per-cell controllers and certificate renewers cut off from their services for hours, fed empty and stale "
      "signals, with a server's or worker's clock jumped by hours to days: they keep the last good state";
  definition.invariants = {
      "last-good-config: a cell's configuration is always one the source published, never goes back a generation, "
      "and is removed only for a decommissioned cell",
      "no-destructive-without-evidence: a drain only near a moment the cell was really unhealthy; a removal or a "
      "revocation only after it was decommissioned",
      "cert-valid: no live cell's certificate ever expires by the issuer's clock",
      "no-mass-reissue: a certificate is replaced only once it is due (renewal window left, by the issuer's clock)",
      "converged: at the end live cells hold their last generation, undrained, certified; decommissioned ones "
      "nothing",
      "outcome: every workflow completes when stopped, saying whether its cell was retired",
  };
  definition.shape.chaos = fail_static::kChaos;
  definition.shape.liveness_bound = 3h;
  // Hours of mostly waiting: renew leases and heartbeat less often (an
  // idle cluster's events are mostly these).
  definition.shape.server.renew_interval = 5s;
  definition.shape.server.lease = 20s;
  definition.shape.server.controller_interval = 5s;
  definition.shape.server.ack_interval = 10s;
  definition.shape.server.membership.interval = 5s;
  definition.shape.server.membership.ttl = 20s;
  definition.make = [] { return std::make_unique<fail_static::FailStatic>(); };
  return definition;
}

}  // namespace duro::scenarios
