// How Duro's programs tune mimalloc, the allocator CMakeLists.txt links
// into each of them (duro_link_allocator adds this file to the program).
//
// A simulation's memory only grows, then is dropped whole when its world
// is: the store's records, the simulated disk's bytes, message buffers by
// the thousand. What costs there is not malloc's instructions but the
// kernel's page faults: each first touch of a 4 KiB page traps, and on a
// virtual machine that traps to the hypervisor too. Measured on this
// project's CI machines (a loop writing one byte per page of a fresh
// 200 MB mapping): ~11 us a page; 0.7 us a page when the mapping is
// madvised to transparent huge pages. So:
//
// - large_os_pages: mimalloc asks for huge pages on the segments it maps
//   (hugetlbfs pages if the host reserved any, else madvise(MADV_HUGEPAGE)
//   for transparent ones): one fault per 2 MiB instead of 512. Where the
//   kernel has neither, it costs a failed mmap now and then.
// - no decommit (allow_decommit off in mimalloc 2.0; purge_delay -1 from
//   2.1, which renamed it): memory a finished simulation (or a
//   compaction's buffer) frees stays mapped for the next one, instead of
//   going back to the kernel after 25 ms and being faulted in again; that
//   also keeps huge pages whole.
//
// Measured (docs/engine.md, "Measured"; MIMALLOC_* variables against none,
// paired runs): BM_workflow_end_to_end_1_server +21% on a process's first
// simulation, `duro run --all --seeds 2 --jobs 1` 18% less elapsed;
// BM_open_workflows_memory/100000/10000 RSS 592 -> 723-735 MiB (freed
// memory is no longer handed back; the target is 2 GiB).
//
// Set here, after the C++ runtime's own start-up allocations, the options
// miss mimalloc's first segment (32 MiB, 4 KiB pages); every later one
// gets them. The environment variables, read at mimalloc's start, cover
// the first segment too.
//
// Defaults only: MIMALLOC_LARGE_OS_PAGES=0, or MIMALLOC_ALLOW_DECOMMIT=1
// (2.0) / MIMALLOC_PURGE_DELAY (2.1 on), in the environment still win. Nothing here can change what a simulation
// computes: addresses are not inputs (fuzz mode checks that).
#include <mimalloc.h>

namespace {

// Before main() and the program's static constructors. Whenever it runs
// relative to mimalloc's own start, a default yields to an option the
// environment set, and an option is read when mimalloc next maps memory:
// so it covers every segment mapped from here on.
[[gnu::constructor(101)]] void tune_allocator() {
  mi_option_set_default(mi_option_large_os_pages, 1);
#if MI_MALLOC_VERSION < 210
  mi_option_set_default(mi_option_allow_decommit, 0);
#else
  mi_option_set_default(mi_option_purge_delay, -1);
#endif
}

}  // namespace
