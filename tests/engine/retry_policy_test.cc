// Retry policy: defaults, validation, backoff and the retry decision, with
// Temporal's semantics (engine/history/retry_policy.h).
#include "engine/history/retry_policy.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

constexpr std::int32_t kAttemptMax = std::numeric_limits<std::int32_t>::max();

// RetryPolicy with some fields set, the rest default (designated
// initializers that skip fields trip -Wmissing-field-initializers).
struct Policy {
  RetryPolicy policy;
  Policy& initial(sim::Duration value) { policy.initial_interval = value; return *this; }
  Policy& coefficient(double value) { policy.backoff_coefficient = value; return *this; }
  Policy& maximum(sim::Duration value) { policy.maximum_interval = value; return *this; }
  Policy& attempts(std::int32_t value) { policy.maximum_attempts = value; return *this; }
  Policy& non_retryable(std::vector<std::string> value) { policy.non_retryable_error_types = std::move(value); return *this; }
  Policy& jitter(double value) { policy.jitter = value; return *this; }
  operator RetryPolicy() const { return policy; }  // NOLINT: implicit by design.
};

Failure application_failure(std::string type = "ApplicationError") {
  Failure failure;
  failure.type = std::move(type);
  failure.message = "boom";
  return failure;
}

Failure timeout_failure(TimeoutType timeout_type) {
  Failure failure;
  failure.type = kTimeoutFailureType;
  failure.timeout_type = timeout_type;
  return failure;
}

// Defaults and validation ------------------------------------------------------

TEST(RetryPolicy, NormalizedFillsTheServersDefaults) {
  const RetryPolicy policy = normalized(RetryPolicy(Policy().initial(0s).coefficient(0.0).maximum(0s).attempts(0).non_retryable({"Fatal"})));
  EXPECT_EQ(policy.initial_interval, 1s);
  EXPECT_EQ(policy.backoff_coefficient, 2.0);
  EXPECT_EQ(policy.maximum_interval, 100s);
  EXPECT_EQ(policy.maximum_attempts, 0) << "0 stays: unlimited";
  EXPECT_EQ(policy.non_retryable_error_types, std::vector<std::string>{"Fatal"});

  const RetryPolicy defaults = normalized(RetryPolicy{});
  EXPECT_EQ(defaults.initial_interval, 1s);
  EXPECT_EQ(defaults.maximum_interval, 100s) << "100 x initial";
  const RetryPolicy custom = normalized(RetryPolicy(Policy().initial(3s).maximum(0s)));
  EXPECT_EQ(custom.maximum_interval, 300s);
  EXPECT_EQ(normalized(custom), custom) << "idempotent";
}

TEST(RetryPolicy, NormalizedSaturatesTheDefaultMaximum) {
  const RetryPolicy policy = normalized(RetryPolicy(Policy().initial(sim::Duration::max() / 2)));
  EXPECT_EQ(policy.maximum_interval, sim::Duration::max());
  EXPECT_FALSE(validate(policy).has_value());
}

TEST(RetryPolicy, ValidateRefusesWhatTemporalRefuses) {
  EXPECT_EQ(validate(RetryPolicy{}), std::nullopt);
  EXPECT_EQ(validate(RetryPolicy(Policy().coefficient(0.0))), std::nullopt) << "0: the default";
  EXPECT_EQ(validate(RetryPolicy(Policy().coefficient(1.0))), std::nullopt) << "1: a constant interval";
  EXPECT_EQ(validate(RetryPolicy(Policy().initial(5s).maximum(5s))), std::nullopt);

  const auto refused = [](const RetryPolicy& policy, std::string_view why) {
    const std::optional<std::string> message = validate(policy);
    ASSERT_TRUE(message.has_value()) << why;
    EXPECT_NE(message->find(why), std::string::npos) << *message;
    EXPECT_TRUE(validate(normalized(policy)).has_value()) << "same verdict after normalizing: " << why;
  };
  refused(RetryPolicy(Policy().initial(-1ns)), "initial_interval is negative");
  refused(RetryPolicy(Policy().maximum(-1s)), "maximum_interval is negative");
  refused(RetryPolicy(Policy().coefficient(0.5)), "backoff_coefficient");
  refused(RetryPolicy(Policy().coefficient(-2.0)), "backoff_coefficient");
  refused(RetryPolicy(Policy().coefficient(std::numeric_limits<double>::quiet_NaN())), "backoff_coefficient");
  refused(RetryPolicy(Policy().coefficient(std::numeric_limits<double>::infinity())), "backoff_coefficient");
  refused(RetryPolicy(Policy().attempts(-1)), "maximum_attempts is negative");
  refused(RetryPolicy(Policy().initial(10s).maximum(5s)), "below initial_interval");
  refused(RetryPolicy(Policy().initial(0s).maximum(500ms)), "below initial_interval");
  EXPECT_EQ(validate(RetryPolicy(Policy().jitter(1.0))), std::nullopt) << "1: full jitter";
  refused(RetryPolicy(Policy().jitter(-0.1)), "jitter");
  refused(RetryPolicy(Policy().jitter(1.5)), "jitter");
  refused(RetryPolicy(Policy().jitter(std::numeric_limits<double>::quiet_NaN())), "jitter");
}

