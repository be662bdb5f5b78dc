#pragma once
// Durations in job files: "500ms", "30s", "2m", "1h", "1.5s", or a JSON integer
// of milliseconds.

#include <chrono>
#include <string_view>

namespace taskfarm::cli {

// Parses "<number><unit>" with unit ms, s, m or h; the number may have a
// fraction as long as the result is a whole number of milliseconds. Throws
// std::invalid_argument saying what was expected.
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view text);

}  // namespace taskfarm::cli
