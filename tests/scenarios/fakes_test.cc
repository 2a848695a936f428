// The fakes of external services: what they promise callers (idempotent
// writes, owners, capacity, propagation, fences) and how they fail (outages,
// throttling), over the simulated network as activities reach them.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "scenarios/fakes/cell_deployer.h"
#include "scenarios/fakes/resource_service.h"
#include "scenarios/fakes/service_call.h"
#include "sim/world.h"

namespace duro::scenarios {
namespace {

using namespace std::chrono_literals;

class NoProcess final : public sim::Process {};

// A world with one fake and a caller node; `body` runs in a fiber of the
// caller, with the fake's address.
template <typename Fake>
void with_fake(Fake& fake, const std::function<void(sim::Env& env, sim::Address fake_address)>& body,
               std::optional<sim::FaultPlan> plan = std::nullopt) {
  sim::World world({.seed = 5});
  fake.set_hooks({.in_outage = [&world, name = fake.name()] { return world.in_outage(name); }, .changed = {}});
  const sim::NodeId fake_node = world.add_node(fake.name(), [&fake](sim::Env& env) { return fake.boot(env); });
  const sim::NodeId caller = world.add_node("caller", [](sim::Env&) -> std::unique_ptr<sim::Process> {
    return std::make_unique<NoProcess>();
  });
  if (plan) {
    ASSERT_TRUE(world.apply(*plan).ok());
  }
  bool done = false;
  world.env(caller).spawn("test", [&] {
    body(world.env(caller), world.env(fake_node).address());
    done = true;
    world.sim().stop();
  });
  world.run_for(24h);
  ASSERT_TRUE(done) << "the test body did not finish";
}

FailureModel reliable() { return FailureModel{}; }

TEST(ResourceService, ARepeatedIdempotencyKeyGetsTheFirstAnswerAndAppliesOnce) {
  ResourceService service("dns", reliable());
  with_fake(service, [](sim::Env& env, sim::Address dns) {
    auto first = call_service<ResourceReply>(env, dns, "put", ResourcePut{"a.example", "cell-1", "wf-1", "key-1"});
    ASSERT_TRUE(first.ok());
    // The same key with other contents: a retry of the same request, so
    // the first answer, and nothing applied.
    auto again = call_service<ResourceReply>(env, dns, "put", ResourcePut{"a.example", "cell-2", "wf-1", "key-1"});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().value, "cell-1");
  });
  EXPECT_EQ(service.log().size(), 1u);
  ASSERT_NE(service.find("a.example"), nullptr);
  EXPECT_EQ(service.find("a.example")->value, "cell-1");
}

TEST(ResourceService, AnotherOwnersRecordIsRefusedAndCapacityIsEnforced) {
  ResourceService service("cell-db-0", reliable(), ResourceOptions{.capacity = 1});
  with_fake(service, [](sim::Env& env, sim::Address db) {
    ASSERT_TRUE(call_service<ResourceReply>(env, db, "put", ResourcePut{"acct/ns", "x", "wf-1", "k1"}).ok());
    auto taken = call_service<ResourceReply>(env, db, "put", ResourcePut{"acct/ns", "x", "wf-2", "k2"});
    ASSERT_FALSE(taken.ok());
    EXPECT_EQ(taken.error().code, sim::ErrorCode::kAlreadyExists);
    EXPECT_NE(taken.error().message.find("wf-1"), std::string::npos) << taken.error().message;
    auto full = call_service<ResourceReply>(env, db, "put", ResourcePut{"acct/other", "x", "wf-3", "k3"});
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error().code, sim::ErrorCode::kNoSpace);
    // Deleting as another owner does nothing; as the owner, it frees room.
    auto wrong = call_service<ResourceReply>(env, db, "delete", ResourceDelete{"acct/ns", "wf-2", "k4"});
    EXPECT_FALSE(wrong.ok());
    ASSERT_TRUE(call_service<ResourceReply>(env, db, "delete", ResourceDelete{"acct/ns", "wf-1", "k5"}).ok());
    EXPECT_TRUE(call_service<ResourceReply>(env, db, "put", ResourcePut{"acct/other", "x", "wf-3", "k6"}).ok());
  });
  EXPECT_EQ(service.records().size(), 1u);
  EXPECT_NE(service.find("acct/other"), nullptr);
}

