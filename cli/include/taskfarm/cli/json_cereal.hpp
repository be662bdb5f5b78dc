#pragma once
// cereal support for nlohmann::json, so that a task may take or return any JSON
// value (Task<nlohmann::json(nlohmann::json)>). A value travels as its compact
// text (dump()); strings that are not valid UTF-8 are sent with U+FFFD in place
// of the bad bytes rather than failing the task.

#include <nlohmann/json.hpp>

#include <string>

#include <cereal/cereal.hpp>
#include <cereal/types/string.hpp>

namespace cereal {

template <class Archive>
void save(Archive& ar, const nlohmann::json& j) {
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  ar(text);
}

template <class Archive>
void load(Archive& ar, nlohmann::json& j) {
  std::string text;
  ar(text);
  j = nlohmann::json::parse(text);  // parse_error: taskfarm::decode reports SerializationError
}

}  // namespace cereal
