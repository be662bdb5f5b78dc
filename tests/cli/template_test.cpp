// Argument templates: what each form expands to, that text stays text, and that
// every error names its path, the offset and what to write instead.

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

TEST(Template, ExplicitArithmeticYieldsANumber) {
  EXPECT_EQ(expand("{= {}+200000 =}", 100), json(200100));
  EXPECT_EQ(expand("{={key}*2=}", json{{"key", 21}}), json(42));  // spaces are optional
  EXPECT_EQ(expand("{= {a} - {b} =}", json{{"a", 5}, {"b", 8}}), json(-3));
  EXPECT_EQ(expand("{= 1 + {} * 3 =}", 2), json(7));      // * before +
  EXPECT_EQ(expand("{= (1 + {}) * 3 =}", 2), json(9));    // parentheses
  EXPECT_EQ(expand("{= ((({}))) =}", 2), json(2));
  EXPECT_EQ(expand("{= -{} =}", 4), json(-4));
  EXPECT_EQ(expand("{= - -{} =}", 4), json(4));
  EXPECT_EQ(expand("{= {}//2 =}", 7), json(3));
  EXPECT_EQ(expand("{= {}//2 =}", -7), json(-4));         // floor division, as Python
  EXPECT_EQ(expand("{= {}%3 =}", -7), json(2));           // remainder takes the divisor's sign
  EXPECT_EQ(expand("{= {}%-3 =}", 7), json(-2));
  EXPECT_EQ(expand("{= 10 - 3 - 2 =}", 0), json(5));      // left to right
  EXPECT_EQ(expand("{= {#}*10+{} =}", 1, 4), json(41));
  EXPECT_EQ(expand("{= {#} =}", "x", 4), json(4));
  EXPECT_EQ(expand("{= 6*7 =}", "x"), json(42));          // constants are allowed
  EXPECT_EQ(expand("{= {n.0} * 2 =}", json{{"n", {5}}}), json(10));
  EXPECT_TRUE(expand("{= {}+1 =}", 1).is_number_integer());
  EXPECT_EQ(expand("{= {} =}", 9223372036854775807LL), json(9223372036854775807LL));
}

TEST(Template, ArithmeticInsideTextGivesDigits) {
  EXPECT_EQ(expand("n{= {#}+1 =}", "x", 4), json("n5"));
  EXPECT_EQ(expand("{}..{= {}+10 =}", 5), json("5..15"));
  EXPECT_EQ(expand("{= {}*2 =}{= {}*3 =}", 1), json("23"));
  EXPECT_EQ(expand(" {= {} =}", 1), json(" 1"));  // anything around it makes it text
  EXPECT_EQ(expand("{= -{} =}", 3), json(-3));
  EXPECT_EQ(expand("[{= -{} =}]", 3), json("[-3]"));
}

TEST(Template, TextStaysText) {
  // The example: nothing is computed without {= =}.
  EXPECT_EQ(expand("{}-{#}", 1, 0), json("1-0"));
  EXPECT_EQ(expand("{}-{#}", 2, 1), json("2-1"));
  EXPECT_EQ(expand("{}+200000", 100), json("100+200000"));
  EXPECT_EQ(expand("{key}*2", json{{"key", 21}}), json("21*2"));
  EXPECT_EQ(expand("({}+1)*2", 3), json("(3+1)*2"));
  EXPECT_EQ(expand("-{}", 4), json("-4"));
  EXPECT_EQ(expand("{a}-{b}", json{{"a", "x"}, {"b", "y"}}), json("x-y"));  // no longer an error
  EXPECT_EQ(expand("{}%{}", 1), json("1%1"));
}

