// Transport-specific tests of the shared-memory transports, shm and mqueue.
//
// Each test creates a link here and forks a child that attaches the worker
// endpoint (as the pool's fork server does), or forks a whole "master" process
// when the master side must die. They check what the byte-stream design must
// get right: order, sizes around the channel's capacity, a frame much larger
// than the channel, both directions at once, a peer killed while the other side
// is blocked, attach-time validation, garbage in the stream, and that no object
// is left in /dev/shm, even after SIGKILL of every process (LeakCheck).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "mqueue_link.hpp"
#include "shared_control.hpp"
#include "support/alloc_tracker.hpp"
#include "support/test_support.hpp"
#include "taskfarm/common/frame.hpp"
#include "taskfarm/ipc/fd.hpp"
#include "taskfarm/ipc/link.hpp"
#include "peer.hpp"
#include "test_hooks.hpp"

namespace {

using taskfarm::Frame;
using taskfarm::FrameKind;
using taskfarm::Transport;
using taskfarm::ipc::Errc;
using taskfarm::ipc::Flush;
using taskfarm::ipc::Link;
using taskfarm::ipc::LinkConfig;
using taskfarm::ipc::LinkPair;
using namespace std::chrono_literals;

// Only reached if the code under test hangs.
constexpr auto kPatience = 30s;
using taskfarm::test::compare_pattern;
using taskfarm::test::kAttachFailed;
using taskfarm::test::kBodyThrew;
using taskfarm::test::On;
using taskfarm::test::pattern;
using taskfarm::test::pump;
using taskfarm::test::TransportName;

bool same(const std::vector<std::byte>& got, std::uint64_t seed, std::size_t n) {
  return compare_pattern(got, seed, n).empty();
}

std::vector<std::byte> header_bytes(FrameKind kind, std::uint64_t id, std::uint64_t length) {
  return taskfarm::test::header_bytes(taskfarm::make_header(kind, id, length));
}

// Exit code (or 128 + signal) of `pid`; SIGKILLs it if it is not gone within `wait`.
int reap(pid_t pid, std::chrono::milliseconds wait = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return -1;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return -2;  // it hung
    }
    std::this_thread::sleep_for(1ms);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Forks a child that attaches the worker end of `pair` and returns body(link)
// as its exit code. The child closes the master's descriptors first (fork keeps
// them; a peer holding them would never see the master die). The parent keeps
// the master end and gives up its copies of the worker's descriptors.
pid_t fork_worker(LinkPair& pair, const LinkConfig& config, std::function<int(Link&)> body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(60);  // watchdog
    taskfarm::ipc::close_internal_fds_except({});
    int code = kAttachFailed;
    std::unique_ptr<Link> link;
    if (!taskfarm::ipc::attach_link(pair.worker, config, link)) {
      try {
        code = body(*link);
      } catch (...) {
        code = kBodyThrew;
      }
    }
    link.reset();
    std::fflush(nullptr);
    ::_exit(code);
  }
  for (int fd : pair.worker.fds) ::close(fd);
  pair.worker.fds.clear();
  return pid;
}

// A pipe for the test's own signalling between processes (not a taskfarm fd).
struct Pipe {
  int r = -1, w = -1;
  Pipe() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) == 0) {
      r = p[0];
      w = p[1];
    }
  }
  ~Pipe() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  void close_write() {
    if (w >= 0) ::close(w);
    w = -1;
  }
  void put(std::int64_t v) const { (void)!::write(w, &v, sizeof v); }
  // The next value, or -1000 on end of file / timeout.
  std::int64_t get(int timeout_ms = 30'000) const {
    pollfd p{r, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) != 1) return -1000;
    std::int64_t v = 0;
    return ::read(r, &v, sizeof v) == static_cast<ssize_t>(sizeof v) ? v : -1000;
  }
};

// In a peer: receives until the master closes its end; 0 if that is how it ended.
int drain_until_closed(Link& link) {
  Frame f;
  for (;;) {
    const auto ec = link.receive(f);
    if (ec == Errc::peer_gone) return 0;
    if (ec) return 3;
  }
}

