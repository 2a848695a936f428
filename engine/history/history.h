// A run's history as one value, and the binary form the store keeps.
//
// History is what the server appends to, the store persists in batches
// (HistoryBatch::events holds encode_events() bytes), the worker replays,
// `duro history show` prints (history_json.h) and the end-to-end tests
// check (history_validator.h). Its rules — ids dense from 1, times never
// going back, exactly one closing event and nothing after it — are stated
// in event.h and checked by validate_history().
//
// Binary form: sim::encode of the event structs (event.h; the codec is
// sim/codec.h). A batch is a varint count, then the events: exactly the
// encoding of a std::vector<HistoryEvent>, and of a History. Compatibility
// rules are event.h's: append only.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/history/event.h"
#include "sim/clock.h"
#include "sim/codec.h"
#include "sim/result.h"

namespace duro::engine {

struct History {
  std::vector<HistoryEvent> events;

  // The id the next appended event gets: ids are dense from 1.
  EventId next_event_id() const noexcept { return static_cast<EventId>(events.size()) + 1; }

  // Appends an event with the next id. Asserts the rules a writer must
  // keep: time never goes back, nothing after the closing event.
  const HistoryEvent& append(sim::TimePoint time, EventAttributes attributes);

  // The event with id `id`, or nullptr. O(1): ids are dense, so event
  // `id` is at index id - 1 (checked, so a malformed history gives
  // nullptr rather than the wrong event).
  const HistoryEvent* find(EventId id) const noexcept;

  // The closing event (the last event, if it closes the run), or nullptr
  // while the run is open.
  const HistoryEvent* close_event() const noexcept;
  bool closed() const noexcept { return close_event() != nullptr; }

  bool operator==(const History&) const = default;
};
DURO_CODEC_FIELDS(History, events);

// The bytes of a batch of events: a varint count, then each event. The
// same bytes as sim::encode(std::vector<HistoryEvent>{...}).
std::string encode_events(std::span<const HistoryEvent> events);

// Appends to `output` instead (no temporary string).
void encode_events_append(std::string& output, std::span<const HistoryEvent> events);

// The inverse: Error{kDecode, "... at byte N"} for bytes that do not
// decode (truncated, garbage, trailing bytes), and for an enum field
// holding a value that names no enumerator (the codec leaves that check
// to the receiver: this is it), with the event's index and the field.
sim::Result<std::vector<HistoryEvent>> decode_events(std::string_view bytes);

}  // namespace duro::engine
