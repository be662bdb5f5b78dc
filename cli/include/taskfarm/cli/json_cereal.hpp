#pragma once
// cereal support for nlohmann::json, so that a task may take or return any JSON
// value (Task<nlohmann::json(nlohmann::json)>). A value travels as its compact
// text (dump()); strings that are not valid UTF-8 are sent with U+FFFD in place
// of the bad bytes rather than failing the task.

#include <nlohmann/json.hpp>

#include <concepts>
#include <string>

#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>

namespace cereal {

// Constrained to exactly nlohmann::json: a plain `const nlohmann::json&`
// parameter would also accept, by implicit conversion, every type that has a
// to_json, and cereal would then see two ways to save such a type.
template <class Archive, class J>
  requires std::same_as<J, nlohmann::json>
void save(Archive& ar, const J& j) {
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  ar(text);
}

template <class Archive, class J>
  requires std::same_as<J, nlohmann::json>
void load(Archive& ar, J& j) {
  std::string text;
  ar(text);
  j = nlohmann::json::parse(text);  // parse_error: taskfarm::decode reports SerializationError
}

}  // namespace cereal
