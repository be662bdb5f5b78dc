#include "json_schema.hpp"

#include <cmath>
#include <regex>
#include <set>

namespace taskfarm::test {

namespace {

using nlohmann::json;

const std::set<std::string>& known_keywords() {
  static const std::set<std::string> known{
      "$schema", "$id", "title", "description", "$defs", "type", "const", "enum", "properties",
      "required", "additionalProperties", "items", "minItems", "maxItems", "minimum", "maximum",
      "minLength", "pattern", "$ref"};
  return known;
}

void walk(const json& s, const std::string& path, std::vector<std::string>& out) {
  if (!s.is_object()) return;
  for (const auto& [k, v] : s.items()) {
    if (!known_keywords().count(k)) out.push_back((path.empty() ? "/" : path) + ": " + k);
    if ((k == "properties" || k == "$defs") && v.is_object())
      for (const auto& [name, sub] : v.items()) walk(sub, path + "/" + k + "/" + name, out);
    if (k == "items" || k == "additionalProperties") walk(v, path + "/" + k, out);
  }
}

class Validator {
 public:
  Validator(const json& root, std::vector<std::string>& errors) : root_(root), errors_(errors) {}

  void check(const json& schema, const json& v, const std::string& path) {
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) fail(path, "no value is allowed here");
      return;
    }
    if (!schema.is_object()) {
      fail(path, "schema is not an object");
      return;
    }
    for (const auto& [k, _] : schema.items())
      if (!known_keywords().count(k)) fail(path, "the validator does not support the keyword \"" + k + "\"");

    if (schema.contains("$ref")) check(resolve(schema["$ref"].get<std::string>(), path), v, path);
    if (schema.contains("type") && !type_ok(schema["type"], v))
      fail(path, "expected type " + schema["type"].dump() + ", found " + std::string(v.type_name()));
    if (schema.contains("const") && schema["const"] != v)
      fail(path, "expected " + schema["const"].dump() + ", found " + v.dump());
    if (schema.contains("enum")) {
      bool found = false;
      for (const auto& e : schema["enum"]) found = found || e == v;
      if (!found) fail(path, v.dump() + " is not one of " + schema["enum"].dump());
    }
    if (v.is_number()) {
      const double x = v.get<double>();
      if (schema.contains("minimum") && x < schema["minimum"].get<double>())
        fail(path, v.dump() + " is below the minimum " + schema["minimum"].dump());
      if (schema.contains("maximum") && x > schema["maximum"].get<double>())
        fail(path, v.dump() + " is above the maximum " + schema["maximum"].dump());
    }
    if (v.is_string()) {
      const auto& s = v.get_ref<const std::string&>();
      if (schema.contains("minLength") && s.size() < schema["minLength"].get<std::size_t>())
        fail(path, "string shorter than " + schema["minLength"].dump());
      if (schema.contains("pattern") && !std::regex_search(s, std::regex(schema["pattern"].get<std::string>())))
        fail(path, v.dump() + " does not match " + schema["pattern"].dump());
    }
    if (v.is_array()) {
      if (schema.contains("minItems") && v.size() < schema["minItems"].get<std::size_t>())
        fail(path, "fewer than " + schema["minItems"].dump() + " items");
      if (schema.contains("maxItems") && v.size() > schema["maxItems"].get<std::size_t>())
        fail(path, "more than " + schema["maxItems"].dump() + " items");
      if (schema.contains("items"))
        for (std::size_t i = 0; i < v.size(); ++i) check(schema["items"], v[i], path + "/" + std::to_string(i));
    }
    if (v.is_object()) {
      if (schema.contains("required"))
        for (const auto& k : schema["required"])
          if (!v.contains(k.get<std::string>())) fail(path, "missing required key \"" + k.get<std::string>() + "\"");
      const json props = schema.value("properties", json::object());
      for (const auto& [k, x] : v.items()) {
        if (props.contains(k))
          check(props[k], x, path + "/" + k);
        else if (schema.contains("additionalProperties"))
          check(schema["additionalProperties"], x, path + "/" + k);
      }
    }
  }

 private:
  static bool type_ok(const json& t, const json& v) {
    if (t.is_array()) {
      for (const auto& x : t)
        if (type_ok(x, v)) return true;
      return false;
    }
    const std::string n = t.get<std::string>();
    if (n == "object") return v.is_object();
    if (n == "array") return v.is_array();
    if (n == "string") return v.is_string();
    if (n == "boolean") return v.is_boolean();
    if (n == "null") return v.is_null();
    if (n == "number") return v.is_number();
    if (n == "integer")
      return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    return false;
  }

  const json& resolve(const std::string& ref, const std::string& path) {
    static const json kFalse = false;
    if (ref.rfind("#/", 0) != 0) {
      fail(path, "only local references are supported: " + ref);
      return kFalse;
    }
    try {
      return root_.at(json::json_pointer(ref.substr(1)));
    } catch (const std::exception&) {
      fail(path, "unresolvable reference " + ref);
      return kFalse;
    }
  }

  void fail(const std::string& path, const std::string& what) {
    errors_.push_back((path.empty() ? "/" : path) + ": " + what);
  }

  const json& root_;
  std::vector<std::string>& errors_;
};

}  // namespace

std::vector<std::string> unsupported_keywords(const nlohmann::json& schema) {
  std::vector<std::string> out;
  walk(schema, "", out);
  return out;
}

std::vector<std::string> validate(const nlohmann::json& schema, const nlohmann::json& doc) {
  std::vector<std::string> errors;
  Validator(schema, errors).check(schema, doc, "");
  return errors;
}

}  // namespace taskfarm::test
