#include "channels.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>

#include "machine.hpp"
#include "taskfarm/ipc/fd.hpp"
#include "taskfarm/ipc/link.hpp"

namespace taskfarm::bench::detail {

namespace bip = boost::interprocess;

namespace {

constexpr int kPeerTimeoutS = 30;  // a peer silent this long is taken for dead
constexpr int kPeerFailed = 3;     // exit code of a peer that lost its channel
constexpr int kPeerAttachFailed = 4;

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

bool write_all(int fd, const std::byte* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= static_cast<std::size_t>(w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

// 0 = end of file, -1 = error, 1 = read all n.
int read_all(int fd, std::byte* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r > 0) {
      p += r;
      n -= static_cast<std::size_t>(r);
    } else if (r == 0) {
      return 0;
    } else if (errno != EINTR) {
      return -1;
    }
  }
  return 1;
}

// ---------------------------------------------------------------------------
// taskfarm transports: a Link on each side. The peer says hello once attached,
// the master then calls peer_attached() (named objects are removed), as the pool
// does.

// Sets up a thread the way the pool sets up its dispatcher: SIGPIPE blocked,
// so pipe writes need no per-write guard (ipc::sigpipe_is_harmless_in_this_thread).
// Undone when the side is destroyed (in the same thread).
class SigpipeBlocked {
 public:
  SigpipeBlocked() noexcept {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_);
    ipc::sigpipe_is_harmless_in_this_thread(true);
  }
  ~SigpipeBlocked() {
    ipc::sigpipe_is_harmless_in_this_thread(false);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t old_;
};

class LinkSide final : public Side {
 public:
  explicit LinkSide(std::unique_ptr<ipc::Link> link) : link_(std::move(link)) {}
  bool send(std::span<const std::byte> msg) override {
    if (auto ec = link_->send(FrameKind::task, next_id_++, msg)) {
      error_ = "send: " + ec.message();
      return false;
    }
    return true;
  }
  bool recv(std::size_t n, std::span<const std::byte>& msg) override {
    // No deadline, as a worker receives and as the raw baselines read: a dead
    // peer still ends the wait at once (end of stream; shm and mqueue links
    // watch their peer themselves).
    if (auto ec = link_->receive(frame_)) {
      error_ = "receive: " + ec.message();
      return false;
    }
    if (frame_.payload.size() != n) {
      error_ = "received " + std::to_string(frame_.payload.size()) + " bytes, expected " +
               std::to_string(n);
      return false;
    }
    msg = frame_.payload;
    return true;
  }
  ipc::Link& link() { return *link_; }

 private:
  std::unique_ptr<ipc::Link> link_;
  Frame frame_;
  std::uint64_t next_id_ = 0;
};

class TransportMechanism final : public Mechanism {
 public:
  explicit TransportMechanism(Transport t) : transport_(t) {}
  ~TransportMechanism() override {
    for (int fd : pair_.worker.fds) ::close(fd);
  }
  std::string create(std::size_t max_msg) override {
    config_.max_frame_bytes = std::max<std::uint64_t>(config_.max_frame_bytes, max_msg);
    if (auto ec = ipc::create_link(transport_, config_, pair_)) return "create_link: " + ec.message();
    return {};
  }
  std::vector<int> peer_fds() const override { return pair_.worker.fds; }
  std::unique_ptr<Side> peer_side() override {
    std::unique_ptr<ipc::Link> link;
    auto ep = pair_.worker;
    pair_.worker.fds.clear();  // owned by the link from now on
    ipc::sigpipe_is_harmless_in_this_thread();  // the peer ignores SIGPIPE, as a worker does
    if (ipc::attach_link(ep, config_, link)) return nullptr;
    if (link->send(FrameKind::hello, 0, {})) return nullptr;
    return std::make_unique<LinkSide>(std::move(link));
  }
  std::unique_ptr<Side> master_side(std::string& error) override {
    for (int fd : pair_.worker.fds) ::close(fd);  // only the peer holds its end now
    pair_.worker.fds.clear();
    Frame hello;
    if (auto ec = pair_.master->receive_for(hello, std::chrono::seconds(kPeerTimeoutS))) {
      error = "the peer did not attach: " + ec.message();
      return nullptr;
    }
    if (hello.kind() != FrameKind::hello) {
      error = "the peer's first frame was not hello";
      return nullptr;
    }
    pair_.master->peer_attached();
    sigpipe_ = std::make_unique<SigpipeBlocked>();
    return std::make_unique<LinkSide>(std::move(pair_.master));
  }

