#include "taskfarm/cli/duration.hpp"

#include <cctype>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace taskfarm::cli {

std::chrono::milliseconds parse_duration(std::string_view text) {
  std::string shown = "\"";
  shown.append(text).append("\"");
  auto bad = [&](const std::string& why) {
    return std::invalid_argument(why + ", found " + shown);
  };
  const std::string expected = "expected a duration such as \"500ms\", \"30s\", \"2m\" or \"1h\"";

  // <digits>[.<digits>]<unit>; the number is kept as a fraction whole/scale.
  std::size_t i = 0;
  std::uint64_t whole = 0, scale = 1;
  bool any_digit = false, dot = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      any_digit = true;
      if (whole > (UINT64_MAX - 9) / 10 || (dot && scale > UINT64_MAX / 10))
        throw bad("duration too long (at most 366 days)");
      whole = whole * 10 + static_cast<std::uint64_t>(c - '0');
      if (dot) scale *= 10;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!any_digit) {
    if (!text.empty() && text[0] == '-') throw bad("a duration must not be negative");
    throw bad(expected);
  }
  const std::string_view unit = text.substr(i);
  std::uint64_t ms_per_unit = 0;
  if (unit == "ms")
    ms_per_unit = 1;
  else if (unit == "s")
    ms_per_unit = 1000;
  else if (unit == "m" || unit == "min")
    ms_per_unit = 60'000;
  else if (unit == "h")
    ms_per_unit = 3'600'000;
  else if (unit.empty())
    throw bad(expected + " (a unit is required: ms, s, m or h)");
  else
    throw bad(expected + " (unknown unit \"" + std::string(unit) + "\"; use ms, s, m or h)");

  constexpr std::uint64_t kMaxMs = 366ULL * 24 * 3'600'000;  // clocks stay far from overflow
  std::uint64_t total = 0;
  if (__builtin_mul_overflow(whole, ms_per_unit, &total) || total / scale > kMaxMs)
    throw bad("duration too long (at most 366 days)");
  if (total % scale != 0) throw bad("a duration must be a whole number of milliseconds");
  return std::chrono::milliseconds(static_cast<std::int64_t>(total / scale));
}

}  // namespace taskfarm::cli
