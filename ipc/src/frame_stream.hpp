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
      payload_.clear();
      payload_.reserve(std::min<std::uint64_t>(header_.length, available - used));
    }
    const std::size_t k =
        std::min<std::uint64_t>(header_.length - payload_.size(), n - used);
    payload_.insert(payload_.end(), p + used, p + used + k);
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

  // For channels that can deliver into memory they are given (a message queue):
  // when a payload is being assembled and at least `n` more of its bytes are
  // due, returns room for the next `n` of them in the payload itself (the next
  // piece is payload only, so it needs no copy); nullptr otherwise. Must be
  // followed by commit_direct() with the bytes actually written there.
  [[nodiscard]] std::byte* direct(std::size_t n) {
    if (!have_header_ || header_.length - payload_.size() < n) return nullptr;
    direct_at_ = payload_.size();
    payload_.resize(direct_at_ + n);  // what arrives is due: within the x2 rule
    return payload_.data() + direct_at_;
  }
  void commit_direct(std::size_t written) noexcept { payload_.resize(direct_at_ + written); }

  [[nodiscard]] bool ready() const noexcept {
    return have_header_ && payload_.size() == header_.length;
  }
  // True between frames (no partial frame held).
  [[nodiscard]] bool idle() const noexcept { return header_got_ == 0; }

  // Hands the finished frame over (buffers are swapped, so neither side
  // allocates in the steady state) and gets ready for the next one.
  void take(Frame& out) noexcept {
    out.header = header_;
    out.payload.swap(payload_);
    payload_.clear();
    if (payload_.capacity() > kKeepCapacity) std::vector<std::byte>().swap(payload_);
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
  std::vector<std::byte> payload_;
  std::size_t direct_at_ = 0;
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
