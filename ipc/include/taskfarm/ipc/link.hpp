#pragma once
// A duplex frame channel between the master and one worker.
//
// One interface, one implementation per transport. The master drives all its
// links from one dispatcher thread with poll(): it never blocks on a link (it
// uses try_send/flush/try_receive and waits on readable_fd()/writable_fd()); a
// worker uses the blocking calls. The data path never throws; every call returns
// an error code (ipc::Errc or an OS error).

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

#include "taskfarm/common/frame.hpp"
#include "taskfarm/common/options.hpp"
#include "taskfarm/ipc/endpoint.hpp"
#include "taskfarm/ipc/errc.hpp"

namespace taskfarm::ipc {

struct LinkConfig {
  std::uint64_t max_frame_bytes = kDefaultMaxFrameBytes;  // largest payload accepted either way
  std::size_t ring_bytes = std::size_t{1} << 20;          // shm: capacity of each ring
};

// Whether a frame must reach the channel now or may wait in the link's output
// buffer until flush() (coalescing many small frames into one write).
enum class Flush { now, deferred };

class Link {
 public:
  using Clock = std::chrono::steady_clock;

  virtual ~Link() = default;

  // Hands one frame to the link without blocking. The link owns whatever the
  // channel cannot take at once and pushes it on later flush() calls; a frame is
  // never partially lost. Errors: too_large, peer_gone, closed, OS errors.
  [[nodiscard]] virtual std::error_code try_send(FrameKind kind, std::uint64_t id,
                                                 std::span<const std::byte> payload,
                                                 Flush flush = Flush::now) = 0;
  // Pushes buffered output without blocking: ok when nothing is left, would_block
  // when some is. Errors: peer_gone, closed, OS errors.
  [[nodiscard]] virtual std::error_code flush() = 0;
  [[nodiscard]] virtual bool has_pending_output() const noexcept = 0;
  // Bytes handed to try_send that the channel has not taken yet (held by the
  // link until the peer makes room). Senders use it for back-pressure: past a
  // few frames' worth, sending more only grows this buffer.
  [[nodiscard]] virtual std::size_t pending_output_bytes() const noexcept = 0;

  // Takes the next whole frame if one has arrived, without blocking: ok,
  // would_block, peer_gone (clean end of stream or dead peer), protocol_error
  // (garbage; the link is unusable afterwards), too_large.
  [[nodiscard]] virtual std::error_code try_receive(Frame& out) = 0;

  // Descriptor that polls readable when try_receive may make progress or the
  // peer's state changed. Always valid while the link is open.
  [[nodiscard]] virtual int readable_fd() const noexcept = 0;
  // Descriptor to poll for POLLOUT while has_pending_output(); -1 when the
  // transport reports free space through readable_fd() instead.
  [[nodiscard]] virtual int writable_fd() const noexcept = 0;
  // Called right before the owner sleeps in poll(); false means there is already
  // something to do and the owner must not sleep (shared-memory transports arm
  // their wake-up here). Fd-based transports return true.
  [[nodiscard]] virtual bool prepare_wait() noexcept { return true; }
  // The master calls this once the worker said hello: the worker is attached, so
  // named kernel objects can be unlinked.
  virtual void peer_attached() noexcept {}

  // Blocking forms. The defaults wait with poll() on the descriptors above;
  // transports override them: stream links (pipe, socket) block in read() and
  // write() themselves when there is no deadline (Clock::duration::max(), as in
  // receive() and send()), shm and mqueue sleep on their own primitives and
  // never block without checking that the peer lives. A dead peer ends every
  // one of them with peer_gone.
  [[nodiscard]] virtual std::error_code send(FrameKind kind, std::uint64_t id,
                                     std::span<const std::byte> payload);
  [[nodiscard]] virtual std::error_code send_for(FrameKind kind, std::uint64_t id,
                                         std::span<const std::byte> payload,
                                         Clock::duration timeout);
  // Blocks until everything buffered is written (or the deadline passes).
  [[nodiscard]] virtual std::error_code flush_for(Clock::duration timeout);
  [[nodiscard]] virtual std::error_code receive(Frame& out);
  [[nodiscard]] virtual std::error_code receive_for(Frame& out, Clock::duration timeout);

 protected:
  // Sleeps until readable_fd()/writable_fd() (as asked) is ready or the deadline
  // passes: ok, timed_out, or an OS error.
  [[nodiscard]] std::error_code wait_until(bool for_write, Clock::time_point deadline);
};

// The master's end plus what the worker needs to attach to the other end.
struct LinkPair {
  std::unique_ptr<Link> master;
  Endpoint worker;
};

// Creates a fresh link of the given transport. The worker-side descriptors in
// `out.worker.fds` are close-on-exec and owned by the caller until handed on.
[[nodiscard]] std::error_code create_link(Transport transport, const LinkConfig& config,
                                          LinkPair& out);
// Attaches the worker's end described by `endpoint` (descriptors inherited).
[[nodiscard]] std::error_code attach_link(const Endpoint& endpoint, const LinkConfig& config,
                                          std::unique_ptr<Link>& out);
// Removes the named kernel objects `endpoint` still refers to (mqueue: its two
// queue names, which its worker removes once it has opened them). For whoever
// outlives a worker that may have died before attaching: the fork server calls
// it for every worker it reaps. Harmless when they are gone already.
void release_endpoint_names(const Endpoint& endpoint) noexcept;

// Declares that a write to a broken pipe cannot kill the process from the
// calling thread: SIGPIPE is blocked in this thread for good, or ignored
// process-wide. Pipe links then write from this thread without blocking SIGPIPE
// around each write (three system calls per frame, a fifth of a small round
// trip). The pool's dispatcher thread and its workers declare it; any other
// thread keeps the guard. Not for threads whose mask or disposition user code
// may change afterwards. `false` withdraws the declaration.
void sigpipe_is_harmless_in_this_thread(bool harmless = true) noexcept;

}  // namespace taskfarm::ipc
