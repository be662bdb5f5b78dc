// configs/jobfile.schema.json and the parser agree:
//  - every object of the schema that closes its keys (additionalProperties:
//    false) lists exactly the keys the parser accepts at that level
//    (job_file_keys(), which is what the parser checks against), and every
//    level of the parser has such an object in the schema;
//  - every enum of the schema is what the parser accepts;
//  - every job file in configs/ validates against both, and a set of broken
//    files is refused by both.
// The validator below implements exactly the JSON Schema keywords the schema
// uses and fails on any other, so the schema cannot grow a keyword this test
// would silently skip.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "taskfarm/cli/job.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kSource = TASKFARM_SOURCE_DIR;

json load(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

// A minimal JSON Schema (2020-12) validator for the keywords this schema uses.
class Validator {
 public:
  explicit Validator(json schema) : root_(std::move(schema)) {}

  // Problems found ("/jobs/0/inputs: ..."); empty when valid.
  std::vector<std::string> check(const json& doc) const {
    std::vector<std::string> out;
    validate(root_, doc, "", out);
    return out;
  }

 private:
  const json& resolve(const std::string& ref) const {
    if (ref.rfind("#", 0) != 0) throw std::runtime_error("only local $ref supported: " + ref);
    return root_.at(json::json_pointer(ref.substr(1)));
  }

  static bool has_type(const json& v, const std::string& t) {
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "integer") return v.is_number_integer() || (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()));
    if (t == "number") return v.is_number();
    if (t == "boolean") return v.is_boolean();
    if (t == "null") return v.is_null();
    throw std::runtime_error("unknown type " + t);
  }

  void validate(const json& s, const json& v, const std::string& at, std::vector<std::string>& out) const {
    if (s.is_boolean()) {
      if (!s.get<bool>()) out.push_back(at + ": not allowed");
      return;
    }
    static const std::set<std::string> kKnown = {
        "$schema", "$id", "title", "description", "$defs", "$ref", "type", "properties", "additionalProperties",
        "required", "enum", "minimum", "maximum", "minItems", "minLength", "minProperties", "maxProperties",
        "pattern", "items", "oneOf"};
    for (const auto& [k, unused] : s.items())
      if (!kKnown.count(k)) throw std::runtime_error("the schema uses keyword \"" + k + "\" this validator lacks");
    if (auto r = s.find("$ref"); r != s.end()) validate(resolve(r->get<std::string>()), v, at, out);
    if (auto t = s.find("type"); t != s.end()) {
      bool any = false;
      if (t->is_string())
        any = has_type(v, t->get<std::string>());
      else
        for (const auto& tt : *t) any = any || has_type(v, tt.get<std::string>());
      if (!any) {
        out.push_back(at + ": expected type " + t->dump() + ", found " + v.dump());
        return;
      }
    }
    if (auto e = s.find("enum"); e != s.end() && std::find(e->begin(), e->end(), v) == e->end())
      out.push_back(at + ": " + v.dump() + " not in " + e->dump());
    if (v.is_number()) {
      // long double holds every int64 and uint64 exactly (64-bit mantissa).
      auto num = [](const json& j) -> long double {
        if (j.is_number_unsigned()) return static_cast<long double>(j.get<std::uint64_t>());
        if (j.is_number_integer()) return static_cast<long double>(j.get<std::int64_t>());
        return static_cast<long double>(j.get<double>());
      };
      auto below = [&](const json& bound) { return num(v) < num(bound); };
      auto above = [&](const json& bound) { return num(v) > num(bound); };
      if (auto m = s.find("minimum"); m != s.end() && below(*m)) out.push_back(at + ": below minimum " + m->dump());
      if (auto m = s.find("maximum"); m != s.end() && above(*m)) out.push_back(at + ": above maximum " + m->dump());
    }
    if (v.is_string()) {
      const auto& str = v.get_ref<const std::string&>();
      if (auto m = s.find("minLength"); m != s.end() && str.size() < m->get<std::size_t>())
        out.push_back(at + ": shorter than " + m->dump());
      if (auto p = s.find("pattern"); p != s.end() && !std::regex_search(str, std::regex(p->get<std::string>())))
        out.push_back(at + ": does not match " + p->dump());
    }
    if (v.is_array()) {
      if (auto m = s.find("minItems"); m != s.end() && v.size() < m->get<std::size_t>())
        out.push_back(at + ": fewer than " + m->dump() + " items");
      if (auto it = s.find("items"); it != s.end())
        for (std::size_t i = 0; i < v.size(); ++i) validate(*it, v[i], at + "/" + std::to_string(i), out);
    }
    if (v.is_object()) {
      if (auto m = s.find("minProperties"); m != s.end() && v.size() < m->get<std::size_t>())
        out.push_back(at + ": fewer than " + m->dump() + " properties");
      if (auto m = s.find("maxProperties"); m != s.end() && v.size() > m->get<std::size_t>())
        out.push_back(at + ": more than " + m->dump() + " properties");
      if (auto r = s.find("required"); r != s.end())
        for (const auto& k : *r)
          if (!v.contains(k.get<std::string>())) out.push_back(at + ": missing " + k.dump());
      const auto props = s.find("properties");
      const auto extra = s.find("additionalProperties");
      for (const auto& [k, val] : v.items()) {
        if (props != s.end() && props->contains(k)) {
          validate((*props)[k], val, at + "/" + k, out);
        } else if (extra != s.end()) {
          validate(*extra, val, at + "/" + k, out);
        }
      }
    }
    if (auto one = s.find("oneOf"); one != s.end()) {
      int matches = 0;
      for (const auto& sub : *one) {
        std::vector<std::string> sub_out;
        validate(sub, v, at, sub_out);
        if (sub_out.empty()) ++matches;
      }
      if (matches != 1) out.push_back(at + ": matches " + std::to_string(matches) + " of oneOf, expected exactly 1");
    }
  }

  json root_;
};

