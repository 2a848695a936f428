#include "sim/trace.h"

#include <fmt/format.h>

namespace duro::sim {

void FileTraceLog::record(const TraceRecord& record) {
  fmt::print(file_, "{:>16} {:<12} f{:<6} {:<10} {}\n", format_duration(record.time - start_time_),
             record.node.empty() ? "-" : record.node, record.fiber, record.kind, record.detail);
}

}  // namespace duro::sim
