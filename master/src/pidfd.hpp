#pragma once
// pidfd system calls. glibc 2.36's <sys/pidfd.h> declares them without
// extern "C", so C++ cannot link against it; call the kernel directly.

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace taskfarm::detail {

inline int pidfd_open(pid_t pid) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u));
}

inline int pidfd_send_signal(int pidfd, int sig) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0u));
}

}  // namespace taskfarm::detail