// Backoff ---------------------------------------------------------------------

TEST(RetryBackoff, GrowsByTheCoefficientUpToTheMaximum) {
  const RetryPolicy policy = Policy().initial(1s).coefficient(2.0).maximum(10s);
  EXPECT_EQ(retry_backoff(policy, 1), 1s);
  EXPECT_EQ(retry_backoff(policy, 2), 2s);
  EXPECT_EQ(retry_backoff(policy, 3), 4s);
  EXPECT_EQ(retry_backoff(policy, 4), 8s);
  EXPECT_EQ(retry_backoff(policy, 5), 10s) << "capped";
  EXPECT_EQ(retry_backoff(policy, kAttemptMax), 10s);

  const RetryPolicy fractional = Policy().initial(100ms).coefficient(1.5).maximum(1h);
  EXPECT_EQ(retry_backoff(fractional, 2), 150ms);
  EXPECT_EQ(retry_backoff(fractional, 3), 225ms);

  EXPECT_EQ(retry_backoff(RetryPolicy{}, 1), 1s) << "the defaults";
  EXPECT_EQ(retry_backoff(RetryPolicy{}, 8), 100s) << "the default maximum: 100 x initial";
  EXPECT_EQ(retry_backoff(RetryPolicy(Policy().coefficient(1.0)), kAttemptMax), 1s) << "constant";
}

TEST(RetryBackoff, HugeIntervalsAndAttemptsSaturate) {
  const RetryPolicy huge = Policy().initial(sim::Duration::max() / 4).coefficient(1000.0).maximum(sim::Duration::max());
  EXPECT_EQ(retry_backoff(huge, 1), sim::Duration::max() / 4);
  EXPECT_EQ(retry_backoff(huge, 2), sim::Duration::max());
  EXPECT_EQ(retry_backoff(huge, kAttemptMax), sim::Duration::max());
  const RetryPolicy steep = Policy().initial(1ns).coefficient(1e300).maximum(sim::Duration::max());
  EXPECT_EQ(retry_backoff(steep, 3), sim::Duration::max()) << "1e600 overflows the double: still the maximum";
  // Past 2^20 attempts (only a coefficient this close to 1 gets there
  // below the cap), the maximum.
  const RetryPolicy creeping = Policy().initial(1s).coefficient(1.000001).maximum(1000s);
  EXPECT_LT(retry_backoff(creeping, 1 << 20), 1000s);
  EXPECT_EQ(retry_backoff(creeping, (1 << 20) + 2), 1000s);
}

// The documented values of the multiplication, exactly: this is what every
// platform must produce (no libm involved).
TEST(RetryBackoff, IsExactRepeatedMultiplication) {
  const RetryPolicy policy = Policy().initial(1ms).coefficient(1.1).maximum(1h);
  double expected = 1e6;
  for (std::int32_t attempt = 1; attempt <= 60; attempt++) {
    EXPECT_EQ(retry_backoff(policy, attempt).count(), static_cast<std::int64_t>(expected)) << attempt;
    expected *= 1.1;
  }
}