TEST(ResourceService, ReadersSeeAPutOnlyAfterItPropagates) {
  ResourceService service("dns", reliable(), ResourceOptions{.propagation_min = 1min, .propagation_max = 1min});
  with_fake(service, [](sim::Env& env, sim::Address dns) {
    ASSERT_TRUE(call_service<ResourceReply>(env, dns, "put", ResourcePut{"a", "cell-1", "wf", "k1"}).ok());
    auto early = call_service<ResourceReply>(env, dns, "get", ResourceGet{"a"});
    ASSERT_TRUE(early.ok());
    EXPECT_FALSE(early.value().found);
    env.sleep_for(61s);
    auto late = call_service<ResourceReply>(env, dns, "get", ResourceGet{"a"});
    ASSERT_TRUE(late.ok());
    EXPECT_TRUE(late.value().found);
    EXPECT_EQ(late.value().value, "cell-1");
    // An update: the old value until the new one propagates.
    ASSERT_TRUE(call_service<ResourceReply>(env, dns, "put", ResourcePut{"a", "cell-2", "wf", "k2"}).ok());
    auto stale = call_service<ResourceReply>(env, dns, "get", ResourceGet{"a"});
    ASSERT_TRUE(stale.ok());
    EXPECT_EQ(stale.value().value, "cell-1");
  });
}

TEST(FakeService, AnOutageFailsEveryCallAsRetryableUntilItEnds) {
  ResourceService service("cloud-api", reliable());
  sim::FaultPlan plan;
  plan.profile = "manual";
  plan.chaos = 10min;
  sim::FaultAction outage;
  outage.at = 1s;
  outage.kind = sim::FaultKind::kOutage;
  outage.duration = 2min;
  outage.service = "cloud-api";
  plan.actions.push_back(outage);
  with_fake(
      service,
      [](sim::Env& env, sim::Address api) {
        env.sleep_for(2s);
        EXPECT_THROW((void)call_service<ResourceReply>(env, api, "get", ResourceGet{"a"}), ServiceUnavailable);
        env.sleep_for(3min);
        EXPECT_TRUE(call_service<ResourceReply>(env, api, "get", ResourceGet{"a"}).ok());
      },
      plan);
  EXPECT_EQ(service.stats().outage_rejections, 1u);
}

TEST(FakeService, CallsBeyondTheRateLimitAreThrottled) {
  FailureModel limited;
  limited.requests_per_second_max = 3;
  limited.latency_min = 1ms;
  limited.latency_max = 1ms;
  ResourceService service("cert-issuer", limited);
  int throttled = 0;
  with_fake(service, [&](sim::Env& env, sim::Address issuer) {
    for (int i = 0; i < 20; i++) {
      try {
        (void)call_service<ResourceReply>(env, issuer, "get", ResourceGet{"a"});
      } catch (const ServiceUnavailable& error) {
        EXPECT_NE(std::string(error.what()).find("429"), std::string::npos) << error.what();
        throttled++;
      }
    }
  });
  // Twenty calls of a few milliseconds each fall in one or two seconds.
  EXPECT_GE(throttled, 14);
  EXPECT_EQ(service.stats().throttled, static_cast<std::uint64_t>(throttled));
}

TEST(FakeService, ATimeoutAfterApplyAppliesTheChangeAndNeverAnswersInTime) {
  FailureModel timing_out;
  timing_out.timeout_after_apply_probability = 1;
  ResourceService service("dns", timing_out);
  with_fake(service, [](sim::Env& env, sim::Address dns) {
    EXPECT_THROW((void)call_service<ResourceReply>(env, dns, "put", ResourcePut{"a", "cell-1", "wf", "k1"}, 5s),
                 ServiceUnavailable);
  });
  EXPECT_NE(service.find("a"), nullptr) << "the change was applied before the answer was lost";
}

