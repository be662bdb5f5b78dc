#include "taskfarm/ipc/names.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace taskfarm::ipc {

namespace {

constexpr std::string_view kPrefix = "taskfarm-";
constexpr const char* kShmDir = "/dev/shm";

bool parse_decimal(std::string_view s, std::uint64_t& out) noexcept {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

bool is_random_part(std::string_view s) noexcept {
  if (s.size() != 16) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// The creator a /dev/shm file name records: "taskfarm-<pid>-<start>-<16 hex>-<tag>"
// or, from older builds, "taskfarm-<pid>-<16 hex>-<tag>" (no start time). Tags
// are never 16 hex digits, so the two cannot be confused.
struct Creator {
  pid_t pid = 0;
  bool has_start = false;
  std::uint64_t start = 0;
};

bool take_part(std::string_view& s, std::string_view& head) noexcept {
  const auto dash = s.find('-');
  if (dash == std::string_view::npos) return false;
  head = s.substr(0, dash);
  s.remove_prefix(dash + 1);
  return true;
}

bool parse_creator(std::string_view name, Creator& out) noexcept {
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  std::string_view rest = name.substr(kPrefix.size()), pid_part, second;
  if (!take_part(rest, pid_part) || !take_part(rest, second)) return false;
  std::uint64_t pid = 0;
  if (!parse_decimal(pid_part, pid) || pid == 0 || pid > static_cast<std::uint64_t>(INT_MAX)) return false;
  out.pid = static_cast<pid_t>(pid);
  // `rest` is "<16 hex>-<tag>" (with a start time) or "<tag>" (without).
  std::string_view tag = rest, random;
  if (take_part(tag, random) && is_random_part(random) && !tag.empty() &&
      parse_decimal(second, out.start)) {
    out.has_start = true;
    return true;
  }
  out.has_start = false;
  return is_random_part(second) && !rest.empty();
}

enum class Liveness { alive, dead, unknown };

Liveness liveness(pid_t pid) noexcept {
  if (::kill(pid, 0) == 0) return Liveness::alive;
  if (errno == EPERM) return Liveness::alive;  // someone else's process
  if (errno == ESRCH) return Liveness::dead;
  return Liveness::unknown;
}

}  // namespace

std::optional<std::uint64_t> process_start_time(pid_t pid) noexcept {
  if (pid <= 0) return std::nullopt;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%ld/stat", static_cast<long>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  // "pid (comm) state ppid ...": comm is at most 64 bytes and may hold spaces
  // and parentheses, so fields are counted from the last ')'.
  char buf[1024];
  std::size_t len = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf + len, sizeof buf - 1 - len);
    if (n > 0) {
      len += static_cast<std::size_t>(n);
      if (len < sizeof buf - 1) continue;
    } else if (n < 0 && errno == EINTR) {
      continue;
    }
    break;
  }
  ::close(fd);
  const std::string_view line(buf, len);
  const auto close = line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = line.substr(close + 1);
  // Fields 3 (state) ... 22 (starttime): the 20th after the ')'.
  for (int field = 3;; ++field) {
    const auto begin = rest.find_first_not_of(' ');
    if (begin == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(begin);
    const auto end = std::min(rest.find(' '), rest.size());
    if (field == 22) {
      std::uint64_t start = 0;
      std::string_view value = rest.substr(0, end);
      if (!value.empty() && value.back() == '\n') value.remove_suffix(1);
      if (!parse_decimal(value, start)) return std::nullopt;
      return start;
    }
    rest.remove_prefix(end);
  }
}

std::size_t sweep_stale_names() noexcept {
  try {
    std::vector<std::string> stale;
    DIR* dir = ::opendir(kShmDir);
    if (dir == nullptr) return 0;
    const uid_t me = ::geteuid();
    while (const dirent* e = ::readdir(dir)) {
      Creator c;
      if (!parse_creator(e->d_name, c)) continue;
      // Only this user's objects, and only plain files: never another user's,
      // even as root.
      struct stat st {};
      if (::fstatat(::dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG(st.st_mode) || st.st_uid != me)
        continue;
      const Liveness l = liveness(c.pid);
      bool gone = l == Liveness::dead;
      if (l == Liveness::alive && c.has_start) {
        // Alive under that pid: the creator only if it started when the name says.
        // An unreadable record (the process is exiting) decides nothing now.
        const auto start = process_start_time(c.pid);
        gone = start && *start != c.start;
      }
      if (gone) stale.emplace_back(e->d_name);
    }
    ::closedir(dir);
    std::size_t removed = 0;
    for (const auto& name : stale)
      if (::shm_unlink(("/" + name).c_str()) == 0) ++removed;
    return removed;
  } catch (...) {  // std::bad_alloc
    return 0;
  }
}

std::size_t sweep_stale_names_once() noexcept {
  // The pid of the process that swept: a forked child sees its parent's here.
  static std::atomic<pid_t> swept{0};
  const pid_t self = ::getpid();
  pid_t seen = swept.load(std::memory_order_relaxed);
  if (seen == self || !swept.compare_exchange_strong(seen, self, std::memory_order_relaxed)) return 0;
  return sweep_stale_names();
}

}  // namespace taskfarm::ipc
