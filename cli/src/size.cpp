#include "taskfarm/cli/size.hpp"

#include <cctype>
#include <stdexcept>
#include <string>

namespace taskfarm::cli {

std::uint64_t parse_size(std::string_view text) {
  std::string shown = "\"";
  shown.append(text).append("\"");
  auto bad = [&](const std::string& why) { return std::invalid_argument(why + ", found " + shown); };
  const std::string expected = "expected a size such as \"512MiB\", \"2GiB\" or \"100MB\"";
  const std::string units = "B, KiB, MiB, GiB, KB, MB or GB";

  // <digits>[.<digits>]<unit>; the number is kept as a fraction whole/scale.
  std::size_t i = 0;
  std::uint64_t whole = 0, scale = 1;
  bool any_digit = false, dot = false;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      any_digit = true;
      if (whole > (UINT64_MAX - 9) / 10 || (dot && scale > UINT64_MAX / 10)) throw bad("size too large");
      whole = whole * 10 + static_cast<std::uint64_t>(c - '0');
      if (dot) scale *= 10;
    } else if (c == '.' && !dot) {
      dot = true;
    } else {
      break;
    }
  }
  if (!any_digit) {
    if (!text.empty() && text[0] == '-') throw bad("a size must not be negative");
    throw bad(expected);
  }
  const std::string_view unit = text.substr(i);
  struct Unit {
    std::string_view name;
    std::uint64_t bytes;
  };
  static constexpr Unit kUnits[] = {
      {"B", 1},
      {"KiB", std::uint64_t{1} << 10}, {"MiB", std::uint64_t{1} << 20}, {"GiB", std::uint64_t{1} << 30},
      {"KB", 1'000}, {"MB", 1'000'000}, {"GB", 1'000'000'000},
  };
  std::uint64_t per_unit = 0;
  for (const auto& u : kUnits)
    if (unit == u.name) per_unit = u.bytes;
  if (per_unit == 0) {
    if (unit.empty()) throw bad(expected + " (a unit is required: " + units + ")");
    throw bad(expected + " (unknown unit \"" + std::string(unit) + "\"; use " + units + ")");
  }
  std::uint64_t total = 0;
  if (__builtin_mul_overflow(whole, per_unit, &total)) throw bad("size too large");
  if (total % scale != 0) throw bad("a size must be a whole number of bytes");
  return total / scale;
}

}  // namespace taskfarm::cli
