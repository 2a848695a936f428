// Assertions that stay on in every build.
//
// An assertion turns a silent corruption into a loud, reproducible failure:
// in simulation the failing seed is printed before the run starts, so an
// assertion is a bug report with a reproduction attached. They are cheap
// (a predictable branch) and are never compiled out, Release included.
#pragma once

namespace duro::sim {

// Prints "assertion failed: <expr> at file:line (<message>)" to stderr, then
// calls the installed failure hook (if any) and aborts. Never returns.
[[noreturn]] void assert_fail(const char* expression, const char* file, int line,
                              const char* message) noexcept;

// A hook run once before abort(): the CLI uses it to print the seed and the
// command that reproduces the run. Must not allocate unboundedly or throw.
using AssertHook = void (*)();
void set_assert_hook(AssertHook hook) noexcept;

}  // namespace duro::sim

#define DURO_ASSERT(expr)                                                        \
  do {                                                                           \
    if (!(expr)) [[unlikely]]                                                    \
      ::duro::sim::assert_fail(#expr, __FILE__, __LINE__, nullptr);              \
  } while (false)

#define DURO_ASSERT_MSG(expr, message)                                           \
  do {                                                                           \
    if (!(expr)) [[unlikely]]                                                    \
      ::duro::sim::assert_fail(#expr, __FILE__, __LINE__, (message));            \
  } while (false)
