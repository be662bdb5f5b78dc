#pragma once
// "Did you mean" for names typed by a user (job file keys, task and transport
// names, commands), and lists of names for messages.

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

}  // namespace taskfarm::cli
