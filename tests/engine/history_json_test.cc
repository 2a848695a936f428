// The JSON form of histories: its shape, exact round trips, and errors
// (never exceptions) for every kind of bad input.
#include "engine/history/history_json.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <chrono>
#include <limits>
#include <string>
#include <string_view>

#include "tests/engine/history_arbitrary.h"

namespace duro::engine {
namespace {

using namespace std::chrono_literals;

const sim::TimePoint kT0 = sim::kDefaultStartTime;

History small_history() {
  History history;
  WorkflowExecutionStarted started;
  started.workflow_type = "provision";
  started.task_queue = TaskQueue{"main", TaskQueueKind::kNormal};
  started.input = std::string("\x00\xFFhi", 4);
  started.workflow_run_timeout = 3600s;
  started.workflow_task_timeout = 10s;
  started.retry_policy = RetryPolicy{};
  started.retry_policy->initial_interval = 1500ms;
  started.retry_policy->maximum_attempts = 3;
  history.append(kT0, started);
  history.append(kT0, WorkflowTaskScheduled{TaskQueue{"main", TaskQueueKind::kSticky}, 10s, 1});
  history.append(kT0 + 1500ms, WorkflowTaskStarted{2, "worker-1", "r1"});
  history.append(kT0 + 2s, WorkflowTaskCompleted{2, 3, "worker-1", "build-7", {1, 2}});
  MarkerRecorded marker;
  marker.marker_name = "Version";
  marker.details = {{"change", "v2"}};
  marker.workflow_task_completed_event_id = 4;
  history.append(kT0 + 2s, marker);
  history.append(kT0 + 2s, WorkflowExecutionCompleted{"done", 4});
  return history;
}

TEST(HistoryJson, LooksLikeTemporalsExport) {
  const std::string json = to_json(small_history(), false);
  const std::string_view first_event =
      R"({"events":[{"eventId":1,"eventTime":"2026-01-01T00:00:00.000000000Z","eventType":"WorkflowExecutionStarted",)"
      R"("workflowExecutionStartedEventAttributes":{"workflowType":"provision","taskQueue":{"name":"main","kind":"Normal"},)"
      R"("input":{"data":"AP9oaQ=="},"workflowExecutionTimeout":"0s","workflowRunTimeout":"3600s",)"
      R"("workflowTaskTimeout":"10s","retryPolicy":{"initialInterval":"1.5s","backoffCoefficient":2.0,)"
      R"("maximumInterval":"0s","maximumAttempts":3,"nonRetryableErrorTypes":[],"jitter":0.0},"attempt":1,)";
  EXPECT_EQ(json.substr(0, first_event.size()), first_event);
  EXPECT_NE(json.find(R"("parent":null)"), std::string::npos);
  EXPECT_NE(json.find(R"("workflowExecutionExpirationTime":"1970-01-01T00:00:00.000000000Z")"), std::string::npos);
  EXPECT_NE(json.find(R"({"eventId":3,"eventTime":"2026-01-01T00:00:01.500000000Z","eventType":"WorkflowTaskStarted",)"
                      R"("workflowTaskStartedEventAttributes":{"scheduledEventId":2,"identity":"worker-1","requestId":"r1"}})"),
            std::string::npos);
  EXPECT_NE(json.find(R"("kind":"Sticky")"), std::string::npos);
  EXPECT_NE(json.find(R"("sdkFlags":[1,2])"), std::string::npos);
  EXPECT_NE(json.find(R"("details":{"change":{"data":"djI="}})"), std::string::npos) << "marker details: payloads";
  EXPECT_NE(json.find(R"("workflowExecutionCompletedEventAttributes":{"result":{"data":"ZG9uZQ=="},)"
                      R"("workflowTaskCompletedEventId":4}})"),
            std::string::npos);
  EXPECT_EQ(json.find('\n'), std::string::npos);

  const std::string pretty = to_json(small_history(), true);
  EXPECT_NE(pretty.find("{\n  \"events\": [\n    {\n      \"eventId\": 1,"), std::string::npos) << pretty.substr(0, 80);
  sim::Result<History> reread = history_from_json(pretty);
  ASSERT_TRUE(reread.ok()) << reread.error().message;
  EXPECT_EQ(reread.value(), small_history());
}

TEST(HistoryJson, DurationsUseProtobufsForm) {
  const auto duration_json = [](sim::Duration duration) {
    History history;
    history.events.push_back(HistoryEvent{1, kT0, TimerStarted{"t", duration, 0}});
    const std::string json = to_json(history, false);
    const std::string key = R"("startToFireTimeout":)";
    const std::size_t at = json.find(key) + key.size();
    return json.substr(at, json.find(',', at) - at);
  };
  EXPECT_EQ(duration_json(10s), R"("10s")");
  EXPECT_EQ(duration_json(1500ms), R"("1.5s")");
  EXPECT_EQ(duration_json(0s), R"("0s")");
  EXPECT_EQ(duration_json(1ns), R"("0.000000001s")");
  EXPECT_EQ(duration_json(-1500ms), R"("-1.5s")");
  EXPECT_EQ(duration_json(sim::Duration::max()), R"("9223372036.854775807s")");
  EXPECT_EQ(duration_json(sim::Duration::min()), R"("-9223372036.854775808s")");
}

// A one-event history in JSON, with the attributes given.
std::string one_event(std::string_view type, std::string_view attributes_key, std::string_view attributes,
                      std::string_view time = "2026-01-01T00:00:00Z") {
  return std::string(R"({"events":[{"eventId":1,"eventTime":")") + std::string(time) + R"(","eventType":")" +
         std::string(type) + R"(",")" + std::string(attributes_key) + R"(":)" + std::string(attributes) + "}]}";
}

