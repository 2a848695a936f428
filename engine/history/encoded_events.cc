#include "engine/history/encoded_events.h"

#include "engine/history/history.h"
#include "sim/assert.h"

namespace duro::engine {

EncodedEvents encode_events_forwarded(std::span<const HistoryEvent> events) {
  if (events.empty()) return {};
  return EncodedEvents{encode_events(events)};
}

sim::Result<std::vector<HistoryEvent>> decode_events(const EncodedEvents& events) {
  if (events.empty()) return std::vector<HistoryEvent>{};
  return decode_events(std::string_view{events.bytes});
}

void EncodedEventsWriter::append_batch(std::string_view batch, std::uint64_t event_count) {
  sim::Decoder decoder(batch);
  std::uint64_t count = 0;
  const bool read = decoder.read_varint64(count);
  DURO_ASSERT_MSG(read && count == event_count, "a history batch's count disagrees with its bytes");
  body_.buffer().append(batch.substr(decoder.offset_bytes()));
  count_ += event_count;
}

void EncodedEventsWriter::append(const HistoryEvent& event) {
  sim::Encoder encoder(body_.buffer());
  // As an element of the vector the bytes decode as (encode_events_append).
  encoder.enter_nested();
  encoder.write(event);
  encoder.leave_nested();
  count_++;
}

EncodedEvents EncodedEventsWriter::finish() && {
  EncodedEvents events;
  if (count_ == 0) return events;
  events.bytes.reserve(body_.buffer().size() + sim::kVarint64BytesMax);
  sim::Encoder encoder(events.bytes);
  encoder.write_count(count_);
  events.bytes.append(body_.buffer());
  return events;
}

}  // namespace duro::engine
