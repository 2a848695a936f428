#include "sim/demo/message_storm.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "sim/channel.h"
#include "sim/future.h"

namespace duro::sim::demo {

namespace {

constexpr std::size_t kInboxCapacity = 512;

// The answer a server owes for `payload`: any fixed function will do, as
// long as a wrong or misrouted reply cannot pass for a right one.
std::uint64_t expected_reply(std::uint64_t payload) { return payload * 0x9E3779B97F4A7C15ULL + 1; }

struct Request {
  std::uint64_t payload;
  Promise<std::uint64_t> reply;
};

struct StormNode final : Process {
  Channel<Request> inbox{kInboxCapacity};
};

Duration exponential(Random& random, Duration mean) {
  return Duration{static_cast<Duration::rep>(random.exponential(static_cast<double>(mean.count())))};
}

class Storm {
 public:
  explicit Storm(const StormOptions& options)
      : options_(options),
        sim_(SimulatorOptions{.seed = options.seed, .shuffle_ties = options.shuffle_ties}) {
    sim_.set_trace_log(options.trace_log);
  }

  StormReport run() {
    DURO_ASSERT(options_.nodes > 0 && options_.clients_per_node >= 0 && options_.servers_per_node > 0);
    end_time_ = sim_.now() + options_.duration;
    for (int i = 0; i < options_.nodes; i++) {
      workers_.push_back(sim_.add_node(fmt::format("n{}", i), [this](NodeId node) { return boot(node); }));
    }
    if (options_.crashes) {
      const NodeId nemesis = sim_.add_node("nemesis");
      sim_.spawn(nemesis, "nemesis", [this, nemesis] { nemesis_loop(nemesis); });
    }
    report_.run = sim_.run();
    check();
    return report_;
  }

 private:
  std::unique_ptr<Process> boot(NodeId node) {
    auto process = std::make_unique<StormNode>();
    StormNode* self = process.get();
    const std::uint32_t incarnation = sim_.incarnation(node);
    for (int i = 0; i < options_.servers_per_node; i++) {
      Random random = sim_.random().fork(fmt::format("server/{}/{}/{}", node, incarnation, i));
      spawn(node, "server", [this, self, random]() mutable { serve(*self, random); }, SpawnOptions{.daemon = true});
    }
    // Clients start again at every boot, as a restarted service resumes its
    // work; those of the previous incarnation died with it.
    for (int i = 0; i < options_.clients_per_node; i++) {
      Random random = sim_.random().fork(fmt::format("client/{}/{}/{}", node, incarnation, i));
      spawn(node, "client", [this, random]() mutable { client_loop(random); });
    }
    return process;
  }

  template <typename Fn>
  void spawn(NodeId node, const char* name, Fn&& fn, SpawnOptions spawn_options = {}) {
    sim_.spawn(node, name, std::forward<Fn>(fn), spawn_options);
    report_.fibers_spawned++;
  }

  void serve(StormNode& self, Random& random) {
    for (;;) {
      Result<Request> request = self.inbox.receive();
      if (!request.ok()) return;
      // Now and then a long pause (a stop-the-world collection, a slow
      // disk), so some clients give up waiting.
      const bool pause = random.chance(1, 1000);
      this_fiber::sleep_for(pause ? options_.reply_timeout * 2 : exponential(random, options_.service_mean));
      request.value().reply.set_value(expected_reply(request.value().payload));
    }
  }

  void client_loop(Random& random) {
    while (sim_.now() < end_time_) {
      this_fiber::sleep_for(exponential(random, options_.think_mean));
      if (sim_.now() >= end_time_) break;
      const NodeId target = workers_[random.uniform(workers_.size())];
      const std::uint64_t payload = random.next();
      report_.requests++;
      // Counts the request as abandoned if this fiber is unwound before it
      // records an outcome: proof that a crash ran the client's destructors.
      struct Outcome {
        std::uint64_t* abandoned;
        bool recorded = false;
        ~Outcome() {
          if (!recorded) ++*abandoned;
        }
      } outcome{&report_.abandoned};
      auto* inbox_owner = sim_.is_up(target) ? static_cast<StormNode*>(sim_.process(target)) : nullptr;
      if (inbox_owner == nullptr) {
        report_.refused++;
        outcome.recorded = true;
        continue;
      }
      Request request{payload, {}};
      Future<std::uint64_t> reply = request.reply.future();
      if (!inbox_owner->inbox.try_send(std::move(request))) {
        report_.refused++;
        outcome.recorded = true;
        continue;
      }
      Result<std::uint64_t> result = reply.get_for(options_.reply_timeout);
      outcome.recorded = true;
      if (result.ok()) {
        report_.replies++;
        if (result.value() != expected_reply(payload)) report_.wrong_replies++;
      } else if (result.error().code == ErrorCode::kTimeout) {
        report_.timeouts++;
      } else if (result.error().code == ErrorCode::kBrokenPromise) {
        report_.broken++;
      } else {
        report_.failure = fmt::format("unexpected reply error: {}", to_string(result.error()));
      }
    }
  }

  void nemesis_loop(NodeId nemesis) {
    Random random = sim_.random().fork("nemesis");
    while (sim_.now() < end_time_) {
      this_fiber::sleep_until(std::min(sim_.now() + exponential(random, options_.crash_interval_mean), end_time_));
      if (sim_.now() >= end_time_) break;
      const NodeId victim = workers_[random.uniform(workers_.size())];
      if (!sim_.is_up(victim)) continue;
      sim_.crash(victim);
      report_.crashes++;
      const Duration downtime = std::chrono::milliseconds{random.uniform_range(100, 20'000)};
      spawn(nemesis, "restart", [this, victim, downtime] {
        this_fiber::sleep_for(downtime);
        sim_.restart(victim);
        report_.restarts++;
      });
    }
  }

  void check() {
    std::vector<std::string> failures;
    if (!report_.failure.empty()) failures.push_back(report_.failure);
    if (report_.run.reason != StopReason::kQuiescent) {
      failures.push_back(fmt::format("run ended by {} instead of quiescence{}{}",
                                     stop_reason_name(report_.run.reason),
                                     report_.run.deadlock_report.empty() ? "" : ": ",
                                     report_.run.deadlock_report));
    }
    if (report_.wrong_replies > 0) failures.push_back(fmt::format("{} wrong replies", report_.wrong_replies));
    const std::uint64_t accounted = report_.replies + report_.timeouts + report_.refused + report_.broken + report_.abandoned;
    if (accounted != report_.requests) {
      failures.push_back(fmt::format("{} requests but {} outcomes", report_.requests, accounted));
    }
    if (report_.restarts != report_.crashes) {
      failures.push_back(fmt::format("{} crashes but {} restarts", report_.crashes, report_.restarts));
    }
    report_.failure.clear();
    for (const std::string& failure : failures) {
      if (!report_.failure.empty()) report_.failure += "; ";
      report_.failure += failure;
    }
  }

  StormOptions options_;
  Simulator sim_;
  StormReport report_;
  std::vector<NodeId> workers_;
  TimePoint end_time_;
};

}  // namespace

StormReport run_message_storm(const StormOptions& options) { return Storm(options).run(); }

}  // namespace duro::sim::demo