TEST(HistoryJson, ReadsOmittedFieldsAsDefaultsAndOtherSpellings) {
  sim::Result<History> read = history_from_json(
      one_event("TimerStarted", "timerStartedEventAttributes", R"({"timerId":"t","startToFireTimeout":"2.25s"})"));
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read.value().events.size(), 1u);
  const HistoryEvent& event = read.value().events[0];
  EXPECT_EQ(event.event_id, 1);
  EXPECT_EQ(event.time, kT0);
  ASSERT_TRUE(event.is<TimerStarted>());
  EXPECT_EQ(*event.as<TimerStarted>(), (TimerStarted{"t", 2250ms, 0}));

  // Integers as decimal strings (protobuf's JSON), enums by number, time
  // offsets, few fraction digits.
  read = history_from_json(
      R"({"events":[{"eventId":"7","eventTime":"2026-01-01T02:00:00.5+02:00","eventType":"WorkflowTaskTimedOut",)"
      R"("workflowTaskTimedOutEventAttributes":{"scheduledEventId":"-3","timeoutType":2}}]})");
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read.value().events[0].event_id, 7);
  EXPECT_EQ(read.value().events[0].time, kT0 + 500ms);
  EXPECT_EQ(*read.value().events[0].as<WorkflowTaskTimedOut>(),
            (WorkflowTaskTimedOut{-3, 0, TimeoutType::kScheduleToStart}));

  read = history_from_json(R"({"events":[]})");
  ASSERT_TRUE(read.ok());
  EXPECT_TRUE(read.value().events.empty());
}

