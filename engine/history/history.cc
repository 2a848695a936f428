#include "engine/history/history.h"

#include <string>
#include <utility>

#include <fmt/format.h>

#include "engine/history/reflect.h"
#include "sim/assert.h"

namespace duro::engine {
namespace {

// The first field anywhere inside `value` that is an enum holding a value
// that names no enumerator: its name into `field`, false. True if none.
template <typename T>
bool enums_named(const T& value, std::string_view name, std::string_view& field) {
  if constexpr (std::is_enum_v<T>) {
    if (enum_in_range(value)) return true;
    field = name;
    return false;
  } else if constexpr (kIsOptional<T>) {
    return !value.has_value() || enums_named(*value, name, field);
  } else if constexpr (kIsVector<T>) {
    for (const auto& element : value) {
      if (!enums_named(element, name, field)) return false;
    }
    return true;
  } else if constexpr (kIsMap<T>) {
    for (const auto& [key, mapped] : value) {
      if (!enums_named(key, name, field) || !enums_named(mapped, name, field)) return false;
    }
    return true;
  } else if constexpr (sim::detail::CodecDescribed<T>) {
    bool ok = true;
    sim::for_each_codec_field(value, [&](std::string_view member_name, const auto& member) {
      ok = ok && enums_named(member, member_name, field);
    });
    return ok;
  } else {
    return true;  // Scalars: every value is valid.
  }
}

}  // namespace

const HistoryEvent& History::append(sim::TimePoint time, EventAttributes attributes) {
  DURO_ASSERT_MSG(!closed(), "appending to a closed history");
  DURO_ASSERT_MSG(events.empty() || events.back().time <= time, "history time going backwards");
  DURO_ASSERT_MSG(events.empty() == std::holds_alternative<WorkflowExecutionStarted>(attributes),
                  "a history starts with WorkflowExecutionStarted, and only there");
  events.push_back(HistoryEvent{next_event_id(), time, std::move(attributes)});
  return events.back();
}

const HistoryEvent* History::find(EventId id) const noexcept {
  if (id < 1 || id > static_cast<EventId>(events.size())) return nullptr;
  const HistoryEvent& event = events[static_cast<std::size_t>(id - 1)];
  return event.event_id == id ? &event : nullptr;
}

const HistoryEvent* History::close_event() const noexcept {
  if (events.empty() || !is_close_event(events.back().type())) return nullptr;
  return &events.back();
}

void encode_events_append(std::string& output, std::span<const HistoryEvent> events) {
  // Mirrors Codec<std::vector<HistoryEvent>> (the same bytes) without
  // copying the events into a vector first.
  sim::Encoder encoder(output);
  encoder.write_count(events.size());
  encoder.enter_nested();
  for (const HistoryEvent& event : events) encoder.write(event);
  encoder.leave_nested();
}

std::string encode_events(std::span<const HistoryEvent> events) {
  // Grown in a scratch buffer, copied out once (see sim::EncodeScratch).
  sim::EncodeScratch scratch;
  encode_events_append(scratch.buffer(), events);
  return std::string(scratch.buffer());
}

sim::Result<std::vector<HistoryEvent>> decode_events(std::string_view bytes) {
  sim::Result<std::vector<HistoryEvent>> decoded = sim::decode<std::vector<HistoryEvent>>(bytes);
  if (!decoded.ok()) return decoded;
  const std::vector<HistoryEvent>& events = decoded.value();
  for (std::size_t i = 0; i < events.size(); i++) {
    std::string_view field;
    const bool named = std::visit(
        [&](const auto& attributes) { return enums_named(attributes, "attributes", field); }, events[i].attributes);
    if (!named) {
      return sim::Error{sim::ErrorCode::kDecode,
                        fmt::format("event {} (index {}, {}): field {} holds a value that names no enumerator",
                                    events[i].event_id, i, event_type_name(events[i].type()), field)};
    }
  }
  return decoded;
}

}  // namespace duro::engine
