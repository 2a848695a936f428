// The interposed C library functions of the determinism guard
// (determinism_guard.h). This file includes no C library header that
// declares them, so each definition may spell its parameters as plain
// pointers: for extern "C" symbols only the name links, and every pointer
// is passed alike on the ABIs Duro builds for. Not even <atomic>, whose
// headers bring <stdio.h> along: the compiler's __atomic builtins instead.
#include <dlfcn.h>

#include <cstdarg>
#include <cstddef>

namespace duro::cli::guard_detail {

// Read and written with __atomic builtins, relaxed: a flag, not a fence.
bool armed = false;

// Implemented in determinism_guard.cc (which may include anything).
void hit(const char* call, void* return_address);

// The next definition of `name` after this binary: the C library's (or a
// sanitizer's interceptor, which then calls the C library's).
template <typename Fn>
Fn next(const char* name, Fn& cache) {
  Fn fn = __atomic_load_n(&cache, __ATOMIC_RELAXED);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
    __atomic_store_n(&cache, fn, __ATOMIC_RELAXED);
  }
  return fn;
}

inline void check(const char* call) {
  if (__atomic_load_n(&armed, __ATOMIC_RELAXED)) hit(call, nullptr);
}

}  // namespace duro::cli::guard_detail

using duro::cli::guard_detail::check;
using duro::cli::guard_detail::next;

#define DURO_FORWARD(ret, name, params, args)                 \
  extern "C" ret name params {                                \
    check(#name);                                             \
    static ret(*real) params = nullptr;                       \
    return next(#name, real) args;                            \
  }

// The real clock.
DURO_FORWARD(int, clock_gettime, (int clock, void* time), (clock, time))
DURO_FORWARD(int, gettimeofday, (void* time, void* zone), (time, zone))
DURO_FORWARD(long, time, (long* out), (out))
// Real randomness.
DURO_FORWARD(int, rand, (), ())
DURO_FORWARD(long, random, (), ())
DURO_FORWARD(long, getrandom, (void* buffer, std::size_t length, unsigned flags), (buffer, length, flags))
DURO_FORWARD(int, getentropy, (void* buffer, std::size_t length), (buffer, length))
// Threads.
DURO_FORWARD(int, pthread_create, (void* thread, const void* attributes, void* (*start)(void*), void* argument),
             (thread, attributes, start, argument))
// Files and sockets.
DURO_FORWARD(void*, fopen, (const char* path, const char* mode), (path, mode))
DURO_FORWARD(void*, fopen64, (const char* path, const char* mode), (path, mode))
DURO_FORWARD(int, socket, (int domain, int type, int protocol), (domain, type, protocol))
DURO_FORWARD(int, connect, (int socket, const void* address, unsigned length), (socket, address, length))

// open and openat take a mode only when they may create a file (O_CREAT or
// O_TMPFILE, whose values are Linux's, fixed in its ABI).
namespace {
constexpr int kOCreat = 0100;
constexpr int kOTmpFile = 020200000;
bool takes_mode(int flags) { return (flags & kOCreat) != 0 || (flags & kOTmpFile) == kOTmpFile; }
}  // namespace

// Declares `mode`: the variadic argument after `flags` (its last named
// parameter), or 0 when the call passed none. A macro: va_start must run in
// the variadic function itself.
#define DURO_READ_MODE(flags)      \
  unsigned mode = 0;               \
  if (takes_mode(flags)) {         \
    va_list args;                  \
    va_start(args, flags);         \
    mode = va_arg(args, unsigned); \
    va_end(args);                  \
  }

extern "C" int open(const char* path, int flags, ...) {
  check("open");
  DURO_READ_MODE(flags);
  static int (*real)(const char*, int, ...) = nullptr;
  return next("open", real)(path, flags, mode);
}

extern "C" int open64(const char* path, int flags, ...) {
  check("open64");
  DURO_READ_MODE(flags);
  static int (*real)(const char*, int, ...) = nullptr;
  return next("open64", real)(path, flags, mode);
}

extern "C" int openat(int directory, const char* path, int flags, ...) {
  check("openat");
  DURO_READ_MODE(flags);
  static int (*real)(int, const char*, int, ...) = nullptr;
  return next("openat", real)(directory, path, flags, mode);
}

// std::random_device draws through this member of libstdc++ (operator()
// is inline and calls it); its mangled name is part of libstdc++'s ABI.
extern "C" unsigned _ZNSt13random_device9_M_getvalEv(void* self) {
  check("std::random_device");
  static unsigned (*real)(void*) = nullptr;
  return next("_ZNSt13random_device9_M_getvalEv", real)(self);
}

namespace duro::cli::guard_detail {
// Referenced by determinism_guard.cc so that a binary that arms the guard
// always links this file.
void link_interposers() {}
}  // namespace duro::cli::guard_detail
