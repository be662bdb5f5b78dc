#include "stream_link.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "deadline.hpp"
#include "test_hooks.hpp"

namespace taskfarm::ipc {
namespace {
thread_local bool t_sigpipe_harmless = false;
// Whether pipe reads and writes can be made non-blocking per call (RWF_NOWAIT:
// pipes gained it in 2023; Debian 12's 6.1 kernel refuses it). Cleared, for the
// whole process, the first time the kernel refuses the flag, or by a test.
std::atomic<bool> g_pipe_nowait{true};
}  // namespace

void sigpipe_is_harmless_in_this_thread(bool harmless) noexcept { t_sigpipe_harmless = harmless; }
}  // namespace taskfarm::ipc

namespace taskfarm::ipc::detail {

void stream_links_use_nonblocking_descriptors(bool on) noexcept {
  g_pipe_nowait.store(!on, std::memory_order_relaxed);
}

namespace {
// Whether errno after preadv2/pwritev2(RWF_NOWAIT) means the kernel cannot do
// that on this descriptor (old kernels: no FMODE_NOWAIT on pipes, no preadv2).
bool nowait_unsupported(int err) noexcept { return err == EOPNOTSUPP || err == EINVAL || err == ENOSYS; }

// Consumes a SIGPIPE our own write left pending (only when SIGPIPE is blocked in
// this thread; an ignored one is never pending).
void drain_own_sigpipe() noexcept {
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  const timespec zero{0, 0};
  while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
  }
}

// write() on a pipe whose reader is gone raises SIGPIPE, whose default action
// kills the process. We block it around the write and swallow the one we caused,
// so a dead worker (or a dead master) is an EPIPE result and never a death.
// Inactive (no system calls) in threads where SIGPIPE is harmless; the caller
// then swallows what it caused itself.
class SigpipeGuard {
 public:
  explicit SigpipeGuard(bool active) noexcept : active_(active) {
    if (!active_) return;
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
  }
  // After a write that may have raised SIGPIPE: it is consumed (unless one was
  // pending before, which is not ours to take).
  void may_have_raised() noexcept {
    if (!active_)
      drain_own_sigpipe();
    else
      raised_ = true;
  }
  ~SigpipeGuard() {
    if (!active_) return;
    if (raised_ && !was_pending_) drain_own_sigpipe();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  bool active_;
  sigset_t old_{};
  bool was_pending_ = false;
  bool raised_ = false;
};
}  // namespace

StreamLink::StreamLink(UniqueFd rfd, UniqueFd wfd, bool socket, std::uint64_t max_frame_bytes)
    : rfd_(std::move(rfd)), wfd_(std::move(wfd)), socket_(socket), max_(max_frame_bytes) {
  wfd_raw_ = wfd_ ? wfd_.get() : rfd_.get();
  blocking_fds_ = socket_ || g_pipe_nowait.load(std::memory_order_relaxed);
  set_nonblocking(rfd_.get(), !blocking_fds_);
  set_nonblocking(wfd_raw_, !blocking_fds_);
  in_.resize(kReadBuffer);
}

void StreamLink::use_nonblocking_descriptors() noexcept {
  g_pipe_nowait.store(false, std::memory_order_relaxed);
  blocking_fds_ = false;
  set_nonblocking(rfd_.get(), true);
  set_nonblocking(wfd_raw_, true);
}

ssize_t StreamLink::pipe_writev(const ::iovec* iov, int n, bool wait) {
  if (!blocking_fds_ || wait) return ::writev(wfd_raw_, iov, n);
  const ssize_t w = ::pwritev2(wfd_raw_, iov, n, -1, RWF_NOWAIT);
  if (w >= 0 || !nowait_unsupported(errno)) return w;
  use_nonblocking_descriptors();
  return ::writev(wfd_raw_, iov, n);
}

ssize_t StreamLink::write_some(const ::iovec* iov, int n, bool wait) {
  std::size_t want = 0;
  for (int i = 0; i < n; ++i) want += iov[i].iov_len;
  for (;;) {
    ssize_t w;
    int err;
    if (socket_) {
      msghdr msg{};
      msg.msg_iov = const_cast<::iovec*>(iov);
      msg.msg_iovlen = static_cast<std::size_t>(n);
      w = ::sendmsg(wfd_raw_, &msg, MSG_NOSIGNAL | (wait ? 0 : MSG_DONTWAIT));
      err = errno;
    } else {
      // A pipe write that the reader's death cuts short raises SIGPIPE and
      // returns EPIPE, or, if it had written some bytes already, their count:
      // either way our own SIGPIPE may be pending. A whole write raised none.
      SigpipeGuard guard(!t_sigpipe_harmless);
      w = pipe_writev(iov, n, wait);
      err = errno;
      if ((w < 0 && err == EPIPE) || (w >= 0 && static_cast<std::size_t>(w) < want))
        guard.may_have_raised();
    }
    if (w >= 0) return w;
    if (err == EINTR) continue;
    return -err;
  }
}

ssize_t StreamLink::read_some(std::byte* p, std::size_t n, bool wait) {
  for (;;) {
    ssize_t r;
    if (socket_) {
      r = ::recv(rfd_.get(), p, n, wait ? 0 : MSG_DONTWAIT);
    } else if (!blocking_fds_ || wait) {
      r = ::read(rfd_.get(), p, n);
    } else {
      ::iovec iov{p, n};
      r = ::preadv2(rfd_.get(), &iov, 1, -1, RWF_NOWAIT);
      if (r < 0 && nowait_unsupported(errno)) {
        use_nonblocking_descriptors();
        continue;
      }
    }
    if (r >= 0) return r;
    if (errno == EINTR) continue;
    return -errno;
  }
}

std::error_code StreamLink::try_send(FrameKind kind, std::uint64_t id,
                                     std::span<const std::byte> payload, Flush flush_mode) {
  if (payload.size() > max_) return Errc::too_large;
  if (broken_ == Errc::peer_gone || broken_ == Errc::closed) return broken_;
  const FrameHeader h = make_header(kind, id, payload.size());
  const auto* hb = reinterpret_cast<const std::byte*>(&h);

  if (!has_pending_output() && flush_mode == Flush::now) {
    iovec iov[2] = {{const_cast<std::byte*>(hb), sizeof h},
                    {const_cast<std::byte*>(payload.data()), payload.size()}};
    const ssize_t w = write_some(iov, payload.empty() ? 1 : 2, false);
    std::size_t done = 0;
    if (w < 0) {
      if (-w != EAGAIN) return from_errno(static_cast<int>(-w));
    } else {
      done = static_cast<std::size_t>(w);
    }
    if (done == sizeof h + payload.size()) return {};
    keep_unwritten(h, payload, done);  // the caller flushes it as the peer reads
    return {};
  }
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  }
  out_.insert(out_.end(), hb, hb + sizeof h);
  out_.insert(out_.end(), payload.begin(), payload.end());
  if (flush_mode == Flush::now || out_.size() - out_pos_ >= kCoalesceBytes) {
    auto ec = flush();
    if (ec == Errc::would_block) return {};
    return ec;
  }
  return {};
}

