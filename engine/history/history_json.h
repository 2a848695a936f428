// Histories as JSON, for people: `duro history show`, export and import,
// hand-written histories in tests and bug reports.
//
// The form is modelled on Temporal's JSON history export, so a Temporal
// user reads it without a guide:
//
//   {"events": [
//     {"eventId": 1,
//      "eventTime": "2026-01-01T00:00:00.000000000Z",
//      "eventType": "WorkflowExecutionStarted",
//      "workflowExecutionStartedEventAttributes": {
//        "workflowType": "provision", "taskQueue": {"name": "main", "kind": "Normal"},
//        "input": {"data": "eyJjZWxsIjoiYyJ9"}, "workflowRunTimeout": "3600s", ...}},
//     ...]}
//
// Each event: eventId, eventTime, eventType (Temporal's name, event.h),
// and one "<eventType with a lower-case first letter>EventAttributes"
// object whose keys are the fields of the event's struct in camelCase
// (workflow_task_completed_event_id -> workflowTaskCompletedEventId).
// Values:
//   durations   strings in protobuf's JSON form: "10s", "1.5s", "-0.000000001s"
//   times       RFC 3339 with nanoseconds, UTC: "2026-01-01T00:00:01.500000000Z"
//               (read: 0-9 fraction digits, "Z" or a +hh:mm/-hh:mm offset)
//   payloads    {"data": "<base64 of the bytes>"} (fields named input,
//               result, details, last_completion_result, and the values of
//               a marker's details): payloads are arbitrary bytes
//   text        JSON strings; a text field that is not valid UTF-8 (never
//               in a sane history, but the model allows any bytes) is
//               written as {"data": "<base64>"}, so nothing is lost
//   enums       by name ("StartToClose", "MaximumAttemptsReached"; reflect.h);
//               read: a name, or the number of an enumerator
//   integers    JSON numbers (read: also decimal strings, as protobuf's
//               JSON writes 64-bit integers)
//   doubles     JSON numbers, shortest form that reads back exactly;
//               "NaN", "Infinity", "-Infinity" for the non-finite
//   optionals   null when empty
//   maps        objects (a map whose keys are not all valid UTF-8: an
//               array of {"key": ..., "value": ...})
//
// The writer writes every field. The reader takes an omitted attribute
// field as its default (as protobuf's JSON does) but requires eventId,
// eventTime, eventType and the attributes object, and refuses keys it does
// not know (a misspelt field would otherwise vanish silently). Round trip
// is exact: history_from_json(to_json(h)) == h for every history whose
// enums name enumerators (and whose doubles are not NaN, which equals
// nothing).
#pragma once

#include <string>
#include <string_view>

#include "engine/history/history.h"
#include "sim/result.h"

namespace duro::engine {

// The JSON text of `history`: indented by two spaces when `pretty`, else on
// one line. Never throws on any history.
std::string to_json(const History& history, bool pretty);

// One event as one line of JSON (for messages: the validator's, replay's).
std::string to_json(const HistoryEvent& event);

// Reads to_json's form. Errors, never exceptions:
//   Error{kDecode, "JSON parse error at byte N: ..."} for text that is not JSON;
//   Error{kInvalidArgument, "events[3] (eventId 4): activityTaskScheduledEventAttributes.
//       startToCloseTimeout: expected a duration string like \"1.5s\", got 10"} for JSON
//       of the wrong shape: a wrong field type, an unknown event type or field, a
//       missing required field, a value out of range.
sim::Result<History> history_from_json(std::string_view json);

// Temporal's key for an event type's attributes:
// "activityTaskScheduledEventAttributes" for ActivityTaskScheduled.
std::string event_attributes_key(EventType type);

}  // namespace duro::engine