TEST(HistoryJson, NonTextStringsAndOddNumbersSurvive) {
  History history;
  WorkflowExecutionSignaled signaled;
  signaled.signal_name = std::string("\xC0\x80", 2);  // Overlong NUL: not UTF-8.
  signaled.identity = std::string("nul\0inside", 10);
  signaled.input = "";
  history.events.push_back(HistoryEvent{1, sim::TimePoint::min(), signaled});
  MarkerRecorded marker;
  marker.details = {{std::string("\xFF", 1), "x"}, {"ok", ""}};
  history.events.push_back(HistoryEvent{2, sim::TimePoint::max(), marker});
  ActivityTaskScheduled scheduled;
  scheduled.retry_policy.backoff_coefficient = std::numeric_limits<double>::infinity();
  history.events.push_back(HistoryEvent{std::numeric_limits<EventId>::min(), kT0, scheduled});
  scheduled.retry_policy.backoff_coefficient = -0.0;
  history.events.push_back(HistoryEvent{std::numeric_limits<EventId>::max(), kT0, scheduled});

  const std::string json = to_json(history, false);
  EXPECT_NE(json.find(R"("signalName":{"data":"wIA="})"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("identity":"nul\u0000inside")"), std::string::npos);
  EXPECT_NE(json.find(R"("details":[{"key":"ok","value":{"data":""}},{"key":{"data":"/w=="},"value":{"data":"eA=="}}])"), std::string::npos);
  EXPECT_NE(json.find(R"("backoffCoefficient":"Infinity")"), std::string::npos);
  EXPECT_NE(json.find(R"("eventTime":"1677-09-21T00:12:43.145224192Z")"), std::string::npos);
  EXPECT_NE(json.find(R"("eventTime":"2262-04-11T23:47:16.854775807Z")"), std::string::npos);
  sim::Result<History> reread = history_from_json(json);
  ASSERT_TRUE(reread.ok()) << reread.error().message;
  EXPECT_EQ(reread.value(), history);
  EXPECT_TRUE(std::signbit(reread.value().events[3].as<ActivityTaskScheduled>()->retry_policy.backoff_coefficient));
}

TEST(HistoryJson, OneEventOnOneLine) {
  const std::string json = to_json(HistoryEvent{4, kT0, TimerFired{"t", 3}});
  EXPECT_EQ(json, R"({"eventId":4,"eventTime":"2026-01-01T00:00:00.000000000Z","eventType":"TimerFired",)"
                  R"("timerFiredEventAttributes":{"timerId":"t","startedEventId":3}})");
  EXPECT_EQ(event_attributes_key(EventType::kStartChildWorkflowExecutionInitiated),
            "startChildWorkflowExecutionInitiatedEventAttributes");
}

RC_GTEST_PROP(HistoryJson, EveryHistoryRoundTripsExactly, ()) {
  const History history = *testing::gen_history();
  const bool pretty = *rc::gen::arbitrary<bool>();
  const std::string json = to_json(history, pretty);
  sim::Result<History> reread = history_from_json(json);
  RC_ASSERT(reread.ok());
  RC_ASSERT(reread.value() == history);
  RC_ASSERT(to_json(reread.value(), pretty) == json);
}

// Errors ----------------------------------------------------------------------

// The error history_from_json gives for `json`, checking it is one.
sim::Error error_of(std::string_view json) {
  sim::Result<History> read = history_from_json(json);
  if (read.ok()) {
    ADD_FAILURE() << "accepted: " << json;
    return sim::Error{sim::ErrorCode::kApplication, "(accepted)"};
  }
  return read.error();
}

TEST(HistoryJsonErrors, TextThatIsNotJsonIsADecodeError) {
  for (const std::string_view text : {"", "{", R"({"events":[)", "nul", R"({"events":[1,]})", "\xFF"}) {
    const sim::Error error = error_of(text);
    EXPECT_EQ(error.code, sim::ErrorCode::kDecode) << text;
    EXPECT_EQ(error.message.rfind("JSON parse error at byte ", 0), 0u) << error.message;
  }
}

TEST(HistoryJsonErrors, NameTheEventAndTheField) {
  const auto expect_error = [](std::string_view json, std::string_view message) {
    const sim::Error error = error_of(json);
    EXPECT_EQ(error.code, sim::ErrorCode::kInvalidArgument) << json;
    EXPECT_EQ(error.message, message) << json;
  };
  const std::string_view timer_key = "timerStartedEventAttributes";

  expect_error("[]", R"(history: expected an object {"events": [...]}, got array [])");
  expect_error("{}", "history: missing required field events");
  expect_error(R"({"events":{}})", "history: expected an array of events, got object {}");
  expect_error(R"({"events":[],"extra":1})", R"(history: unknown field "extra")");
  expect_error(R"({"events":[7]})", "events[0]: expected an event object, got number 7");
  expect_error(R"({"events":[{}]})", "events[0]: missing required field eventId");
  expect_error(R"({"events":[{"eventId":1.5}]})", "events[0]: eventId: expected an integer, got number 1.5");
  expect_error(R"({"events":[{"eventId":"12345678901234567890"}]})",
               "events[0]: eventId: 12345678901234567890 is out of range");
  expect_error(R"({"events":[{"eventId":1}]})", "events[0] (eventId 1): missing required field eventTime");
  expect_error(R"({"events":[{"eventId":1,"eventTime":"2026-02-30T00:00:00Z"}]})",
               R"(events[0] (eventId 1): eventTime: expected an RFC 3339 time like "2026-01-01T00:00:00.000000000Z", got string "2026-02-30T00:00:00Z")");
  expect_error(R"({"events":[{"eventId":1,"eventTime":"2026-01-01T00:00:00Z"}]})",
               "events[0] (eventId 1): missing required field eventType");
  expect_error(one_event("TimerBurst", "x", "{}"), R"(events[0] (eventId 1): eventType: unknown event type "TimerBurst")");
  expect_error(one_event("TimerStarted", "timerFiredEventAttributes", "{}"),
               R"(events[0] (eventId 1): unknown field "timerFiredEventAttributes" (a TimerStarted event's attributes are timerStartedEventAttributes))");
  expect_error(R"({"events":[{"eventId":1,"eventTime":"2026-01-01T00:00:00Z","eventType":"TimerStarted"}]})",
               "events[0] (eventId 1): missing required field timerStartedEventAttributes");
  expect_error(one_event("TimerStarted", timer_key, "[]"),
               "events[0] (eventId 1): timerStartedEventAttributes: expected an object, got array []");
  expect_error(one_event("TimerStarted", timer_key, R"({"timerID":"t"})"),
               R"(events[0] (eventId 1): timerStartedEventAttributes: unknown field "timerID")");
  expect_error(one_event("TimerStarted", timer_key, R"({"timerId":5})"),
               "events[0] (eventId 1): timerStartedEventAttributes.timerId: expected a string, got number 5");
  expect_error(one_event("TimerStarted", timer_key, R"({"startToFireTimeout":10})"),
               R"(events[0] (eventId 1): timerStartedEventAttributes.startToFireTimeout: expected a duration string like "1.5s", got number 10)");
  expect_error(one_event("TimerStarted", timer_key, R"({"startToFireTimeout":"10"})"),
               R"(events[0] (eventId 1): timerStartedEventAttributes.startToFireTimeout: expected a duration string like "1.5s", got string "10")");
  expect_error(one_event("TimerStarted", timer_key, R"({"startToFireTimeout":"9223372036.854775808s"})"),
               R"(events[0] (eventId 1): timerStartedEventAttributes.startToFireTimeout: expected a duration string like "1.5s", got string "9223372036.854775808s")");
}

TEST(HistoryJsonErrors, NestedFieldsPayloadsAndEnums) {
  const auto message = [](std::string_view type, std::string_view attributes) {
    return error_of(one_event(type, event_attributes_key(*event_type_from_name(type)), attributes)).message;
  };
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"retryPolicy":{"maximumAttempts":"x"}})"),
            R"(events[0] (eventId 1): activityTaskScheduledEventAttributes.retryPolicy.maximumAttempts: expected an integer, got string "x")");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"retryPolicy":{"maximumAttempts":3000000000}})"),
            "events[0] (eventId 1): activityTaskScheduledEventAttributes.retryPolicy.maximumAttempts: 3000000000 is out of range");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"retryPolicy":{"nonRetryableErrorTypes":["a",1]}})"),
            "events[0] (eventId 1): activityTaskScheduledEventAttributes.retryPolicy.nonRetryableErrorTypes[1]: expected a string, got number 1");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"retryPolicy":{"backoffCoefficient":"fast"}})"),
            R"(events[0] (eventId 1): activityTaskScheduledEventAttributes.retryPolicy.backoffCoefficient: expected a number, got string "fast")");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"input":"aGk="})"),
            R"(events[0] (eventId 1): activityTaskScheduledEventAttributes.input: expected {"data": "<base64>"}, got string "aGk=")");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"input":{"data":"aGk"}})"),
            "events[0] (eventId 1): activityTaskScheduledEventAttributes.input: data is not valid base64");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"input":{"data":"aGk=","metadata":{}}})"),
            R"(events[0] (eventId 1): activityTaskScheduledEventAttributes.input: unknown field "metadata")");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"input":{}})"),
            "events[0] (eventId 1): activityTaskScheduledEventAttributes.input: missing required field data");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"taskQueue":{"kind":"Slow"}})"),
            R"(events[0] (eventId 1): activityTaskScheduledEventAttributes.taskQueue.kind: unknown name string "Slow")");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"taskQueue":{"kind":2}})"),
            "events[0] (eventId 1): activityTaskScheduledEventAttributes.taskQueue.kind: 2 names no enumerator");
  EXPECT_EQ(message("ActivityTaskScheduled", R"({"taskQueue":{"kind":true}})"),
            "events[0] (eventId 1): activityTaskScheduledEventAttributes.taskQueue.kind: expected an enumerator's name, got boolean true");
  EXPECT_EQ(message("MarkerRecorded", R"({"details":{"k":{"data":7}}})"),
            "events[0] (eventId 1): markerRecordedEventAttributes.details.k: expected a base64 string in data, got number 7");
  EXPECT_EQ(message("MarkerRecorded", R"({"details":[{"key":"a","value":{"data":""}},{"key":"a","value":{"data":""}}]})"),
            "events[0] (eventId 1): markerRecordedEventAttributes.details[1]: duplicate key");
  EXPECT_EQ(message("ActivityTaskStarted", R"({"lastFailure":{"nonRetryable":"yes"}})"),
            R"(events[0] (eventId 1): activityTaskStartedEventAttributes.lastFailure.nonRetryable: expected true or false, got string "yes")");
  EXPECT_EQ(message("WorkflowTaskCompleted", R"({"sdkFlags":[-1]})"),
            "events[0] (eventId 1): workflowTaskCompletedEventAttributes.sdkFlags[0]: -1 is out of range");
}

