// Event and command types: names, classification, the binary encoding of
// events and of batches, and the History helpers.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <chrono>
#include <cstddef>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/history/command.h"
#include "engine/history/encoded_events.h"
#include "engine/history/event.h"
#include "engine/history/history.h"
#include "engine/history/reflect.h"
#include "tests/engine/history_arbitrary.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

// Names ----------------------------------------------------------------------

TEST(EventType, NamesAreTemporalsAndRoundTrip) {
  EXPECT_EQ(event_type_name(EventType::kWorkflowExecutionStarted), "WorkflowExecutionStarted");
  EXPECT_EQ(event_type_name(EventType::kActivityTaskScheduled), "ActivityTaskScheduled");
  EXPECT_EQ(event_type_name(EventType::kTimerFired), "TimerFired");
  EXPECT_EQ(event_type_name(EventType::kExternalWorkflowExecutionCancelRequested),
            "ExternalWorkflowExecutionCancelRequested");
  std::set<std::string_view> names;
  for (std::size_t value = 1; value <= kEventTypeCount; value++) {
    const auto type = static_cast<EventType>(value);
    const std::string_view name = event_type_name(type);
    EXPECT_NE(name, "Unknown");
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    EXPECT_EQ(event_type_from_name(name), type) << name;
  }
  EXPECT_EQ(event_type_name(static_cast<EventType>(0)), "Unknown");
  EXPECT_EQ(event_type_name(static_cast<EventType>(kEventTypeCount + 1)), "Unknown");
  EXPECT_EQ(event_type_from_name("Unknown"), std::nullopt);
  EXPECT_EQ(event_type_from_name("activityTaskScheduled"), std::nullopt) << "names are case-sensitive";
  EXPECT_EQ(event_type_from_name(""), std::nullopt);
}

// Each event type's name is its struct's: the variant order and the enum
// (and the name table) agree, alternative by alternative.
template <std::size_t... I>
void expect_alternatives_match_types(std::index_sequence<I...>) {
  const std::vector<EventType> types = {
      HistoryEvent{0, {}, EventAttributes{std::in_place_index<I>}}.type()...};
  for (std::size_t i = 0; i < types.size(); i++) EXPECT_EQ(static_cast<std::size_t>(types[i]), i + 1);
}

TEST(EventType, IsTheVariantIndexPlusOne) {
  expect_alternatives_match_types(std::make_index_sequence<kEventTypeCount>{});
  EXPECT_EQ((HistoryEvent{0, {}, TimerFired{}}.type()), EventType::kTimerFired);
  EXPECT_EQ((HistoryEvent{0, {}, ChildWorkflowExecutionTerminated{}}.type()),
            EventType::kChildWorkflowExecutionTerminated);
  EXPECT_EQ((HistoryEvent{0, {}, RequestCancelExternalWorkflowExecutionFailed{}}.type()),
            EventType::kRequestCancelExternalWorkflowExecutionFailed);
}

TEST(EventType, CommandEventsAreThoseOfTheTemporalModel) {
  const std::set<EventType> expected = {
      EventType::kActivityTaskScheduled,
      EventType::kActivityTaskCancelRequested,
      EventType::kTimerStarted,
      EventType::kTimerCanceled,
      EventType::kMarkerRecorded,
      EventType::kStartChildWorkflowExecutionInitiated,
      EventType::kSignalExternalWorkflowExecutionInitiated,
      EventType::kRequestCancelExternalWorkflowExecutionInitiated,
      EventType::kWorkflowExecutionCompleted,
      EventType::kWorkflowExecutionFailed,
      EventType::kWorkflowExecutionCanceled,
      EventType::kWorkflowExecutionContinuedAsNew,
  };
  for (std::size_t value = 1; value <= kEventTypeCount; value++) {
    const auto type = static_cast<EventType>(value);
    EXPECT_EQ(is_command_event(type), expected.contains(type)) << event_type_name(type);
  }
}

