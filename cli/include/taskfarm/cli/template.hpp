#pragma once
// Argument templates: how a job turns each input item into a task argument.
// The grammar is documented in docs/JOBFILES.md; in short:
//
//   "{}"              the whole item, keeping its JSON type
//   "{key}"           a field of an object item ("{a.b}" nested, "{0}" array element)
//   "{#}"             the item's index in the job (0-based)
//   "{= {}+200000 =}" integer arithmetic: + - * // % and parentheses -> a JSON integer
//   "n={key}"         anything else is text ("{}-{#}" gives "1-0"; an expression
//                     inside text gives its decimal digits: "n{= {#}+1 =}")
//   "{{", "}}"        literal braces
//
// Arrays and objects are expanded element by element; object keys and values
// that are not strings are kept as they are.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace taskfarm::cli {

class Template {
 public:
  // Compiles `source`. `path` (e.g. "jobs[0].args") prefixes error messages.
  // Throws JobError for a syntax error, naming the path of the bad string.
  static Template compile(const nlohmann::json& source, const std::string& path);

  // The argument for input `item`, the `index`-th of its job. Throws JobError
  // naming the path of the string that could not be expanded and the input index.
  [[nodiscard]] nlohmann::json expand(const nlohmann::json& item, std::size_t index) const;

  // True when the template is the identity ("{}").
  [[nodiscard]] bool is_identity() const noexcept;

  struct Node;

 private:
  explicit Template(std::shared_ptr<const Node> root) : root_(std::move(root)) {}
  std::shared_ptr<const Node> root_;
};

}  // namespace taskfarm::cli
