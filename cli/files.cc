#include "cli/files.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "cli/bad_input.h"

namespace duro::cli {

namespace fs = std::filesystem;

std::string read_file(const std::string& path, std::size_t bytes_max) {
  std::error_code error;
  if (fs::is_directory(path, error)) throw BadInput{fmt::format("cannot read '{}': it is a directory", path)};
  const std::uintmax_t size = fs::file_size(path, error);
  if (error) throw BadInput{fmt::format("cannot read '{}': {}", path, error.message())};
  if (size > bytes_max) throw BadInput{fmt::format("cannot read '{}': {} bytes, more than {}", path, size, bytes_max)};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadInput{fmt::format("cannot read '{}': {}", path, std::strerror(errno))};
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<std::size_t>(in.gcount()) != bytes.size()) throw BadInput{fmt::format("cannot read '{}': short read", path)};
  return bytes;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::error_code error;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, error);
  if (error) throw BadInput{fmt::format("cannot create '{}': {}", parent.string(), error.message())};
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) throw BadInput{fmt::format("cannot write '{}'", path)};
}

std::vector<std::string> find_files(const std::vector<std::string>& paths, const std::string& extension) {
  std::vector<std::string> found;
  for (const std::string& path : paths) {
    std::error_code error;
    const fs::file_status status = fs::status(path, error);
    if (error || !fs::exists(status)) throw BadInput{fmt::format("'{}' does not exist", path)};
    if (!fs::is_directory(status)) {
      found.push_back(path);
      continue;
    }
    for (fs::recursive_directory_iterator it(path, error), end; !error && it != end; it.increment(error)) {
      if (it->is_regular_file() && it->path().string().ends_with(extension)) found.push_back(it->path().string());
    }
    if (error) throw BadInput{fmt::format("cannot list '{}': {}", path, error.message())};
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  return found;
}

}  // namespace duro::cli
