#pragma once
// JSON paths for messages: jobs[0].inputs.range.step, args["odd key"].

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <string>

namespace taskfarm::cli {

inline std::string path_key(const std::string& base, const std::string& key) {
  const bool plain = !key.empty() && std::isdigit(static_cast<unsigned char>(key[0])) == 0 &&
                     std::all_of(key.begin(), key.end(), [](char c) {
                       return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
                     });
  if (plain) return base.empty() ? key : base + "." + key;
  return base + "[" + nlohmann::json(key).dump() + "]";
}

inline std::string path_index(const std::string& base, std::size_t i) {
  return base + "[" + std::to_string(i) + "]";
}

}  // namespace taskfarm::cli
