// AddressSanitizer's fiber-switch annotations, compiled to nothing without
// ASan.
//
// ASan tracks one stack per thread; every switch onto or off a fiber stack
// must be announced (start before the switch, finish right after it) or it
// reports false stack errors and loses real ones. A fiber that exits passes
// a null fake-stack slot so ASan frees that fiber's fake stack.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define DURO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DURO_ASAN 1
#endif
#endif

#if defined(DURO_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace duro::sim::sanitizer {

#if defined(DURO_ASAN)
inline constexpr bool kAddressSanitizer = true;

inline void start_switch(void** fake_stack_save, const void* bottom, std::size_t size) noexcept {
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
}
inline void finish_switch(void* fake_stack_save, const void** bottom_old,
                          std::size_t* size_old) noexcept {
  __sanitizer_finish_switch_fiber(fake_stack_save, bottom_old, size_old);
}
inline void unpoison(void* address, std::size_t size) noexcept {
  ASAN_UNPOISON_MEMORY_REGION(address, size);
}
inline void poison(void* address, std::size_t size) noexcept { ASAN_POISON_MEMORY_REGION(address, size); }
#else
inline constexpr bool kAddressSanitizer = false;

inline void start_switch(void**, const void*, std::size_t) noexcept {}
inline void finish_switch(void*, const void**, std::size_t*) noexcept {}
inline void unpoison(void*, std::size_t) noexcept {}
inline void poison(void*, std::size_t) noexcept {}
#endif

}  // namespace duro::sim::sanitizer