 private:
  Transport transport_;
  ipc::LinkConfig config_;
  ipc::LinkPair pair_;
  std::unique_ptr<SigpipeBlocked> sigpipe_;  // the master's side, as in the pool
};

// ---------------------------------------------------------------------------
// Raw byte streams: pipe pair or socketpair, no framing.

class FdSide final : public Side {
 public:
  FdSide(int in, int out) : in_(in), out_(out) {}
  ~FdSide() override {
    ::close(in_);
    if (out_ != in_) ::close(out_);
  }
  bool send(std::span<const std::byte> msg) override {
    if (!write_all(out_, msg.data(), msg.size())) {
      error_ = errno_text("write");
      return false;
    }
    return true;
  }
  bool recv(std::size_t n, std::span<const std::byte>& msg) override {
    if (buf_.size() < n) buf_.resize(n);
    const int r = read_all(in_, buf_.data(), n);
    if (r <= 0) {
      error_ = r == 0 ? "end of file" : errno_text("read");
      return false;
    }
    msg = std::span<const std::byte>(buf_.data(), n);
    return true;
  }

 private:
  int in_, out_;
  std::vector<std::byte> buf_;
};

class RawPipe final : public Mechanism {
 public:
  ~RawPipe() override {
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  std::string create(std::size_t) override {
    int a[2], b[2];
    if (::pipe2(a, O_CLOEXEC) != 0) return errno_text("pipe2");
    if (::pipe2(b, O_CLOEXEC) != 0) {
      ::close(a[0]);
      ::close(a[1]);
      return errno_text("pipe2");
    }
    fds_ = {a[0], a[1], b[0], b[1]};  // a: master -> peer, b: peer -> master
    // The same buffer size as the pipe transport (ipc/src/link.cpp).
    ::fcntl(a[1], F_SETPIPE_SZ, 1 << 20);
    ::fcntl(b[1], F_SETPIPE_SZ, 1 << 20);
    return {};
  }
  std::vector<int> peer_fds() const override { return {fds_[0], fds_[3]}; }
  std::unique_ptr<Side> peer_side() override { return std::make_unique<FdSide>(fds_[0], fds_[3]); }
  std::unique_ptr<Side> master_side(std::string&) override {
    ::close(fds_[0]);
    ::close(fds_[3]);
    auto s = std::make_unique<FdSide>(fds_[2], fds_[1]);
    fds_ = {-1, -1, -1, -1};
    return s;
  }

 private:
  std::vector<int> fds_{-1, -1, -1, -1};
};

class RawSocketpair final : public Mechanism {
 public:
  ~RawSocketpair() override {
    for (int fd : sv_)
      if (fd >= 0) ::close(fd);
  }
  std::string create(std::size_t) override {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv_) != 0) return errno_text("socketpair");
    constexpr int kBytes = 1 << 20;  // as the socket transport
    for (int fd : sv_) {
      ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kBytes, sizeof kBytes);
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kBytes, sizeof kBytes);
    }
    return {};
  }
  std::vector<int> peer_fds() const override { return {sv_[1]}; }
  std::unique_ptr<Side> peer_side() override { return std::make_unique<FdSide>(sv_[1], sv_[1]); }
  std::unique_ptr<Side> master_side(std::string&) override {
    ::close(sv_[1]);
    auto s = std::make_unique<FdSide>(sv_[0], sv_[0]);
    sv_[0] = sv_[1] = -1;
    return s;
  }

 private:
  int sv_[2] = {-1, -1};
};

// ---------------------------------------------------------------------------
// Raw semaphores: per direction a ring of kSlots message slots in one anonymous
// MAP_SHARED mapping, with two process-shared POSIX semaphores, the classic
// bounded buffer. A round trip is a semaphore ping-pong plus the copies into and
// out of shared memory that any shared-memory channel makes.
//
//   per ring:  [items sem_t | spaces sem_t] (64-byte block) then kSlots slots of
//              `stride` bytes (the largest message, rounded up to 64)

