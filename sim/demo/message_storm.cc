#include "sim/demo/message_storm.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "sim/nemesis.h"
#include "sim/rpc.h"
#include "sim/world.h"

namespace duro::sim::demo {

namespace {

constexpr std::uint16_t kServerPort = 7000;
constexpr std::uint16_t kClientPortBase = 10000;
constexpr std::string_view kLogPath = "work.log";
constexpr std::uint64_t kFsyncEvery = 16;

struct Work {
  std::uint64_t payload = 0;
};
DURO_CODEC_FIELDS(Work, payload);

// The answer a server owes for `payload`: any fixed function will do, as
// long as a wrong or misrouted reply cannot pass for a right one.
std::uint64_t expected_reply(std::uint64_t payload) { return payload * 0x9E3779B97F4A7C15ULL + 1; }

Duration exponential(Random& random, Duration mean) {
  return Duration{static_cast<Duration::rep>(random.exponential(static_cast<double>(mean.count())))};
}

struct StormNode final : Process {
  std::unique_ptr<RpcServer> server;
  std::uint64_t appended = 0;
};

class Storm {
 public:
  explicit Storm(const StormOptions& options)
      : options_(options), world_(WorldOptions{.seed = options.seed, .shuffle_ties = options.shuffle_ties}) {
    world_.sim().set_trace_log(options.trace_log);
  }

  StormReport run() {
    DURO_ASSERT(options_.nodes > 0 && options_.clients_per_node >= 0);
    const TimePoint start = world_.sim().now();
    const Duration chaos = options_.plan ? options_.plan->chaos : options_.chaos;
    stop_at_ = start + chaos + options_.quiet;
    synced_bytes_.assign(static_cast<std::size_t>(options_.nodes), 0);
    quiet_replies_.assign(static_cast<std::size_t>(options_.nodes), 0);
    FaultTopology topology;
    for (int i = 0; i < options_.nodes; i++) {
      const std::string name = fmt::format("n{}", i);
      workers_.push_back(world_.add_node(name, [this](Env& env) { return boot(env); }));
      topology.crashable.push_back(name);
      topology.with_disks.push_back(name);
    }
    topology.chaos = chaos;
    FaultPlan plan;
    if (options_.plan) {
      plan = *options_.plan;
    } else {
      Result<FaultProfile> profile = fault_profile(options_.profile);
      DURO_ASSERT_MSG(profile.ok(), "unknown fault profile (the caller validates it)");
      plan = draw_fault_plan(options_.seed, profile.value(), topology);
    }
    report_.plan_text = plan.to_text();
    report_.faults = plan.actions.size();
    if (const Result<void> applied = world_.apply(plan); !applied.ok()) {
      fail(to_string(applied.error()));
      return report_;
    }
    report_.run = world_.run();
    for (const AppliedFault& fault : world_.fault_log()) {
      if (fault.action.kind == FaultKind::kCrash && fault.outcome == "applied") report_.crashes++;
    }
    report_.messages = world_.network().stats().sent;
    check();
    return report_;
  }

 private:
  std::unique_ptr<Process> boot(Env& env) {
    const NodeId node = env.node();
    // Durability: what the last successful fsync covered must have survived.
    // Injected corruption (a lost write) can defeat fsync; only a checksum
    // could tell, and this log has none, so the check stands down then.
    if (env.incarnation() > 1 && env.disk().stats().corruptions() == 0) {
      const std::uint64_t size = env.disk().exists(kLogPath) ? env.disk().size(kLogPath).value() : 0;
      if (size < synced_bytes_[node]) {
        fail(fmt::format("node {} lost fsynced data: log has {} bytes, {} were synced", env.name(), size,
                         synced_bytes_[node]));
      }
    }
    auto process = std::make_unique<StormNode>();
    StormNode* self = process.get();
    process->server = std::make_unique<RpcServer>(env.network(), node, kServerPort);
    process->server->handle<Work, Work>("work", [this, &env, self](const Work& work) -> Result<Work> {
      return serve(env, *self, work);
    });
    process->server->start();
    report_.fibers_spawned++;
    for (int i = 0; i < options_.clients_per_node; i++) {
      Random random = env.random().fork(static_cast<std::uint64_t>(i));
      const auto port = static_cast<std::uint16_t>(kClientPortBase + i);
      env.spawn("client", [this, &env, random, port]() mutable { client_loop(env, random, port); });
      report_.fibers_spawned++;
    }
    return process;
  }

