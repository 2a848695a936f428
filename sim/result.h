// Errors and results that cross simulated boundaries.
//
// Simulated waits fail in a few well-defined ways (timed out, the other side
// died, the wait was cancelled); Result<T> carries either a value or an Error
// naming which, so callers decide about retries the way a real client does.
#pragma once

#include <string>
#include <utility>
#include <variant>

#include "sim/assert.h"

namespace duro::sim {

enum class ErrorCode : std::uint8_t {
  kTimeout,        // No answer before the deadline; the outcome is unknown.
  kBrokenPromise,  // The promise was destroyed unfulfilled (its owner died).
  kCancelled,      // The waiter or the work was cancelled.
  kKilled,         // The waiting fiber is being unwound (its node crashed).
  kClosed,         // The channel was closed.
  kOverloaded,     // Rejected at a bound rather than queued without limit.
  kApplication,    // Raised by the code on the other side; see message.
  kUnavailable,    // Nobody is listening there, or the peer went away.
  kNotFound,       // No such file, method, or record.
  kAlreadyExists,  // Create of something that exists.
  kIoError,        // The device failed the operation (injected disk error).
  kNoSpace,        // The disk is full.
  kInvalidArgument,  // The call itself is malformed.
  kDecode,         // Bytes that do not decode: truncated, oversized, garbage.
};

const char* error_code_name(ErrorCode code) noexcept;

struct Error {
  ErrorCode code;
  std::string message;

  bool operator==(const Error&) const = default;
};

// "timeout", or "application: <message>".
std::string to_string(const Error& error);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT: implicit by design.
  Result(Error error) : data_(std::move(error)) {}  // NOLINT

  bool ok() const noexcept { return data_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    DURO_ASSERT_MSG(ok(), "Result::value() on an error");
    return std::get<0>(data_);
  }
  const T& value() const& {
    DURO_ASSERT_MSG(ok(), "Result::value() on an error");
    return std::get<0>(data_);
  }
  T&& value() && {
    DURO_ASSERT_MSG(ok(), "Result::value() on an error");
    return std::get<0>(std::move(data_));
  }
  const Error& error() const {
    DURO_ASSERT_MSG(!ok(), "Result::error() on a value");
    return std::get<1>(data_);
  }

 private:
  std::variant<T, Error> data_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  const Error& error() const {
    DURO_ASSERT_MSG(!ok_, "Result::error() on a value");
    return error_;
  }

 private:
  Error error_{ErrorCode::kApplication, {}};
  bool ok_ = true;
};

}  // namespace duro::sim