TEST(EventType, CloseEvents) {
  const std::set<EventType> expected = {
      EventType::kWorkflowExecutionCompleted, EventType::kWorkflowExecutionFailed,
      EventType::kWorkflowExecutionTimedOut,  EventType::kWorkflowExecutionCanceled,
      EventType::kWorkflowExecutionTerminated, EventType::kWorkflowExecutionContinuedAsNew,
  };
  for (std::size_t value = 1; value <= kEventTypeCount; value++) {
    const auto type = static_cast<EventType>(value);
    EXPECT_EQ(is_close_event(type), expected.contains(type)) << event_type_name(type);
  }
}

TEST(CommandType, NamesEventsAndCloses) {
  EXPECT_EQ(command_type_name(CommandType::kScheduleActivityTask), "ScheduleActivityTask");
  EXPECT_EQ(command_type_name(CommandType::kContinueAsNewWorkflowExecution), "ContinueAsNewWorkflowExecution");
  EXPECT_EQ(command_type_name(static_cast<CommandType>(0)), "Unknown");
  EXPECT_EQ(command_type_name(static_cast<CommandType>(kCommandTypeCount + 1)), "Unknown");
  EXPECT_EQ(command_type(Command{StartTimer{}}), CommandType::kStartTimer);

  // Each command produces a distinct command event, and every command
  // event comes from exactly one command.
  std::set<EventType> produced;
  for (std::size_t value = 1; value <= kCommandTypeCount; value++) {
    const auto type = static_cast<CommandType>(value);
    EXPECT_NE(command_type_name(type), "Unknown");
    const EventType event = command_event_type(type);
    EXPECT_TRUE(is_command_event(event)) << command_type_name(type);
    EXPECT_TRUE(produced.insert(event).second) << command_type_name(type);
    EXPECT_EQ(is_close_command(type), is_close_event(event)) << command_type_name(type);
  }
  std::size_t command_events = 0;
  for (std::size_t value = 1; value <= kEventTypeCount; value++) {
    command_events += is_command_event(static_cast<EventType>(value)) ? 1 : 0;
  }
  EXPECT_EQ(produced.size(), command_events);
  EXPECT_EQ(command_event_type(CommandType::kScheduleActivityTask), EventType::kActivityTaskScheduled);
  EXPECT_EQ(command_event_type(CommandType::kCancelTimer), EventType::kTimerCanceled);
  EXPECT_EQ(command_event_type(CommandType::kRequestCancelExternalWorkflowExecution),
            EventType::kRequestCancelExternalWorkflowExecutionInitiated);
}

TEST(EnumNames, AgreeWithFailureNames) {
  for (std::size_t i = 0; i < EnumNames<TimeoutType>::kNames.size(); i++) {
    EXPECT_EQ(EnumNames<TimeoutType>::kNames[i], timeout_type_name(static_cast<TimeoutType>(i)));
  }
  for (std::size_t i = 0; i < EnumNames<RetryState>::kNames.size(); i++) {
    EXPECT_EQ(EnumNames<RetryState>::kNames[i], retry_state_name(static_cast<RetryState>(i)));
  }
  EXPECT_EQ(std::string_view(timeout_type_name(static_cast<TimeoutType>(EnumNames<TimeoutType>::kNames.size()))),
            "Unknown")
      << "the table covers every enumerator";
  EXPECT_EQ(enum_name(TaskQueueKind::kSticky), "Sticky");
  EXPECT_EQ(enum_from_name<ParentClosePolicy>("RequestCancel"), ParentClosePolicy::kRequestCancel);
  EXPECT_EQ(enum_from_name<ParentClosePolicy>("Nope"), std::nullopt);
  EXPECT_FALSE(enum_in_range(static_cast<WorkflowTaskFailedCause>(8)));
  EXPECT_EQ(enum_name(static_cast<ExternalFailedCause>(1)), "");
}

// Binary encoding ------------------------------------------------------------

TEST(EventEncoding, WireFormatStartsWithIdTimeAndTheVariantIndex) {
  const HistoryEvent event{3, sim::TimePoint{sim::Duration{1}}, TimerFired{"t", 2}};
  // event_id 3 (zigzag 06), time 1 ns (zigzag 02), index 22 (TimerFired),
  // then timer_id "t" and started_event_id 2 (zigzag 04).
  EXPECT_EQ(sim::encode(event), std::string("\x06\x02\x16\x01t\x04", 6));
}