TEST(Template, TextInterpolation) {
  const json item = {{"size", 64}, {"name", "run"}, {"flag", true}};
  EXPECT_EQ(expand("--size={size}", item), json("--size=64"));
  EXPECT_EQ(expand("{name}/{size}.txt", item), json("run/64.txt"));
  EXPECT_EQ(expand("{name}{size}", item), json("run64"));
  EXPECT_EQ(expand("f={flag}", item), json("f=true"));
  EXPECT_EQ(expand("v={}", json::array({1, "a"})), json("v=[1,\"a\"]"));
  EXPECT_EQ(expand("{}+", 1), json("1+"));
  EXPECT_EQ(expand("a=b", 1), json("a=b"));      // '=' alone is just a character
  EXPECT_EQ(expand("{}=}}", 1), json("1=}"));
}

TEST(Template, EscapedBracesAreLiteral) {
  EXPECT_EQ(expand("{{}}", 1), json("{}"));
  EXPECT_EQ(expand("{{{}}}", 1), json("{1}"));
  EXPECT_EQ(expand("{{}}+1", 1), json("{}+1"));
  EXPECT_EQ(expand("{{x}}", 1), json("{x}"));
  EXPECT_EQ(expand("{{= {} =}}", 1), json("{= 1 =}"));  // an escaped brace does not open an expression
  EXPECT_EQ(expand("{{{= {}+1 =}}}", 1), json("{2}"));
}

TEST(Template, NestedStructuresExpandElementwise) {
  const json tmpl = {{"lo", "{}"}, {"hi", "{= {}+10 =}"}, {"argv", {"sim", "--n", "{}", 3, nullptr}}, {"fixed", 2.5}};
  const json got = expand(tmpl, 5);
  EXPECT_EQ(got, json({{"lo", 5}, {"hi", 15}, {"argv", {"sim", "--n", 5, 3, nullptr}}, {"fixed", 2.5}}));
}

TEST(Template, LiteralsWithoutPlaceholdersStay) {
  EXPECT_EQ(expand("plain", 1), json("plain"));
  EXPECT_EQ(expand(42, 1), json(42));
  EXPECT_EQ(expand("1+2", 1), json("1+2"));
}

