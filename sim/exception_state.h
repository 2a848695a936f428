// The exceptions a fiber is handling, kept with the fiber across switches.
//
// The C++ runtime keeps the exceptions being handled per thread, not per
// fiber: the stack of caught exceptions that `throw;` rethrows and
// std::current_exception() reads, and the count std::uncaught_exceptions()
// returns (Itanium C++ ABI, __cxa_eh_globals). A fiber that suspends inside
// a catch block — a workflow compensating for a failed activity, waiting on
// the compensations in its handler — leaves its exception on that stack;
// another fiber's catch that ends meanwhile would then end (and free) the
// wrong exception, and `throw;` would rethrow another fiber's. So whoever
// switches to a fiber swaps the thread's state with the fiber's around the
// switch:
//
//   state.swap_with_thread();       // the thread now holds the fiber's
//   fiber = std::move(fiber).resume();
//   state.swap_with_thread();       // and the switcher's again
//
// A fiber's state starts empty and is empty again when the fiber ends.
#pragma once

namespace duro::sim {

class ExceptionState {
 public:
  void swap_with_thread() noexcept;
  // True when no exception is being handled or thrown in it.
  bool empty() const noexcept { return caught_ == nullptr && uncaught_ == 0; }

 private:
  // The ABI's __cxa_eh_globals, field for field.
  void* caught_ = nullptr;
  unsigned int uncaught_ = 0;
};

}  // namespace duro::sim
