#pragma once
// Sizes in job files and on the command line: "512MiB", "1.5GiB", "64KB",
// "4096B", or a JSON integer of bytes.

#include <cstdint>
#include <string_view>

namespace taskfarm::cli {

// Parses "<number><unit>" with unit B, KiB, MiB, GiB (powers of 1024) or KB,
// MB, GB (powers of 1000); the number may have a fraction as long as the result
// is a whole number of bytes. Throws std::invalid_argument saying what was
// expected.
[[nodiscard]] std::uint64_t parse_size(std::string_view text);

}  // namespace taskfarm::cli
