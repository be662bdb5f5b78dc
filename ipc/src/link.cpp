#include "taskfarm/ipc/link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "deadline.hpp"
#include "mqueue_link.hpp"
#include "shm_link.hpp"
#include "stream_link.hpp"

namespace taskfarm::ipc {

namespace {
constexpr auto kForever = Link::Clock::time_point::max();
using detail::deadline_after;
}  // namespace

std::error_code Link::wait_until(bool for_write, Clock::time_point deadline) {
  const int fd = for_write && writable_fd() >= 0 ? writable_fd() : readable_fd();
  const short events = for_write && writable_fd() >= 0 ? POLLOUT : POLLIN;
  for (;;) {
    int timeout_ms = -1;
    if (deadline != kForever) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Errc::timed_out;
      timeout_ms = static_cast<int>(std::min<long long>(left.count(), 1 << 30));
    }
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, timeout_ms);
    if (r > 0) return {};  // readable, writable, or error/hang-up: the next call reports it
    if (r == 0) continue;  // re-check the deadline
    if (errno != EINTR) return from_errno(errno);
  }
}

std::error_code Link::send(FrameKind kind, std::uint64_t id, std::span<const std::byte> payload) {
  return send_for(kind, id, payload, Clock::duration::max());
}

std::error_code Link::send_for(FrameKind kind, std::uint64_t id,
                               std::span<const std::byte> payload, Clock::duration timeout) {
  if (auto ec = try_send(kind, id, payload, Flush::now)) return ec;
  return flush_for(timeout);
}

std::error_code Link::flush_for(Clock::duration timeout) {
  const auto deadline = deadline_after(timeout);
  for (;;) {
    auto ec = flush();
    if (ec != Errc::would_block) return ec;
    if (auto w = wait_until(true, deadline)) return w;
  }
}

std::error_code Link::receive(Frame& out) { return receive_for(out, Clock::duration::max()); }

std::error_code Link::receive_for(Frame& out, Clock::duration timeout) {
  const auto deadline = deadline_after(timeout);
  for (;;) {
    auto ec = try_receive(out);
    if (ec != Errc::would_block) return ec;
    if (auto w = wait_until(false, deadline)) return w;
  }
}

namespace {
std::error_code create_pipe_link(const LinkConfig& config, LinkPair& out) {
  int to_worker[2], to_master[2];
  if (::pipe2(to_worker, O_CLOEXEC) != 0) return from_errno(errno);
  UniqueFd tw_r(to_worker[0]), tw_w(to_worker[1]);
  if (::pipe2(to_master, O_CLOEXEC) != 0) return from_errno(errno);
  UniqueFd tm_r(to_master[0]), tm_w(to_master[1]);
  // A 1 MiB pipe buffer quadruples large-payload throughput (MACHINE.md); the
  // default stays if the system refuses (pipe-max-size, per-user limits).
  constexpr int kPipeBytes = 1 << 20;
  ::fcntl(tw_w.get(), F_SETPIPE_SZ, kPipeBytes);
  ::fcntl(tm_w.get(), F_SETPIPE_SZ, kPipeBytes);
  out.worker = Endpoint{"pipe", {tw_r.release(), tm_w.release()}, {}};
  out.master = std::make_unique<detail::StreamLink>(std::move(tm_r), std::move(tw_w), false,
                                                    config.max_frame_bytes);
  return {};
}

std::error_code create_socket_link(const LinkConfig& config, LinkPair& out) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return from_errno(errno);
  UniqueFd m(sv[0]), w(sv[1]);
  constexpr int kSockBytes = 1 << 20;
  for (int fd : {sv[0], sv[1]}) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSockBytes, sizeof kSockBytes);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSockBytes, sizeof kSockBytes);
  }
  out.worker = Endpoint{"socket", {w.release()}, {}};
  out.master = std::make_unique<detail::StreamLink>(std::move(m), UniqueFd{}, true,
                                                    config.max_frame_bytes);
  return {};
}
}  // namespace

std::error_code create_link(Transport transport, const LinkConfig& config, LinkPair& out) {
  switch (transport) {
    case Transport::pipe: return create_pipe_link(config, out);
    case Transport::socket: return create_socket_link(config, out);
    case Transport::mqueue: return detail::create_mqueue_link(config, out);
    case Transport::shm: return detail::ShmLink::create(config, out);
  }
  return std::make_error_code(std::errc::invalid_argument);
}

std::error_code attach_link(const Endpoint& ep, const LinkConfig& config,
                            std::unique_ptr<Link>& out) {
  if (ep.transport == "pipe") {
    if (ep.fds.size() != 2) return std::make_error_code(std::errc::invalid_argument);
    out = std::make_unique<detail::StreamLink>(UniqueFd(ep.fds[0]), UniqueFd(ep.fds[1]), false,
                                               config.max_frame_bytes);
    return {};
  }
  if (ep.transport == "socket") {
    if (ep.fds.size() != 1) return std::make_error_code(std::errc::invalid_argument);
    out = std::make_unique<detail::StreamLink>(UniqueFd(ep.fds[0]), UniqueFd{}, true,
                                               config.max_frame_bytes);
    return {};
  }
  if (ep.transport == "shm") return detail::ShmLink::attach(ep, config, out);
  if (ep.transport == "mqueue") return detail::attach_mqueue_link(ep, config, out);
  return std::make_error_code(std::errc::function_not_supported);
}

void release_endpoint_names(const Endpoint& ep) noexcept {
  if (ep.transport == "mqueue") detail::release_mqueue_names(ep);
}

}  // namespace taskfarm::ipc