  Result<Work> serve(Env& env, StormNode& self, const Work& work) {
    env.sleep_for(exponential(env.random(), options_.service_mean));
    Disk& disk = env.disk();
    // The log is best effort: a disk error fails the request, as a real
    // server would answer 500.
    if (!disk.exists(kLogPath)) {
      if (Result<void> created = disk.create(kLogPath); !created.ok()) return created.error();
    }
    const std::string record = fmt::format("{:016x}\n", work.payload);
    if (Result<std::uint64_t> appended = disk.append(kLogPath, record); !appended.ok()) return appended.error();
    if (++self.appended % kFsyncEvery == 0) {
      const std::uint64_t size_before_sync = disk.size(kLogPath).value();
      if (Result<void> synced = disk.fsync(kLogPath); !synced.ok()) return synced.error();
      std::uint64_t& synced_bytes = synced_bytes_[env.node()];
      synced_bytes = std::max(synced_bytes, size_before_sync);
      report_.fsyncs++;
    }
    return Work{expected_reply(work.payload)};
  }

  void client_loop(Env& env, Random& random, std::uint16_t port) {
    RpcClient rpc(env.network(), env.node(), port);
    Simulator& sim = world_.sim();
    while (sim.now() < stop_at_) {
      env.sleep_for(exponential(random, options_.think_mean));
      if (sim.now() >= stop_at_) break;
      const NodeId target = workers_[random.uniform(workers_.size())];
      const std::uint64_t payload = random.next();
      report_.calls++;
      // Counts the call as abandoned if this fiber unwinds before it records
      // an outcome: proof that a crash ran the client's destructors.
      struct Outcome {
        std::uint64_t* abandoned;
        bool recorded = false;
        ~Outcome() {
          if (!recorded) ++*abandoned;
        }
      } outcome{&report_.abandoned};
      Result<Work> reply = rpc.call<Work>(world_.network().endpoint(target, kServerPort), "work", Work{payload},
                                          options_.call_timeout);
      outcome.recorded = true;
      if (reply.ok()) {
        report_.replies++;
        if (reply.value().payload != expected_reply(payload)) report_.wrong_replies++;
        if (world_.phase() == Phase::kQuiet && sim.now() >= world_.quiet_since() + options_.grace) {
          quiet_replies_[env.node()]++;
        }
      } else if (reply.error().code == ErrorCode::kTimeout) {
        report_.timeouts++;
      } else {
        report_.rejected++;
      }
    }
  }

  void fail(std::string failure) {
    if (!report_.failure.empty()) report_.failure += "; ";
    report_.failure += failure;
  }

  void check() {
    if (report_.run.reason != StopReason::kQuiescent) {
      fail(fmt::format("run ended by {} instead of quiescence{}{}", stop_reason_name(report_.run.reason),
                       report_.run.deadlock_report.empty() ? "" : ": ", report_.run.deadlock_report));
    }
    if (report_.wrong_replies > 0) fail(fmt::format("{} wrong replies", report_.wrong_replies));
    const std::uint64_t accounted = report_.replies + report_.timeouts + report_.rejected + report_.abandoned;
    if (accounted != report_.calls) fail(fmt::format("{} calls but {} outcomes", report_.calls, accounted));
    for (std::size_t node = 0; node < workers_.size(); node++) {
      if (!world_.sim().is_up(workers_[node])) fail(fmt::format("node n{} still down after the quiet phase", node));
      if (options_.clients_per_node > 0 && quiet_replies_[node] == 0) {
        fail(fmt::format("liveness: node n{}'s clients got no reply in the quiet phase", node));
      }
    }
  }

  StormOptions options_;
  StormReport report_;
  std::vector<NodeId> workers_;
  std::vector<std::uint64_t> synced_bytes_;  // Ground truth, outside the nodes.
  std::vector<std::uint64_t> quiet_replies_;
  TimePoint stop_at_;
  // Last, so it goes first: unwinding its fibers still writes to the above.
  World world_;
};

}  // namespace

StormReport run_message_storm(const StormOptions& options) { return Storm(options).run(); }

}  // namespace duro::sim::demo
