#include "mqueue_link.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <boost/interprocess/ipc/message_queue.hpp>
#include <boost/interprocess/permissions.hpp>

#include "frame_stream.hpp"
#include "shared_control.hpp"

namespace taskfarm::ipc::detail {

namespace bip = boost::interprocess;

namespace {

constexpr std::uint64_t kMqueueMagic = 0x45554555514d4654ull;  // "TFMQUEUE" in memory (LE)
constexpr std::uint32_t kMqueueVersion = 2;  // 2: message counts in the side lines

// Reserves the pages of a named shared object now, so that a full /dev/shm is an
// error at creation instead of a SIGBUS when a message is first written.
std::error_code allocate_named(const std::string& name) {
  const int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return from_errno(errno);
  UniqueFd guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return from_errno(errno);
  if (const int e = ::posix_fallocate(fd, 0, st.st_size); e != 0) return from_errno(e);
  return {};
}

class MqueueLink final : public Link {
 public:
  using Role = PeerSync::Role;

  MqueueLink(Role role, SharedRegion region, UniqueFd bell, std::unique_ptr<bip::message_queue> out,
             std::unique_ptr<bip::message_queue> in, std::uint64_t max_frame_bytes)
      : region_(std::move(region)),
        control_(static_cast<LinkControl*>(region_.data())),
        sync_(role, control_, std::move(bell), false),
        role_(role),
        max_(max_frame_bytes),
        out_q_(std::move(out)),
        in_q_(std::move(in)),
        in_msg_(kMqueueMessageBytes),
        assembler_(max_frame_bytes) {}

  ~MqueueLink() override {
    // What fits without blocking; the rest is lost, as with a closed pipe.
    if (!stuck()) (void)flush();
    sync_.close();
    // A live worker that has not opened the queues yet still needs their names
    // (it removes them itself when it opens them); otherwise they go now.
    if (sync_.peer_attached() || sync_.check_peer_gone(true)) remove_names();
  }

  void set_names(std::string m2w, std::string w2m) {
    names_[0] = std::move(m2w);
    names_[1] = std::move(w2m);
  }

  void peer_attached() noexcept override { remove_names(); }
  void mark_attached() noexcept { sync_.mark_attached(); }

  std::error_code write_raw(std::span<const std::byte> bytes, Clock::duration timeout) {
    out_.append(bytes.data(), bytes.size());
    return flush_for(timeout);
  }

  std::error_code try_send(FrameKind kind, std::uint64_t id, std::span<const std::byte> payload,
                           Flush flush_mode) override {
    if (payload.size() > max_) return Errc::too_large;
    if (sync_.peer_known_gone()) return Errc::peer_gone;
    const FrameHeader h = make_header(kind, id, payload.size());
    if (flush_mode == Flush::now && out_.empty()) return send_direct(h, payload);
    out_.append(&h, sizeof h);
    out_.append(payload.data(), payload.size());
    if (flush_mode == Flush::now || out_.size() >= kMqueueMessageBytes) {
      auto ec = flush();
      return ec == Errc::would_block ? std::error_code{} : ec;
    }
    return {};
  }

  std::error_code flush() override {
    if (stuck()) return Errc::peer_gone;
    bool sent = false;
    while (!out_.empty()) {
      const auto f = out_.front();
      const std::size_t n = std::min(f.size(), kMqueueMessageBytes);
      if (!send_message(f.data(), n)) {
        if (stuck()) return Errc::peer_gone;
        break;
      }
      out_.consume(n);
      sent = true;
    }
    // send_message() stored the sent count (seq_cst) before this load of the
    // consumer's flag (seq_cst), and the consumer re-checks that count after
    // arming: so this load sees an armed flag whenever it could have missed it.
    if (sent) sync_.wake_peer();
    if (out_.empty()) return {};
    if (sync_.check_peer_gone(role_ == Role::master)) return Errc::peer_gone;
    return Errc::would_block;
  }

  bool has_pending_output() const noexcept override { return !out_.empty(); }
  std::size_t pending_output_bytes() const noexcept override { return out_.size(); }

