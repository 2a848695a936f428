#include "cli/progress.h"

#include <fmt/format.h>

#include <string>

namespace duro::cli {
namespace {

std::string eta(double seconds) {
  if (seconds < 0) return "?";
  const auto whole = static_cast<std::uint64_t>(seconds + 0.5);
  if (whole >= 3600) return fmt::format("{}h{:02}m", whole / 3600, whole % 3600 / 60);
  if (whole >= 60) return fmt::format("{}m{:02}s", whole / 60, whole % 60);
  return fmt::format("{}s", whole);
}

}  // namespace

Progress::Progress(std::FILE* out, std::uint64_t total, bool terminal)
    : out_(out), total_(total), terminal_(terminal), start_(std::chrono::steady_clock::now()) {}

std::string Progress::line() const {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
  const double left = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1;
  const int width = static_cast<int>(fmt::formatted_size("{}", total_));
  return fmt::format("[{:>{}}/{}] {:3}%  {} passed  {} failed  {:.1f} seeds/s  ETA {}", done_, width, total_,
                     total_ == 0 ? 100 : done_ * 100 / total_, done_ - failed_, failed_, rate, eta(left));
}

void Progress::draw(bool force) {
  if (terminal_) {
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - drawn_ < std::chrono::milliseconds{100}) return;
    drawn_ = now;
    fmt::print(out_, "\r\033[K{}", line());
    line_open_ = true;
  } else {
    const std::uint64_t tenth = total_ == 0 ? 10 : done_ * 10 / total_;
    if (!force && tenth == last_tenth_) return;
    last_tenth_ = tenth;
    fmt::print(out_, "{}\n", line());
  }
  std::fflush(out_);
}

void Progress::seed_done(bool passed) {
  done_++;
  if (!passed) failed_++;
  draw(false);
}

void Progress::note(std::string_view text) {
  if (line_open_) fmt::print(out_, "\r\033[K");
  fmt::print(out_, "{}\n", text);
  line_open_ = false;
  if (terminal_) draw(true);
  std::fflush(out_);
}

void Progress::finish() {
  if (terminal_) {
    draw(true);
    fmt::print(out_, "\n");
    line_open_ = false;
  } else if (last_tenth_ != 10) {
    draw(true);
  }
  std::fflush(out_);
}

}  // namespace duro::cli