// Where each level of the parser lives in the schema.
const std::map<std::string, std::string> kLevels = {
    {"", ""},
    {"pool", "/$defs/pool"},
    {"job", "/$defs/job"},
    {"inputs", "/$defs/inputs"},
    {"axis", "/$defs/axis"},
    {"range", "/$defs/range"},
    {"lines", "/$defs/lines/oneOf/1"},
    {"glob", "/$defs/glob/oneOf/1"},
    {"on_error", "/$defs/on_error"},
    {"output", "/$defs/output"},
};

// Every object schema with closed keys, by JSON pointer.
void closed_objects(const json& s, const std::string& at, std::set<std::string>& out) {
  if (s.is_object()) {
    if (s.contains("properties") && s.value("additionalProperties", json(true)) == json(false)) out.insert(at);
    for (const auto& [k, v] : s.items()) closed_objects(v, at + "/" + k, out);
  } else if (s.is_array()) {
    for (std::size_t i = 0; i < s.size(); ++i) closed_objects(s[i], at + "/" + std::to_string(i), out);
  }
}

std::vector<fs::path> config_files() {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(kSource / "configs")) {
    if (e.path().extension() != ".json" || e.path().filename() == "jobfile.schema.json") continue;
    if (e.path().string().find("/out/") != std::string::npos) continue;
    out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Schema, EveryClosedObjectListsExactlyTheParsersKeys) {
  const json schema = load(kSource / "configs" / "jobfile.schema.json");
  const auto& parser = taskfarm::cli::job_file_keys();
  std::set<std::string> mapped;
  for (const auto& [level, keys] : parser) {
    ASSERT_TRUE(kLevels.count(level)) << "the parser has a level \"" << level << "\" this test does not know";
    const std::string ptr = kLevels.at(level);
    mapped.insert(ptr);
    const json& obj = ptr.empty() ? schema : schema.at(json::json_pointer(ptr));
    std::set<std::string> in_schema;
    for (const auto& [k, v] : obj.at("properties").items()) in_schema.insert(k);
    const std::set<std::string> in_parser(keys.begin(), keys.end());
    EXPECT_EQ(in_schema, in_parser) << "level \"" << level << "\" (schema " << ptr << ")";
    EXPECT_EQ(obj.value("additionalProperties", json(true)), json(false)) << ptr;
  }
  std::set<std::string> closed;
  closed_objects(schema, "", closed);
  EXPECT_EQ(closed, mapped) << "an object of the schema closes its keys but maps to no parser level, or back";
}