// ---------------------------------------------------------------------------
// The suite, typed over the two transports.

template <class P>
class SharedMemoryTransport : public taskfarm::test::LeakCheck {
 protected:
  static constexpr Transport kTransport = P::transport;

  // Link settings under test: a small shm ring, so that ring edges are cheap.
  static LinkConfig config() {
    LinkConfig c;
    c.ring_bytes = 4096;
    return c;
  }
  // Bytes one unit of the channel carries: the shm ring, the mqueue message.
  static std::size_t capacity() {
    return kTransport == Transport::shm ? config().ring_bytes
                                        : taskfarm::ipc::detail::kMqueueMessageBytes;
  }

  LinkPair make(const LinkConfig& c = config()) {
    LinkPair pair;
    const auto ec = taskfarm::ipc::create_link(kTransport, c, pair);
    EXPECT_FALSE(ec) << ec.message();
    return pair;
  }
};

using Transports = ::testing::Types<On<Transport::shm>, On<Transport::mqueue>>;
TYPED_TEST_SUITE(SharedMemoryTransport, Transports, TransportName);

TYPED_TEST(SharedMemoryTransport, HundredThousandFramesInOrderBothWays) {
  constexpr std::uint64_t kCount = 100'000;
  auto payload = [](std::uint64_t i) {
    auto p = pattern(i, 8 + i % 29);
    std::memcpy(p.data(), &i, sizeof i);
    return p;
  };
  auto pair = this->make();
  const pid_t pid = fork_worker(pair, this->config(), [&](Link& link) {
    // The worker's loop: answers are coalesced and flushed when no task is queued.
    Frame f;
    for (std::uint64_t i = 0; i < kCount; ++i) {
      auto ec = link.try_receive(f);
      if (ec == Errc::would_block) {
        if (link.flush_for(kPatience)) return 4;
        ec = link.receive(f);
      }
      if (ec) return 1;
      if (f.kind() != FrameKind::task || f.id() != i || f.payload != payload(i)) return 2;
      if (link.try_send(FrameKind::result_ok, i, payload(i + 1), Flush::deferred)) return 3;
    }
    if (link.flush_for(kPatience)) return 5;
    return drain_until_closed(link);
  });
  Link& link = *pair.master;
  Frame f;
  std::uint64_t got = 0;
  // Keep a window of frames in flight and never block in a send, like the
  // dispatcher (a master blocked in send while its worker is blocked sending
  // results would be a deadlock of the test's own making).
  for (std::uint64_t sent = 0; got < kCount;) {
    while (sent < kCount && sent < got + 64) {
      ASSERT_FALSE(link.try_send(FrameKind::task, sent, payload(sent), Flush::deferred));
      ++sent;
    }
    const auto fec = link.flush();
    ASSERT_TRUE(!fec || fec == Errc::would_block) << fec.message();
    ASSERT_FALSE(link.receive_for(f, kPatience)) << "answer " << got;
    ASSERT_EQ(f.id(), got);
    ASSERT_EQ(f.payload, payload(got + 1));
    ++got;
  }
  EXPECT_EQ(link.try_receive(f), Errc::would_block);
  pair.master.reset();
  EXPECT_EQ(reap(pid), 0);
}

TYPED_TEST(SharedMemoryTransport, SizesAroundTheChannelCapacityRoundTrip) {
  const std::size_t cap = this->capacity();
  const std::size_t hdr = sizeof(taskfarm::FrameHeader);
  const std::vector<std::size_t> sizes = {
      0, 1, 63, 64,
      cap - hdr - 1, cap - hdr, cap - hdr + 1,  // whole frame: capacity - 1, capacity, capacity + 1
      cap - 1, cap, cap + 1,                    // payload alone
      3 * cap + 5, 0, 1};
  auto pair = this->make();
  const pid_t pid = fork_worker(pair, this->config(), [&](Link& link) {
    Frame f;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      if (link.receive(f)) return 1;
      if (f.id() != k || !same(f.payload, k, sizes[k])) return 2;
      if (link.send(FrameKind::result_ok, k, f.payload)) return 3;
    }
    return drain_until_closed(link);
  });
  Link& link = *pair.master;
  Frame f;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    SCOPED_TRACE("payload of " + std::to_string(sizes[k]) + " bytes");
    ASSERT_FALSE(link.send_for(FrameKind::task, k, pattern(k, sizes[k]), kPatience));
    ASSERT_FALSE(link.receive_for(f, kPatience));
    EXPECT_EQ(f.id(), k);
    EXPECT_TRUE(same(f.payload, k, sizes[k]));
  }
  pair.master.reset();
  EXPECT_EQ(reap(pid), 0);
}

