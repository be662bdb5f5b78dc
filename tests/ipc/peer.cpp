#include "peer.hpp"

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "taskfarm/ipc/fd.hpp"

namespace taskfarm::test {

ForkedPeer::ForkedPeer(Transport transport, Body body, ipc::LinkConfig master_config,
                       ipc::LinkConfig worker_config) {
  ipc::LinkPair pair;
  if (auto ec = ipc::create_link(transport, master_config, pair))
    throw std::runtime_error("create_link: " + ec.message());
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t pid = ::fork();
  if (pid < 0) {
    for (int fd : pair.worker.fds) ::close(fd);
    throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::alarm(60);  // watchdog: a stuck child dies instead of hanging the suite
    // The master's descriptors survived fork (close-on-exec only); a peer that
    // kept them would never see its own end of file.
    ipc::close_internal_fds_except({});
    int code = kAttachFailed;
    std::unique_ptr<ipc::Link> link;
    if (!ipc::attach_link(pair.worker, worker_config, link)) {
      try {
        code = body(*link);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "peer body threw: %s\n", e.what());
        code = kBodyThrew;
      } catch (...) {
        code = kBodyThrew;
      }
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  pid_ = pid;
  for (int fd : pair.worker.fds) ::close(fd);  // only the child holds the worker end now
  link_ = std::move(pair.master);
}

ForkedPeer::~ForkedPeer() { finish(); }

int ForkedPeer::finish() {
  link_.reset();
  if (pid_ > 0) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
  }
  return status_;
}

namespace {
std::uint64_t splitmix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

std::vector<std::byte> pattern(std::uint64_t seed, std::size_t n) {
  std::vector<std::byte> v(n);
  std::uint64_t x = seed * 0x2545f4914f6cdd1dull + n;
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t r = splitmix(x);
    std::memcpy(v.data() + i, &r, std::min<std::size_t>(8, n - i));
  }
  return v;
}

std::string compare_pattern(std::span<const std::byte> got, std::uint64_t seed, std::size_t n) {
  if (got.size() != n)
    return "size " + std::to_string(got.size()) + ", expected " + std::to_string(n);
  const auto want = pattern(seed, n);
  const auto mis = std::mismatch(got.begin(), got.end(), want.begin());
  if (mis.first == got.end()) return {};
  return "content differs at byte " + std::to_string(mis.first - got.begin()) + " of " +
         std::to_string(n);
}

bool write_all(int fd, std::span<const std::byte> bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w > 0) {
      done += static_cast<std::size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 1000);
      continue;
    }
    return false;
  }
  return true;
}

std::vector<std::byte> header_bytes(const FrameHeader& h) {
  std::vector<std::byte> v(sizeof h);
  std::memcpy(v.data(), &h, sizeof h);
  return v;
}

std::size_t pump_size(std::size_t i) {
  static constexpr std::size_t kSizes[] = {0,     1,         100,     4096,
                                           65539, 300'000, 1 << 20, 24};
  return kSizes[i % std::size(kSizes)];
}

std::string pump(ipc::Link& link, std::size_t n, FrameKind out_kind, std::uint64_t out_seed,
                 FrameKind in_kind, std::uint64_t in_seed) {
  std::size_t sent = 0, got = 0;
  Frame f;
  while (sent < n || got < n || link.has_pending_output()) {
    bool progress = false;
    if (link.has_pending_output()) {
      const auto ec = link.flush();
      if (ec && ec != ipc::Errc::would_block) return "flush: " + ec.message();
    }
    while (sent < n && !link.has_pending_output()) {
      const auto p = pattern(out_seed + sent, pump_size(sent));
      if (auto ec = link.try_send(out_kind, sent, p))
        return "try_send #" + std::to_string(sent) + ": " + ec.message();
      ++sent;
      progress = true;
    }
    while (got < n) {
      const auto ec = link.try_receive(f);
      if (ec == ipc::Errc::would_block) break;
      if (ec) return "try_receive #" + std::to_string(got) + ": " + ec.message();
      if (f.kind() != in_kind || f.id() != got)
        return "frame #" + std::to_string(got) + " arrived as " + std::string(to_string(f.kind())) +
               " #" + std::to_string(f.id());
      if (auto why = compare_pattern(f.payload, in_seed + got, pump_size(got)); !why.empty())
        return "frame #" + std::to_string(got) + ": " + why;
      ++got;
      progress = true;
    }
    if (progress || !link.prepare_wait()) continue;
    pollfd pf[2];
    nfds_t k = 0;
    if (got < n) pf[k++] = {link.readable_fd(), POLLIN, 0};
    if (link.has_pending_output() && link.writable_fd() >= 0)
      pf[k++] = {link.writable_fd(), POLLOUT, 0};
    if (k == 0) continue;
    const int r = ::poll(pf, k, 30'000);
    if (r == 0)
      return "no progress for 30 s (sent " + std::to_string(sent) + ", received " +
             std::to_string(got) + ")";
    if (r < 0 && errno != EINTR) return std::string("poll: ") + std::strerror(errno);
  }
  return {};
}

}  // namespace taskfarm::test
