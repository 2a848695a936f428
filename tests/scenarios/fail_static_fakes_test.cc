// The fakes of the fail-static scenario: the signal source (truth, empty
// and stale windows, freshness stamped on one clock) and the certificate
// issuer (expiry by its own clock, compare-and-swap renewal, revocation).
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "scenarios/fakes/cert_issuer.h"
#include "scenarios/fakes/service_call.h"
#include "scenarios/fakes/signal_source.h"
#include "sim/world.h"

namespace duro::scenarios {
namespace {

using namespace std::chrono_literals;

const sim::TimePoint kFailStaticT0 = sim::kDefaultStartTime;

void add_truth(SignalSource& source) {
  source.publish("cell-0", kFailStaticT0 - 1h, 1, 10);
  source.publish("cell-0", kFailStaticT0 + 2h, 2, 14);
  source.unhealthy("cell-0", kFailStaticT0 + 1h, kFailStaticT0 + 90min);
  source.publish("cell-1", kFailStaticT0 - 1h, 1, 8);
  source.decommission("cell-1", kFailStaticT0 + 3h);
}

TEST(SignalSource, AFreshReadingDescribesTheCellAsOfTheLagAndStampsBothTimes) {
  SignalSource source("signals", FailureModel{});
  add_truth(source);
  const SignalReading before = source.read("cell-0", kFailStaticT0 + 70min, 1min);
  ASSERT_TRUE(before.found);
  EXPECT_EQ(before.as_of, kFailStaticT0 + 70min);
  EXPECT_EQ(before.datum.observed_at, kFailStaticT0 + 69min);
  EXPECT_EQ(before.datum.generation, 1);
  EXPECT_EQ(before.datum.hosts, 10);
  EXPECT_FALSE(before.datum.healthy);
  // A generation published a minute ago is not seen through a two-minute lag.
  EXPECT_EQ(source.read("cell-0", kFailStaticT0 + 2h + 1min, 2min).datum.generation, 1);
  const SignalReading later = source.read("cell-0", kFailStaticT0 + 2h + 1min, 0min);
  EXPECT_EQ(later.datum.generation, 2);
  EXPECT_EQ(later.datum.hosts, 14);
  EXPECT_TRUE(later.datum.healthy);
  EXPECT_FALSE(source.read("cell-1", kFailStaticT0 + 3h - 1s, 0min).datum.decommissioned);
  EXPECT_TRUE(source.read("cell-1", kFailStaticT0 + 3h, 0min).datum.decommissioned);
  EXPECT_FALSE(source.read("cell-9", kFailStaticT0, 0min).found) << "a cell it never heard of";
}

TEST(SignalSource, AnEmptyWindowAnswersNothingForItsCellsOnly) {
  SignalSource source("signals", FailureModel{});
  add_truth(source);
  source.degrade(DegradedWindow{"cell-0", Degradation::kEmpty, kFailStaticT0 + 1h, kFailStaticT0 + 2h, 0min});
  EXPECT_FALSE(source.read("cell-0", kFailStaticT0 + 1h, 0min).found);
  EXPECT_TRUE(source.read("cell-1", kFailStaticT0 + 1h, 0min).found);
  EXPECT_TRUE(source.read("cell-0", kFailStaticT0 + 2h, 0min).found) << "the window ends";
  source.degrade(DegradedWindow{"", Degradation::kEmpty, kFailStaticT0 + 5h, kFailStaticT0 + 6h, 0min});
  EXPECT_FALSE(source.read("cell-0", kFailStaticT0 + 5h, 0min).found);
  EXPECT_FALSE(source.read("cell-1", kFailStaticT0 + 5h, 0min).found);
}

TEST(SignalSource, AStaleWindowRepeatsTheDatumOfItsStartWithItsOldStamp) {
  SignalSource source("signals", FailureModel{});
  add_truth(source);
  // Stuck while the cell is unhealthy: it keeps saying so after recovery,
  // and misses generation 2.
  source.degrade(DegradedWindow{"", Degradation::kStale, kFailStaticT0 + 80min, kFailStaticT0 + 4h, 0min});
  const SignalReading stale = source.read("cell-0", kFailStaticT0 + 3h, 30s);
  ASSERT_TRUE(stale.found);
  EXPECT_EQ(stale.as_of, kFailStaticT0 + 3h);
  EXPECT_EQ(stale.datum.observed_at, kFailStaticT0 + 80min - 30s);
  EXPECT_FALSE(stale.datum.healthy);
  EXPECT_EQ(stale.datum.generation, 1);
  EXPECT_FALSE(source.read("cell-1", kFailStaticT0 + 3h + 30min, 0min).datum.decommissioned);
  // The truth itself is not stale.
  EXPECT_TRUE(source.truth_at("cell-0", kFailStaticT0 + 3h).healthy);
  EXPECT_EQ(source.truth_at("cell-0", kFailStaticT0 + 3h).generation, 2);
}

TEST(SignalSource, ALaggingWindowShowsTheCellAsItWasAFixedTimeAgo) {
  SignalSource source("signals", FailureModel{});
  add_truth(source);
  source.degrade(DegradedWindow{"cell-0", Degradation::kStale, kFailStaticT0 + 2h, kFailStaticT0 + 3h, 50min});
  // At 2h10m it shows 1h20m: the episode, over since 1h30m, as if now.
  const SignalReading lagging = source.read("cell-0", kFailStaticT0 + 2h + 10min, 0min);
  ASSERT_TRUE(lagging.found);
  EXPECT_EQ(lagging.datum.observed_at, kFailStaticT0 + 80min);
  EXPECT_FALSE(lagging.datum.healthy);
  EXPECT_EQ(lagging.datum.generation, 1);
  EXPECT_EQ(source.read("cell-0", kFailStaticT0 + 2h + 50min, 0min).datum.generation, 2) << "it moves on";
}

TEST(SignalSource, GroundTruthQueriesAnswerFromTheTimeline) {
  SignalSource source("signals", FailureModel{});
  add_truth(source);
  EXPECT_TRUE(source.unhealthy_between("cell-0", kFailStaticT0 + 80min, kFailStaticT0 + 2h));
  EXPECT_TRUE(source.unhealthy_between("cell-0", kFailStaticT0, kFailStaticT0 + 1h)) << "[from, to] includes to";
  EXPECT_FALSE(source.unhealthy_between("cell-0", kFailStaticT0 + 90min, kFailStaticT0 + 3h)) << "the episode is [from, until)";
  EXPECT_FALSE(source.unhealthy_between("cell-1", kFailStaticT0, kFailStaticT0 + 10h));
  EXPECT_EQ(source.hosts_of("cell-0", 2), 14);
  EXPECT_FALSE(source.hosts_of("cell-0", 3).has_value());
  EXPECT_EQ(source.last_generation("cell-0"), 2);
  EXPECT_EQ(source.decommissioned_at("cell-1"), kFailStaticT0 + 3h);
  EXPECT_FALSE(source.decommissioned_at("cell-0").has_value());
}

TEST(SignalSource, ReadsOverTheNetworkAndFailsDuringAnOutage) {
  SignalSource source("signals", FailureModel{});
  source.publish("cell-0", kFailStaticT0 - 1h, 1, 10);
  sim::World world({.seed = 7});
  source.set_hooks({.in_outage = [&world] { return world.in_outage("signals"); }, .changed = {}});
  const sim::NodeId node = world.add_node("signals", [&source](sim::Env& env) { return source.boot(env); });
  class Idle final : public sim::Process {};
  const sim::NodeId caller =
      world.add_node("caller", [](sim::Env&) -> std::unique_ptr<sim::Process> { return std::make_unique<Idle>(); });
  sim::FaultPlan plan;
  plan.profile = "manual";
  plan.chaos = 1h;
  sim::FaultAction outage;
  outage.at = 10min;
  outage.kind = sim::FaultKind::kOutage;
  outage.duration = 5min;
  outage.service = "signals";
  plan.actions.push_back(outage);
  ASSERT_TRUE(world.apply(plan).ok());
  bool done = false;
  world.env(caller).spawn("test", [&] {
    sim::Env& env = world.env(caller);
    const sim::Address address = world.env(node).address();
    sim::Result<SignalReading> reading = call_service<SignalReading>(env, address, "read", SignalQuery{"cell-0"});
    ASSERT_TRUE(reading.ok());
    EXPECT_TRUE(reading.value().found);
    EXPECT_LE(reading.value().as_of - reading.value().datum.observed_at, SignalSourceOptions{}.lag_max);
    env.sleep_for(11min);
    EXPECT_THROW((void)call_service<SignalReading>(env, address, "read", SignalQuery{"cell-0"}), ServiceUnavailable);
    done = true;
    world.sim().stop();
  });
  world.run_for(2h);
  EXPECT_TRUE(done);
}

TEST(CertIssuer, ARenewalReplacesTheCurrentCertificateOnceAndExpiresByTheIssuersClock) {
  CertIssuer issuer("issuer", FailureModel{}, CertIssuerOptions{.validity = 8h});
  issuer.preissue("cell-0", kFailStaticT0 - 5h, kFailStaticT0 + 3h);
  const CertReply status = issuer.status("cell-0", kFailStaticT0 + 1h);
  ASSERT_TRUE(status.found);
  EXPECT_EQ(status.not_after - status.now, 2h);
  const CertReply renewed = issuer.issue(CertIssueRequest{"cell-0", status.serial, "renew-1"}, kFailStaticT0 + 1h);
  EXPECT_TRUE(renewed.issued);
  EXPECT_NE(renewed.serial, status.serial);
  EXPECT_EQ(renewed.not_after, kFailStaticT0 + 9h);
  // A retry of the same request: the same answer, nothing new.
  EXPECT_EQ(issuer.issue(CertIssueRequest{"cell-0", status.serial, "renew-1"}, kFailStaticT0 + 2h).serial, renewed.serial);
  // Another renewal of the certificate already replaced: nothing new.
  const CertReply late = issuer.issue(CertIssueRequest{"cell-0", status.serial, "renew-2"}, kFailStaticT0 + 2h);
  EXPECT_FALSE(late.issued);
  EXPECT_EQ(late.serial, renewed.serial);
  ASSERT_EQ(issuer.certificates("cell-0").size(), 2u);
  EXPECT_EQ(issuer.certificates("cell-0")[1].issued_at, kFailStaticT0 + 1h);
}

TEST(CertIssuer, ARevokedNameIsNotRenewed) {
  CertIssuer issuer("issuer", FailureModel{});
  issuer.preissue("cell-0", kFailStaticT0, kFailStaticT0 + 8h);
  const std::uint64_t serial = issuer.status("cell-0", kFailStaticT0).serial;
  const CertReply revoked = issuer.revoke(CertRevokeRequest{"cell-0", "revoke-1"}, kFailStaticT0 + 1h);
  EXPECT_TRUE(revoked.revoked);
  EXPECT_TRUE(issuer.revoke(CertRevokeRequest{"cell-0", "revoke-2"}, kFailStaticT0 + 2h).revoked) << "revoked already: success";
  EXPECT_EQ(issuer.certificates("cell-0").front().revoked_at, kFailStaticT0 + 1h);
  const CertReply renewal = issuer.issue(CertIssueRequest{"cell-0", serial, "renew-1"}, kFailStaticT0 + 3h);
  EXPECT_FALSE(renewal.issued);
  EXPECT_TRUE(renewal.revoked);
  EXPECT_EQ(issuer.certificates("cell-0").size(), 1u);
  EXPECT_FALSE(issuer.status("cell-9", kFailStaticT0).found);
}

}  // namespace
}  // namespace duro::scenarios