TYPED_TEST(SharedMemoryTransport, SixtyFourMiBThroughAOneMiBRing) {
  LinkConfig c;
  c.ring_bytes = std::size_t{1} << 20;
  constexpr std::size_t kBig = taskfarm::test::kLargestPayload;
  auto pair = this->make(c);
  const pid_t pid = fork_worker(pair, c, [&](Link& link) {
    Frame f;
    if (link.receive(f)) return 1;
    if (!same(f.payload, 64, kBig)) return 2;
    if (link.send(FrameKind::result_ok, 2, f.payload)) return 3;  // and back
    return drain_until_closed(link);
  });
  Link& link = *pair.master;
  ASSERT_FALSE(link.send_for(FrameKind::task, 1, pattern(64, kBig), kPatience));
  Frame f;
  ASSERT_FALSE(link.receive_for(f, kPatience));
  EXPECT_EQ(f.id(), 2u);
  EXPECT_TRUE(same(f.payload, 64, kBig));
  pair.master.reset();
  EXPECT_EQ(reap(pid), 0);
}

TYPED_TEST(SharedMemoryTransport, BothDirectionsAtFullSpeedAtOnce) {
  constexpr std::size_t kFrames = 180;  // about 40 MiB each way, 0 B .. 1 MiB frames
  LinkConfig c;  // default ring
  auto pair = this->make(c);
  const pid_t pid = fork_worker(pair, c, [&](Link& link) {
    const auto why = pump(link, kFrames, FrameKind::result_ok, 2'000'000, FrameKind::task, 1'000'000);
    if (!why.empty()) {
      std::fprintf(stderr, "peer: %s\n", why.c_str());
      return 1;
    }
    return drain_until_closed(link);
  });
  EXPECT_EQ(pump(*pair.master, kFrames, FrameKind::task, 1'000'000, FrameKind::result_ok, 2'000'000), "");
  pair.master.reset();
  EXPECT_EQ(reap(pid), 0);
}

TYPED_TEST(SharedMemoryTransport, WorkerKilledWhileMasterBlockedInReceive) {
  auto pair = this->make();
  const pid_t pid = fork_worker(pair, this->config(), [](Link& link) {
    if (link.send(FrameKind::hello, 0, {})) return 1;
    ::pause();  // killed here
    return 2;
  });
  Link& link = *pair.master;
  Frame f;
  ASSERT_FALSE(link.receive_for(f, kPatience));
  ASSERT_EQ(f.kind(), FrameKind::hello);
  std::thread killer([pid] {
    std::this_thread::sleep_for(100ms);  // let the master block
    ::kill(pid, SIGKILL);
  });
  EXPECT_EQ(link.receive_for(f, kPatience), Errc::peer_gone);
  killer.join();
  EXPECT_EQ(link.try_receive(f), Errc::peer_gone) << "sticky";
  EXPECT_EQ(reap(pid), 128 + SIGKILL);
}

TYPED_TEST(SharedMemoryTransport, WorkerKilledWhileMasterBlockedInSend) {
  Pipe ready;
  auto pair = this->make();
  const pid_t pid = fork_worker(pair, this->config(), [&](Link&) {
    // Read nothing (the sender fills the channel and blocks; a receive could
    // take the whole frame of the sanitizer suites in time), say so, and wait
    // to be killed.
    std::this_thread::sleep_for(50ms);
    ready.put(1);
    ::pause();
    return 2;
  });
  ready.close_write();
  std::thread killer([&] {
    if (ready.get() == 1) ::kill(pid, SIGKILL);
  });
  Link& link = *pair.master;
  const auto big = pattern(3, taskfarm::test::kLargestPayload);
  const auto ec = link.send_for(FrameKind::task, 1, big, kPatience);
  killer.join();
  EXPECT_EQ(ec, Errc::peer_gone) << ec.message();
  EXPECT_EQ(link.send_for(FrameKind::task, 2, big, kPatience), Errc::peer_gone);
  EXPECT_EQ(reap(pid), 128 + SIGKILL);
}