constexpr std::size_t kSlots = 8;
constexpr std::size_t kLine = 64;

struct RingHead {
  sem_t items;   // posted by the producer after filling a slot
  sem_t spaces;  // posted by the consumer after emptying one
};
static_assert(sizeof(RingHead) <= kLine);

bool sem_wait_for(sem_t* s, int seconds) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += seconds;
  for (;;) {
    if (::sem_timedwait(s, &ts) == 0) return true;
    if (errno != EINTR) return false;
  }
}

class SemSide final : public Side {
 public:
  SemSide(std::byte* out_ring, std::byte* in_ring, std::size_t stride)
      : out_(out_ring), in_(in_ring), stride_(stride) {}
  bool send(std::span<const std::byte> msg) override {
    auto* h = reinterpret_cast<RingHead*>(out_);
    if (!sem_wait_for(&h->spaces, kPeerTimeoutS)) {
      error_ = errno_text("sem_timedwait");
      return false;
    }
    std::memcpy(out_ + kLine + (sent_++ % kSlots) * stride_, msg.data(), msg.size());
    ::sem_post(&h->items);
    return true;
  }
  bool recv(std::size_t n, std::span<const std::byte>& msg) override {
    auto* h = reinterpret_cast<RingHead*>(in_);
    if (!sem_wait_for(&h->items, kPeerTimeoutS)) {
      error_ = errno_text("sem_timedwait");
      return false;
    }
    if (buf_.size() < n) buf_.resize(n);
    std::memcpy(buf_.data(), in_ + kLine + (received_++ % kSlots) * stride_, n);
    ::sem_post(&h->spaces);
    msg = std::span<const std::byte>(buf_.data(), n);
    return true;
  }

 private:
  std::byte* out_;
  std::byte* in_;
  std::size_t stride_;
  std::uint64_t sent_ = 0, received_ = 0;
  std::vector<std::byte> buf_;
};

class RawSemaphores final : public Mechanism {
 public:
  ~RawSemaphores() override {
    if (base_) {
      for (std::byte* r : {ring(0), ring(1)}) {
        auto* h = reinterpret_cast<RingHead*>(r);
        ::sem_destroy(&h->items);
        ::sem_destroy(&h->spaces);
      }
      ::munmap(base_, bytes_);
    }
  }
  std::string create(std::size_t max_msg) override {
    stride_ = (std::max<std::size_t>(max_msg, 1) + kLine - 1) / kLine * kLine;
    bytes_ = 2 * ring_bytes();
    void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return errno_text("mmap");
    base_ = static_cast<std::byte*>(p);
    for (std::byte* r : {ring(0), ring(1)}) {
      auto* h = new (r) RingHead;
      if (::sem_init(&h->items, 1, 0) != 0 || ::sem_init(&h->spaces, 1, kSlots) != 0)
        return errno_text("sem_init");
    }
    return {};
  }
  std::vector<int> peer_fds() const override { return {}; }
  std::unique_ptr<Side> peer_side() override { return std::make_unique<SemSide>(ring(1), ring(0), stride_); }
  std::unique_ptr<Side> master_side(std::string&) override {
    return std::make_unique<SemSide>(ring(0), ring(1), stride_);
  }

 private:
  std::size_t ring_bytes() const { return kLine + kSlots * stride_; }
  std::byte* ring(int i) const { return base_ + static_cast<std::size_t>(i) * ring_bytes(); }
  std::byte* base_ = nullptr;
  std::size_t bytes_ = 0, stride_ = 0;
};

// ---------------------------------------------------------------------------
// Raw Boost.Interprocess message_queues, with the message size and depth of the
// mqueue transport (ipc/src/mqueue_link.hpp): a message larger than one queue
// message travels as several. The queues live in shared memory that fork()
// shares, so both processes use the objects created here; their names are
// removed right after creation.

constexpr std::size_t kMqMessageBytes = 16 * 1024;
constexpr std::size_t kMqDepth = 64;