rc::Gen<RetryPolicy> gen_valid_policy() {
  return rc::gen::mapcat(rc::gen::inRange<std::int64_t>(0, std::int64_t{1} << 40), [](std::int64_t initial_ns) {
    const std::int64_t effective_initial_ns = initial_ns == 0 ? std::int64_t{1'000'000'000} : initial_ns;
    return rc::gen::build<RetryPolicy>(
        rc::gen::set(&RetryPolicy::initial_interval, rc::gen::just(sim::Duration{initial_ns})),
        rc::gen::set(&RetryPolicy::backoff_coefficient,
                     rc::gen::oneOf(rc::gen::element(0.0, 1.0, 2.0, 1.5),
                                    rc::gen::map(rc::gen::inRange(0, 1 << 20),
                                                 [](int n) { return 1.0 + n / 65536.0; }),
                                    rc::gen::map(rc::gen::inRange(1, 1000), [](int n) { return 1.0 + n * 1e-9; }))),
        rc::gen::set(&RetryPolicy::maximum_interval,
                     rc::gen::oneOf(rc::gen::just(sim::Duration::zero()),
                                    rc::gen::map(rc::gen::inRange<std::int64_t>(0, std::numeric_limits<std::int64_t>::max() -
                                                                                         effective_initial_ns),
                                                 [effective_initial_ns](std::int64_t extra) {
                                                   return sim::Duration{effective_initial_ns + extra};
                                                 }))));
  });
}

RC_GTEST_PROP(RetryBackoff, MonotoneInAttemptAndNeverAboveTheMaximum, ()) {
  const RetryPolicy policy = *gen_valid_policy();
  RC_PRE(!validate(policy).has_value());
  const sim::Duration maximum = normalized(policy).maximum_interval;
  // Small attempts, attempts near the coefficient's reach, and huge ones.
  const std::int32_t first = *rc::gen::oneOf(rc::gen::inRange(1, 100), rc::gen::inRange(1, 1 << 21),
                                             rc::gen::inRange(1, kAttemptMax));
  const std::int32_t step = *rc::gen::inRange(1, 1000);
  const std::int32_t second = first > kAttemptMax - step ? kAttemptMax : first + step;
  const sim::Duration a = retry_backoff(policy, first);
  const sim::Duration b = retry_backoff(policy, second);
  const sim::Duration c = retry_backoff(policy, second == kAttemptMax ? second : second + 1);
  RC_ASSERT(a > sim::Duration::zero());
  RC_ASSERT(a <= b);
  RC_ASSERT(b <= c);
  RC_ASSERT(c <= maximum);
  RC_ASSERT(retry_backoff(policy, 1) == std::min(normalized(policy).initial_interval, maximum));
}

RC_GTEST_PROP(RetryBackoff, ConsecutiveAttemptsNeverDecrease, ()) {
  const RetryPolicy policy = *gen_valid_policy();
  RC_PRE(!validate(policy).has_value());
  sim::Duration previous = retry_backoff(policy, 1);
  for (std::int32_t attempt = 2; attempt <= 200; attempt++) {
    const sim::Duration next = retry_backoff(policy, attempt);
    RC_ASSERT(previous <= next);
    previous = next;
  }
}

// The retry decision ------------------------------------------------------------

TEST(NextRetry, RetriesWithTheBackoffWhileAttemptsAndTimeAllow) {
  const RetryPolicy policy = Policy().initial(1s).maximum(10s).attempts(3);
  EXPECT_EQ(next_retry(policy, 1, application_failure(), std::nullopt),
            (RetryDecision{RetryState::kInProgress, 1s}));
  EXPECT_EQ(next_retry(policy, 2, application_failure(), std::nullopt),
            (RetryDecision{RetryState::kInProgress, 2s}));
  EXPECT_EQ(next_retry(policy, 3, application_failure(), std::nullopt).state, RetryState::kMaximumAttemptsReached)
      << "3 attempts made: no fourth";
  EXPECT_EQ(next_retry(policy, 4, application_failure(), std::nullopt).state, RetryState::kMaximumAttemptsReached);
  EXPECT_EQ(next_retry(RetryPolicy(Policy().attempts(1)), 1, application_failure(), std::nullopt).state,
            RetryState::kMaximumAttemptsReached)
      << "maximum_attempts 1: no retry";
  EXPECT_EQ(next_retry(RetryPolicy{}, 1'000'000, application_failure(), std::nullopt),
            (RetryDecision{RetryState::kInProgress, 100s}))
      << "0: unlimited";
}

TEST(NextRetry, ABackoffThatDoesNotFitTheTimeLeftIsATimeout) {
  const RetryPolicy policy = Policy().initial(1s);
  EXPECT_EQ(next_retry(policy, 2, application_failure(), 2s), (RetryDecision{RetryState::kInProgress, 2s}))
      << "exactly fits";
  EXPECT_EQ(next_retry(policy, 2, application_failure(), 2s - 1ns), (RetryDecision{RetryState::kTimeout, 0s}));
  EXPECT_EQ(next_retry(policy, 1, application_failure(), -5s).state, RetryState::kTimeout);
}

TEST(NextRetry, NonRetryableFailuresStopFirst) {
  const RetryPolicy policy = Policy().attempts(1).non_retryable({"Fatal", "TimeoutError:Heartbeat"});
  Failure marked = application_failure();
  marked.non_retryable = true;
  // Checked before maximum attempts, as Temporal does.
  EXPECT_EQ(next_retry(policy, 1, marked, std::nullopt).state, RetryState::kNonRetryableFailure);
  EXPECT_EQ(next_retry(policy, 1, application_failure("Fatal"), std::nullopt).state,
            RetryState::kNonRetryableFailure);
  EXPECT_EQ(next_retry(policy, 1, application_failure("Fatalish"), std::nullopt).state,
            RetryState::kMaximumAttemptsReached)
      << "exact names only";
  EXPECT_EQ(next_retry(RetryPolicy{}, 1, application_failure(kCanceledFailureType), std::nullopt).state,
            RetryState::kNonRetryableFailure);
  EXPECT_EQ(next_retry(RetryPolicy{}, 1, application_failure(kTerminatedFailureType), std::nullopt).state,
            RetryState::kNonRetryableFailure);
}

TEST(NextRetry, OnlyStartToCloseAndHeartbeatTimeoutsRetry) {
  const RetryPolicy policy;
  EXPECT_EQ(next_retry(policy, 1, timeout_failure(TimeoutType::kStartToClose), std::nullopt).state,
            RetryState::kInProgress);
  EXPECT_EQ(next_retry(policy, 1, timeout_failure(TimeoutType::kHeartbeat), std::nullopt).state,
            RetryState::kInProgress);
  EXPECT_EQ(next_retry(policy, 1, timeout_failure(TimeoutType::kScheduleToStart), std::nullopt).state,
            RetryState::kNonRetryableFailure);
  EXPECT_EQ(next_retry(policy, 1, timeout_failure(TimeoutType::kScheduleToClose), std::nullopt).state,
            RetryState::kNonRetryableFailure);
  // A timeout type can be made non-retryable by its qualified name, or all
  // timeouts by the type.
  const RetryPolicy no_heartbeat_retry = Policy().non_retryable({"TimeoutError:Heartbeat"});
  EXPECT_EQ(next_retry(no_heartbeat_retry, 1, timeout_failure(TimeoutType::kHeartbeat), std::nullopt).state,
            RetryState::kNonRetryableFailure);
  EXPECT_EQ(next_retry(no_heartbeat_retry, 1, timeout_failure(TimeoutType::kStartToClose), std::nullopt).state,
            RetryState::kInProgress);
  const RetryPolicy no_timeout_retry = Policy().non_retryable({kTimeoutFailureType});
  EXPECT_EQ(next_retry(no_timeout_retry, 1, timeout_failure(TimeoutType::kStartToClose), std::nullopt).state,
            RetryState::kNonRetryableFailure);
}

RC_GTEST_PROP(NextRetry, InProgressMeansTheBackoffFitsAndAttemptsRemain, ()) {
  RetryPolicy policy = *gen_valid_policy();
  policy.maximum_attempts = *rc::gen::inRange(0, 20);
  RC_PRE(!validate(policy).has_value());
  const std::int32_t attempt = *rc::gen::inRange(1, 30);
  std::optional<sim::Duration> time_left;
  if (*rc::gen::arbitrary<bool>()) time_left = sim::Duration{*rc::gen::arbitrary<std::int64_t>()};
  const RetryDecision decision = next_retry(policy, attempt, application_failure(), time_left);
  if (decision.state == RetryState::kInProgress) {
    RC_ASSERT(decision.backoff == retry_backoff(policy, attempt));
    RC_ASSERT(policy.maximum_attempts == 0 || attempt < policy.maximum_attempts);
    RC_ASSERT(!time_left.has_value() || decision.backoff <= *time_left);
  } else {
    RC_ASSERT(decision.backoff == sim::Duration::zero());
    RC_ASSERT(decision.state == RetryState::kMaximumAttemptsReached || decision.state == RetryState::kTimeout);
  }
}

// Jitter ----------------------------------------------------------------------

TEST(JitteredBackoff, WithoutJitterIsTheBackoffExactly) {
  const RetryPolicy policy = Policy().initial(1s).maximum(100s);
  for (std::uint64_t seed = 0; seed < 100; seed++) {
    EXPECT_EQ(jittered_backoff(policy, 100s, seed), 100s);
    EXPECT_EQ(jittered_backoff(policy, 1ns, seed), 1ns);
  }
}

// What jitter is for: backoffs that were equal (retries that failed
// together) come apart, spread over [b(1 - jitter), b], evenly.
TEST(JitteredBackoff, SpreadsEqualBackoffsEvenlyBelowTheBackoff) {
  const RetryPolicy policy = Policy().initial(1s).maximum(100s).jitter(0.5);
  constexpr int kSeeds = 10'000;
  constexpr int kBuckets = 10;
  std::vector<int> buckets(kBuckets, 0);
  sim::Duration low = sim::Duration::max();
  sim::Duration high = sim::Duration::zero();
  for (std::uint64_t seed = 0; seed < kSeeds; seed++) {
    const sim::Duration backoff = jittered_backoff(policy, 100s, seed);
    ASSERT_GE(backoff, 50s);
    ASSERT_LE(backoff, 100s);
    EXPECT_EQ(jittered_backoff(policy, 100s, seed), backoff) << "a function of the seed alone";
    low = std::min(low, backoff);
    high = std::max(high, backoff);
    buckets[static_cast<std::size_t>(std::min<std::int64_t>((backoff - 50s) * kBuckets / 50s, kBuckets - 1))]++;
  }
  EXPECT_LT(low, 50s + 100ms);
  EXPECT_GT(high, 100s - 100ms);
  // 1,000 expected per bucket; 5 sigma is about 150.
  for (int count : buckets) EXPECT_NEAR(count, kSeeds / kBuckets, 150);
}

RC_GTEST_PROP(JitteredBackoff, NeverLongerNorZeroNorShorterThanTheJitterAllows, ()) {
  RetryPolicy policy = *gen_valid_policy();
  policy.jitter = *rc::gen::oneOf(rc::gen::element(0.0, 0.5, 1.0),
                                  rc::gen::map(rc::gen::inRange(0, 1 << 20), [](int n) { return n / double{1 << 20}; }));
  RC_PRE(!validate(policy).has_value());
  const sim::Duration backoff{*rc::gen::inRange<std::int64_t>(1, std::numeric_limits<std::int64_t>::max())};
  const std::uint64_t seed = *rc::gen::arbitrary<std::uint64_t>();
  const sim::Duration jittered = jittered_backoff(policy, backoff, seed);
  RC_ASSERT(jittered > sim::Duration::zero());
  RC_ASSERT(jittered <= backoff);
  // At most jitter x backoff is taken off (the double's rounding is far
  // below a part in 2^50 of it).
  const double taken = static_cast<double>((backoff - jittered).count());
  RC_ASSERT(taken <= policy.jitter * static_cast<double>(backoff.count()) * (1 + 0x1.0p-50) + 1);
  RC_ASSERT(jittered_backoff(policy, backoff, seed) == jittered);
}

}  // namespace
}  // namespace duro::engine
