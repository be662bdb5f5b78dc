#pragma once
// Frames over a stream of bytes that arrives in pieces (a ring buffer's
// contiguous spans, message-queue messages): the shared-memory and message-queue
// transports treat each direction as a byte stream of [FrameHeader|payload], so
// a frame of any size crosses a channel of any capacity, in as many pieces as it
// takes.
//
// FrameAssembler rebuilds frames from the pieces; ByteQueue holds the output a
// channel could not take yet.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <system_error>
#include <vector>

#include "taskfarm/common/frame.hpp"
#include "taskfarm/ipc/errc.hpp"

namespace taskfarm::ipc::detail {

// Rebuilds frames from byte pieces. The header is validated before anything is
// allocated for the payload, and the payload buffer grows only with the bytes
// that have actually arrived, so a corrupt length can never make it allocate the
// announced size.
class FrameAssembler {
 public:
  explicit FrameAssembler(std::uint64_t max_payload) noexcept : max_(max_payload) {}

  // Consumes a prefix of [p, p + n) and returns its length; it stops at the end
  // of a frame (then ready() is true). `available` is how many bytes the caller
  // could hand over right now in all (>= n): the payload buffer is sized from it,
  // never from the header alone. On garbage `ec` becomes protocol_error or
  // too_large and the assembler must not be fed again.
  std::size_t feed(const std::byte* p, std::size_t n, std::size_t available, std::error_code& ec) {
    std::size_t used = 0;
    if (!have_header_) {
      const std::size_t k = std::min(sizeof(FrameHeader) - header_got_, n);
      std::memcpy(header_bytes_ + header_got_, p, k);
      header_got_ += k;
      used = k;
      if (header_got_ < sizeof(FrameHeader)) return used;
      std::memcpy(&header_, header_bytes_, sizeof header_);
      if (const FrameCheck c = check_header(header_, max_); c != FrameCheck::ok) {
        ec = c == FrameCheck::too_large ? Errc::too_large : Errc::protocol_error;
        return used;
      }
      have_header_ = true;
      got_ = 0;
      payload_.reserve(std::min<std::uint64_t>(header_.length, available - used));
    }
    const std::size_t k = std::min<std::uint64_t>(header_.length - got_, n - used);
    if (k > 0) {  // (an empty payload_ has no data() to copy to)
      room_for(k);
      std::memcpy(payload_.data() + got_, p + used, k);
      got_ += k;
    }
    return used + k;
  }

  // Fast path between frames: if [p, p + n) starts with a whole frame, copies it
  // into `out` directly (one copy, no swap) and returns its length on the wire;
  // returns 0 when the frame is incomplete (feed() then takes over). Garbage sets
  // `ec` as feed() does.
  std::size_t take_whole(const std::byte* p, std::size_t n, Frame& out, std::error_code& ec) {
    if (!idle() || n < sizeof(FrameHeader)) return 0;
    FrameHeader h;
    std::memcpy(&h, p, sizeof h);
    if (const FrameCheck c = check_header(h, max_); c != FrameCheck::ok) {
      ec = c == FrameCheck::too_large ? Errc::too_large : Errc::protocol_error;
      return 0;
    }
    if (h.length > n - sizeof h) return 0;
    out.header = h;
    out.payload.assign(p + sizeof h, p + sizeof h + h.length);
    return sizeof h + static_cast<std::size_t>(h.length);
  }

  // For channels that deliver whole pieces of up to `n` bytes into memory they
  // are given (a message queue): when a payload is being assembled and at least
  // `min_due` more of its bytes are due, returns room for `n` bytes at the
  // payload's end, so the next piece lands in the payload without a copy;
  // nullptr otherwise. The room may reach past the frame by less than `n` (at
  // most n - min_due: within the x2 rule). Must be followed by commit_direct().
  [[nodiscard]] std::byte* direct(std::size_t n, std::size_t min_due) {
    if (!have_header_ || header_.length - got_ < std::max<std::size_t>(min_due, 1)) return nullptr;
    room_for(n);
    return payload_.data() + got_;
  }
  // The piece of `written` bytes is in: returns how many of them lie past the
  // frame's end (bytes of the frames after it, when the sender packed several
  // into one piece). Those are at overflow() until take(); the caller feeds them
  // on as the start of the next piece.
  [[nodiscard]] std::size_t commit_direct(std::size_t written) noexcept {
    const std::size_t due = header_.length - got_;
    if (written <= due) {
      got_ += written;
      return 0;
    }
    got_ += due;
    return written - due;
  }
  [[nodiscard]] const std::byte* overflow() const noexcept { return payload_.data() + got_; }

  [[nodiscard]] bool ready() const noexcept { return have_header_ && got_ == header_.length; }
  // True between frames (no partial frame held).
  [[nodiscard]] bool idle() const noexcept { return header_got_ == 0; }

  // Hands the finished frame over (buffers are swapped, so neither side
  // allocates in the steady state) and gets ready for the next one.
  // The caller's previous payload becomes the next frame's buffer, size and all,
  // so bytes that will be overwritten anyway are not zero-filled first.
  void take(Frame& out) noexcept {
    payload_.resize(got_);  // never grows: got_ <= size()
    out.header = header_;
    out.payload.swap(payload_);
    if (payload_.capacity() > kKeepCapacity) std::vector<std::byte>().swap(payload_);
    got_ = 0;
    header_got_ = 0;
    have_header_ = false;
  }

 private:
  static constexpr std::size_t kKeepCapacity = std::size_t{4} << 20;  // do not pin a 64 MiB frame

  std::uint64_t max_;
  std::byte header_bytes_[sizeof(FrameHeader)]{};
  std::size_t header_got_ = 0;
  bool have_header_ = false;
  FrameHeader header_{};
  // Makes payload_[got_, got_ + n) writable. payload_ may be longer than got_
  // (a reused buffer): only a shortfall is added (and zero-filled).
  void room_for(std::size_t n) {
    if (payload_.size() < got_ + n) payload_.resize(got_ + n);
  }

  std::vector<std::byte> payload_;  // [0, got_): this frame's payload so far
  std::size_t got_ = 0;
};

// Bytes waiting to enter a channel, oldest first.
class ByteQueue {
 public:
  [[nodiscard]] bool empty() const noexcept { return pos_ == buf_.size(); }
  [[nodiscard]] std::size_t size() const noexcept { return buf_.size() - pos_; }
  [[nodiscard]] std::span<const std::byte> front() const noexcept {
    return {buf_.data() + pos_, buf_.size() - pos_};
  }
  void append(const void* p, std::size_t n) {
    if (empty()) clear();
    const auto* b = static_cast<const std::byte*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  void consume(std::size_t n) noexcept {
    pos_ += n;
    if (empty()) clear();
  }

 private:
  void clear() noexcept {
    buf_.clear();
    pos_ = 0;
    if (buf_.capacity() > kKeepCapacity) std::vector<std::byte>().swap(buf_);
  }
  static constexpr std::size_t kKeepCapacity = std::size_t{1} << 20;

  std::vector<std::byte> buf_;
  std::size_t pos_ = 0;
};

}  // namespace taskfarm::ipc::detail