TEST(Template, ExpressionErrorsSayWhereAndWhatToWrite) {
  const auto err = [](const std::string& tmpl) { return template_error(json{{"hi", tmpl}}, 1); };
  const std::string unterminated = err("{= {}+1");
  EXPECT_EQ(unterminated, "args.hi: template \"{= {}+1\": '{=' at offset 0 is not closed: end the expression "
                          "with '=}' (write {{ for a literal brace)");
  EXPECT_EQ(err("x{==}"), "args.hi: template \"x{==}\": empty expression at offset 1; an expression holds "
                          "placeholders ({}, {key}, {#}), integers, + - * // % and parentheses, e.g. "
                          "\"{= {}*2 + 1 =}\"");
  EXPECT_NE(err("{=   =}").find("empty expression at offset 0"), std::string::npos);
  EXPECT_EQ(err("{= {}+ =}"), "args.hi: template \"{= {}+ =}\": the expression ends at offset 7 where a number, "
                              "a placeholder or '(' is expected");
  EXPECT_EQ(err("{= {} / 2 =}"), "args.hi: template \"{= {} / 2 =}\": '/' at offset 6: write // for (floor) division");
  EXPECT_EQ(err("{= {} {} =}"), "args.hi: template \"{= {} {} =}\": expected an operator (+ - * // %) at offset 6, "
                                "found the placeholder {}");
  EXPECT_EQ(err("{= ({}+1 =}"), "args.hi: template \"{= ({}+1 =}\": '(' at offset 3 is not closed");
  EXPECT_EQ(err("{= {}+1) =}"), "args.hi: template \"{= {}+1) =}\": ')' at offset 7 has no matching '('");
  EXPECT_EQ(err("{= * 2 =}"), "args.hi: template \"{= * 2 =}\": expected a number, a placeholder or '(' at "
                              "offset 3, found '*'");
  EXPECT_NE(err("{= {= {} =} =}").find("'{=' at offset 3 inside an expression: expressions do not nest"),
            std::string::npos) << err("{= {= {} =} =}");
  EXPECT_NE(err("{= {{ =}").find("'{{' at offset 3 inside an expression: only placeholders"), std::string::npos);
  EXPECT_NE(err("{= x + 1 =}").find("unexpected 'x' at offset 3 in the expression"), std::string::npos)
      << err("{= x + 1 =}");
  EXPECT_NE(err("{= {}*1.5 =}").find("'.' at offset 7: expressions are integer-only"), std::string::npos)
      << err("{= {}*1.5 =}");
  EXPECT_NE(err("{= 99999999999999999999 =}").find("integer at offset 3 does not fit in 64 bits"), std::string::npos);
  EXPECT_NE(err("{= {a b} =}").find("a field name may contain"), std::string::npos);
  EXPECT_NE(err("{= {a =}").find("'{' at offset 3 is not closed"), std::string::npos) << err("{= {a =}");
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

  const std::string not_int = template_error(json{{"n", "{= {}*2 =}"}}, "x");
  EXPECT_EQ(not_int.rfind("args.n: ", 0), 0u) << not_int;
  EXPECT_NE(not_int.find("needs integers"), std::string::npos) << not_int;

  EXPECT_NE(not_int.find("{} is a string \"x\" in input #0"), std::string::npos) << not_int;
  EXPECT_NE(template_error("{= {}//0 =}", 5).find("division by zero"), std::string::npos);
  EXPECT_NE(template_error("{= {}%0 =}", 5).find("division by zero"), std::string::npos);
  EXPECT_NE(template_error("{= {}*2 =}", 9223372036854775807LL).find("overflows"), std::string::npos);
  EXPECT_NE(template_error("x{= {}+1 =}", 9223372036854775807LL).find("overflows"), std::string::npos);
  EXPECT_NE(template_error("{= {} =}", 18446744073709551615ULL).find("overflows"), std::string::npos);
  EXPECT_NE(template_error("{= -{} =}", json(-9223372036854775807LL - 1)).find("overflows"), std::string::npos);
  EXPECT_NE(template_error("{= {}//-1 =}", json(-9223372036854775807LL - 1)).find("overflows"), std::string::npos);
  EXPECT_NE(template_error("n{= {}+1 =}", 1.5).find("needs integers"), std::string::npos);
  EXPECT_NE(template_error("{list.5}", json{{"list", {1}}}).find("no element 5"), std::string::npos);
}

TEST(Template, PathPartsOfAStringAsGnuParallelGivesThem) {
  EXPECT_EQ(expand("{.}", "dir/sub.d/file.tar.gz"), "dir/sub.d/file.tar");
  EXPECT_EQ(expand("{/}", "dir/sub.d/file.tar.gz"), "file.tar.gz");
  EXPECT_EQ(expand("{//}", "dir/sub.d/file.tar.gz"), "dir/sub.d");
  EXPECT_EQ(expand("{/.}", "dir/sub.d/file.tar.gz"), "file.tar");
  EXPECT_EQ(expand("{.}", "sub.d/noext"), "sub.d/noext");  // a dot of a directory is no extension
  EXPECT_EQ(expand("{.}", ".bashrc"), ".bashrc");          // nor a leading dot
  EXPECT_EQ(expand("{//}", "file"), ".");
  EXPECT_EQ(expand("{//}", "/file"), "/");
  EXPECT_EQ(expand("{src/.}.o", json{{"src", "lib/a.c"}}), "a.o");
  EXPECT_EQ(expand(json::array({"{1.}", "{2/}"}), json{{"1", "x.c"}, {"2", "d/y"}}), json::array({"x", "y"}));
  EXPECT_NE(template_error("{.}", 5).find("needs a string"), std::string::npos);
  EXPECT_NE(template_error("{#/}", "a").find("has no path parts"), std::string::npos);
}

}  // namespace