CellDeployer make_deployer(double failure = 0, double hang = 0) {
  CellDeployerOptions options;
  options.deploy_min = 1min;
  options.deploy_max = 1min;
  options.failure_probability = failure;
  options.hang_probability = hang;
  return CellDeployer("deployer", reliable(), options, {{"cell-a", "v0"}, {"cell-b", "v0"}});
}

DeployRequest deploy(std::string cell, std::string release, std::string activity, int attempt) {
  DeployRequest request;
  request.cell = std::move(cell);
  request.release = std::move(release);
  request.rollout = "rollout";
  request.activity = activity;
  request.attempt = attempt;
  request.idempotency_key = activity + "/" + std::to_string(attempt);
  return request;
}

TEST(CellDeployer, ADeployRunsThenChangesTheCell) {
  CellDeployer deployer = make_deployer();
  with_fake(deployer, [&](sim::Env& env, sim::Address address) {
    auto started = call_service<DeployReply>(env, address, "deploy", deploy("cell-a", "v1", "act", 1));
    ASSERT_TRUE(started.ok());
    EXPECT_EQ(deployer.versions().at("cell-a"), "v0");
    env.sleep_for(2min);
    auto status = call_service<DeployStatus>(env, address, "status", DeployStatusRequest{started.value().operation});
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status.value().state, DeployState::kSucceeded);
  });
  EXPECT_EQ(deployer.versions().at("cell-a"), "v1");
}

TEST(CellDeployer, ARetrySupersedesAHungOperationAndAnotherReleaseWaits) {
  CellDeployer deployer = make_deployer(0, 1);  // Every operation hangs.
  with_fake(deployer, [&](sim::Env& env, sim::Address address) {
    ASSERT_TRUE(call_service<DeployReply>(env, address, "deploy", deploy("cell-a", "v1", "act", 1)).ok());
    ASSERT_TRUE(call_service<DeployReply>(env, address, "deploy", deploy("cell-a", "v1", "act", 2)).ok());
    // One change in flight per cell: another release is told to come back
    // later (retryable), not queued.
    EXPECT_THROW((void)call_service<DeployReply>(env, address, "deploy", deploy("cell-a", "v2", "other", 1)),
                 ServiceUnavailable);
  }, std::nullopt);
  ASSERT_EQ(deployer.operations().size(), 2u);
  EXPECT_EQ(deployer.operations()[0].state, DeployState::kSuperseded);
  EXPECT_EQ(deployer.operations()[1].state, DeployState::kRunning);
}

TEST(CellDeployer, AHaltedReleaseAndAStaleAttemptAreRefused) {
  CellDeployer deployer = make_deployer();
  with_fake(deployer, [&](sim::Env& env, sim::Address address) {
    ASSERT_TRUE(call_service<DeployReply>(env, address, "deploy", deploy("cell-a", "v1", "act", 2)).ok());
    // Attempt 1 of the same activity arrives late (a zombie): refused.
    EXPECT_FALSE(call_service<DeployReply>(env, address, "deploy", deploy("cell-b", "v1", "act", 1)).ok());
    ASSERT_TRUE(call_service<FenceReply>(env, address, "fence", FenceRequest{"v1", true, "fence-1"}).ok());
    EXPECT_TRUE(deployer.halted("v1"));
    EXPECT_FALSE(call_service<DeployReply>(env, address, "deploy", deploy("cell-b", "v1", "act-2", 1)).ok());
    ASSERT_TRUE(call_service<FenceReply>(env, address, "fence", FenceRequest{"v1", false, "fence-2"}).ok());
    EXPECT_TRUE(call_service<DeployReply>(env, address, "deploy", deploy("cell-b", "v1", "act-3", 1)).ok());
  });
  EXPECT_EQ(deployer.operations().size(), 2u);
  EXPECT_EQ(deployer.fence_log().size(), 2u);
}

}  // namespace
}  // namespace duro::scenarios