void StreamLink::keep_unwritten(const FrameHeader& h, std::span<const std::byte> payload,
                                std::size_t done) {
  const auto* hb = reinterpret_cast<const std::byte*>(&h);
  out_.clear();
  out_pos_ = 0;
  if (done < sizeof h) out_.insert(out_.end(), hb + done, hb + sizeof h);
  const std::size_t pdone = done > sizeof h ? done - sizeof h : 0;
  out_.insert(out_.end(), payload.begin() + static_cast<std::ptrdiff_t>(pdone), payload.end());
}

std::error_code StreamLink::send_for(FrameKind kind, std::uint64_t id,
                                     std::span<const std::byte> payload, Clock::duration timeout) {
  if (has_pending_output()) return Link::send_for(kind, id, payload, timeout);
  if (payload.size() > max_) return Errc::too_large;
  if (broken_ == Errc::peer_gone || broken_ == Errc::closed) return broken_;
  // Nothing queued ahead: write the frame straight from the caller's buffer,
  // waiting for room as the peer reads. Copying a large payload into out_
  // first would cost a copy and, for a fresh buffer, a page fault per 4 KiB.
  const FrameHeader h = make_header(kind, id, payload.size());
  const auto* hb = reinterpret_cast<const std::byte*>(&h);
  const std::size_t total = sizeof h + payload.size();
  const auto deadline = deadline_after(timeout);
  // No deadline: block in write() itself, as a plain pipe writer would (one
  // system call, not write + poll + write).
  const bool wait = blocks_in_call(timeout);
  std::size_t done = 0;
  while (done < total) {
    iovec iov[2];
    int n = 0;
    if (done < sizeof h) iov[n++] = {const_cast<std::byte*>(hb + done), sizeof h - done};
    const std::size_t pdone = done > sizeof h ? done - sizeof h : 0;
    if (pdone < payload.size())
      iov[n++] = {const_cast<std::byte*>(payload.data() + pdone), payload.size() - pdone};
    const ssize_t w = write_some(iov, n, wait);
    if (w >= 0) {
      done += static_cast<std::size_t>(w);
      continue;
    }
    if (-w != EAGAIN) return from_errno(static_cast<int>(-w));
    if (auto ec = wait_until(true, deadline)) {
      keep_unwritten(h, payload, done);  // out of time: queued, as with try_send + flush_for
      return ec;
    }
  }
  return {};
}

std::error_code StreamLink::flush() { return flush_out(false); }

std::error_code StreamLink::flush_for(Clock::duration timeout) {
  if (blocks_in_call(timeout)) return flush_out(true);
  return Link::flush_for(timeout);
}

std::error_code StreamLink::flush_out(bool wait) {
  while (out_pos_ < out_.size()) {
    iovec iov{out_.data() + out_pos_, out_.size() - out_pos_};
    const ssize_t w = write_some(&iov, 1, wait);
    if (w < 0) {
      if (-w == EAGAIN) return Errc::would_block;
      return from_errno(static_cast<int>(-w));
    }
    out_pos_ += static_cast<std::size_t>(w);
  }
  out_.clear();
  out_pos_ = 0;
  if (out_.capacity() > 4 * kCoalesceBytes) out_.shrink_to_fit();  // do not pin a 64 MiB frame
  return {};
}

