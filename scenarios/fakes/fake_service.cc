#include "scenarios/fakes/fake_service.h"

#include <cmath>
#include <utility>

#include "sim/assert.h"
#include "sim/simulator.h"

namespace duro::scenarios {
namespace {

// A drawn probability in [0, max], in steps of 1/1000.
double draw_probability(sim::Random& random, double max) {
  DURO_ASSERT(max >= 0 && max <= 1);
  const auto steps = static_cast<std::uint64_t>(std::floor(max * 1000));
  return static_cast<double>(random.uniform(steps + 1)) / 1000;
}

// The process of a fake's node: it owns the RpcServer, so a boot makes a
// fresh one and nothing else of the fake is lost.
class FrontProcess final : public sim::Process {
 public:
  explicit FrontProcess(std::unique_ptr<sim::RpcServer> server) : server_(std::move(server)) {}

 private:
  std::unique_ptr<sim::RpcServer> server_;
};

}  // namespace

FailureModel FailureModel::draw(sim::Random& random) const {
  FailureModel drawn = *this;
  drawn.server_error_probability = draw_probability(random, server_error_probability);
  drawn.timeout_after_apply_probability = draw_probability(random, timeout_after_apply_probability);
  return drawn;
}

FakeService::FakeService(std::string name, FailureModel failure) : name_(std::move(name)), failure_(failure) {
  DURO_ASSERT(!name_.empty());
  DURO_ASSERT(failure_.latency_min >= sim::Duration{0} && failure_.latency_min <= failure_.latency_max);
}

std::unique_ptr<sim::Process> FakeService::boot(sim::Env& env) {
  auto server = std::make_unique<sim::RpcServer>(env.network(), env.node(), kServicePort,
                                                 sim::RpcServerOptions{.concurrent_max = 256});
  register_methods(*server, env);
  server->start();
  start(env);
  return std::make_unique<FrontProcess>(std::move(server));
}

sim::Result<void> FakeService::admit(sim::Env& env) {
  stats_.calls++;
  const sim::TimePoint arrived = env.sim().now();
  const std::int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(arrived - env.sim().start_time()).count();
  const std::uint32_t in_second = ++stats_.calls_per_second[second];
  const auto latency_ns = env.random().uniform_range(
      std::chrono::nanoseconds(failure_.latency_min).count(), std::chrono::nanoseconds(failure_.latency_max).count());
  env.sleep_for(sim::Duration{latency_ns});
  if (hooks_.in_outage && hooks_.in_outage()) {
    stats_.outage_rejections++;
    return sim::Error{sim::ErrorCode::kUnavailable, "503 " + name_ + " is down (outage)"};
  }
  if (failure_.requests_per_second_max > 0 && in_second > failure_.requests_per_second_max) {
    stats_.throttled++;
    return sim::Error{sim::ErrorCode::kOverloaded, "429 " + name_ + " throttled the call"};
  }
  if (env.random().bernoulli(failure_.server_error_probability)) {
    stats_.server_errors++;
    return sim::Error{sim::ErrorCode::kUnavailable, "500 " + name_ + " internal error"};
  }
  return {};
}

bool FakeService::hold_after_apply(sim::Env& env) {
  if (!env.random().bernoulli(failure_.timeout_after_apply_probability)) return false;
  stats_.timed_out_after_apply++;
  env.sleep_for(failure_.timeout_hold);
  return true;
}

}  // namespace duro::scenarios
