#pragma once
// The one error vocabulary of ipc/. The data path never throws: send and
// receive return an std::error_code, which is either one of these or an
// operating-system error (std::system_category) that has no better name.

#include <system_error>

namespace taskfarm::ipc {

enum class Errc {
  ok = 0,
  would_block = 1,     // try_*: nothing could be done without waiting
  timed_out = 2,       // *_for: the deadline passed
  peer_gone = 3,       // the other side closed, exited or was killed
  protocol_error = 4,  // the bytes received are not a valid frame
  too_large = 5,       // a frame exceeds the link's maximum
  closed = 6,          // this end was closed
};

const std::error_category& category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), category()};
}

// The single place errno becomes an error code.
std::error_code from_errno(int err) noexcept;

}  // namespace taskfarm::ipc

template <>
struct std::is_error_code_enum<taskfarm::ipc::Errc> : std::true_type {};