RC_GTEST_PROP(EventEncoding, EveryEventRoundTrips, ()) {
  const HistoryEvent event = *testing::gen_event();
  const std::string bytes = sim::encode(event);
  sim::Result<HistoryEvent> decoded = sim::decode<HistoryEvent>(bytes);
  RC_ASSERT(decoded.ok());
  RC_ASSERT(decoded.value() == event);
  RC_ASSERT(sim::encode(decoded.value()) == bytes);
}

RC_GTEST_PROP(EventEncoding, EveryCommandRoundTrips, ()) {
  const Command command = *testing::gen_command();
  sim::Result<Command> decoded = sim::decode<Command>(sim::encode(command));
  RC_ASSERT(decoded.ok());
  RC_ASSERT(decoded.value() == command);
}

RC_GTEST_PROP(EventBatch, RoundTripsWithTheBytesOfAVector, ()) {
  const History history = *testing::gen_history();
  const std::string bytes = encode_events(history.events);
  RC_ASSERT(bytes == sim::encode(history.events));
  RC_ASSERT(bytes == sim::encode(history));
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(bytes);
  RC_ASSERT(decoded.ok());
  RC_ASSERT(decoded.value() == history.events);
}

TEST(EventBatch, AppendsAndDecodesEmpty) {
  std::string out = "x";
  encode_events_append(out, {});
  EXPECT_EQ(out, std::string("x\x00", 2));
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(std::string_view(out).substr(1));
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded.value().empty());
}

RC_GTEST_PROP(EventBatch, EveryStrictPrefixFails, ()) {
  const History history = *testing::gen_history();
  const std::string bytes = encode_events(history.events);
  const std::size_t size = *rc::gen::inRange<std::size_t>(0, bytes.size());
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(std::string_view(bytes).substr(0, size));
  RC_ASSERT(!decoded.ok());
  RC_ASSERT(decoded.error().code == sim::ErrorCode::kDecode);
}

// A history cut into batches at random, joined by EncodedEventsWriter: the
// batches copied whole, or a random few of them event by event. The result
// is exactly the bytes of the whole history encoded at once.
RC_GTEST_PROP(EncodedEvents, BatchesAndSingleEventsJoinIntoTheWholeEncoding, ()) {
  const History history = *testing::gen_history();
  EncodedEventsWriter writer;
  std::size_t at = 0;
  while (at < history.events.size()) {
    const std::size_t size = *rc::gen::inRange<std::size_t>(1, history.events.size() - at + 1);
    const std::span<const HistoryEvent> batch(history.events.data() + at, size);
    if (*rc::gen::arbitrary<bool>()) {
      writer.append_batch(encode_events(batch), size);
    } else {
      for (const HistoryEvent& event : batch) writer.append(event);
    }
    at += size;
  }
  RC_ASSERT(writer.count() == history.events.size());
  const EncodedEvents joined = std::move(writer).finish();
  RC_ASSERT(joined.bytes == (history.events.empty() ? std::string{} : encode_events(history.events)));
  RC_ASSERT(joined == encode_events_forwarded(history.events));
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(joined);
  RC_ASSERT(decoded.ok());
  RC_ASSERT(decoded.value() == history.events);
  // Forwarded as a field of a message, the bytes come through as they are.
  sim::Result<EncodedEvents> forwarded = sim::decode<EncodedEvents>(sim::encode(joined));
  RC_ASSERT(forwarded.ok());
  RC_ASSERT(forwarded.value() == joined);
}

TEST(EncodedEvents, NoEventsAreNoBytesAndDecodeToNone) {
  EXPECT_TRUE(std::move(EncodedEventsWriter{}).finish().empty());
  EXPECT_TRUE(encode_events_forwarded({}).empty());
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(EncodedEvents{});
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded.value().empty());
  // Bytes that are not events are an error, as for any batch.
  decoded = decode_events(EncodedEvents{"\x01"});
  EXPECT_FALSE(decoded.ok());
}