  std::error_code try_receive(Frame& out) override {
    if (broken_) return broken_;
    if (stuck()) return broken_ = Errc::peer_gone;
    sync_.disarm();
    bool checked_peer = false;
    for (;;) {
      if (in_pos_ < in_len_) {
        std::error_code ec;
        const std::byte* p = in_msg_.data() + in_pos_;
        const std::size_t n = in_len_ - in_pos_;
        if (const std::size_t whole = assembler_.take_whole(p, n, out, ec)) {
          in_pos_ += whole;
          return {};
        }
        // The payload buffer may be sized for what is queued behind this
        // message too: it has arrived (the sent count says how much).
        const std::size_t available = assembler_.idle() ? n + in_queued() * kMqueueMessageBytes : n;
        if (!ec) in_pos_ += assembler_.feed(p, n, available, ec);
        if (ec) return broken_ = ec;
        if (assembler_.ready()) {
          assembler_.take(out);
          return {};
        }
        continue;
      }
      std::size_t got = 0;
      unsigned prio = 0;
      bool ok = false;
      // In the middle of a payload with a good part of a message still due,
      // take the next message straight into the frame. Senders put large
      // payloads into messages of their own (send_direct()), so that is the
      // common case; bytes past the frame's end go back through in_msg_.
      std::byte* const direct = assembler_.direct(kMqueueMessageBytes, kMqueueMessageBytes / 4);
      try {
        ok = direct ? in_q_->try_receive(direct, kMqueueMessageBytes, got, prio)
                    : in_q_->try_receive(in_msg_.data(), in_msg_.size(), got, prio);
      } catch (...) {
        ok = false;  // lock timeout: see below whether the peer is still there
        lock_timed_out_ = true;
      }
      if (!ok && stuck()) return broken_ = Errc::peer_gone;
      if (ok) {
        sync_.record_taken(++taken_);
        sync_.wake_peer_for_space();  // a slot is free for a producer that waits for one
        if (direct) {
          if (const std::size_t past = assembler_.commit_direct(got); past > 0) {
            std::memcpy(in_msg_.data(), assembler_.overflow(), past);
            in_pos_ = 0;
            in_len_ = past;
          }
          if (assembler_.ready()) {
            assembler_.take(out);
            return {};
          }
          continue;
        }
        in_pos_ = 0;
        in_len_ = got;
        continue;
      }
      if (checked_peer) return sync_.peer_known_gone() ? (broken_ = Errc::peer_gone)
                                                       : std::error_code(Errc::would_block);
      // First learn whether the peer is gone, then look once more: messages sent
      // before it died or closed are still delivered.
      sync_.check_peer_gone(role_ == Role::master);
      checked_peer = true;
    }
  }

  int readable_fd() const noexcept override { return sync_.fd(); }
  int writable_fd() const noexcept override { return -1; }

  bool prepare_wait() noexcept override {
    if (broken_ || sync_.peer_known_gone() || stuck()) return false;
    if (in_pos_ < in_len_) return false;  // more frames in the last message
    sync_.arm(kSleepBell | (out_.empty() ? 0 : kWantsSpace));
    if (in_ready() || (!out_.empty() && out_ready()) || sync_.peer_closed()) {
      sync_.disarm();
      return false;
    }
    return true;
  }

  std::error_code flush_for(Clock::duration timeout) override {
    auto ec = flush();
    if (ec != Errc::would_block) return ec;
    const auto deadline = deadline_after(timeout);
    for (;;) {
      if (auto w = sync_.wait(deadline, [this] { return out_ready(); }, true)) return w;
      ec = flush();
      if (ec != Errc::would_block) return ec;
    }
  }

  std::error_code receive_for(Frame& out, Clock::duration timeout) override {
    auto ec = try_receive(out);
    if (ec != Errc::would_block) return ec;
    const auto deadline = deadline_after(timeout);
    for (;;) {
      // Our own output must move too, or two blocked sides could wait on each other.
      if (has_pending_output()) (void)flush();
      if (auto w = sync_.wait(
              deadline, [this] { return in_ready() || (!out_.empty() && out_ready()); },
              !out_.empty()))
        return w;
      ec = try_receive(out);
      if (ec != Errc::would_block) return ec;
    }
  }

 private:
  // Sends one whole message without blocking; false when the queue is full or
  // its lock timed out (then lock_timed_out_ is set; stuck() tells which).
  bool send_message(const std::byte* p, std::size_t n) noexcept {
    try {
      if (!out_q_->try_send(p, n, 0)) return false;
      sync_.record_sent(++sent_);
      return true;
    } catch (...) {
      lock_timed_out_ = true;
      return false;
    }
  }

