#include "taskfarm/ipc/endpoint.hpp"

#include <charconv>

namespace taskfarm::ipc {

std::string Endpoint::to_string() const {
  std::string s = transport + ":fds=";
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(fds[i]);
  }
  for (const auto& [k, v] : params) s += ";" + k + "=" + v;
  return s;
}

std::optional<Endpoint> Endpoint::parse(std::string_view text, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<Endpoint> {
    if (error) *error = "invalid endpoint \"" + std::string(text) + "\": " + std::move(why);
    return std::nullopt;
  };
  Endpoint ep;
  const auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return fail("expected <transport>:...");
  ep.transport = std::string(text.substr(0, colon));
  std::string_view rest = text.substr(colon + 1);
  bool first = true;
  while (!rest.empty() || first) {
    const auto semi = rest.find(';');
    std::string_view item = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) return fail("expected key=value, found \"" + std::string(item) + "\"");
    std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    if (first) {
      if (key != "fds") return fail("the first field must be fds=");
      while (!value.empty()) {
        const auto comma = value.find(',');
        std::string_view num = value.substr(0, comma);
        int fd = -1;
        auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), fd);
        if (ec != std::errc{} || p != num.data() + num.size() || fd < 0)
          return fail("bad descriptor \"" + std::string(num) + "\"");
        ep.fds.push_back(fd);
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
      }
      first = false;
    } else {
      if (key.empty()) return fail("empty key");
      ep.params.emplace_back(std::string(key), std::string(value));
    }
  }
  return ep;
}

const std::string* Endpoint::param(std::string_view key) const noexcept {
  for (const auto& [k, v] : params)
    if (k == key) return &v;
  return nullptr;
}

void Endpoint::set(std::string key, std::string value) {
  for (auto& [k, v] : params)
    if (k == key) {
      v = std::move(value);
      return;
    }
  params.emplace_back(std::move(key), std::move(value));
}

}  // namespace taskfarm::ipc
