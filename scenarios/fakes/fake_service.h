// FakeService: an external service the control plane depends on — a cloud
// API, DNS, a certificate issuer, a cell's database — as a simulated node
// that fails the way real ones do.
//
// A fake is two parts. Its state (the records it holds) lives in an object
// owned by the scenario's harness, outside the simulated node: it is the
// ground truth the checkers read, and it survives anything the nemesis
// does to the node. Its front is an RpcServer on the node, rebuilt at every
// boot, whose handlers go through the failure model before they touch the
// state:
//
//   - an outage (the fault plan's `outage` action) answers every call with
//     kUnavailable ("503 outage") until it ends;
//   - a rate limit answers kOverloaded ("429 throttled") beyond
//     `requests_per_second_max` calls in a second;
//   - a server error (kUnavailable, "500") fails a call before it applies;
//   - a timeout after apply applies the change and then never answers in
//     time — the caller sees kTimeout and cannot tell it from a lost
//     request, which is what idempotency keys are for;
//   - every call takes a latency drawn from [latency_min, latency_max].
//
// Draws come from the node's own random stream, so a seed replays them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <map>
#include <vector>

#include "sim/clock.h"
#include "sim/codec.h"
#include "sim/env.h"
#include "sim/random.h"
#include "sim/result.h"
#include "sim/rpc.h"

namespace duro::scenarios {

// The port every fake serves on.
inline constexpr std::uint16_t kServicePort = 9000;

struct FailureModel {
  double server_error_probability = 0;
  double timeout_after_apply_probability = 0;
  std::uint32_t requests_per_second_max = 0;  // 0: no limit.
  sim::Duration latency_min = std::chrono::milliseconds{2};
  sim::Duration latency_max = std::chrono::milliseconds{30};
  // How long a "timed out" call holds its answer: past any caller's
  // deadline.
  sim::Duration timeout_hold = std::chrono::minutes{2};

  // A model for one seed: each probability uniform in [0, the given one],
  // rounded to 1/1000 so reports stay short; the rest kept.
  FailureModel draw(sim::Random& random) const;
};

struct FakeServiceStats {
  std::uint64_t calls = 0;
  std::uint64_t outage_rejections = 0;
  std::uint64_t throttled = 0;
  std::uint64_t server_errors = 0;
  std::uint64_t timed_out_after_apply = 0;
  std::uint64_t applied = 0;  // Calls that reached the state.
  // Calls per simulated second (admitted or not), for load checks: key =
  // seconds since the simulation's start; only seconds with calls appear.
  std::map<std::int64_t, std::uint32_t> calls_per_second;
};

class FakeService {
 public:
  // `in_outage` says whether the fault plan has the service down now;
  // `changed` is called after every change to the state (the scenario's
  // safety checks run there).
  struct Hooks {
    std::function<bool()> in_outage;
    std::function<void()> changed;
  };

  FakeService(std::string name, FailureModel failure);
  virtual ~FakeService() = default;
  FakeService(const FakeService&) = delete;
  FakeService& operator=(const FakeService&) = delete;

  const std::string& name() const noexcept { return name_; }
  const FailureModel& failure_model() const noexcept { return failure_; }
  const FakeServiceStats& stats() const noexcept { return stats_; }
  void set_hooks(Hooks hooks) { hooks_ = std::move(hooks); }

  // Boots the front on `env`'s node: an RpcServer with this service's
  // handlers. The returned process owns it.
  std::unique_ptr<sim::Process> boot(sim::Env& env);

 protected:
  // How a handler is reached: `mutating` calls may time out after applying.
  template <typename Request, typename Reply, typename Fn>
  void serve(sim::RpcServer& server, sim::Env& env, std::string method, bool mutating, Fn fn) {
    server.handle<Request, Reply>(std::move(method), [this, &env, mutating, fn = std::move(fn)](
                                                         const Request& request) -> sim::Result<Reply> {
      if (sim::Result<void> admitted = admit(env); !admitted.ok()) return admitted.error();
      sim::Result<Reply> reply = fn(request);
      stats_.applied++;
      if (mutating) {
        notify_changed();
        if (hold_after_apply(env)) return sim::Error{sim::ErrorCode::kTimeout, "held past the deadline"};
      }
      return reply;
    });
  }
  // Registers the service's methods (serve() for each).
  virtual void register_methods(sim::RpcServer& server, sim::Env& env) = 0;
  // At every boot, once the front serves: a fake's own background work
  // (a cell's replication), in fibers of `env`'s node.
  virtual void start(sim::Env& env) { (void)env; }
  void notify_changed() {
    if (hooks_.changed) hooks_.changed();
  }

 private:
  // Latency, outage, throttle and server error, in that order.
  sim::Result<void> admit(sim::Env& env);
  // True when this call's answer is to be held past any deadline.
  bool hold_after_apply(sim::Env& env);

  std::string name_;
  FailureModel failure_;
  Hooks hooks_;
  FakeServiceStats stats_;
};

}  // namespace duro::scenarios
