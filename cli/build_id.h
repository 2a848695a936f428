// The build id: which duro recorded a history file or kept a failure.
//
// `git describe --always --dirty --abbrev=12` of the source tree when the
// binary was built ("7ae7d93c1f2e", "7ae7d93c1f2e-dirty"), or "unknown"
// outside a git checkout. Regenerated at every build (cli/build_id.cmake),
// rewritten only when it changes, so it costs a relink only then.
#pragma once

#include <string_view>

namespace duro::cli {

std::string_view build_id() noexcept;

}  // namespace duro::cli