// The master side lives in a forked process that the test kills; the worker (a
// grandchild) reports what its blocked call returned.
TYPED_TEST(SharedMemoryTransport, MasterKilledWhileWorkerBlockedInReceiveOrSend) {
  for (const bool in_send : {false, true}) {
    SCOPED_TRACE(in_send ? "blocked in send" : "blocked in receive");
    Pipe report;  // worker -> test: 1 = about to block, then what the call returned
    std::fflush(nullptr);
    const pid_t master = ::fork();
    ASSERT_GE(master, 0);
    if (master == 0) {
      ::alarm(60);
      ::close(report.r);
      LinkPair pair;
      if (taskfarm::ipc::create_link(this->kTransport, this->config(), pair)) ::_exit(1);
      fork_worker(pair, this->config(), [&](Link& link) {
        // The master is killed 100 ms after this report; its death must be
        // seen within a second of that (a later report reads timed_out).
        const auto bound = 100ms + 1s;
        const auto big = pattern(1, std::size_t{8} << 20);
        report.put(1);
        std::error_code ec;
        if (in_send) {
          ec = link.send_for(FrameKind::result_ok, 1, big, bound);
        } else {
          Frame f;
          ec = link.receive_for(f, bound);
        }
        report.put(ec == Errc::peer_gone ? 100 : 200 + ec.value());
        return 0;
      });
      ::close(report.w);
      ::pause();  // the master never reads: killed here
      ::_exit(2);
    }
    report.close_write();
    ASSERT_EQ(report.get(), 1) << "the worker did not start";
    std::this_thread::sleep_for(100ms);  // let it block
    ::kill(master, SIGKILL);
    EXPECT_EQ(report.get(), 100) << "the worker's blocked call returned peer_gone within a second";
    EXPECT_EQ(reap(master), 128 + SIGKILL);
  }
}

TYPED_TEST(SharedMemoryTransport, MasterClosingAtAnyMomentEndsABlockedWorkerCall) {
  // A clean close (not a kill) lands before, during or after the worker blocks:
  // its call must end with peer_gone whichever it was.
  for (int i = 0; i < 24; ++i) {
    SCOPED_TRACE("round " + std::to_string(i));
    const bool in_send = i % 2 == 0;
    auto pair = this->make();
    const pid_t pid = fork_worker(pair, this->config(), [&](Link& link) {
      std::error_code ec;
      if (in_send) {
        ec = link.send(FrameKind::result_ok, 1, pattern(1, std::size_t{4} << 20));
      } else {
        Frame f;
        ec = link.receive(f);
      }
      return ec == Errc::peer_gone ? 0 : 1;
    });
    std::this_thread::sleep_for(std::chrono::microseconds(300 * (i / 2)));
    pair.master.reset();
    EXPECT_EQ(reap(pid), 0);
  }
}

