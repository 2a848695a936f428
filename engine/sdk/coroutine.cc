#include "engine/sdk/coroutine.h"

#include <utility>

#include "sim/assert.h"
#include "sim/sanitizer.h"

namespace duro::sdk {
namespace {

thread_local Coroutine* current_coroutine = nullptr;

}  // namespace

Coroutine::Coroutine(sim::StackPool& stacks, std::function<void()> body) {
  const boost::context::stack_context stack = stacks.allocate();
  stack_bottom_ = static_cast<const char*>(stack.sp) - stack.size;
  stack_size_bytes_ = stack.size;
  fiber_ = boost::context::fiber(
      std::allocator_arg, boost::context::preallocated(stack.sp, stack.size, stack),
      sim::PooledStackAllocator(&stacks),
      [this, body = std::move(body)](boost::context::fiber&& driver) mutable {
        // First instructions on the new stack: finish the switch ASan was
        // told about, learning the driver's stack.
        sim::sanitizer::finish_switch(nullptr, &driver_stack_bottom_, &driver_stack_size_bytes_);
        driver_ = std::move(driver);
        if (!unwinding_) {
          try {
            std::function<void()> run = std::move(body);  // Its captures die on this stack.
            run();
          } catch (const CoroutineUnwind&) {
            // Destroyed while suspended: unwinding was the point.
          } catch (...) {
            error_ = std::current_exception();
          }
        }
        done_ = true;
        // Null fake-stack slot: this stack is not coming back.
        sim::sanitizer::start_switch(nullptr, driver_stack_bottom_, driver_stack_size_bytes_);
        return std::move(driver_);
      });
}

Coroutine::~Coroutine() {
  if (!done_) {
    unwinding_ = true;
    resume();
  }
  DURO_ASSERT(done_);
}

void Coroutine::resume() {
  DURO_ASSERT_MSG(current_coroutine == nullptr, "a coroutine is resumed only by its driver");
  DURO_ASSERT(!done_ && fiber_);
  current_coroutine = this;
  sim::sanitizer::start_switch(&driver_fake_stack_, stack_bottom_, stack_size_bytes_);
  exceptions_.swap_with_thread();
  fiber_ = std::move(fiber_).resume();
  exceptions_.swap_with_thread();
  sim::sanitizer::finish_switch(driver_fake_stack_, nullptr, nullptr);
  current_coroutine = nullptr;
  DURO_ASSERT(done_ == !fiber_);
  DURO_ASSERT_MSG(!done_ || exceptions_.empty(), "a coroutine ended while handling an exception");
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void Coroutine::suspend() {
  Coroutine* self = current_coroutine;
  DURO_ASSERT_MSG(self != nullptr, "suspend() outside a coroutine");
  void* fake_stack = nullptr;
  sim::sanitizer::start_switch(&fake_stack, self->driver_stack_bottom_, self->driver_stack_size_bytes_);
  self->driver_ = std::move(self->driver_).resume();
  sim::sanitizer::finish_switch(fake_stack, &self->driver_stack_bottom_, &self->driver_stack_size_bytes_);
  if (self->unwinding_) throw CoroutineUnwind{};
}

Coroutine* Coroutine::current() noexcept { return current_coroutine; }

}  // namespace duro::sdk
