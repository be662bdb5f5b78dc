// The small JSON Schema validator the run test relies on: it accepts what the
// schema allows and rejects what it does not, so a passing run test means
// something.

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "json_schema.hpp"

namespace {

using nlohmann::json;
using taskfarm::test::unsupported_keywords;
using taskfarm::test::validate;

const json kSchema = json::parse(R"({
  "type": "object",
  "required": ["n", "kind"],
  "additionalProperties": false,
  "properties": {
    "n": {"type": "integer", "minimum": 1},
    "kind": {"enum": ["a", "b"]},
    "tag": {"type": "string", "pattern": "^[a-z]+$", "minLength": 2},
    "xs": {"type": "array", "items": {"$ref": "#/$defs/x"}, "minItems": 1, "maxItems": 2},
    "v": {"const": 1},
    "t": {"type": ["number", "null"], "maximum": 5}
  },
  "$defs": {"x": {"type": "number"}}
})");

TEST(JsonSchemaValidator, AcceptsAValidDocument) {
  EXPECT_EQ(validate(kSchema, json::parse(R"({"n": 3, "kind": "a", "tag": "ok", "xs": [1.5], "v": 1, "t": null})")),
            std::vector<std::string>{});
}

TEST(JsonSchemaValidator, ReportsEachViolationWithItsPath) {
  const auto errors = validate(kSchema, json::parse(
      R"({"n": 0.5, "kind": "c", "tag": "A", "xs": [1, "x", 3], "v": 2, "t": 9, "extra": true})"));
  auto mentions = [&](const std::string& s) {
    for (const auto& e : errors)
      if (e.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(mentions("/n: expected type"));
  EXPECT_TRUE(mentions("/n: 0.5 is below the minimum"));
  EXPECT_TRUE(mentions("/kind: \"c\" is not one of"));
  EXPECT_TRUE(mentions("/tag: string shorter"));
  EXPECT_TRUE(mentions("/tag: \"A\" does not match"));
  EXPECT_TRUE(mentions("/xs: more than 2 items"));
  EXPECT_TRUE(mentions("/xs/1: expected type"));
  EXPECT_TRUE(mentions("/v: expected 1"));
  EXPECT_TRUE(mentions("/t: 9 is above the maximum"));
  EXPECT_TRUE(mentions("/extra: no value is allowed"));
  EXPECT_TRUE(validate(kSchema, json::parse(R"({"n": 1})")).size() == 1);  // kind missing
}

TEST(JsonSchemaValidator, RefusesKeywordsItDoesNotImplement) {
  const auto errors = validate(json::parse(R"({"type": "object", "oneOf": []})"), json::object());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("oneOf"), std::string::npos);
}

TEST(JsonSchemaValidator, TheBenchSchemaUsesOnlyImplementedKeywords) {
  std::ifstream in(TASKFARM_BENCH_SCHEMA);
  ASSERT_TRUE(in) << TASKFARM_BENCH_SCHEMA;
  const json schema = json::parse(in);
  EXPECT_EQ(unsupported_keywords(schema), std::vector<std::string>{});
  EXPECT_EQ(unsupported_keywords(json::parse(R"({"properties": {"a": {"items": {"anyOf": []}}}})")),
            std::vector<std::string>{"/properties/a/items: anyOf"});
}

}  // namespace
