// RapidCheck generators for the history model: any value of any event,
// command or part of one, written once for all of them by walking the
// DURO_CODEC_FIELDS lists (engine/history/reflect.h).
//
// Arbitrary, not valid: ids, times and references are random (the
// validator's tests build valid histories their own way). Strings are any
// bytes — text, multi-byte UTF-8, and byte soup — because every string
// field, payload or not, must survive the binary and JSON forms exactly.
//
// The generators are instantiated once, in history_arbitrary.cc: they are
// the costliest templates in the tree to compile.
#pragma once

#include <rapidcheck.h>

#include "engine/history/command.h"
#include "engine/history/event.h"
#include "engine/history/history.h"

namespace duro::engine::testing {

// An event of any type (each type equally likely), any id and time.
rc::Gen<HistoryEvent> gen_event();
// A command of any type.
rc::Gen<Command> gen_command();
// A handful of arbitrary events.
rc::Gen<History> gen_history();

}  // namespace duro::engine::testing
