// Argument templates: what each form expands to, and that every error names its path.

#include <gtest/gtest.h>

#include <string>

#include "taskfarm/cli/job_error.hpp"
#include "taskfarm/cli/template.hpp"

namespace {

using nlohmann::json;
using taskfarm::cli::JobError;
using taskfarm::cli::Template;

json expand(const json& tmpl, const json& item, std::size_t index = 0) {
  return Template::compile(tmpl, "args").expand(item, index);
}

// The JobError of compiling or expanding, as "path: problem".
std::string template_error(const json& tmpl, const json& item, std::size_t index = 0) {
  try {
    (void)expand(tmpl, item, index);
  } catch (const JobError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Template, WholeItemKeepsItsJsonType) {
  EXPECT_EQ(expand("{}", 5), json(5));
  EXPECT_EQ(expand("{}", "text"), json("text"));
  EXPECT_EQ(expand("{}", json::array({1, 2})), json::array({1, 2}));
  EXPECT_EQ(expand("{}", json::object({{"a", 1}})), json::object({{"a", 1}}));
  EXPECT_EQ(expand("{}", nullptr), json(nullptr));
  EXPECT_TRUE(Template::compile("{}", "args").is_identity());
  EXPECT_FALSE(Template::compile("{a}", "args").is_identity());
}

TEST(Template, FieldsOfObjectItems) {
  const json item = {{"size", 64}, {"name", "run"}, {"inner", {{"seed", 3}}}, {"list", {10, 20}}};
  EXPECT_EQ(expand("{size}", item), json(64));
  EXPECT_EQ(expand("{name}", item), json("run"));
  EXPECT_EQ(expand("{inner.seed}", item), json(3));
  EXPECT_EQ(expand("{list.1}", item), json(20));
  EXPECT_EQ(expand("{inner}", item), json({{"seed", 3}}));
}

TEST(Template, IndexPlaceholder) {
  EXPECT_EQ(expand("{#}", "x", 7), json(7));
  EXPECT_EQ(expand("item-{#}", "x", 7), json("item-7"));
}

TEST(Template, IntegerArithmeticYieldsANumber) {
  EXPECT_EQ(expand("{}+200000", 100), json(200100));
  EXPECT_EQ(expand("{key}*2", json{{"key", 21}}), json(42));
  EXPECT_EQ(expand("{a} - {b}", json{{"a", 5}, {"b", 8}}), json(-3));
  EXPECT_EQ(expand("1 + {} * 3", 2), json(7));      // * before +
  EXPECT_EQ(expand("(1 + {}) * 3", 2), json(9));    // parentheses
  EXPECT_EQ(expand("-{}", 4), json(-4));
  EXPECT_EQ(expand("{}//2", 7), json(3));
  EXPECT_EQ(expand("{}//2", -7), json(-4));         // floor division, as Python
  EXPECT_EQ(expand("{}%3", -7), json(2));           // remainder takes the divisor's sign
  EXPECT_EQ(expand("{#}*10+{}", 1, 4), json(41));
  EXPECT_TRUE(expand("{}+1", 1).is_number_integer());
}

TEST(Template, TextInterpolation) {
  const json item = {{"size", 64}, {"name", "run"}, {"flag", true}};
  EXPECT_EQ(expand("--size={size}", item), json("--size=64"));
  EXPECT_EQ(expand("{name}/{size}.txt", item), json("run/64.txt"));  // '/' is not division
  EXPECT_EQ(expand("{name}{size}", item), json("run64"));
  EXPECT_EQ(expand("f={flag}", item), json("f=true"));
  EXPECT_EQ(expand("v={}", json::array({1, "a"})), json("v=[1,\"a\"]"));
  EXPECT_EQ(expand("{}+", 1), json("1+"));  // not a whole expression: text
}

TEST(Template, EscapedBracesAreLiteral) {
  EXPECT_EQ(expand("{{}}", 1), json("{}"));
  EXPECT_EQ(expand("{{{}}}", 1), json("{1}"));
  EXPECT_EQ(expand("{{}}+1", 1), json("{}+1"));
  EXPECT_EQ(expand("{{x}}", 1), json("{x}"));
}

TEST(Template, NestedStructuresExpandElementwise) {
  const json tmpl = {{"lo", "{}"}, {"hi", "{}+10"}, {"argv", {"sim", "--n", "{}", 3, nullptr}}, {"fixed", 2.5}};
  const json got = expand(tmpl, 5);
  EXPECT_EQ(got, json({{"lo", 5}, {"hi", 15}, {"argv", {"sim", "--n", 5, 3, nullptr}}, {"fixed", 2.5}}));
}

TEST(Template, LiteralsWithoutPlaceholdersStay) {
  EXPECT_EQ(expand("plain", 1), json("plain"));
  EXPECT_EQ(expand(42, 1), json(42));
  EXPECT_EQ(expand("1+2", 1), json("1+2"));  // arithmetic needs a placeholder
}

TEST(Template, SyntaxErrorsNameThePath) {
  EXPECT_EQ(template_error(json{{"lo", "{a"}}, 1).rfind("args.lo: ", 0), 0u) << template_error(json{{"lo", "{a"}}, 1);
  EXPECT_NE(template_error("a}", 1).find("no matching '{'"), std::string::npos);
  EXPECT_NE(template_error(json::array({"x", "{a b}"}), 1).find("args[1]: "), std::string::npos);
  EXPECT_NE(template_error("{a..b}", 1).find("empty field name"), std::string::npos);
}

TEST(Template, ExpansionErrorsNameThePathAndTheInput) {
  const std::string missing = template_error(json{{"hi", "{b}"}}, json{{"a", 1}}, 3);
  EXPECT_EQ(missing.rfind("args.hi: ", 0), 0u) << missing;
  EXPECT_NE(missing.find("input #3"), std::string::npos) << missing;
  EXPECT_NE(missing.find("no field \"b\""), std::string::npos) << missing;

  const std::string not_object = template_error("{a}", 5);
  EXPECT_NE(not_object.find("needs an object"), std::string::npos) << not_object;

  const std::string not_int = template_error(json{{"n", "{}*2"}}, "x");
  EXPECT_EQ(not_int.rfind("args.n: ", 0), 0u) << not_int;
  EXPECT_NE(not_int.find("needs integers"), std::string::npos) << not_int;

  EXPECT_NE(template_error("{}//0", 5).find("division by zero"), std::string::npos);
  EXPECT_NE(template_error("{}*2", 9223372036854775807LL).find("overflows"), std::string::npos);
  EXPECT_NE(template_error("{list.5}", json{{"list", {1}}}).find("no element 5"), std::string::npos);
}

}  // namespace
