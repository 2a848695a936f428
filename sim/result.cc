#include "sim/result.h"

namespace duro::sim {

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kBrokenPromise: return "broken_promise";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kKilled: return "killed";
    case ErrorCode::kClosed: return "closed";
    case ErrorCode::kOverloaded: return "overloaded";
    case ErrorCode::kApplication: return "application";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kIoError: return "io_error";
    case ErrorCode::kNoSpace: return "no_space";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kDecode: return "decode";
  }
  return "unknown";
}

std::string to_string(const Error& error) {
  std::string out = error_code_name(error.code);
  if (!error.message.empty()) {
    out += ": ";
    out += error.message;
  }
  return out;
}

}  // namespace duro::sim
