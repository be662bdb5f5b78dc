#pragma once
// The shm transport: one shared-memory object per worker holding two
// single-producer/single-consumer ring buffers (master->worker, worker->master).
//
// Each ring is a byte stream of frames [FrameHeader|payload] that wraps around
// its end, so records have any length and a frame larger than the ring streams
// through it in pieces while the consumer drains it (a 64 MiB payload crosses a
// 1 MiB ring). Sleep and wake-up follow shared_control.hpp: the producer pays a
// system call only when the consumer has armed its flag; the worker sleeps on an
// interprocess_semaphore (spinning briefly first when a core is free); the
// master waits in poll() on the doorbell socket, which also reports a dead
// worker.
//
// The worker's endpoint: "shm:fds=<shm>,<bell>" — a descriptor of the object
// (whose name was removed the moment it was created) and the worker's end of
// the doorbell socketpair. The worker maps the descriptor; it never opens a name.

#include <atomic>
#include <cstdint>
#include <memory>

#include "frame_stream.hpp"
#include "shared_control.hpp"
#include "taskfarm/ipc/link.hpp"

namespace taskfarm::ipc::detail {

inline constexpr std::uint64_t kShmMagic = 0x474e524d48534654ull;  // "TFSHMRNG" in memory (LE)
inline constexpr std::uint32_t kShmVersion = 1;

// A ring index alone on its cache line: a monotonic byte count (it never wraps;
// the offset in the ring is index % capacity).
struct alignas(kCacheLine) RingIndex {
  std::atomic<std::uint64_t> value{0};
};

// The shared object (R = ring_bytes, the capacity of each ring):
//
//   offset   size  field      written by               read by
//        0    256  control    see LinkControl (identity, wait/closed flags, worker_sem)
//      256     64  m2w_head   master (seq_cst store)   worker (acquire / seq_cst load)
//      320     64  m2w_tail   worker (seq_cst store)   master (acquire / seq_cst load)
//      384     64  w2m_head   worker (seq_cst store)   master (acquire / seq_cst load)
//      448     64  w2m_tail   master (seq_cst store)   worker (acquire / seq_cst load)
//      512      R  m2w data   master writes bytes in [tail, head + free), worker reads [tail, head)
//    512+R      R  w2m data   worker writes, master reads
//
// Pairs: a producer writes bytes, then stores head; the store releases those
// bytes to the consumer's acquire load of head. A consumer reads bytes, then
// stores tail; that store releases the space to the producer's acquire load of
// tail, so nothing is overwritten before it was read. Both stores are seq_cst
// because each is also the first half of a Dekker pair with the peer's wait flag
// (shared_control.hpp). Each side caches the other side's index and reloads it
// only when the cached value says "full" or "empty".
struct ShmHeader {
  explicit ShmHeader(const ControlIdentity& id) noexcept : control(id) {}

  LinkControl control;
  RingIndex m2w_head;
  RingIndex m2w_tail;
  RingIndex w2m_head;
  RingIndex w2m_tail;
};
static_assert(std::is_standard_layout_v<ShmHeader>);
static_assert(sizeof(ShmHeader) == 8 * kCacheLine);
static_assert(alignof(ShmHeader) == kCacheLine);
static_assert(offsetof(ShmHeader, m2w_head) == 4 * kCacheLine);
static_assert(offsetof(ShmHeader, m2w_tail) == 5 * kCacheLine);
static_assert(offsetof(ShmHeader, w2m_head) == 6 * kCacheLine);
static_assert(offsetof(ShmHeader, w2m_tail) == 7 * kCacheLine);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "ring indices shared between processes must be lock-free (address-free)");

class ShmLink final : public Link {
 public:
  using Role = PeerSync::Role;

  // Errors: invalid_argument (ring_bytes outside [64, 2^40]); OS errors.
  [[nodiscard]] static std::error_code create(const LinkConfig& config, LinkPair& out);
  // Takes ownership of the endpoint's descriptors (unless it is malformed).
  // Errors: AttachError (bad_endpoint, bad_magic, bad_version, bad_layout), OS errors.
  [[nodiscard]] static std::error_code attach(const Endpoint& ep, const LinkConfig& config,
                                              std::unique_ptr<Link>& out);

  ~ShmLink() override;

  std::error_code try_send(FrameKind kind, std::uint64_t id, std::span<const std::byte> payload,
                           Flush flush) override;
  std::error_code flush() override;
  bool has_pending_output() const noexcept override {
    return !pending_.empty() || head_ != published_;
  }
  std::size_t pending_output_bytes() const noexcept override { return pending_.size(); }
  std::error_code try_receive(Frame& out) override;
  int readable_fd() const noexcept override { return sync_.fd(); }
  int writable_fd() const noexcept override { return -1; }  // space is announced by the doorbell
  bool prepare_wait() noexcept override;

  std::error_code send_for(FrameKind kind, std::uint64_t id, std::span<const std::byte> payload,
                           Clock::duration timeout) override;
  std::error_code flush_for(Clock::duration timeout) override;
  std::error_code receive_for(Frame& out, Clock::duration timeout) override;

  // Tests only (test_hooks.hpp): appends bytes to the output stream unframed.
  std::error_code write_raw(std::span<const std::byte> bytes, Clock::duration timeout);

 private:
  ShmLink(Role role, SharedRegion region, UniqueFd bell, std::uint64_t max_frame_bytes);

  // Producer: copies what fits after head_ (unpublished until publish()).
  std::size_t write_some(const std::byte* p, std::size_t n) noexcept;
  void publish() noexcept;
  bool out_has_space() const noexcept;
  // Consumer: hands the space up to tail_ back to the producer.
  void release() noexcept;
  bool in_has_data() const noexcept;

  SharedRegion region_;
  ShmHeader* header_;
  PeerSync sync_;
  const Role role_;
  const std::uint64_t cap_;
  const std::uint64_t max_;
  const std::size_t coalesce_;        // publish deferred output once this much is unpublished
  const std::uint64_t release_batch_;  // hand consumed space back once this much is held

  // Output ring (m2w for the master, w2m for the worker); never read by the peer
  // beyond out_head_.
  std::byte* out_data_;
  std::atomic<std::uint64_t>* out_head_;
  std::atomic<std::uint64_t>* out_tail_;
  std::uint64_t head_ = 0;         // bytes written, published or not
  std::uint64_t head_off_ = 0;     // head_ % cap_, kept without dividing
  std::uint64_t published_ = 0;    // last value stored to *out_head_
  std::uint64_t cached_tail_ = 0;  // last value loaded from *out_tail_
  ByteQueue pending_;              // output that did not fit yet

  // Input ring.
  const std::byte* in_data_;
  std::atomic<std::uint64_t>* in_head_;
  std::atomic<std::uint64_t>* in_tail_;
  std::uint64_t tail_ = 0;         // bytes consumed
  std::uint64_t tail_off_ = 0;     // tail_ % cap_
  std::uint64_t released_ = 0;     // last value stored to *in_tail_
  std::uint64_t cached_head_ = 0;  // last value loaded from *in_head_
  FrameAssembler assembler_;

  std::error_code broken_;  // sticky: protocol errors and the peer's end
};

}  // namespace taskfarm::ipc::detail
