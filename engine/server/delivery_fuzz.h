// Delivery fuzzing: for `duro fuzz`, moves where the events that come from
// outside a workflow — signals, activity results, child results, timers
// firing — land relative to its workflow tasks.
//
// Workflow code must make the same commands from the same history, however
// its events were batched into workflow tasks: an event that lands before
// a task starts is in that task; one that lands while it runs waits, in
// the buffer, for the next. Under delivery fuzzing a server holds each of
// those arrivals, and each workflow task's start, for a random time before
// applying it: a quarter of them not at all, the others for a time
// log-uniform between 100 µs and `hold_max`. So across seeds an event lands
// alone or with others, before, during or after any task near it, in every
// order with the events around it (tests/sdk/delivery_fuzz_test.cc: a
// result, a timer and a signal racing land in all 28 legal ways in 400
// seeds, in 2 without holds, in 24 when held only half the time).
// Everything is drawn from the node's seeded randomness: a finding
// reproduces from its seed.
//
// Holding is legal: it is what a slow network or a busy server does. It
// stays below the callers' RPC timeouts (ServerOptions::rpc_timeout), so
// that fuzzing moves events rather than failing calls.
#pragma once

#include "sim/env.h"

namespace duro::engine {

// Sleeps the calling fiber as above; returns at once when hold_max is 0
// (fuzzing off, the default).
void hold_delivery_for_fuzz(sim::Env& env, sim::Duration hold_max);

}  // namespace duro::engine