TEST(HistoryJsonErrors, LaterEventsAreNamedByIndexAndId) {
  const std::string json =
      R"({"events":[{"eventId":1,"eventTime":"2026-01-01T00:00:00Z","eventType":"WorkflowExecutionSignaled",)"
      R"("workflowExecutionSignaledEventAttributes":{}},)"
      R"({"eventId":2,"eventTime":"2026-01-01T00:00:00Z","eventType":"TimerFired",)"
      R"("timerFiredEventAttributes":{"startedEventId":null}}]})";
  EXPECT_EQ(error_of(json).message,
            "events[1] (eventId 2): timerFiredEventAttributes.startedEventId: expected an integer, got null");
}

TEST(HistoryJsonErrors, TimesAreStrictRfc3339) {
  for (const std::string_view time :
       {"2026-01-01 00:00:00Z", "2026-01-01T00:00:00", "2026-01-01T24:00:00Z", "2026-01-01T23:59:60Z",
        "2026-13-01T00:00:00Z", "2025-02-29T00:00:00Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00.1234567890Z",
        "2026-01-01T00:00:00+2:00", "2026-01-01T00:00:00Zjunk", "26-01-01T00:00:00Z", "1677-09-21T00:12:43.145224191Z",
        "2262-04-11T23:47:16.854775808Z", "9999-12-31T23:59:59Z"}) {
    const sim::Error error = error_of(one_event("WorkflowExecutionSignaled", "workflowExecutionSignaledEventAttributes", "{}", time));
    EXPECT_NE(error.message.find("eventTime: expected an RFC 3339 time"), std::string::npos) << time << ": " << error.message;
  }
  for (const std::string_view time : {"2024-02-29T00:00:00Z", "2026-01-01t00:00:00z", "1970-01-01T00:00:00.000000001Z",
                                      "1969-12-31T23:59:59.999999999Z", "2026-01-01T05:30:00+05:30"}) {
    EXPECT_TRUE(history_from_json(one_event("WorkflowExecutionSignaled", "workflowExecutionSignaledEventAttributes",
                                            "{}", time))
                    .ok())
        << time;
  }
  sim::Result<History> read = history_from_json(
      one_event("WorkflowExecutionSignaled", "workflowExecutionSignaledEventAttributes", "{}", "1969-12-31T23:59:59.999999999Z"));
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read.value().events[0].time.time_since_epoch(), -1ns);
}

