#pragma once
// File descriptors owned by taskfarm.
//
// Every descriptor taskfarm opens in the master is close-on-exec and recorded in
// a process-wide, lock-free table, so that a process forked from the master (a
// pool's fork server) can close the descriptors of *other* pools without touching
// the user's own files. The table is read with async-signal-safe operations only.

#include <span>
#include <utility>

namespace taskfarm::ipc {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  // Takes ownership of `fd` and records it as taskfarm-internal.
  explicit UniqueFd(int fd) noexcept;
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] explicit operator bool() const noexcept { return fd_ >= 0; }
  // Gives up ownership (and the internal record) without closing.
  int release() noexcept;
  void reset() noexcept;

 private:
  int fd_ = -1;
};

// Closes every recorded taskfarm descriptor except those in `keep`.
// Async-signal-safe: meant for the child side of fork().
void close_internal_fds_except(std::span<const int> keep) noexcept;

// Sets or clears O_NONBLOCK / FD_CLOEXEC. Return false and leave errno set on failure.
bool set_nonblocking(int fd, bool on) noexcept;
bool set_cloexec(int fd, bool on) noexcept;

}  // namespace taskfarm::ipc