  // try_send(Flush::now) with nothing queued ahead. A frame that fits one
  // message goes as one (header and payload staged together); a larger one as
  // its header alone, then the payload in whole messages straight from
  // `payload`, which the receiver takes straight into its frame: no copy on
  // either side beyond the queue's own. Only what the queue cannot take now is
  // copied into out_.
  std::error_code send_direct(const FrameHeader& h, std::span<const std::byte> payload) {
    if (stuck()) return Errc::peer_gone;
    const bool fits = payload.size() <= kMqueueMessageBytes - sizeof h;
    const std::size_t first = fits ? payload.size() : 0;
    staging_.resize(kMqueueMessageBytes);  // once: later calls find it sized
    std::memcpy(staging_.data(), &h, sizeof h);
    if (first > 0) std::memcpy(staging_.data() + sizeof h, payload.data(), first);
    std::size_t off = 0;  // payload bytes sent
    const bool started = send_message(staging_.data(), sizeof h + first);
    if (started) {
      off = first;
      // More messages follow: wake a sleeping peer now, so that its wake-up
      // (several microseconds) overlaps our copying the rest in, and it takes
      // the first messages out while we put the last ones in. (Free when the
      // peer is awake: a load of its flag.)
      if (off < payload.size()) sync_.wake_peer();
      while (off < payload.size()) {
        const std::size_t n = std::min(kMqueueMessageBytes, payload.size() - off);
        if (!send_message(payload.data() + off, n)) break;
        off += n;
      }
      sync_.wake_peer();
    } else {
      out_.append(&h, sizeof h);
    }
    if (off < payload.size()) out_.append(payload.data() + off, payload.size() - off);
    if (stuck()) return Errc::peer_gone;
    if (out_.empty()) return {};
    if (sync_.check_peer_gone(role_ == Role::master)) return Errc::peer_gone;
    return {};  // the rest goes out on later flushes
  }

  // The checks while spinning and the re-checks after arming: the message counts
  // in the control block (seq_cst, see SideLine), so no queue mutex is taken.
  // A count is stored just after its queue operation, so this side can take a
  // message before the peer has counted it (taken_ > peer_sent() for a moment):
  // that reads as empty, never as a wrapped-around huge number. At most a
  // queue's depth: the counts are in memory the peer can write.
  std::uint64_t in_queued() const noexcept {
    const std::uint64_t sent = sync_.peer_sent();
    return sent > taken_ ? std::min<std::uint64_t>(sent - taken_, kMqueueDepth) : 0;
  }
  bool in_ready() const noexcept { return in_queued() > 0; }
  bool out_ready() const noexcept {
    const std::uint64_t taken = sync_.peer_taken();
    return taken >= sent_ || sent_ - taken < kMqueueDepth;
  }

  // True once a queue's lock could not be taken in time and the peer is gone:
  // it died holding the lock (Boost's mutexes are not robust), so the lock stays
  // taken for good. What the queues hold is out of reach, and every further call
  // would wait out the lock timeout again -- in the master, stalling every
  // worker of the pool -- so the link is treated as ended from then on. A lock
  // timeout with a live peer (it was descheduled holding the lock) only means
  // "try again".
  bool stuck() noexcept {
    if (dead_lock_) return true;
    if (!lock_timed_out_) return false;
    lock_timed_out_ = false;
    if (sync_.check_peer_gone(true)) dead_lock_ = true;
    return dead_lock_;
  }

  void remove_names() noexcept {
    for (auto& n : names_) {
      if (n.empty()) continue;
      bip::message_queue::remove(n.c_str());
      n.clear();
    }
  }

  SharedRegion region_;
  LinkControl* control_;
  PeerSync sync_;
  const Role role_;
  const std::uint64_t max_;
  std::unique_ptr<bip::message_queue> out_q_;
  std::unique_ptr<bip::message_queue> in_q_;
  std::string names_[2];  // master: queue names still to remove