TEST(HistoryJsonErrors, DeepNestingIsAnErrorNotAStackOverflow) {
  const std::size_t depth = 200'000;  // Far past what a recursive parser's stack survives.
  const std::string nested = std::string(depth, '[') + std::string(depth, ']');
  EXPECT_EQ(error_of(R"({"events":)" + nested + "}").message, "events[0]: expected an event object, got array [...]");
  EXPECT_EQ(error_of(one_event("TimerStarted", "timerStartedEventAttributes", R"({"timerId":)" + nested + "}"))
                .message,
            "events[0] (eventId 1): timerStartedEventAttributes.timerId: expected a string, got array [...]");
  EXPECT_EQ(error_of(std::string(depth, '[')).code, sim::ErrorCode::kDecode);
}

// Any text at all: an error or a history, never an exception or a crash.
RC_GTEST_PROP(HistoryJsonErrors, GarbageNeverThrows, ()) {
  const std::string valid = to_json(*testing::gen_history(), false);
  std::string text = valid;
  const int edits = *rc::gen::inRange(1, 6);
  for (int i = 0; i < edits && !text.empty(); i++) {
    const std::size_t at = *rc::gen::inRange<std::size_t>(0, text.size());
    switch (*rc::gen::inRange(0, 3)) {
      case 0: text[at] = *rc::gen::elementOf(std::string("{}[]\",:0123456789-.aZ \\tnul")); break;
      case 1: text.erase(at, *rc::gen::inRange<std::size_t>(1, 20)); break;
      default: text.insert(at, *rc::gen::element<std::string>("{", "}", "\"x\":", "null", ",1", "[]")); break;
    }
  }
  sim::Result<History> read = history_from_json(text);
  if (!read.ok()) {
    RC_ASSERT(read.error().code == sim::ErrorCode::kDecode || read.error().code == sim::ErrorCode::kInvalidArgument);
    RC_ASSERT(!read.error().message.empty());
  }
  RC_TAG(read.ok() ? "read" : "refused");
}

}  // namespace
}  // namespace duro::engine
