#pragma once
// A strict little XML reader for the SVG files the benchmark writes: it checks
// well-formedness (one root, balanced and properly nested tags, quoted and
// unique attributes, known entities, no stray '<' or '&') and returns the tree,
// so that tests can check elements and attributes too.

#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace taskfarm::test {

struct XmlElement {
  std::string name;
  std::map<std::string, std::string> attrs;  // entity-decoded values
  std::vector<XmlElement> children;
  std::string text;                          // decoded character data directly inside

  // Every descendant (not this one) called `name`, in document order.
  [[nodiscard]] std::vector<const XmlElement*> find_all(const std::string& name) const;
};

// Throws std::runtime_error("<line>:<column>: <what>") on the first problem.
XmlElement parse_xml(std::string_view text);

// Problems of an SVG document produced by the project: required attributes
// missing or not numbers, an empty <text>, a root that is not <svg>. Empty if none.
std::vector<std::string> check_svg(const XmlElement& root);

}  // namespace taskfarm::test
