#include "suggest.hpp"

#include <algorithm>
#include <charconv>

namespace taskfarm::cli {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string nearest_name(std::string_view word, const std::vector<std::string>& known) {
  std::size_t best = 3;
  std::string pick;
  for (const auto& k : known) {
    const std::string_view a = word.size() < k.size() ? word : std::string_view(k);
    const std::string_view b = word.size() < k.size() ? std::string_view(k) : word;
    const bool prefix = a.size() >= 3 && b.substr(0, a.size()) == a;
    const std::size_t d = prefix ? 1 : edit_distance(word, k);
    if (d < best) {
      best = d;
      pick = k;
    }
  }
  return pick;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

std::string count_problem(const std::string& text, std::uint64_t max, std::uint64_t& value) {
  auto digits = [](std::string_view t) {
    return !t.empty() && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (!digits(text)) {
    if (text.size() > 1 && text[0] == '-' && digits(std::string_view(text).substr(1)))
      return "must be at least 0, found " + text;
    return "expected a whole number, found \"" + text + "\"";
  }
  if (std::from_chars(text.data(), text.data() + text.size(), value).ec != std::errc() || value > max)
    return "at most " + std::to_string(max) + " allowed, found " + text;
  return "";
}

}  // namespace taskfarm::cli