  ByteQueue out_;  // bytes not yet in a message
  std::vector<std::byte> staging_;  // send_direct's first message
  std::vector<std::byte> in_msg_;  // the last message received
  std::size_t in_pos_ = 0;
  std::size_t in_len_ = 0;
  FrameAssembler assembler_;
  std::error_code broken_;
  std::uint64_t sent_ = 0;   // messages put into out_q_ (SideLine::messages_sent)
  std::uint64_t taken_ = 0;  // messages taken out of in_q_ (SideLine::messages_taken)
  mutable bool lock_timed_out_ = false;  // a queue's lock timed out since stuck() last looked
  bool dead_lock_ = false;               // see stuck()
};

// Creates one queue under a fresh name, and reserves its memory.
std::error_code make_queue(const std::string& name, std::unique_ptr<bip::message_queue>& out) {
  try {
    out = std::make_unique<bip::message_queue>(bip::create_only, name.c_str(), kMqueueDepth,
                                               kMqueueMessageBytes, bip::permissions(0600));
  } catch (const std::exception& e) {
    return from_boost(e);
  }
  if (auto ec = allocate_named(name)) {
    out.reset();
    bip::message_queue::remove(name.c_str());
    return ec;
  }
  return {};
}

std::error_code open_queue(const std::string& name, std::unique_ptr<bip::message_queue>& out) {
  try {
    out = std::make_unique<bip::message_queue>(bip::open_only, name.c_str());
  } catch (const std::exception& e) {
    return from_boost(e);
  }
  return {};
}

}  // namespace

std::error_code create_mqueue_link(const LinkConfig& config, LinkPair& out) {
  SharedRegion region;
  UniqueFd control_fd;
  if (auto ec = SharedRegion::create("mqctl", sizeof(LinkControl), region, control_fd)) return ec;
  const ControlIdentity id{kMqueueMagic, kMqueueVersion, sizeof(LinkControl), region.size(),
                           kMqueueMessageBytes, kMqueueDepth};
  new (region.data()) LinkControl(id);  // never destroyed (see LinkControl)

  std::unique_ptr<bip::message_queue> m2w, w2m;
  std::string m2w_name, w2m_name;
  for (int attempt = 0;; ++attempt) {
    const std::string base = unique_name("mq");
    m2w_name = base + "-m2w";
    w2m_name = base + "-w2m";
    auto ec = make_queue(m2w_name, m2w);
    if (!ec) {
      ec = make_queue(w2m_name, w2m);
      if (ec) {
        m2w.reset();
        bip::message_queue::remove(m2w_name.c_str());
      }
    }
    if (!ec) break;
    if (ec != std::errc::file_exists || attempt >= 3) return ec;
  }

  UniqueFd master_bell, worker_bell;
  if (auto ec = make_doorbell(master_bell, worker_bell)) {
    bip::message_queue::remove(m2w_name.c_str());
    bip::message_queue::remove(w2m_name.c_str());
    return ec;
  }

  out.worker = Endpoint{"mqueue", {control_fd.release(), worker_bell.release()}, {}};
  out.worker.set("m2w", m2w_name);
  out.worker.set("w2m", w2m_name);
  auto link = std::make_unique<MqueueLink>(PeerSync::Role::master, std::move(region),
                                           std::move(master_bell), std::move(m2w), std::move(w2m),
                                           config.max_frame_bytes);
  link->set_names(std::move(m2w_name), std::move(w2m_name));
  out.master = std::move(link);
  return {};
}

void release_mqueue_names(const Endpoint& ep) noexcept {
  for (const char* key : {"m2w", "w2m"})
    if (const std::string* name = ep.param(key)) bip::message_queue::remove(name->c_str());
}

std::error_code attach_mqueue_link(const Endpoint& ep, const LinkConfig& config,
                                   std::unique_ptr<Link>& out) {
  const std::string* m2w_name = ep.param("m2w");
  const std::string* w2m_name = ep.param("w2m");
  if (ep.fds.size() != 2 || !m2w_name || !w2m_name) return AttachError::bad_endpoint;
  UniqueFd control_fd(ep.fds[0]);  // closed on return: the mapping keeps the block alive
  UniqueFd bell(ep.fds[1]);
  set_cloexec(bell.get(), true);  // a spawned worker inherited it through exec

  // Open both queues and remove their names at once, whatever happens next: from
  // now on no crash can leak them.
  std::unique_ptr<bip::message_queue> m2w, w2m;
  const auto ec_in = open_queue(*m2w_name, m2w);
  const auto ec_out = open_queue(*w2m_name, w2m);
  release_mqueue_names(ep);
  if (ec_in) return ec_in;
  if (ec_out) return ec_out;

  SharedRegion region;
  if (auto ec = SharedRegion::attach(control_fd.get(), sizeof(ControlIdentity), region)) return ec;
  ControlIdentity id;
  std::memcpy(&id, region.data(), sizeof id);
  if (id.magic != kMqueueMagic) return AttachError::bad_magic;
  if (id.version != kMqueueVersion) return AttachError::bad_version;
  if (id.header_bytes != sizeof(LinkControl) || id.map_bytes != region.size() ||
      id.capacity != kMqueueMessageBytes || id.depth != kMqueueDepth ||
      m2w->get_max_msg_size() != kMqueueMessageBytes || m2w->get_max_msg() != kMqueueDepth ||
      w2m->get_max_msg_size() != kMqueueMessageBytes || w2m->get_max_msg() != kMqueueDepth)
    return AttachError::bad_layout;

  auto link = std::make_unique<MqueueLink>(PeerSync::Role::worker, std::move(region),
                                           std::move(bell), std::move(w2m), std::move(m2w),
                                           config.max_frame_bytes);
  link->mark_attached();
  out = std::move(link);
  return {};
}

std::error_code mqueue_write_raw(Link& link, std::span<const std::byte> bytes,
                                 Link::Clock::duration timeout) {
  if (auto* m = dynamic_cast<MqueueLink*>(&link)) return m->write_raw(bytes, timeout);
  return std::make_error_code(std::errc::function_not_supported);
}

}  // namespace taskfarm::ipc::detail
