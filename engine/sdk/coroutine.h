// A workflow coroutine: a function run on its own stack, switched to and
// from by exactly one driver.
//
// Workflow code is ordinary blocking C++. The worker drives it: resume()
// runs the body until it calls suspend() (it waits for something history
// has not delivered yet) or returns. The driver is whatever calls resume()
// — a simulator fiber in a worker, plain code in the offline replayer —
// so workflow coroutines are independent of the simulator's scheduling:
// replaying a history runs the same switches whoever drives it.
//
// Destroying a suspended coroutine unwinds it: suspend() throws
// CoroutineUnwind (not a std::exception; code that catches `...` must
// rethrow) so the body's destructors run. An exception escaping the body is
// rethrown from the resume() that ran it. The body may suspend inside a
// catch block: each coroutine keeps the exceptions it is handling.
#pragma once

#include <boost/context/fiber.hpp>
#include <exception>
#include <functional>

#include "sim/exception_state.h"
#include "sim/stack_pool.h"

namespace duro::sdk {

struct CoroutineUnwind {};

class Coroutine {
 public:
  Coroutine(sim::StackPool& stacks, std::function<void()> body);
  ~Coroutine();
  Coroutine(const Coroutine&) = delete;
  Coroutine& operator=(const Coroutine&) = delete;

  // Runs the body until it suspends or finishes. Not from inside a
  // coroutine.
  void resume();
  bool done() const noexcept { return done_; }

  // From inside a coroutine's body: back to the driver, until the next
  // resume(). Throws CoroutineUnwind when the coroutine is being destroyed.
  static void suspend();
  // The coroutine running on this thread, or nullptr.
  static Coroutine* current() noexcept;

 private:
  boost::context::fiber fiber_;   // The coroutine, while suspended.
  boost::context::fiber driver_;  // The driver, while the coroutine runs.
  // The body's exceptions being handled, while it is suspended: it may
  // suspend inside a catch block (sim/exception_state.h).
  sim::ExceptionState exceptions_;
  const void* stack_bottom_ = nullptr;
  std::size_t stack_size_bytes_ = 0;
  const void* driver_stack_bottom_ = nullptr;
  std::size_t driver_stack_size_bytes_ = 0;
  void* driver_fake_stack_ = nullptr;
  std::exception_ptr error_;
  bool done_ = false;
  bool unwinding_ = false;
};

}  // namespace duro::sdk
