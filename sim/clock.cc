#include "sim/clock.h"

#include <fmt/format.h>

#include "sim/assert.h"

namespace duro::sim {

namespace detail {
void no_current_simulation() noexcept {
  assert_fail("current_time_ns != nullptr", __FILE__, __LINE__, "sim::Clock::now() called with no simulation running");
}
}  // namespace detail

std::string format_duration(Duration d) {
  std::int64_t ns = d.count();
  std::string sign;
  if (ns < 0) {
    sign = "-";
    // Negating INT64_MIN overflows; it is 292 years, far past any run.
    DURO_ASSERT(ns != INT64_MIN);
    ns = -ns;
  }
  constexpr std::int64_t kSecondNs = 1'000'000'000;
  const std::int64_t seconds_total = ns / kSecondNs;
  const std::int64_t ns_part = ns % kSecondNs;
  const std::int64_t days = seconds_total / 86400;
  const std::int64_t hours = seconds_total / 3600 % 24;
  const std::int64_t minutes = seconds_total / 60 % 60;
  const std::int64_t seconds = seconds_total % 60;
  std::string out = sign;
  if (days > 0) out += fmt::format("{}d", days);
  if (days > 0 || hours > 0) out += fmt::format("{:02}h", hours);
  if (days > 0 || hours > 0 || minutes > 0) out += fmt::format("{:02}m", minutes);
  if (ns_part == 0) {
    out += fmt::format("{}s", seconds);
  } else {
    std::string fraction = fmt::format("{:09}", ns_part);
    while (fraction.back() == '0') fraction.pop_back();
    out += fmt::format("{}.{}s", seconds, fraction);
  }
  return out;
}

std::string format_time(TimePoint t) {
  // Civil-from-days (proleptic Gregorian), done by hand so the output does
  // not depend on the C library's time zone database or locale.
  const std::int64_t ns = t.time_since_epoch().count();
  constexpr std::int64_t kSecondNs = 1'000'000'000;
  std::int64_t seconds = ns / kSecondNs;
  std::int64_t ns_part = ns % kSecondNs;
  if (ns_part < 0) {
    ns_part += kSecondNs;
    seconds -= 1;
  }
  std::int64_t days = seconds / 86400;
  std::int64_t second_of_day = seconds % 86400;
  if (second_of_day < 0) {
    second_of_day += 86400;
    days -= 1;
  }
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const std::int64_t day_of_era = z - era * 146097;
  const std::int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const std::int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const std::int64_t mp = (5 * day_of_year + 2) / 153;
  const std::int64_t day = day_of_year - (153 * mp + 2) / 5 + 1;
  const std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", year, month, day,
                     second_of_day / 3600, second_of_day / 60 % 60, second_of_day % 60, ns_part);
}

}  // namespace duro::sim
