// EncodedEvents: history events in their binary form, carried by servers
// that pass them on without looking at them.
//
// A worker's workflow task holds the events it replays. History reads them
// from batches that are already bytes (HistoryBatch::events), matching and
// the frontend only forward them, and the worker alone needs them as
// structs: so the poll reply carries bytes, and decoding happens once, at
// the worker, instead of at every hop.
//
//   EncodedEventsWriter writer;
//   writer.append_batch(batch.events, batch.event_count);  // no decoding
//   writer.append(event);                                  // one event
//   EncodedEvents events = std::move(writer).finish();
//   sim::Result<std::vector<HistoryEvent>> decoded = decode_events(events);
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/history/event.h"
#include "sim/codec.h"
#include "sim/result.h"

namespace duro::engine {

struct EncodedEvents {
  // encode_events() bytes (a varint count, then the events); empty for no
  // events at all.
  std::string bytes;

  bool empty() const noexcept { return bytes.empty(); }
  bool operator==(const EncodedEvents&) const = default;
};
DURO_CODEC_FIELDS(EncodedEvents, bytes);

// `events` in binary form.
EncodedEvents encode_events_forwarded(std::span<const HistoryEvent> events);

// The events, with decode_events()'s checks; an empty EncodedEvents is none.
sim::Result<std::vector<HistoryEvent>> decode_events(const EncodedEvents& events);

// Joins events, whole batches and single ones, in the order appended.
class EncodedEventsWriter {
 public:
  // `batch`: encode_events() bytes of exactly `event_count` events. Copied
  // as they are, after their count; a count that disagrees is a bug of the
  // caller (asserted).
  void append_batch(std::string_view batch, std::uint64_t event_count);
  void append(const HistoryEvent& event);

  std::uint64_t count() const noexcept { return count_; }
  // The bytes of the events so far (the count comes on top at finish()).
  std::size_t bytes() const noexcept { return body_.buffer().size(); }
  EncodedEvents finish() &&;

 private:
  // The events, without their count: grown in a scratch buffer, copied
  // out once at finish(). Held while the writer lives: a writer is a
  // local that fills and finishes without waiting.
  sim::EncodeScratch body_;
  std::uint64_t count_ = 0;
};

}  // namespace duro::engine