TEST(EncodedEventsDeathTest, ABatchWhoseCountDisagreesWithItsBytesAsserts) {
  const std::string batch = encode_events(std::vector<HistoryEvent>{HistoryEvent{1, {}, TimerFired{"t", 2}}});
  EncodedEventsWriter writer;
  EXPECT_DEATH(writer.append_batch(batch, 2), "count disagrees");
}

TEST(EventBatch, RejectsAnUnknownEventTypeAndTrailingBytes) {
  std::string bytes = encode_events(std::vector<HistoryEvent>{HistoryEvent{1, {}, TimerFired{"t", 2}}});
  // count 1, id, time, then the variant index at byte 3.
  bytes[3] = static_cast<char>(kEventTypeCount);
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().message, "variant index out of range at byte 3");
  decoded = decode_events(encode_events(std::vector<HistoryEvent>{}) + "z");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().message, "trailing bytes at byte 1");
}

TEST(EventBatch, RejectsAnEnumThatNamesNoEnumerator) {
  ActivityTaskTimedOut timed_out;
  timed_out.failure.timeout_type = static_cast<TimeoutType>(9);
  const std::vector<HistoryEvent> events = {HistoryEvent{1, {}, WorkflowExecutionStarted{}},
                                            HistoryEvent{2, {}, timed_out}};
  sim::Result<std::vector<HistoryEvent>> decoded = decode_events(encode_events(events));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, sim::ErrorCode::kDecode);
  EXPECT_EQ(decoded.error().message,
            "event 2 (index 1, ActivityTaskTimedOut): field timeout_type holds a value that names no enumerator");

  WorkflowExecutionStarted started;
  started.task_queue.kind = static_cast<TaskQueueKind>(2);
  decoded = decode_events(encode_events(std::vector<HistoryEvent>{HistoryEvent{1, {}, started}}));
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find("field kind"), std::string::npos) << decoded.error().message;
}

// History helpers --------------------------------------------------------------

TEST(History, AppendNumbersFindsAndCloses) {
  History history;
  const sim::TimePoint t0 = sim::kDefaultStartTime;
  EXPECT_EQ(history.next_event_id(), 1);
  EXPECT_EQ(history.append(t0, WorkflowExecutionStarted{}).event_id, 1);
  EXPECT_EQ(history.append(t0 + 1s, WorkflowTaskScheduled{}).event_id, 2);
  EXPECT_FALSE(history.closed());
  EXPECT_EQ(history.close_event(), nullptr);
  history.append(t0 + 2s, WorkflowExecutionTerminated{"stop", "", "me"});
  ASSERT_TRUE(history.closed());
  EXPECT_EQ(history.close_event()->event_id, 3);
  EXPECT_EQ(history.next_event_id(), 4);
  ASSERT_NE(history.find(2), nullptr);
  EXPECT_TRUE(history.find(2)->is<WorkflowTaskScheduled>());
  EXPECT_EQ(history.find(0), nullptr);
  EXPECT_EQ(history.find(4), nullptr);
  history.events[1].event_id = 7;  // Malformed: find() does not return the wrong event.
  EXPECT_EQ(history.find(2), nullptr);
}

TEST(HistoryDeathTest, AppendAssertsTheWritersRules) {
  History history;
  EXPECT_DEATH(history.append(sim::kDefaultStartTime, WorkflowTaskScheduled{}), "starts with WorkflowExecutionStarted");
  history.append(sim::kDefaultStartTime, WorkflowExecutionStarted{});
  EXPECT_DEATH(history.append(sim::kDefaultStartTime - 1ns, WorkflowTaskScheduled{}), "backwards");
  history.append(sim::kDefaultStartTime, WorkflowExecutionTimedOut{});
  EXPECT_DEATH(history.append(sim::kDefaultStartTime, WorkflowTaskScheduled{}), "closed history");
}

}  // namespace
}  // namespace duro::engine
