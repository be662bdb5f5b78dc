#include "taskfarm/cli/template.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "json_path.hpp"
#include "taskfarm/cli/job_error.hpp"
#include "taskfarm/cli/json_task.hpp"

namespace taskfarm::cli {

using json = nlohmann::json;

namespace {

// A placeholder: {} (whole item), {#} (index) or {a.b.0} (a field path).
struct Ref {
  enum class Kind { whole, index, field } kind = Kind::whole;
  // GNU parallel's path forms of a string value: {.} without its extension,
  // {/} its last component, {//} its directory, {/.} the last component
  // without its extension (also {key.}, {1/}, ...).
  enum class PathPart { all, no_ext, base, dir, base_no_ext } part = PathPart::all;
  std::vector<std::string> segments;  // for field
  std::string text;                   // as written, with braces, for messages
};

// Integer expression tree; nodes refer to their children by position.
struct Expr {
  enum class Op { literal, ref, neg, add, sub, mul, floordiv, mod } op = Op::literal;
  std::int64_t value = 0;
  Ref ref;
  std::size_t lhs = 0, rhs = 0;
};

struct Piece {  // part of a string: literal text, a placeholder, or an expression {= ... =}
  std::string literal;
  std::optional<Ref> ref;
  std::vector<Expr> expr;  // non-empty for an expression; expr.back() is the root
};

}  // namespace

struct Template::Node {
  struct Literal {
    json value;
  };
  struct Whole {  // a string that is exactly one placeholder: keeps the JSON type
    Ref ref;
  };
  struct Arith {  // a string that is exactly one expression: a JSON integer
    std::vector<Expr> nodes;  // nodes.back() is the root
    std::string source;
  };
  struct Text {
    std::vector<Piece> pieces;
    std::string source;
  };
  struct Array {
    std::vector<Node> items;
  };
  struct Object {
    std::vector<std::pair<std::string, Node>> fields;
  };
  std::variant<Literal, Whole, Arith, Text, Array, Object> v;
  std::string path;
};

namespace {

using Node = Template::Node;

[[noreturn]] void fail(const std::string& path, const std::string& source, const std::string& what) {
  throw JobError(path, "template " + json(source).dump() + ": " + what);
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

Ref parse_ref(std::string_view body, const std::string& path, const std::string& source) {
  Ref r;
  r.text.append("{").append(body).append("}");
  for (const auto& [suffix, part] : {std::pair{std::string_view("/."), Ref::PathPart::base_no_ext},
                                     std::pair{std::string_view("//"), Ref::PathPart::dir},
                                     std::pair{std::string_view("/"), Ref::PathPart::base},
                                     std::pair{std::string_view("."), Ref::PathPart::no_ext}}) {
    if (body.size() >= suffix.size() && body.substr(body.size() - suffix.size()) == suffix) {
      r.part = part;
      body.remove_suffix(suffix.size());
      if (body == "#") fail(path, source, "placeholder " + r.text + ": {#} is a number, it has no path parts");
      break;
    }
  }
  if (body.empty()) return r;
  if (body == "#") {
    r.kind = Ref::Kind::index;
    return r;
  }
  r.kind = Ref::Kind::field;
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = body.find('.', start);
    const std::string_view seg = body.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (seg.empty())
      fail(path, source, "placeholder " + r.text + " has an empty field name");
    for (char c : seg)
      if (!is_name_char(c))
        fail(path, source, "placeholder " + r.text + ": a field name may contain letters, digits, "
                           "'_' and '-' (write {{ and }} for literal braces)");
    r.segments.emplace_back(seg);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return r;
}

constexpr const char* kExprHint =
    "an expression holds placeholders ({}, {key}, {#}), integers, + - * // % and parentheses, "
    "e.g. \"{= {}*2 + 1 =}\"";

// Recursive-descent parser of the integer expression between "{=" and "=}",
// s[begin, end). Offsets in messages are offsets in the whole string.
class ExprParser {
 public:
  ExprParser(const std::string& s, std::size_t begin, std::size_t end, const std::string& path)
      : s_(s), path_(path), end_(end) {
    for (std::size_t i = begin; i < end;) {
      const char c = s[i];
      if (c == ' ' || c == '\t') {
        ++i;
      } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
        const std::size_t at = i;
        std::int64_t v = 0;
        while (i < end && std::isdigit(static_cast<unsigned char>(s[i])) != 0) {
          if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
            error("the integer at offset " + std::to_string(at) + " does not fit in 64 bits");
          ++i;
        }
        if (i < end && (s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
          error("'" + std::string(1, s[i]) + "' at offset " + std::to_string(i) +
                ": expressions are integer-only (" + kExprHint + ")");
        toks_.push_back(Tok{Tok::number, v, {}, 0, at});
      } else if (c == '{') {
        if (i + 1 < end && s[i + 1] == '=')
          error("'{=' at offset " + std::to_string(i) + " inside an expression: expressions do not nest "
                "(write parentheses instead)");
        if (i + 1 < end && s[i + 1] == '{')
          error("'{{' at offset " + std::to_string(i) + " inside an expression: only placeholders ({}, {key}, "
                "{#}) may appear there");
        const std::size_t close = s.find_first_of("{}", i + 1);
        if (close == std::string::npos || close >= end || s[close] != '}')
          error("'{' at offset " + std::to_string(i) + " is not closed (a placeholder is {}, {key} or {#})");
        toks_.push_back(Tok{Tok::ref, 0, parse_ref(std::string_view(s).substr(i + 1, close - i - 1), path, s), 0, i});
        i = close + 1;
      } else if (c == '/' && i + 1 < end && s[i + 1] == '/') {
        toks_.push_back(Tok{Tok::op, 0, {}, 'd', i});
        i += 2;
      } else if (c == '/') {
        error("'/' at offset " + std::to_string(i) + ": write // for (floor) division");
      } else if (c == '+' || c == '-' || c == '*' || c == '%' || c == '(' || c == ')') {
        toks_.push_back(Tok{Tok::op, 0, {}, c, i});
        ++i;
      } else if (c == '}') {
        error("'}' at offset " + std::to_string(i) + " inside an expression has no matching '{'");
      } else {
        error("unexpected '" + std::string(1, c) + "' at offset " + std::to_string(i) + " in the expression; " +
              kExprHint);
      }
    }
    if (toks_.empty())
      error("empty expression at offset " + std::to_string(begin - 2) + "; " + kExprHint);
  }

  std::vector<Expr> parse() {
    (void)expr();
    if (pos_ != toks_.size()) {
      const Tok& t = toks_[pos_];
      if (t.kind == Tok::op && t.c == ')')
        error("')' at offset " + std::to_string(t.pos) + " has no matching '('");
      error("expected an operator (+ - * // %) at offset " + std::to_string(t.pos) + ", found " + describe(t));
    }
    return std::move(nodes_);
  }

 private:
  struct Tok {
    enum Kind { number, ref, op } kind;
    std::int64_t value;
    Ref r;
    char c;
    std::size_t pos;
  };

  [[noreturn]] void error(const std::string& what) const { fail(path_, s_, what); }
  static std::string describe(const Tok& t) {
    switch (t.kind) {
      case Tok::number: return "the number " + std::to_string(t.value);
      case Tok::ref: return "the placeholder " + t.r.text;
      case Tok::op: return t.c == 'd' ? "'//'" : "'" + std::string(1, t.c) + "'";
    }
    return "?";
  }

  bool peek_op(char c) const { return pos_ < toks_.size() && toks_[pos_].kind == Tok::op && toks_[pos_].c == c; }
  std::size_t add(Expr e) {
    nodes_.push_back(std::move(e));
    return nodes_.size() - 1;
  }
  std::size_t binary(Expr::Op op, std::size_t l, std::size_t r) {
    Expr e;
    e.op = op;
    e.lhs = l;
    e.rhs = r;
    return add(std::move(e));
  }
  std::size_t expr() {
    std::size_t l = term();
    for (;;) {
      if (peek_op('+')) {
        ++pos_;
        l = binary(Expr::Op::add, l, term());
      } else if (peek_op('-')) {
        ++pos_;
        l = binary(Expr::Op::sub, l, term());
      } else {
        return l;
      }
    }
  }
  std::size_t term() {
    std::size_t l = unary();
    for (;;) {
      if (peek_op('*')) {
        ++pos_;
        l = binary(Expr::Op::mul, l, unary());
      } else if (peek_op('d')) {
        ++pos_;
        l = binary(Expr::Op::floordiv, l, unary());
      } else if (peek_op('%')) {
        ++pos_;
        l = binary(Expr::Op::mod, l, unary());
      } else {
        return l;
      }
    }
  }
  std::size_t unary() {
    if (peek_op('-')) {
      ++pos_;
      Expr e;
      e.op = Expr::Op::neg;
      e.lhs = unary();
      return add(std::move(e));
    }
    return primary();
  }
  std::size_t primary() {
    if (pos_ >= toks_.size())
      error("the expression ends at offset " + std::to_string(end_) + " where a number, a placeholder or '(' "
            "is expected");
    const Tok& t = toks_[pos_];
    if (t.kind == Tok::number) {
      ++pos_;
      Expr e;
      e.value = t.value;
      return add(std::move(e));
    }
    if (t.kind == Tok::ref) {
      ++pos_;
      Expr e;
      e.op = Expr::Op::ref;
      e.ref = t.r;
      return add(std::move(e));
    }
    if (peek_op('(')) {
      ++pos_;
      const std::size_t inner = expr();
      if (!peek_op(')')) error("'(' at offset " + std::to_string(t.pos) + " is not closed");
      ++pos_;
      return inner;
    }
    error("expected a number, a placeholder or '(' at offset " + std::to_string(t.pos) + ", found " + describe(t));
  }

  const std::string& s_;
  const std::string& path_;
  std::size_t end_;
  std::vector<Tok> toks_;
  std::size_t pos_ = 0;
  std::vector<Expr> nodes_;
};

// Splits a string into literal text, placeholders and expressions.
std::vector<Piece> split(const std::string& s, const std::string& path) {
  std::vector<Piece> out;
  std::string lit;
  auto flush = [&] {
    if (!lit.empty()) out.push_back(Piece{std::move(lit), std::nullopt, {}});
    lit.clear();
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '{') {
      if (i + 1 < s.size() && s[i + 1] == '{') {
        lit += '{';
        ++i;
        continue;
      }
      if (i + 1 < s.size() && s[i + 1] == '=') {
        const std::size_t close = s.find("=}", i + 2);
        if (close == std::string::npos)
          fail(path, s, "'{=' at offset " + std::to_string(i) + " is not closed: end the expression with '=}' "
                        "(write {{ for a literal brace)");
        flush();
        out.push_back(Piece{{}, std::nullopt, ExprParser(s, i + 2, close, path).parse()});
        i = close + 1;
        continue;
      }
      const std::size_t close = s.find_first_of("{}", i + 1);
      if (close == std::string::npos || s[close] != '}')
        fail(path, s, "'{' at offset " + std::to_string(i) + " is not closed (write {{ for a literal brace)");
      flush();
      out.push_back(Piece{{}, parse_ref(std::string_view(s).substr(i + 1, close - i - 1), path, s), {}});
      i = close;
    } else if (c == '}') {
      if (i + 1 < s.size() && s[i + 1] == '}') {
        lit += '}';
        ++i;
        continue;
      }
      fail(path, s, "'}' at offset " + std::to_string(i) + " has no matching '{' (write }} for a literal brace)");
    } else {
      lit += c;
    }
  }
  flush();
  return out;
}

Node compile_node(const json& src, const std::string& path) {
  Node n;
  n.path = path;
  if (src.is_array()) {
    Node::Array a;
    for (std::size_t i = 0; i < src.size(); ++i) a.items.push_back(compile_node(src[i], path_index(path, i)));
    n.v = std::move(a);
  } else if (src.is_object()) {
    Node::Object o;
    for (const auto& [k, v] : src.items()) o.fields.emplace_back(k, compile_node(v, path_key(path, k)));
    n.v = std::move(o);
  } else if (src.is_string()) {
    const std::string& s = src.get_ref<const std::string&>();
    auto pieces = split(s, path);
    const bool dynamic = std::any_of(pieces.begin(), pieces.end(),
                                     [](const Piece& p) { return p.ref.has_value() || !p.expr.empty(); });
    if (!dynamic) {
      std::string text;
      for (auto& p : pieces) text += p.literal;
      n.v = Node::Literal{json(std::move(text))};
    } else if (pieces.size() == 1 && pieces[0].ref) {
      n.v = Node::Whole{*pieces[0].ref};
    } else if (pieces.size() == 1) {
      n.v = Node::Arith{std::move(pieces[0].expr), s};
    } else {
      n.v = Node::Text{std::move(pieces), s};
    }
  } else {
    n.v = Node::Literal{src};
  }
  return n;
}

std::string input_label(std::size_t index) { return "input #" + std::to_string(index); }

// Part `part` of path `p`, as GNU parallel's {.} {/} {//} {/.} give it.
std::string path_part(const std::string& p, Ref::PathPart part) {
  const auto slash = p.rfind('/');
  const std::string base = slash == std::string::npos ? p : p.substr(slash + 1);
  auto no_ext = [](const std::string& s, std::size_t from) {
    const auto dot = s.rfind('.');
    return dot == std::string::npos || dot < from || dot == from ? s : s.substr(0, dot);
  };
  switch (part) {
    case Ref::PathPart::all: return p;
    case Ref::PathPart::no_ext: return no_ext(p, slash == std::string::npos ? 0 : slash + 1);
    case Ref::PathPart::base: return base;
    case Ref::PathPart::dir:
      if (slash == std::string::npos) return ".";
      return slash == 0 ? std::string("/") : p.substr(0, slash);
    case Ref::PathPart::base_no_ext: return no_ext(base, 0);
  }
  return p;
}

const json& resolve_value(const Ref& r, const json& item, std::size_t index, json& scratch, const Node& at,
                          const std::string& source);

// The value of a placeholder for item `item`: the item, its index or a field,
// and then, for {.} {/} {//} {/.}, that part of it (a string).
const json& resolve(const Ref& r, const json& item, std::size_t index, json& scratch, const Node& at,
                    const std::string& source) {
  const json& v = resolve_value(r, item, index, scratch, at, source);
  if (r.part == Ref::PathPart::all) return v;
  if (!v.is_string())
    fail(at.path, source, "placeholder " + r.text + " takes a part of a path, so it needs a string, but " +
                              input_label(index) + " gives " + describe_json(v));
  scratch = path_part(v.get_ref<const std::string&>(), r.part);
  return scratch;
}

const json& resolve_value(const Ref& r, const json& item, std::size_t index, json& scratch, const Node& at,
                          const std::string& source) {
  switch (r.kind) {
    case Ref::Kind::whole: return item;
    case Ref::Kind::index:
      scratch = index;
      return scratch;
    case Ref::Kind::field: break;
  }
  const json* cur = &item;
  std::string walked = "{";
  for (std::size_t s = 0; s < r.segments.size(); ++s) {
    const std::string& seg = r.segments[s];
    const std::string where = s == 0 ? input_label(index) + " " : input_label(index) + " field " + walked + "} ";
    if (cur->is_object()) {
      auto it = cur->find(seg);
      if (it == cur->end())
        fail(at.path, source, where + "(" + describe_json(*cur) + ") has no field \"" + seg + "\"");
      cur = &*it;
    } else if (cur->is_array() && std::all_of(seg.begin(), seg.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
      const std::size_t i = std::stoul(seg);
      if (i >= cur->size())
        fail(at.path, source, where + "has no element " + seg + " (" + describe_json(*cur) + ")");
      cur = &(*cur)[i];
    } else {
      fail(at.path, source, "placeholder " + r.text + " needs an object" +
                                (cur->is_array() ? " or an array and a numeric index" : "") + ", but " +
                                where + "is " + describe_json(*cur));
    }
    walked += (s == 0 ? "" : ".") + seg;
  }
  return *cur;
}

std::string as_text(const json& v) {
  if (v.is_string()) return v.get_ref<const std::string&>();
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::int64_t eval(const std::vector<Expr>& nodes, std::size_t i, const json& item, std::size_t index,
                  const Node& at, const std::string& source) {
  const Expr& e = nodes[i];
  auto overflow = [&]() -> std::int64_t {
    fail(at.path, source, input_label(index) + ": the result overflows a 64-bit integer");
  };
  std::int64_t a = 0, b = 0, r = 0;
  switch (e.op) {
    case Expr::Op::literal: return e.value;
    case Expr::Op::ref: {
      json scratch;
      const json& v = resolve(e.ref, item, index, scratch, at, source);
      if (v.is_number_integer()) {
        if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
          return overflow();
        return v.get<std::int64_t>();
      }
      fail(at.path, source, "arithmetic needs integers, but " + e.ref.text + " is " + describe_json(v) +
                                " in " + input_label(index));
    }
    case Expr::Op::neg:
      a = eval(nodes, e.lhs, item, index, at, source);
      if (a == std::numeric_limits<std::int64_t>::min()) return overflow();
      return -a;
    default: break;
  }
  a = eval(nodes, e.lhs, item, index, at, source);
  b = eval(nodes, e.rhs, item, index, at, source);
  switch (e.op) {
    case Expr::Op::add:
      if (__builtin_add_overflow(a, b, &r)) return overflow();
      return r;
    case Expr::Op::sub:
      if (__builtin_sub_overflow(a, b, &r)) return overflow();
      return r;
    case Expr::Op::mul:
      if (__builtin_mul_overflow(a, b, &r)) return overflow();
      return r;
    case Expr::Op::floordiv:
    case Expr::Op::mod: {
      if (b == 0) fail(at.path, source, input_label(index) + ": division by zero");
      if (a == std::numeric_limits<std::int64_t>::min() && b == -1) return overflow();
      std::int64_t q = a / b, m = a % b;
      if (m != 0 && ((m < 0) != (b < 0))) {  // floor, as Python: the remainder takes b's sign
        --q;
        m += b;
      }
      return e.op == Expr::Op::floordiv ? q : m;
    }
    default: return 0;
  }
}

json expand_node(const Node& n, const json& item, std::size_t index) {
  return std::visit(
      [&](const auto& v) -> json {
        using V = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<V, Node::Literal>) {
          return v.value;
        } else if constexpr (std::is_same_v<V, Node::Whole>) {
          json scratch;
          return resolve(v.ref, item, index, scratch, n, v.ref.text);
        } else if constexpr (std::is_same_v<V, Node::Arith>) {
          return eval(v.nodes, v.nodes.size() - 1, item, index, n, v.source);
        } else if constexpr (std::is_same_v<V, Node::Text>) {
          std::string out;
          for (const auto& p : v.pieces) {
            if (p.ref) {
              json scratch;
              out += as_text(resolve(*p.ref, item, index, scratch, n, v.source));
            } else if (!p.expr.empty()) {
              out += std::to_string(eval(p.expr, p.expr.size() - 1, item, index, n, v.source));
            } else {
              out += p.literal;
            }
          }
          return out;
        } else if constexpr (std::is_same_v<V, Node::Array>) {
          json out = json::array();
          for (const auto& c : v.items) out.push_back(expand_node(c, item, index));
          return out;
        } else {
          json out = json::object();
          for (const auto& [k, c] : v.fields) out[k] = expand_node(c, item, index);
          return out;
        }
      },
      n.v);
}

}  // namespace

Template Template::compile(const json& source, const std::string& path) {
  return Template(std::make_shared<const Node>(compile_node(source, path)));
}

json Template::expand(const json& item, std::size_t index) const { return expand_node(*root_, item, index); }

bool Template::is_identity() const noexcept {
  const auto* w = std::get_if<Node::Whole>(&root_->v);
  return w != nullptr && w->ref.kind == Ref::Kind::whole && w->ref.part == Ref::PathPart::all;
}

}  // namespace taskfarm::cli