TYPED_TEST(SharedMemoryTransport, AttachRejectsAWrongMagicVersionOrSize) {
  struct Case {
    const char* what;
    std::size_t offset;  // byte of the control block to corrupt (ControlIdentity)
    taskfarm::ipc::detail::AttachError expected;
  };
  const Case cases[] = {
      {"magic", 0, taskfarm::ipc::detail::AttachError::bad_magic},
      {"version", 8, taskfarm::ipc::detail::AttachError::bad_version},
      {"capacity", 24, taskfarm::ipc::detail::AttachError::bad_layout},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto pair = this->make();
    void* p = ::mmap(nullptr, 64, PROT_READ | PROT_WRITE, MAP_SHARED, pair.worker.fds[0], 0);
    ASSERT_NE(p, MAP_FAILED);
    static_cast<unsigned char*>(p)[c.offset] ^= 0x5a;
    ::munmap(p, 64);
    std::unique_ptr<Link> worker;
    const auto ec = taskfarm::ipc::attach_link(pair.worker, this->config(), worker);
    EXPECT_EQ(ec, c.expected) << ec.message();
    EXPECT_FALSE(ec.message().empty());
    EXPECT_EQ(worker, nullptr);
  }
  {
    SCOPED_TRACE("truncated object");
    auto pair = this->make();
    ASSERT_EQ(::ftruncate(pair.worker.fds[0], 16), 0);
    std::unique_ptr<Link> worker;
    EXPECT_EQ(taskfarm::ipc::attach_link(pair.worker, this->config(), worker),
              taskfarm::ipc::detail::AttachError::bad_layout);
  }
  {
    SCOPED_TRACE("wrong number of descriptors");
    auto pair = this->make();
    auto ep = pair.worker;
    ep.fds.pop_back();
    std::unique_ptr<Link> worker;
    EXPECT_EQ(taskfarm::ipc::attach_link(ep, this->config(), worker),
              taskfarm::ipc::detail::AttachError::bad_endpoint);
    for (int fd : pair.worker.fds) ::close(fd);
  }
  if (this->kTransport == Transport::shm) {
    SCOPED_TRACE("the worker expects another ring size");
    auto pair = this->make();
    LinkConfig other = this->config();
    other.ring_bytes *= 2;
    std::unique_ptr<Link> worker;
    EXPECT_EQ(taskfarm::ipc::attach_link(pair.worker, other, worker),
              taskfarm::ipc::detail::AttachError::bad_layout);
  } else {
    SCOPED_TRACE("a queue name that does not exist");
    auto pair = this->make();
    auto ep = pair.worker;
    ep.set("m2w", "/taskfarm-test-no-such-queue");
    std::unique_ptr<Link> worker;
    EXPECT_TRUE(taskfarm::ipc::attach_link(ep, this->config(), worker));
    EXPECT_EQ(worker, nullptr);
  }
}

TYPED_TEST(SharedMemoryTransport, GarbageIsAProtocolErrorAndALyingLengthIsTooLarge) {
  struct Case {
    const char* what;
    std::vector<std::byte> bytes;
    Errc expected;
  };
  std::vector<Case> cases;
  cases.push_back({"random bytes", pattern(99, 5000), Errc::protocol_error});
  {
    auto b = header_bytes(FrameKind::result_ok, 1, 16);
    b[4] = std::byte{77};  // version
    cases.push_back({"bad version", b, Errc::protocol_error});
  }
  {
    auto b = header_bytes(FrameKind::result_ok, 1, 1000);  // a good frame, then garbage
    const auto body = pattern(5, 1000);
    b.insert(b.end(), body.begin(), body.end());
    const auto junk = pattern(6, 100);
    b.insert(b.end(), junk.begin(), junk.end());
    cases.push_back({"good frame then garbage", b, Errc::protocol_error});
  }
  cases.push_back({"length over the maximum", header_bytes(FrameKind::result_ok, 1, ~std::uint64_t{0}),
                   Errc::too_large});
  cases.push_back({"length just over the maximum",
                   header_bytes(FrameKind::result_ok, 1, taskfarm::kDefaultMaxFrameBytes + 1),
                   Errc::too_large});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    auto pair = this->make();
    const pid_t pid = fork_worker(pair, this->config(), [&](Link& link) {
      // The master stops reading at the error, so more garbage than the channel
      // holds may stay unsent: that ends as peer_gone when the master closes.
      const auto ec = taskfarm::ipc::detail::write_raw_bytes(link, c.bytes, kPatience);
      if (ec == Errc::peer_gone) return 0;
      if (ec) return 1;
      return drain_until_closed(link);  // alive: the error must not be end of stream
    });
    Link& link = *pair.master;
    Frame f;
    taskfarm::test::reset_largest_allocation();
    auto ec = link.receive_for(f, kPatience);
    if (std::string(c.what) == "good frame then garbage") {
      ASSERT_FALSE(ec) << ec.message();
      EXPECT_TRUE(same(f.payload, 5, 1000));
      ec = link.receive_for(f, kPatience);
    }
    EXPECT_EQ(ec, c.expected) << ec.message();
    EXPECT_LT(taskfarm::test::largest_allocation(), std::size_t{1} << 20);
    EXPECT_EQ(link.try_receive(f), c.expected) << "a broken link stays broken";
    pair.master.reset();
    EXPECT_EQ(reap(pid), 0);
  }
}

