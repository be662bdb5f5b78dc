#include "xml_check.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>

namespace taskfarm::test {

std::vector<const XmlElement*> XmlElement::find_all(const std::string& n) const {
  std::vector<const XmlElement*> out;
  for (const auto& c : children) {
    if (c.name == n) out.push_back(&c);
    for (auto* d : c.find_all(n)) out.push_back(d);
  }
  return out;
}

namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  XmlElement document() {
    skip_prolog();
    if (!at("<")) fail("expected the root element");
    XmlElement root = element();
    skip_misc();
    if (pos_ != s_.size()) fail("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos_ && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw std::runtime_error(std::to_string(line) + ":" + std::to_string(col) + ": " + what);
  }
  bool at(std::string_view t) const { return s_.substr(pos_, t.size()) == t; }
  void expect(std::string_view t) {
    if (!at(t)) fail("expected '" + std::string(t) + "'");
    pos_ += t.size();
  }
  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  void skip_comment() {
    const auto end = s_.find("-->", pos_ + 4);
    if (end == std::string_view::npos) fail("unterminated comment");
    pos_ = end + 3;
  }
  void skip_misc() {
    for (;;) {
      skip_ws();
      if (at("<!--")) skip_comment();
      else return;
    }
  }
  void skip_prolog() {
    if (at("<?xml")) {
      const auto end = s_.find("?>", pos_);
      if (end == std::string_view::npos) fail("unterminated XML declaration");
      pos_ = end + 2;
    }
    skip_misc();
  }
  std::string name() {
    const std::size_t b = pos_;
    auto ok = [](char c, bool first) {
      return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
             (!first && (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'));
    };
    while (pos_ < s_.size() && ok(s_[pos_], pos_ == b)) ++pos_;
    if (pos_ == b) fail("expected a name");
    return std::string(s_.substr(b, pos_ - b));
  }
  // Decodes character data up to (not including) any char in `stop`.
  std::string chars(std::string_view stop) {
    std::string out;
    while (pos_ < s_.size() && stop.find(s_[pos_]) == std::string_view::npos) {
      const char c = s_[pos_];
      if (c == '<') fail("'<' in character data");
      if (c != '&') {
        out += c;
        ++pos_;
        continue;
      }
      const auto semi = s_.find(';', pos_);
      if (semi == std::string_view::npos || semi - pos_ > 10) fail("unterminated entity");
      const std::string_view ent = s_.substr(pos_ + 1, semi - pos_ - 1);
      if (ent == "amp") out += '&';
      else if (ent == "lt") out += '<';
      else if (ent == "gt") out += '>';
      else if (ent == "quot") out += '"';
      else if (ent == "apos") out += '\'';
      else if (ent.size() > 1 && ent[0] == '#') {
        const bool hex = ent[1] == 'x';
        const std::string digits(ent.substr(hex ? 2 : 1));
        char* end = nullptr;
        const long v = std::strtol(digits.c_str(), &end, hex ? 16 : 10);
        if (digits.empty() || *end || v <= 0 || v > 0x10FFFF) fail("bad character reference");
        out += v < 128 ? static_cast<char>(v) : '?';
      } else {
        fail("unknown entity &" + std::string(ent) + ";");
      }
      pos_ = semi + 1;
    }
    return out;
  }
  XmlElement element() {
    expect("<");
    XmlElement e;
    e.name = name();
    for (;;) {
      const std::size_t before = pos_;
      skip_ws();
      if (at("/>")) {
        pos_ += 2;
        return e;
      }
      if (at(">")) {
        ++pos_;
        break;
      }
      if (pos_ == before) fail("expected whitespace before an attribute");
      const std::string a = name();
      skip_ws();
      expect("=");
      skip_ws();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) fail("attribute value not quoted");
      const char q = s_[pos_++];
      std::string v = chars(std::string_view(q == '"' ? "\"" : "'"));
      expect(std::string_view(&q, 1));
      if (!e.attrs.emplace(a, std::move(v)).second) fail("duplicate attribute " + a);
    }
    for (;;) {
      e.text += chars("<");
      if (pos_ >= s_.size()) fail("unclosed element <" + e.name + ">");
      if (at("</")) {
        pos_ += 2;
        const std::string n = name();
        if (n != e.name) fail("</" + n + "> closes <" + e.name + ">");
        skip_ws();
        expect(">");
        return e;
      }
      if (at("<!--")) {
        skip_comment();
        continue;
      }
      e.children.push_back(element());
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

bool is_number(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  return *end == '\0' && std::isfinite(v);
}

}  // namespace

XmlElement parse_xml(std::string_view text) { return Parser(text).document(); }

std::vector<std::string> check_svg(const XmlElement& root) {
  std::vector<std::string> errors;
  if (root.name != "svg") errors.push_back("the root is <" + root.name + ">, not <svg>");
  if (root.attrs.count("xmlns") == 0 || root.attrs.at("xmlns") != "http://www.w3.org/2000/svg")
    errors.push_back("<svg> lacks xmlns=\"http://www.w3.org/2000/svg\"");
  for (const char* a : {"width", "height"})
    if (!root.attrs.count(a) || !is_number(root.attrs.at(a))) errors.push_back(std::string("<svg> lacks a numeric ") + a);
  if (!root.attrs.count("viewBox")) errors.push_back("<svg> lacks viewBox");

  static const std::map<std::string, std::vector<std::string>> numeric{
      {"line", {"x1", "y1", "x2", "y2"}},
      {"rect", {"x", "y", "width", "height"}},
      {"circle", {"cx", "cy", "r"}},
      {"text", {"x", "y"}},
  };
  static const std::set<std::string> allowed{"line", "rect", "circle", "text", "polyline"};
  int index = 0;
  for (const auto& c : root.children) {
    const std::string where = "<" + c.name + "> #" + std::to_string(index++);
    if (!allowed.count(c.name)) errors.push_back(where + ": unexpected element");
    if (auto it = numeric.find(c.name); it != numeric.end())
      for (const auto& a : it->second)
        if (!c.attrs.count(a) || !is_number(c.attrs.at(a))) errors.push_back(where + ": attribute " + a + " missing or not a number");
    if ((c.name == "rect" || c.name == "circle") &&
        ((c.attrs.count("width") && std::strtod(c.attrs.at("width").c_str(), nullptr) < 0) ||
         (c.attrs.count("height") && std::strtod(c.attrs.at("height").c_str(), nullptr) < 0) ||
         (c.attrs.count("r") && std::strtod(c.attrs.at("r").c_str(), nullptr) <= 0)))
      errors.push_back(where + ": negative size");
    if (c.name == "text" && c.text.empty()) errors.push_back(where + ": empty text");
    if (c.name == "polyline") {
      if (!c.attrs.count("points")) {
        errors.push_back(where + ": no points");
      } else {
        std::string p = c.attrs.at("points");
        for (auto& ch : p)
          if (ch == ',') ch = ' ';
        int n = 0;
        const char* s = p.c_str();
        char* end = nullptr;
        for (;;) {
          const double v = std::strtod(s, &end);
          if (end == s) break;
          if (!std::isfinite(v)) errors.push_back(where + ": non-finite coordinate");
          ++n;
          s = end;
        }
        while (*s == ' ') ++s;
        if (*s || n < 4 || n % 2) errors.push_back(where + ": points is not a list of at least two x,y pairs");
      }
    }
    if ((c.name == "line" || c.name == "polyline") && !c.attrs.count("stroke"))
      errors.push_back(where + ": no stroke");
  }
  return errors;
}

}  // namespace taskfarm::test