class MqSide final : public Side {
 public:
  MqSide(bip::message_queue& out, bip::message_queue& in) : out_(out), in_(in) {}
  bool send(std::span<const std::byte> msg) override {
    try {
      std::size_t off = 0;
      do {
        const std::size_t n = std::min(kMqMessageBytes, msg.size() - off);
        out_.send(msg.data() + off, n, 0);
        off += n;
      } while (off < msg.size());
      return true;
    } catch (const std::exception& e) {
      error_ = std::string("message_queue::send: ") + e.what();
      return false;
    }
  }
  bool recv(std::size_t n, std::span<const std::byte>& msg) override {
    if (buf_.size() < n + kMqMessageBytes) buf_.resize(n + kMqMessageBytes);
    try {
      std::size_t off = 0;
      do {
        bip::message_queue::size_type got = 0;
        unsigned prio = 0;
        const auto deadline = boost::posix_time::microsec_clock::universal_time() +
                              boost::posix_time::seconds(kPeerTimeoutS);
        if (!in_.timed_receive(buf_.data() + off, kMqMessageBytes, got, prio, deadline)) {
          error_ = "message_queue::timed_receive: timed out";
          return false;
        }
        off += got;
      } while (off < n);
      if (off != n) {
        error_ = "received " + std::to_string(off) + " bytes, expected " + std::to_string(n);
        return false;
      }
    } catch (const std::exception& e) {
      error_ = std::string("message_queue::receive: ") + e.what();
      return false;
    }
    msg = std::span<const std::byte>(buf_.data(), n);
    return true;
  }

 private:
  bip::message_queue& out_;
  bip::message_queue& in_;
  std::vector<std::byte> buf_;
};

class RawMessageQueue final : public Mechanism {
 public:
  std::string create(std::size_t) override {
    std::random_device rd;
    const std::string base = "/taskfarm-bench-" + std::to_string(::getpid()) + "-" +
                             std::to_string(rd()) + std::to_string(rd());
    try {
      for (int i = 0; i < 2; ++i) {
        const std::string name = base + (i == 0 ? "-m2p" : "-p2m");
        q_[i] = std::make_unique<bip::message_queue>(bip::create_only, name.c_str(), kMqDepth,
                                                     kMqMessageBytes, bip::permissions(0600));
        bip::message_queue::remove(name.c_str());  // the mapping stays; nothing is left behind
      }
    } catch (const std::exception& e) {
      return std::string("message_queue: ") + e.what();
    }
    return {};
  }
  std::vector<int> peer_fds() const override { return {}; }
  std::unique_ptr<Side> peer_side() override { return std::make_unique<MqSide>(*q_[1], *q_[0]); }
  std::unique_ptr<Side> master_side(std::string&) override {
    return std::make_unique<MqSide>(*q_[0], *q_[1]);
  }

 private:
  std::unique_ptr<bip::message_queue> q_[2];
};

// ---------------------------------------------------------------------------
// The peer's command loop.

struct Command {
  std::uint32_t op;  // kEcho, kSink, kQuit
  std::uint32_t pad;
  std::uint64_t size;
  std::uint64_t count;
};
constexpr std::uint32_t kEcho = 1, kSink = 2, kQuit = 3;

[[noreturn]] void peer_main(Mechanism& mech, int cmd_fd) {
  auto side = mech.peer_side();
  if (!side) ::_exit(kPeerAttachFailed);
  const std::byte ack[1] = {std::byte{1}};
  for (;;) {
    Command c{};
    if (read_all(cmd_fd, reinterpret_cast<std::byte*>(&c), sizeof c) != 1 || c.op == kQuit) break;
    std::span<const std::byte> m;
    for (std::uint64_t i = 0; i < c.count; ++i) {
      if (!side->recv(c.size, m)) ::_exit(kPeerFailed);
      if (c.op == kEcho && !side->send(m)) ::_exit(kPeerFailed);
    }
    if (c.op == kSink && !side->send(ack)) ::_exit(kPeerFailed);
  }
  side.reset();
  ::_exit(0);
}

}  // namespace

