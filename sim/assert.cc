#include "sim/assert.h"

#include <cstdio>
#include <cstdlib>

namespace duro::sim {

namespace {
AssertHook assert_hook = nullptr;
}  // namespace

void set_assert_hook(AssertHook hook) noexcept { assert_hook = hook; }

void assert_fail(const char* expression, const char* file, int line,
                 const char* message) noexcept {
  std::fprintf(stderr, "duro: assertion failed: %s at %s:%d%s%s%s\n", expression, file, line,
               message != nullptr ? " (" : "", message != nullptr ? message : "",
               message != nullptr ? ")" : "");
  std::fflush(stderr);
  if (AssertHook hook = assert_hook; hook != nullptr) {
    assert_hook = nullptr;  // An assertion inside the hook must not recurse.
    hook();
  }
  std::abort();
}

}  // namespace duro::sim
