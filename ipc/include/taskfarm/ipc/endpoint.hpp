#pragma once
// How a worker finds its end of a link: a string that survives fork and exec,
//
//   <transport>:fds=<fd>,<fd>...;<key>=<value>;...
//   e.g.  pipe:fds=5,6          shm:fds=7;name=/taskfarm-4711-1f0c9a8e33b2-w3
//
// The descriptors are inherited; when they travel through another process
// (SCM_RIGHTS) they get new numbers, so they are kept apart from the text.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace taskfarm::ipc {

struct Endpoint {
  std::string transport;
  std::vector<int> fds;
  std::vector<std::pair<std::string, std::string>> params;

  [[nodiscard]] std::string to_string() const;
  // nullopt on any syntax error; `error` (if given) says what was wrong.
  [[nodiscard]] static std::optional<Endpoint> parse(std::string_view text,
                                                     std::string* error = nullptr);
  [[nodiscard]] const std::string* param(std::string_view key) const noexcept;
  void set(std::string key, std::string value);
};

}  // namespace taskfarm::ipc