void close_fds_except(std::vector<int> keep) noexcept {
  keep.push_back(0);
  keep.push_back(1);
  keep.push_back(2);
  std::sort(keep.begin(), keep.end());
  unsigned next = 0;
  for (int fd : keep) {
    if (fd < 0) continue;
    const auto u = static_cast<unsigned>(fd);
    if (u > next) ::close_range(next, u - 1, 0);
    next = u + 1;
  }
  ::close_range(next, ~0u, 0);
}

std::unique_ptr<Mechanism> make_transport(Transport t) { return std::make_unique<TransportMechanism>(t); }

std::unique_ptr<Mechanism> make_raw(Transport underlying) {
  switch (underlying) {
    case Transport::pipe: return std::make_unique<RawPipe>();
    case Transport::socket: return std::make_unique<RawSocketpair>();
    case Transport::mqueue: return std::make_unique<RawMessageQueue>();
    case Transport::shm: return std::make_unique<RawSemaphores>();
  }
  return nullptr;
}

Channel::Channel(ChannelInfo info, std::unique_ptr<Mechanism> mech, std::size_t max_msg,
                 int peer_cpu)
    : info_(std::move(info)), mech_(std::move(mech)) {
  if (auto why = mech_->create(max_msg); !why.empty()) throw std::runtime_error(why);
  int cmd[2];
  if (::pipe2(cmd, O_CLOEXEC) != 0) throw std::runtime_error(errno_text("pipe2"));
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(cmd[0]);
    ::close(cmd[1]);
    throw std::runtime_error(errno_text("fork"));
  }
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_IGN);
    if (peer_cpu >= 0) pin_to_cpu(peer_cpu);
    auto keep = mech_->peer_fds();
    keep.push_back(cmd[0]);
    close_fds_except(keep);
    peer_main(*mech_, cmd[0]);
  }
  pid_ = pid;
  ::close(cmd[0]);
  cmd_fd_ = cmd[1];
  std::string error;
  side_ = mech_->master_side(error);
  if (!side_) {
    stop();
    throw std::runtime_error(error.empty() ? "the peer could not attach" : error);
  }
}

Channel::~Channel() { stop(); }

void Channel::command(std::uint32_t op, std::uint64_t size, std::uint64_t count) {
  const Command c{op, 0, size, count};
  if (!write_all(cmd_fd_, reinterpret_cast<const std::byte*>(&c), sizeof c))
    throw std::runtime_error(errno_text("peer command"));
}

std::vector<double> Channel::round_trips(std::span<const std::byte> msg, std::size_t n) {
  std::vector<double> us;
  us.reserve(n);
  command(kEcho, msg.size(), n);
  std::span<const std::byte> back;
  for (std::size_t i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!side_->send(msg) || !side_->recv(msg.size(), back))
      throw std::runtime_error(info_.subject + ": " + side_->error());
    const auto t1 = std::chrono::steady_clock::now();
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  if (!back.empty() && (back.front() != msg.front() || back.back() != msg.back()))
    throw std::runtime_error(info_.subject + ": the echo differs from what was sent");
  return us;
}

double Channel::stream(std::span<const std::byte> msg, std::size_t n) {
  command(kSink, msg.size(), n);
  std::span<const std::byte> ack;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < n; ++i)
    if (!side_->send(msg)) throw std::runtime_error(info_.subject + ": " + side_->error());
  if (!side_->recv(1, ack)) throw std::runtime_error(info_.subject + ": " + side_->error());
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Channel::stop() noexcept {
  if (pid_ > 0) {
    if (cmd_fd_ >= 0) {
      const Command c{kQuit, 0, 0, 0};
      (void)write_all(cmd_fd_, reinterpret_cast<const std::byte*>(&c), sizeof c);
    }
    side_.reset();  // closes the master's end: a peer blocked on it sees the end
    int status = 0;
    bool reaped = false;
    for (int i = 0; i < 200 && !reaped; ++i) {  // up to 2 s, then kill it
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      reaped = r == pid_ || (r < 0 && errno != EINTR);
      if (!reaped) ::usleep(10'000);
    }
    if (!reaped) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    pid_ = -1;
  }
  side_.reset();
  if (cmd_fd_ >= 0) ::close(cmd_fd_);
  cmd_fd_ = -1;
}

}  // namespace taskfarm::bench::detail
