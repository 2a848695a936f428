#include "cli/determinism_guard.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <execinfo.h>
#include <fmt/format.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>

#include "engine/sdk/workflow_run.h"

namespace duro::cli {

namespace guard_detail {

extern bool armed;
void link_interposers();

namespace {

// A bound on what one run records: a workflow calling the clock in a loop
// must not fill memory.
constexpr std::size_t kFindingsMax = 1000;
constexpr int kFramesMax = 8;

thread_local bool in_hit = false;
std::vector<GuardFinding> findings;
std::set<std::tuple<std::string, std::string, std::string>> seen;

// Whether `name` is the C or C++ runtime's, or this guard's: the frame to
// name is the first outside them.
bool runtime_object(const char* object) {
  const std::string_view path(object == nullptr ? "" : object);
  return path.find("libc.so") != std::string_view::npos || path.find("libstdc++") != std::string_view::npos ||
         path.find("libasan") != std::string_view::npos || path.find("libubsan") != std::string_view::npos;
}

// Whether `object` is the memory allocator (mimalloc, linked into Duro's
// programs): it reads the clock to pace returning freed memory to the
// system, which moves where later objects land and never what workflow
// code computes (fuzz mode checks that the code's results do not depend
// on where its objects land). Its calls are not the code's.
bool allocator_object(const char* object) {
  return std::string_view(object == nullptr ? "" : object).find("libmimalloc") != std::string_view::npos;
}

std::string demangled(const char* symbol) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(symbol, nullptr, nullptr, &status), std::free);
  return status == 0 && name != nullptr ? std::string(name.get()) : std::string(symbol);
}

// The function that made the call, or nothing when the allocator did.
std::optional<std::string> caller_name(void* return_address) {
  void* frames[kFramesMax];
  const int count = ::backtrace(frames, kFramesMax);
  // Frame 0 is hit(), 1 check()'s caller (the interposer); after them, the
  // first frame outside the runtime made the call.
  for (int i = 2; i < count; i++) {
    Dl_info info{};
    if (::dladdr(frames[i], &info) == 0) continue;
    if (allocator_object(info.dli_fname)) return std::nullopt;
    if (runtime_object(info.dli_fname)) continue;
    if (info.dli_sname != nullptr) return demangled(info.dli_sname);
    // A function without a dynamic symbol (a lambda, anything with
    // internal linkage): its offset, and how to name it.
    const char* object = info.dli_fname != nullptr ? info.dli_fname : "?";
    const std::uintptr_t offset =
        reinterpret_cast<std::uintptr_t>(frames[i]) - reinterpret_cast<std::uintptr_t>(info.dli_fbase);
    return fmt::format("{}+{:#x} (`addr2line -Cfe {} {:#x}` names it)", object, offset, object, offset);
  }
  (void)return_address;
  return "?";
}

}  // namespace

void hit(const char* call, void* return_address) {
  if (in_hit) return;
  const sdk::WorkflowRun* run = sdk::running_workflow();
  if (run == nullptr) return;
  in_hit = true;
  std::optional<std::string> caller = caller_name(return_address);
  const std::string& type = run->info().workflow_type;
  if (caller && findings.size() < kFindingsMax && seen.emplace(call, type, *caller).second) {
    std::optional<sdk::CodeLocation> last = run->last_command_location();
    findings.push_back(GuardFinding{call, type, run->info().workflow_id, std::move(*caller),
                                    last ? fmt::format("{}:{} ({})", last->file, last->line, last->call)
                                         : std::string("none yet")});
  }
  in_hit = false;
}

}  // namespace guard_detail

void arm_determinism_guard(bool armed) noexcept {
  guard_detail::link_interposers();
  __atomic_store_n(&guard_detail::armed, armed, __ATOMIC_RELAXED);
}

std::vector<GuardFinding> take_guard_findings() {
  std::vector<GuardFinding> taken = std::move(guard_detail::findings);
  guard_detail::findings.clear();
  guard_detail::seen.clear();
  return taken;
}

}  // namespace duro::cli
