#pragma once
// What a user typed: "did you mean" for names (job file keys, task and
// transport names, commands), lists of names for messages, and counts.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace taskfarm::cli {

// Levenshtein distance.
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);

// The name among `known` nearest to `word`: at most two edits away, or one a
// prefix of the other of at least three letters ("chunk" for "chunksize");
// "" when none is close.
[[nodiscard]] std::string nearest_name(std::string_view word, const std::vector<std::string>& known);

// "a, b, c".
[[nodiscard]] std::string join_names(const std::vector<std::string>& names);

// A count typed on the command line: a whole number from 0 to `max`, into
// `value`. Returns what is wrong with it ("must be at least 0, found -1"), or "".
[[nodiscard]] std::string count_problem(const std::string& text, std::uint64_t max, std::uint64_t& value);

}  // namespace taskfarm::cli
