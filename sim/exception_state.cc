#include "sim/exception_state.h"

#include <cxxabi.h>

#include <utility>

namespace duro::sim {
namespace {

// The Itanium C++ ABI's layout of the per-thread exception-handling globals
// (section 2.2.2), which libstdc++ and libc++abi both follow; <cxxabi.h>
// declares the type without its fields.
struct EhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

}  // namespace

void ExceptionState::swap_with_thread() noexcept {
  auto* globals = reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
  std::swap(caught_, globals->caught_exceptions);
  std::swap(uncaught_, globals->uncaught_exceptions);
}

}  // namespace duro::sim
