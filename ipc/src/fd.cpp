#include "taskfarm/ipc/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

namespace taskfarm::ipc {

namespace {
// Slots hold fd+1 (0 = free). 4096 slots cover 1000+ workers with a few fds each;
// a descriptor that finds no free slot is simply not recorded (it is still
// close-on-exec, so only a fork-only child could inherit it).
constexpr int kSlots = 4096;
std::atomic<int> g_slots[kSlots];

void record(int fd) noexcept {
  for (auto& s : g_slots) {
    int expected = 0;
    if (s.compare_exchange_strong(expected, fd + 1, std::memory_order_acq_rel)) return;
  }
}

void forget(int fd) noexcept {
  for (auto& s : g_slots) {
    int expected = fd + 1;
    if (s.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) return;
  }
}
}  // namespace

UniqueFd::UniqueFd(int fd) noexcept : fd_(fd) {
  if (fd_ >= 0) record(fd_);
}

int UniqueFd::release() noexcept {
  if (fd_ >= 0) forget(fd_);
  return std::exchange(fd_, -1);
}

void UniqueFd::reset() noexcept {
  if (fd_ >= 0) {
    forget(fd_);
    ::close(fd_);
    fd_ = -1;
  }
}

void close_internal_fds_except(std::span<const int> keep) noexcept {
  for (auto& s : g_slots) {
    const int v = s.load(std::memory_order_acquire);
    if (v == 0) continue;
    const int fd = v - 1;
    if (std::find(keep.begin(), keep.end(), fd) != keep.end()) continue;
    ::close(fd);
    s.store(0, std::memory_order_release);
  }
}

bool set_nonblocking(int fd, bool on) noexcept {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl < 0) return false;
  fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
  return ::fcntl(fd, F_SETFL, fl) == 0;
}

bool set_cloexec(int fd, bool on) noexcept {
  int fl = ::fcntl(fd, F_GETFD);
  if (fl < 0) return false;
  fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
  return ::fcntl(fd, F_SETFD, fl) == 0;
}

}  // namespace taskfarm::ipc