TYPED_TEST(SharedMemoryTransport, HugeLengthWithinTheLimitAllocatesOnlyWhatArrives) {
  LinkConfig roomy = this->config();
  roomy.max_frame_bytes = std::uint64_t{1} << 40;
  auto pair = this->make(roomy);
  const pid_t pid = fork_worker(pair, roomy, [](Link& link) {
    auto b = header_bytes(FrameKind::result_ok, 1, (std::uint64_t{1} << 40) - 1);
    const auto body = pattern(4, 3u << 20);
    b.insert(b.end(), body.begin(), body.end());
    return taskfarm::ipc::detail::write_raw_bytes(link, b, kPatience) ? 1 : 0;  // and die mid-frame
  });
  taskfarm::test::reset_largest_allocation();
  Frame f;
  EXPECT_EQ(pair.master->receive_for(f, kPatience), Errc::peer_gone);
  EXPECT_LE(taskfarm::test::largest_allocation(), std::size_t{16} << 20);
  pair.master.reset();
  EXPECT_EQ(reap(pid), 0);
}

TYPED_TEST(SharedMemoryTransport, NamesAreGoneOnceTheWorkerIsAttached) {
  const auto before = taskfarm::test::shm_objects();
  auto pair = this->make();
  if (this->kTransport == Transport::shm) {
    EXPECT_EQ(taskfarm::test::shm_objects(), before) << "the shm object is unlinked at creation";
  }
  const pid_t pid = fork_worker(pair, this->config(), [](Link& link) {
    if (link.send(FrameKind::hello, 0, {})) return 1;
    return drain_until_closed(link);
  });
  Frame f;
  ASSERT_FALSE(pair.master->receive_for(f, kPatience));
  pair.master->peer_attached();
  EXPECT_EQ(taskfarm::test::shm_objects(), before);
  pair.master.reset();
  EXPECT_EQ(reap(pid), 0);
}

TYPED_TEST(SharedMemoryTransport, SigkillOfMasterAndWorkerLeavesNothingInDevShm) {
  Pipe report;  // "master" -> test: the worker's pid once it said hello
  std::fflush(nullptr);
  const pid_t master = ::fork();
  ASSERT_GE(master, 0);
  if (master == 0) {
    ::alarm(60);
    ::close(report.r);
    LinkPair pair;
    if (taskfarm::ipc::create_link(this->kTransport, LinkConfig{}, pair)) ::_exit(1);
    const pid_t worker = fork_worker(pair, LinkConfig{}, [](Link& link) {
      if (link.send(FrameKind::hello, 0, {})) return 1;
      Frame f;
      (void)link.receive(f);  // blocks: killed here
      return 2;
    });
    Frame f;
    if (pair.master->receive_for(f, kPatience) || f.kind() != FrameKind::hello) ::_exit(3);
    pair.master->peer_attached();
    // Busy both ways when the end comes: a frame in flight to the worker.
    (void)pair.master->try_send(FrameKind::task, 1, pattern(1, 100'000));
    report.put(worker);
    ::pause();  // killed here
    ::_exit(4);
  }
  report.close_write();
  const std::int64_t worker = report.get();
  ASSERT_GT(worker, 0) << "the master or its worker did not start";
  ::kill(static_cast<pid_t>(worker), SIGKILL);
  ::kill(master, SIGKILL);
  EXPECT_EQ(reap(master), 128 + SIGKILL);
  // The objects are named after their creator, the forked master.
  EXPECT_TRUE(taskfarm::test::shm_objects_of(master).empty())
      << "left in /dev/shm: " << taskfarm::test::shm_objects_of(master).front();
}

}  // namespace