bool StreamLink::prepare_wait() noexcept {
  if (broken_) return false;  // report it now
  if (reading_large_) return true;
  const std::size_t avail = in_end_ - in_begin_;
  if (avail < sizeof(FrameHeader)) return true;
  FrameHeader h;
  std::memcpy(&h, in_.data() + in_begin_, sizeof h);
  // A complete frame (or a header that will be rejected) is waiting: do not sleep.
  return check_header(h, max_) == FrameCheck::ok && avail - sizeof h < h.length &&
         h.length <= in_.size() / 2;
}

std::error_code StreamLink::fill(bool wait) {
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
  if (in_.size() - in_end_ < kReadChunk && in_begin_ > 0) {  // room for a whole read
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  const ssize_t r = read_some(in_.data() + in_end_, std::min(in_.size() - in_end_, kReadChunk), wait);
  if (r > 0) {
    in_end_ += static_cast<std::size_t>(r);
    return {};
  }
  if (r == 0) return Errc::peer_gone;  // end of stream: the peer closed or died
  return from_errno(static_cast<int>(-r));
}

std::error_code StreamLink::receive_for(Frame& out, Clock::duration timeout) {
  // No deadline: block in read() itself, as a plain pipe reader would (one
  // system call, not poll + read). End of stream still ends the wait at once.
  if (blocks_in_call(timeout)) return receive_frame(out, true);
  const auto deadline = deadline_after(timeout);
  bool wait_first = !broken_ && !reading_large_ && in_begin_ == in_end_ && timeout > Clock::duration::zero();
  for (;;) {
    if (wait_first)
      if (auto w = wait_until(false, deadline)) return w;
    auto ec = try_receive(out);
    if (ec != Errc::would_block) return ec;
    wait_first = true;
  }
}

std::error_code StreamLink::try_receive(Frame& out) { return receive_frame(out, false); }

std::error_code StreamLink::receive_frame(Frame& out, bool wait) {
  if (broken_) return broken_;
  for (;;) {
    if (reading_large_) {
      // Move buffered bytes first, then read straight into the payload.
      const std::size_t want = large_hdr_.length - large_got_;
      const std::size_t avail = in_end_ - in_begin_;
      if (avail > 0) {
        const std::size_t n = std::min(want, avail);
        if (large_payload_.size() < large_got_ + n) large_payload_.resize(large_got_ + n);
        std::memcpy(large_payload_.data() + large_got_, in_.data() + in_begin_, n);
        in_begin_ += n;
        large_got_ += n;
      }
      while (large_got_ < large_hdr_.length) {
        // Grow with what arrived (at least 1 MiB, at most doubling), never to the
        // announced length up front.
        const std::size_t target = std::min<std::uint64_t>(
            large_hdr_.length, std::max<std::size_t>(large_got_ * 2, std::size_t{1} << 20));
        if (large_payload_.size() < target) large_payload_.resize(target);
        const ssize_t r = read_some(large_payload_.data() + large_got_, target - large_got_, wait);
        if (r > 0) {
          large_got_ += static_cast<std::size_t>(r);
          continue;
        }
        if (r == 0) return broken_ = Errc::peer_gone;  // died mid-frame
        if (-r == EAGAIN) return Errc::would_block;
        return broken_ = from_errno(static_cast<int>(-r));
      }
      large_payload_.resize(large_got_);
      out.header = large_hdr_;
      out.payload.swap(large_payload_);
      // Keep the caller's old buffer, size and all: the next large frame is read
      // into it without zero-filling what it overwrites anyway.
      reading_large_ = false;
      return {};
    }

    const std::size_t avail = in_end_ - in_begin_;
    if (avail >= sizeof(FrameHeader)) {
      FrameHeader h;
      std::memcpy(&h, in_.data() + in_begin_, sizeof h);
      const FrameCheck c = check_header(h, max_);
      if (c != FrameCheck::ok)
        return broken_ = (c == FrameCheck::too_large ? Errc::too_large : Errc::protocol_error);
      if (avail - sizeof h >= h.length) {
        out.header = h;
        out.payload.assign(in_.data() + in_begin_ + sizeof h,
                           in_.data() + in_begin_ + sizeof h + h.length);
        in_begin_ += sizeof h + h.length;
        return {};
      }
      if (h.length > in_.size() / 2) {
        in_begin_ += sizeof h;
        large_hdr_ = h;
        large_got_ = 0;
        if (large_payload_.size() > std::max<std::uint64_t>(h.length, std::size_t{1} << 20))
          large_payload_.resize(std::max<std::uint64_t>(h.length, std::size_t{1} << 20));  // no more than needed
        reading_large_ = true;
        continue;
      }
    }
    if (auto ec = fill(wait)) {
      if (ec == Errc::peer_gone) broken_ = ec;
      return ec;
    }
  }
}

}  // namespace taskfarm::ipc::detail
