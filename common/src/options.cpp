#include "taskfarm/common/options.hpp"

namespace taskfarm {

std::string_view to_string(Transport t) noexcept {
  switch (t) {
    case Transport::pipe: return "pipe";
    case Transport::socket: return "socket";
    case Transport::mqueue: return "mqueue";
    case Transport::shm: return "shm";
  }
  return "unknown";
}

std::string_view to_string(Start s) noexcept {
  switch (s) {
    case Start::fork: return "fork";
    case Start::spawn: return "spawn";
  }
  return "unknown";
}

std::optional<Transport> parse_transport(std::string_view s) noexcept {
  for (auto t : {Transport::pipe, Transport::socket, Transport::mqueue, Transport::shm})
    if (to_string(t) == s) return t;
  return std::nullopt;
}

std::optional<Start> parse_start(std::string_view s) noexcept {
  for (auto v : {Start::fork, Start::spawn})
    if (to_string(v) == s) return v;
  return std::nullopt;
}

}  // namespace taskfarm