TEST(Schema, EnumsAreWhatTheParserAccepts) {
  const json schema = load(kSource / "configs" / "jobfile.schema.json");
  auto parses = [](const std::string& doc) {
    try {
      (void)taskfarm::cli::parse_job_text(doc, "/");
      return true;
    } catch (const taskfarm::cli::JobError&) {
      return false;
    }
  };
  const std::string job = R"({"task": "echo", "inputs": {"list": [1]})";
  struct Case {
    std::string pointer, make_prefix, make_suffix;
  };
  const Case cases[] = {
      {"/$defs/pool/properties/transport/enum", R"({"pool": {"transport": )", "}, \"jobs\": [" + job + "}]}"},
      {"/$defs/pool/properties/start/enum", R"({"pool": {"start": )", "}, \"jobs\": [" + job + "}]}"},
      {"/$defs/output/properties/order/enum", R"({"output": {"order": )", "}, \"jobs\": [" + job + "}]}"},
      {"/$defs/on_error/properties/halt/enum", R"({"jobs": [{"task": "echo", "inputs": {"list": [1]}, "on_error": {"halt": )",
       "}}]}"},
  };
  for (const auto& c : cases) {
    for (const auto& value : schema.at(json::json_pointer(c.pointer)))
      EXPECT_TRUE(parses(c.make_prefix + value.dump() + c.make_suffix)) << c.pointer << " " << value;
    EXPECT_FALSE(parses(c.make_prefix + "\"bogus\"" + c.make_suffix)) << c.pointer;
  }
}

TEST(Schema, EveryConfigValidatesAgainstSchemaAndParser) {
  const Validator v(load(kSource / "configs" / "jobfile.schema.json"));
  const auto files = config_files();
  ASSERT_GE(files.size(), 8u);
  for (const auto& f : files) {
    const auto problems = v.check(load(f));
    EXPECT_TRUE(problems.empty()) << f << ": " << (problems.empty() ? "" : problems[0]);
    try {
      const auto jf = taskfarm::cli::load_job_file(f);
      for (const auto& job : jf.jobs) (void)taskfarm::cli::check_inputs(job);
    } catch (const taskfarm::cli::JobError& e) {
      ADD_FAILURE() << f << ": " << e.what();
    }
  }
}

TEST(Schema, BrokenFilesAreRefusedByBoth) {
  const Validator v(load(kSource / "configs" / "jobfile.schema.json"));
  const std::string job = R"("task": "echo", "inputs": {"list": [1]})";
  const std::vector<std::string> broken = {
      R"({})",
      R"({"jobs": []})",
      "{\"jobs\": [{" + job + "}], \"poll\": {}}",
      "{\"jobs\": [{" + job + ", \"chunk\": 1}]}",
      R"({"jobs": [{"task": "echo"}]})",
      R"({"jobs": [{"task": "echo", "inputs": {}}]})",
      R"({"jobs": [{"task": "echo", "inputs": {"list": [1], "range": {"stop": 3}}}]})",
      R"({"jobs": [{"task": "echo", "inputs": {"range": {"start": 1}}}]})",
      R"({"jobs": [{"task": "echo", "inputs": {"range": {"stop": 3, "step": 0}}}]})",
      R"({"jobs": [{"task": "echo", "inputs": {"lines": {"json": true}}}]})",
      R"({"jobs": [{"task": "echo", "inputs": {"glob": {"pattern": "*", "hidden": true}}}]})",
      R"({"jobs": [{"task": "echo", "inputs": {"product": {"a": 5}}}]})",
      R"({"jobs": [{"task": "echo", "inputs": {"product": {"a": {"product": {}}}}}]})",
      "{\"jobs\": [{" + job + ", \"on_error\": {\"halt\": \"later\"}}]}",
      "{\"jobs\": [{" + job + ", \"on_error\": {\"halt\": \"soon\", \"fail\": \"ten%\"}}]}",
      "{\"jobs\": [{" + job + "}], \"pool\": {\"workers\": -1}}",
      "{\"jobs\": [{" + job + "}], \"pool\": {\"task_timeout\": \"5 s\"}}",
      "{\"jobs\": [{" + job + "}], \"pool\": {\"max_memory_per_child\": \"512 MiB\"}}",
      "{\"jobs\": [{" + job + "}], \"pool\": {\"max_memory_per_child\": 512}}",
      "{\"jobs\": [{" + job + "}], \"pool\": {\"max_memory_per_child\": \"2TB\"}}",
      "{\"jobs\": [{" + job + "}], \"pool\": {\"transport\": \"smoke\"}}",
      "{\"jobs\": [{" + job + "}], \"output\": {\"order\": \"random\"}}",
      "{\"jobs\": [{" + job + "}], \"output\": {\"results\": \"\"}}",
  };
  for (const auto& text : broken) {
    EXPECT_FALSE(v.check(json::parse(text)).empty()) << "the schema accepts " << text;
    EXPECT_THROW((void)taskfarm::cli::parse_job_text(text, "/"), taskfarm::cli::JobError)
        << "the parser accepts " << text;
  }
}

}  // namespace
