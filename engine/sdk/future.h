// Future<T>: the result of something a workflow started and has not waited
// for yet (an activity, a timer, a child, a coroutine).
//
// Futures are deterministic: only history resolves them, in history's
// order, and workflow code sees a resolution only at a workflow task — the
// same point on every replay. get() blocks the calling workflow coroutine
// until the future is ready, then returns the value or throws the failure
// (ActivityError, CanceledError, ...). A future may be read any number of
// times. Wait for several with WorkflowContext::wait_all / wait_any.
#pragma once

#include <exception>
#include <memory>
#include <source_location>
#include <utility>

#include "engine/history/failure.h"
#include "engine/sdk/payload.h"

namespace duro::sdk {

namespace detail {

// The shared state of a future: written by the SDK (the promise side),
// read by workflow code.
struct FutureCore {
  bool ready = false;
  engine::Payload value;  // Encoded: decoded as T by each get().
  std::exception_ptr error;

  void resolve(engine::Payload result) {
    ready = true;
    value = std::move(result);
  }
  void fail(std::exception_ptr failure) {
    ready = true;
    error = std::move(failure);
  }
};

// Blocks the current workflow coroutine until `core` is ready (in
// workflow_run.cc: it is the run that knows how to wait).
void await_future(const FutureCore& core, const std::source_location& location);

}  // namespace detail

class FutureBase {
 public:
  FutureBase() = default;
  explicit FutureBase(std::shared_ptr<detail::FutureCore> core) : core_(std::move(core)) {}

  bool valid() const noexcept { return core_ != nullptr; }
  bool ready() const noexcept { return core_ != nullptr && core_->ready; }
  // Ready and failed.
  bool failed() const noexcept { return ready() && core_->error != nullptr; }
  // Blocks until ready; never throws the failure.
  void wait(std::source_location location = std::source_location::current()) const {
    detail::await_future(*core_, location);
  }

 protected:
  const detail::FutureCore& core() const noexcept { return *core_; }
  std::shared_ptr<detail::FutureCore> core_;
};

template <typename T>
class Future : public FutureBase {
 public:
  using FutureBase::FutureBase;

  T get(std::source_location location = std::source_location::current()) const {
    wait(location);
    if (core().error) std::rethrow_exception(core().error);
    return from_payload<T>(core().value);
  }
};

template <>
class Future<void> : public FutureBase {
 public:
  using FutureBase::FutureBase;

  void get(std::source_location location = std::source_location::current()) const {
    wait(location);
    if (core().error) std::rethrow_exception(core().error);
  }
};

}  // namespace duro::sdk
