#include "shm_link.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

namespace taskfarm::ipc::detail {

namespace {
constexpr std::uint64_t kMinRing = 64;
constexpr std::uint64_t kMaxRing = std::uint64_t{1} << 40;
constexpr std::size_t kCoalesceBytes = 64 * 1024;
}  // namespace

std::error_code ShmLink::create(const LinkConfig& config, LinkPair& out) {
  const std::uint64_t ring = config.ring_bytes;
  if (ring < kMinRing || ring > kMaxRing) return std::make_error_code(std::errc::invalid_argument);
  const std::size_t bytes = sizeof(ShmHeader) + 2 * ring;

  SharedRegion region;
  UniqueFd shm_fd;
  if (auto ec = SharedRegion::create("shm", bytes, region, shm_fd)) return ec;
  UniqueFd master_bell, worker_bell;
  if (auto ec = make_doorbell(master_bell, worker_bell)) return ec;

  const ControlIdentity id{kShmMagic, kShmVersion, sizeof(ShmHeader), bytes, ring, 0};
  new (region.data()) ShmHeader(id);  // fresh, zero-filled memory; never destroyed (see LinkControl)

  out.worker = Endpoint{"shm", {shm_fd.release(), worker_bell.release()}, {}};
  out.master.reset(new ShmLink(Role::master, std::move(region), std::move(master_bell),
                               config.max_frame_bytes));
  return {};
}

std::error_code ShmLink::attach(const Endpoint& ep, const LinkConfig& config,
                                std::unique_ptr<Link>& out) {
  if (ep.fds.size() != 2) return AttachError::bad_endpoint;
  UniqueFd shm_fd(ep.fds[0]);  // closed on return: the mapping keeps the object alive
  UniqueFd bell(ep.fds[1]);
  set_cloexec(bell.get(), true);  // a spawned worker inherited it through exec

  SharedRegion region;
  if (auto ec = SharedRegion::attach(shm_fd.get(), sizeof(ControlIdentity), region)) return ec;
  ControlIdentity id;
  std::memcpy(&id, region.data(), sizeof id);
  if (id.magic != kShmMagic) return AttachError::bad_magic;
  if (id.version != kShmVersion) return AttachError::bad_version;
  if (id.header_bytes != sizeof(ShmHeader) || id.capacity != config.ring_bytes ||
      id.capacity < kMinRing || id.capacity > kMaxRing ||
      id.map_bytes != sizeof(ShmHeader) + 2 * id.capacity || region.size() != id.map_bytes)
    return AttachError::bad_layout;

  auto* link = new ShmLink(Role::worker, std::move(region), std::move(bell), config.max_frame_bytes);
  link->sync_.mark_attached();
  out.reset(link);
  return {};
}

ShmLink::ShmLink(Role role, SharedRegion region, UniqueFd bell, std::uint64_t max_frame_bytes)
    : region_(std::move(region)),
      header_(static_cast<ShmHeader*>(region_.data())),
      sync_(role, &header_->control, std::move(bell), role == Role::worker),
      role_(role),
      cap_(header_->control.id.capacity),
      max_(max_frame_bytes),
      coalesce_(static_cast<std::size_t>(std::min<std::uint64_t>(kCoalesceBytes, cap_ / 2))),
      release_batch_(std::max<std::uint64_t>(1, std::min<std::uint64_t>(kCoalesceBytes, cap_ / 4))),
      assembler_(max_frame_bytes) {
  auto* m2w = static_cast<std::byte*>(region_.data()) + sizeof(ShmHeader);
  auto* w2m = m2w + cap_;
  const bool master = role == Role::master;
  out_data_ = master ? m2w : w2m;
  out_head_ = master ? &header_->m2w_head.value : &header_->w2m_head.value;
  out_tail_ = master ? &header_->m2w_tail.value : &header_->w2m_tail.value;
  in_data_ = master ? w2m : m2w;
  in_head_ = master ? &header_->w2m_head.value : &header_->m2w_head.value;
  in_tail_ = master ? &header_->w2m_tail.value : &header_->m2w_tail.value;
  // Only this side writes these two, so their current values are ours to continue.
  head_ = published_ = out_head_->load(std::memory_order_relaxed);
  head_off_ = head_ % cap_;
  cached_tail_ = out_tail_->load(std::memory_order_acquire);
  tail_ = released_ = cached_head_ = in_tail_->load(std::memory_order_relaxed);
  tail_off_ = tail_ % cap_;
  if (master) register_spinner(&header_->control);
}

ShmLink::~ShmLink() {
  publish();  // deferred output already in the ring still reaches the peer
  sync_.close();
  if (role_ == Role::master) unregister_spinner(&header_->control);
}

// ---------------------------------------------------------------------------
// Producer

std::size_t ShmLink::write_some(const std::byte* p, std::size_t n) noexcept {
  std::uint64_t used = head_ - cached_tail_;
  if (cap_ - used < n) {
    // Pairs with the consumer's seq_cst store of tail: the space it frees is
    // read to the end before we overwrite it.
    const std::uint64_t t = out_tail_->load(std::memory_order_acquire);
    if (t - cached_tail_ <= used) {  // a sane peer only moves tail forward, up to head
      cached_tail_ = t;
      used = head_ - cached_tail_;
    }
  }
  n = static_cast<std::size_t>(std::min<std::uint64_t>(n, cap_ - used));
  if (n == 0) return 0;
  const std::size_t first = static_cast<std::size_t>(std::min<std::uint64_t>(n, cap_ - head_off_));
  std::memcpy(out_data_ + head_off_, p, first);
  if (first < n) std::memcpy(out_data_, p + first, n - first);
  head_ += n;
  head_off_ += n;
  if (head_off_ >= cap_) head_off_ -= cap_;
  return n;
}

void ShmLink::publish() noexcept {
  if (head_ == published_) return;
  // Release: the bytes just written. seq_cst: first half of the Dekker pair with
  // the consumer's wait flag, loaded in wake_peer().
  out_head_->store(head_, std::memory_order_seq_cst);
  published_ = head_;
  sync_.wake_peer();
}

bool ShmLink::out_has_space() const noexcept {
  return head_ - out_tail_->load(std::memory_order_seq_cst) < cap_;
}

std::error_code ShmLink::try_send(FrameKind kind, std::uint64_t id,
                                  std::span<const std::byte> payload, Flush flush_mode) {
  if (payload.size() > max_) return Errc::too_large;
  if (sync_.peer_known_gone()) return Errc::peer_gone;
  const FrameHeader h = make_header(kind, id, payload.size());
  const auto* hb = reinterpret_cast<const std::byte*>(&h);

  bool overflowed = false;
  if (pending_.empty()) {
    const std::size_t w = write_some(hb, sizeof h);
    if (w < sizeof h) {
      pending_.append(hb + w, sizeof h - w);
      pending_.append(payload.data(), payload.size());
    } else {
      const std::size_t pw = write_some(payload.data(), payload.size());
      pending_.append(payload.data() + pw, payload.size() - pw);
    }
    overflowed = !pending_.empty();
  } else {
    pending_.append(hb, sizeof h);
    pending_.append(payload.data(), payload.size());
  }
  if (flush_mode == Flush::now || overflowed || head_ - published_ >= coalesce_) {
    auto ec = flush();
    return ec == Errc::would_block ? std::error_code{} : ec;
  }
  return {};
}

std::error_code ShmLink::flush() {
  publish();
  while (!pending_.empty()) {
    const auto f = pending_.front();
    const std::size_t w = write_some(f.data(), f.size());
    if (w == 0) break;
    pending_.consume(w);
    publish();  // the consumer may drain while we copy the rest
  }
  if (pending_.empty()) return {};
  // Full ring: if the consumer is gone it will never drain.
  if (sync_.check_peer_gone(role_ == Role::master)) return Errc::peer_gone;
  return Errc::would_block;
}

// ---------------------------------------------------------------------------
// Consumer

void ShmLink::release() noexcept {
  if (tail_ == released_) return;
  // Release: we are done reading these bytes. seq_cst: first half of the Dekker
  // pair with a producer that waits for space.
  in_tail_->store(tail_, std::memory_order_seq_cst);
  released_ = tail_;
  sync_.wake_peer();
}

bool ShmLink::in_has_data() const noexcept {
  return in_head_->load(std::memory_order_seq_cst) != tail_;
}

std::error_code ShmLink::try_receive(Frame& out) {
  if (broken_) return broken_;
  sync_.disarm();
  for (;;) {
    std::uint64_t avail = cached_head_ - tail_;
    if (avail == 0) {
      // Pairs with the producer's seq_cst store of head: its bytes are visible.
      cached_head_ = in_head_->load(std::memory_order_acquire);
      avail = cached_head_ - tail_;
    }
    if (avail == 0) {
      release();
      // First learn whether the peer is gone, then look once more: frames it
      // published before it died or closed are still delivered.
      const bool gone = sync_.check_peer_gone(role_ == Role::master);
      cached_head_ = in_head_->load(std::memory_order_acquire);
      if (cached_head_ != tail_) continue;
      return gone ? (broken_ = Errc::peer_gone) : std::error_code(Errc::would_block);
    }
    if (avail > cap_) return broken_ = Errc::protocol_error;  // a corrupt index, not a frame
    const std::size_t span =
        static_cast<std::size_t>(std::min<std::uint64_t>(avail, cap_ - tail_off_));
    std::error_code ec;
    std::size_t used = assembler_.take_whole(in_data_ + tail_off_, span, out, ec);
    const bool whole = used > 0;
    if (!whole && !ec)
      used = assembler_.feed(in_data_ + tail_off_, span, static_cast<std::size_t>(avail), ec);
    tail_ += used;
    tail_off_ += used;
    if (tail_off_ >= cap_) tail_off_ -= cap_;
    if (ec) {
      release();
      return broken_ = ec;
    }
    // Space goes back to the producer in batches (a seq_cst store and a look at
    // its flag per release), but at once when it waits for space, and always
    // before this side sleeps (the would-block path above, prepare_wait, and
    // every blocking wait), so two blocked sides can never hold each other's space.
    if (tail_ - released_ >= release_batch_ || sync_.peer_waiting()) release();
    if (whole) return {};
    if (assembler_.ready()) {
      assembler_.take(out);
      return {};
    }
  }
}

bool ShmLink::prepare_wait() noexcept {
  if (broken_ || sync_.peer_known_gone()) return false;
  publish();  // never sleep on output the peer cannot see,
  release();  // nor on space the peer cannot reuse
  sync_.arm(kSleepBell);
  // Second half of the Dekker pairs: after arming, re-check (seq_cst) what the
  // peer may have published before it could see the flag.
  if (in_has_data() || (!pending_.empty() && out_has_space()) || sync_.peer_closed()) {
    sync_.disarm();
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// Blocking forms

std::error_code ShmLink::receive_for(Frame& out, Clock::duration timeout) {
  auto ec = try_receive(out);
  if (ec != Errc::would_block) return ec;
  const auto deadline = deadline_after(timeout);
  for (;;) {
    if (ec != Errc::would_block) return ec;
    // Our own output must move too, or two blocked sides could wait on each other.
    if (has_pending_output()) (void)flush();
    release();
    if (auto w = sync_.wait(deadline, [this] {
          return in_has_data() || (!pending_.empty() && out_has_space());
        }))
      return w;
    ec = try_receive(out);
  }
}

std::error_code ShmLink::flush_for(Clock::duration timeout) {
  auto ec = flush();
  if (ec != Errc::would_block) return ec;
  const auto deadline = deadline_after(timeout);
  for (;;) {
    release();
    if (auto w = sync_.wait(deadline, [this] { return out_has_space(); })) return w;
    ec = flush();
    if (ec != Errc::would_block) return ec;
  }
}

std::error_code ShmLink::send_for(FrameKind kind, std::uint64_t id,
                                  std::span<const std::byte> payload, Clock::duration timeout) {
  if (!pending_.empty()) return Link::send_for(kind, id, payload, timeout);
  if (payload.size() > max_) return Errc::too_large;
  if (sync_.peer_known_gone()) return Errc::peer_gone;
  const auto deadline = deadline_after(timeout);
  // Stream straight from the caller's buffer; only what is left at a timeout is
  // copied (into pending_), so the frame is never partially lost.
  const FrameHeader h = make_header(kind, id, payload.size());
  const auto* hb = reinterpret_cast<const std::byte*>(&h);
  const std::size_t total = sizeof h + payload.size();
  std::size_t done = 0;
  for (;;) {
    while (done < total) {
      const std::size_t w = done < sizeof h
                                ? write_some(hb + done, sizeof h - done)
                                : write_some(payload.data() + (done - sizeof h), total - done);
      if (w == 0) break;
      done += w;
    }
    publish();
    if (done == total) return {};
    release();
    auto ec = sync_.wait(deadline, [this] { return out_has_space(); });
    if (!ec && sync_.peer_known_gone()) ec = Errc::peer_gone;
    if (ec == Errc::timed_out) {
      if (done < sizeof h) pending_.append(hb + done, sizeof h - done);
      const std::size_t pdone = done > sizeof h ? done - sizeof h : 0;
      pending_.append(payload.data() + pdone, payload.size() - pdone);
    }
    if (ec) return ec;
  }
}

std::error_code ShmLink::write_raw(std::span<const std::byte> bytes, Clock::duration timeout) {
  pending_.append(bytes.data(), bytes.size());
  return flush_for(timeout);
}

}  // namespace taskfarm::ipc::detail
