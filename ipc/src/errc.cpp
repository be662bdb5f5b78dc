#include "taskfarm/ipc/errc.hpp"

#include <cerrno>
#include <string>

namespace taskfarm::ipc {

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "taskfarm.ipc"; }
  std::string message(int ev) const override {
    switch (static_cast<Errc>(ev)) {
      case Errc::ok: return "success";
      case Errc::would_block: return "operation would block";
      case Errc::timed_out: return "timed out";
      case Errc::peer_gone: return "the peer process is gone";
      case Errc::protocol_error: return "protocol error: invalid frame";
      case Errc::too_large: return "frame too large";
      case Errc::closed: return "link closed";
    }
    return "unknown ipc error " + std::to_string(ev);
  }
};
}  // namespace

const std::error_category& category() noexcept {
  static const Category c;
  return c;
}

std::error_code from_errno(int err) noexcept {
  switch (err) {
    case 0: return {};
    case EAGAIN: return Errc::would_block;
    case ETIMEDOUT: return Errc::timed_out;
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
    case ESRCH: return Errc::peer_gone;
    case EMSGSIZE: return Errc::too_large;
    case EBADF: return Errc::closed;
    default: return {err, std::system_category()};
  }
}

}  // namespace taskfarm::ipc
