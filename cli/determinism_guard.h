// The determinism guard of `duro fuzz`: catches workflow code that reaches
// the real world instead of going through its context.
//
// The duro binary defines (interposes) the C library's entry points to the
// real clock (clock_gettime, gettimeofday, time), real randomness (rand,
// random, getrandom, getentropy, std::random_device), threads
// (pthread_create, which std::thread uses) and files and sockets (open,
// openat, fopen, socket, connect): the dynamic linker binds every call in
// the process, libstdc++'s included, to these definitions, which forward to
// the real ones. While the guard is armed, a call made with workflow code
// running on the thread (sdk::running_workflow()) is also recorded, with
// the workflow's type and id, the function that made the call and the
// workflow's last SDK call. Outside workflow code, or unarmed, a call costs
// one relaxed atomic load more than before.
//
// This works for code linked into the binary (the duro binary, a user's
// runner built the same way, the test programs): the definitions live in
// guard_interpose.cc, which the fuzz command pulls in.
#pragma once

#include <string>
#include <vector>

namespace duro::cli {

struct GuardFinding {
  std::string call;           // "clock_gettime", "std::random_device", "pthread_create", ...
  std::string workflow_type;
  std::string workflow_id;
  std::string caller;         // The function that made the call, if the binary's symbols say.
  std::string last_sdk_call;  // "file.cc:42 (activity)": the workflow's last command before it.
};

// Records calls from workflow code from now on (or stops).
void arm_determinism_guard(bool armed) noexcept;
// The calls recorded since the last take, each (call, type, caller) once.
std::vector<GuardFinding> take_guard_findings();

}  // namespace duro::cli
