#pragma once
// A small JSON Schema (2020-12) validator for exactly the keywords
// bench/bench.schema.json uses: type, const, enum, properties, required,
// additionalProperties, items, minItems, maxItems, minimum, maximum, minLength,
// pattern, $ref (local "#/..."), plus the annotations $schema, $id, title,
// description. Any other keyword is reported as an error, so the schema cannot
// grow a rule this validator would silently skip.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace taskfarm::test {

// Every violation, as "<JSON pointer of the value>: <what is wrong>"; empty
// when `doc` is valid.
std::vector<std::string> validate(const nlohmann::json& schema, const nlohmann::json& doc);
// Keywords anywhere in `schema` that validate() does not implement, as
// "<pointer>: <keyword>"; empty when it implements all of them.
std::vector<std::string> unsupported_keywords(const nlohmann::json& schema);

}  // namespace taskfarm::test
