#pragma once
// Frames over a byte stream: a pair of pipes, or one Unix-domain socket.
//
// The descriptors stay blocking, and the non-blocking calls ask for it per call
// (MSG_DONTWAIT on a socket, RWF_NOWAIT on a pipe), so that the blocking forms
// without a deadline (a worker's receive() and send()) sleep in read() and
// write() themselves: one system call, as a plain pipe or socket user makes.
// With a deadline they wait with poll(). On a kernel that refuses RWF_NOWAIT on
// pipes, pipe links fall back to O_NONBLOCK descriptors and poll() throughout.
// Output: a frame is written with one writev when nothing is pending, and only
// the unwritten rest is copied into the output buffer; Flush::deferred frames
// collect in the buffer (up to kCoalesceBytes) for one write. Input: small frames
// are parsed out of a 256 KiB read buffer, many per read(); a large payload is read
// straight into its destination, which grows with the bytes actually received, so
// a corrupt length never allocates more than the data that arrived (x2). The
// destination is the buffer of the caller's previous frame (swapped in), so a
// stream of large frames reuses memory instead of zero-filling fresh pages.

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <vector>

#include "taskfarm/ipc/fd.hpp"
#include "taskfarm/ipc/link.hpp"

namespace taskfarm::ipc::detail {

class StreamLink final : public Link {
 public:
  // `socket`: rfd == wfd is a socket (send with MSG_NOSIGNAL); otherwise pipes.
  StreamLink(UniqueFd rfd, UniqueFd wfd, bool socket, std::uint64_t max_frame_bytes);

  std::error_code try_send(FrameKind kind, std::uint64_t id, std::span<const std::byte> payload,
                           Flush flush) override;
  // With nothing queued, writes the frame straight from `payload` (no copy into
  // the output buffer), waiting for room as the peer reads.
  std::error_code send_for(FrameKind kind, std::uint64_t id, std::span<const std::byte> payload,
                           Clock::duration timeout) override;
  std::error_code flush() override;
  // Without a deadline, blocks in write() (see above).
  std::error_code flush_for(Clock::duration timeout) override;
  bool has_pending_output() const noexcept override { return out_pos_ < out_.size(); }
  std::size_t pending_output_bytes() const noexcept override { return out_.size() - out_pos_; }
  std::error_code try_receive(Frame& out) override;
  // Without a deadline, blocks in read(). With one, waits for the descriptor
  // first when nothing is buffered: poll + read, not read (EAGAIN) + poll + read.
  std::error_code receive_for(Frame& out, Clock::duration timeout) override;
  int readable_fd() const noexcept override { return rfd_.get(); }
  // Frames already read into the buffer do not make the descriptor readable.
  bool prepare_wait() noexcept override;
  int writable_fd() const noexcept override { return wfd_raw_; }

  // Frames up to half of the read buffer are parsed out of it; larger ones are
  // read into their payload. One read takes at most kReadChunk: a 64 KiB frame
  // and its header, yet only that much of a large frame's payload is read into
  // the buffer (and copied out of it) before its header has been seen.
  static constexpr std::size_t kReadBuffer = 256 * 1024;
  static constexpr std::size_t kReadChunk = 64 * 1024 + 64;
  static constexpr std::size_t kCoalesceBytes = 64 * 1024;

 private:
  // Writes from the iovecs (blocking only if `wait`, which needs blocking_fds_);
  // returns bytes written or -errno. A pipe write to a gone reader is EPIPE,
  // never a SIGPIPE death.
  ssize_t write_some(const ::iovec* iov, int n, bool wait);
  ssize_t pipe_writev(const ::iovec* iov, int n, bool wait);
  // One read (blocking only if `wait`); bytes read, 0 at end of stream, or -errno.
  ssize_t read_some(std::byte* p, std::size_t n, bool wait);
  std::error_code fill(bool wait);  // one read into in_
  std::error_code receive_frame(Frame& out, bool wait);
  std::error_code flush_out(bool wait);
  // Whether a blocking call with this timeout sleeps in read()/write() itself:
  // no deadline, and blocking descriptors.
  bool blocks_in_call(Clock::duration timeout) const noexcept {
    return blocking_fds_ && timeout == Clock::duration::max();
  }
  // The kernel refused RWF_NOWAIT: O_NONBLOCK descriptors from now on (and for
  // every pipe link this process creates later).
  void use_nonblocking_descriptors() noexcept;
  // With nothing queued, a frame of which `done` bytes were written: queues the rest.
  void keep_unwritten(const FrameHeader& h, std::span<const std::byte> payload, std::size_t done);

  UniqueFd rfd_, wfd_;
  int wfd_raw_;
  bool socket_;
  bool blocking_fds_;  // blocking descriptors, non-blocking calls per call (see above)
  std::uint64_t max_;

  std::vector<std::byte> out_;
  std::size_t out_pos_ = 0;

  std::vector<std::byte> in_;
  std::size_t in_begin_ = 0, in_end_ = 0;

  // A frame whose payload is being read directly (too big for in_).
  bool reading_large_ = false;
  FrameHeader large_hdr_{};
  std::vector<std::byte> large_payload_;
  std::size_t large_got_ = 0;

  std::error_code broken_;  // sticky: protocol errors and EOF end the link
};

}  // namespace taskfarm::ipc::detail
