#include "engine/history/failure.h"

#include <gtest/gtest.h>

#include <string_view>

namespace duro::engine {
namespace {

TEST(Failure, RoundTripsThroughTheCodec) {
  const Failure failure{.type = "CellFull", .message = "no capacity", .details = "x", .non_retryable = true,
                        .timeout_type = TimeoutType::kHeartbeat, .source = "activity"};
  sim::Result<Failure> decoded = sim::decode<Failure>(sim::encode(failure));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value(), failure);
}

TEST(Failure, NamesTimeoutTypesAndRetryStates) {
  EXPECT_EQ(std::string_view(timeout_type_name(TimeoutType::kScheduleToStart)), "ScheduleToStart");
  EXPECT_EQ(std::string_view(retry_state_name(RetryState::kMaximumAttemptsReached)), "MaximumAttemptsReached");
}

}  // namespace
}  // namespace duro::engine
