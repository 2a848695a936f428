// Reading and writing the files a `duro` command is given, with BadInput
// (exit 2) naming the path and the reason when it cannot.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace duro::cli {

// The whole file. BadInput if it cannot be read or is larger than
// `bytes_max` (a history or a plan is megabytes at most; a path to
// something huge is a mistake, not input).
std::string read_file(const std::string& path, std::size_t bytes_max);

// Writes `bytes` to `path`, replacing it, creating missing parent
// directories. BadInput if it cannot.
void write_file(const std::string& path, const std::string& bytes);

// The files under `paths` whose names end in `extension`: a file is taken
// as it is (whatever its name), a directory is searched recursively. In
// sorted order, each once. BadInput for a path that does not exist.
std::vector<std::string> find_files(const std::vector<std::string>& paths, const std::string& extension);

}  // namespace duro::cli
