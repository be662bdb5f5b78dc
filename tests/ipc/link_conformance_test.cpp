// The link conformance suite: one typed suite, run against every transport.
//
// Each test creates a link in this process, forks a peer that attaches the
// worker end (peer.hpp), and checks what arrives: order, sizes 0 B .. 64 MiB,
// both directions at once, and a peer that dies, lies about a length or sends
// garbage. Every child is reaped; LeakCheck fails a test that leaves one behind.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "peer.hpp"
#include "support/alloc_tracker.hpp"
#include "support/test_support.hpp"
#include "taskfarm/common/frame.hpp"
#include "taskfarm/ipc/link.hpp"
#include "test_hooks.hpp"

namespace {

using taskfarm::FrameKind;
using taskfarm::Transport;
using taskfarm::ipc::Errc;
using taskfarm::ipc::Link;
using taskfarm::ipc::LinkConfig;
using taskfarm::test::compare_pattern;
using taskfarm::test::ForkedPeer;
using taskfarm::test::header_bytes;
using taskfarm::test::pattern;
using taskfarm::test::write_all;

// Writes raw bytes into the link's channel, past the framing: straight to the
// descriptor for stream transports, through the test hook for shared memory.
bool raw_write(taskfarm::ipc::Link& link, std::span<const std::byte> b) {
  if (link.writable_fd() >= 0) return write_all(link.writable_fd(), b);
  const auto ec = taskfarm::ipc::detail::write_raw_bytes(link, b, std::chrono::seconds(30));
  return !ec || ec == taskfarm::ipc::Errc::peer_gone;  // the reader may stop at the error
}
using namespace std::chrono_literals;

// Generous: only ever reached if the code under test hangs.
constexpr auto kPatience = 30s;

using taskfarm::test::On;
using taskfarm::test::TransportName;

template <class P>
class LinkConformance : public taskfarm::test::LeakCheck {
 protected:
  static constexpr Transport kTransport = P::transport;

  void SetUp() override {
    taskfarm::test::LeakCheck::SetUp();
    if (P::nonblocking_fds) taskfarm::ipc::detail::stream_links_use_nonblocking_descriptors(true);
  }
  void TearDown() override {
    if (P::nonblocking_fds) taskfarm::ipc::detail::stream_links_use_nonblocking_descriptors(false);
    taskfarm::test::LeakCheck::TearDown();
  }
};

using Transports = ::testing::Types<On<Transport::pipe>, On<Transport::socket>,
                                    On<Transport::mqueue>, On<Transport::shm>,
                                    On<Transport::pipe, true>>;
TYPED_TEST_SUITE(LinkConformance, Transports, TransportName);

// In a peer: receives until the master closes its end; 0 if that is how it ended.
int drain_until_closed(Link& link) {
  taskfarm::Frame f;
  for (;;) {
    const auto ec = link.receive(f);
    if (ec == Errc::peer_gone) return 0;
    if (ec) return 3;
  }
}

bool sigpipe_pending() {
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

TYPED_TEST(LinkConformance, HundredThousandSmallFramesArriveInOrder) {
  constexpr std::uint64_t kCount = 100'000;
  // Payload of frame i: its index, then i % 17 pattern bytes.
  auto payload = [](std::uint64_t i) {
    auto p = pattern(i, 8 + i % 17);
    std::memcpy(p.data(), &i, sizeof i);
    return p;
  };
  ForkedPeer peer(this->kTransport, [&](Link& link) {
    taskfarm::Frame f;
    for (std::uint64_t i = 0; i < kCount; ++i) {
      if (auto ec = link.receive(f)) {
        std::fprintf(stderr, "peer: receive #%llu: %s\n", static_cast<unsigned long long>(i),
                     ec.message().c_str());
        return 1;
      }
      if (f.kind() != FrameKind::task || f.id() != i || f.payload != payload(i)) {
        std::fprintf(stderr, "peer: frame #%llu arrived as #%llu (%zu bytes)\n",
                     static_cast<unsigned long long>(i), static_cast<unsigned long long>(f.id()),
                     f.payload.size());
        return 2;
      }
    }
    // Answer all of them, coalesced, then push out the rest.
    for (std::uint64_t i = 0; i < kCount; ++i)
      if (link.try_send(FrameKind::result_ok, i, payload(kCount - i), taskfarm::ipc::Flush::deferred))
        return 3;
    if (link.flush_for(kPatience)) return 4;
    return drain_until_closed(link);
  });
  Link& link = peer.link();
  for (std::uint64_t i = 0; i < kCount; ++i)
    ASSERT_FALSE(link.send(FrameKind::task, i, payload(i))) << "frame " << i;
  taskfarm::Frame f;
  for (std::uint64_t i = 0; i < kCount; ++i) {
    ASSERT_FALSE(link.receive_for(f, kPatience)) << "answer " << i;
    ASSERT_EQ(f.kind(), FrameKind::result_ok);
    ASSERT_EQ(f.id(), i);
    ASSERT_EQ(f.payload, payload(kCount - i)) << "answer " << i;
  }
  EXPECT_EQ(link.try_receive(f), Errc::would_block) << "nothing more than was sent";
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, FramesOfEverySizeRoundTripIntact) {
  const std::vector<std::size_t> sizes = {
      0, 1, 23, 24, 25, 63, 64, 65, 4095, 4096, 65535, 65536, 65537,
      (1 << 20) - 1, 1 << 20, (1 << 20) + 1, taskfarm::test::kLargestPayload};
  ForkedPeer peer(this->kTransport, [&](Link& link) {
    // Check each frame, then echo it back unchanged.
    taskfarm::Frame f;
    for (std::size_t k = 0; k < sizes.size(); ++k) {
      if (auto ec = link.receive(f)) return 1;
      if (f.kind() != FrameKind::task || f.id() != 1000 + k) return 2;
      if (auto why = compare_pattern(f.payload, k, sizes[k]); !why.empty()) {
        std::fprintf(stderr, "peer: frame of %zu bytes: %s\n", sizes[k], why.c_str());
        return 3;
      }
      if (link.send(FrameKind::result_ok, f.id(), f.payload)) return 4;
    }
    return drain_until_closed(link);
  });
  Link& link = peer.link();
  taskfarm::Frame f;
  for (std::size_t k = 0; k < sizes.size(); ++k) {
    SCOPED_TRACE("payload of " + std::to_string(sizes[k]) + " bytes");
    const auto p = pattern(k, sizes[k]);
    ASSERT_FALSE(link.send_for(FrameKind::task, 1000 + k, p, kPatience));
    ASSERT_FALSE(link.receive_for(f, kPatience));
    EXPECT_EQ(f.kind(), FrameKind::result_ok);
    EXPECT_EQ(f.id(), 1000 + k);
    EXPECT_EQ(compare_pattern(f.payload, k, sizes[k]), "");
  }
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, BothDirectionsAtFullSpeedAtOnce) {
  // Each side sends 160 frames of 0 B .. 1 MiB (about 35 MiB) while it receives
  // as many, never blocking in either direction.
  constexpr std::size_t kFrames = 160;
  ForkedPeer peer(this->kTransport, [&](Link& link) {
    const auto why = taskfarm::test::pump(link, kFrames, FrameKind::result_ok, 2'000'000,
                                          FrameKind::task, 1'000'000);
    if (!why.empty()) {
      std::fprintf(stderr, "peer: %s\n", why.c_str());
      return 1;
    }
    return drain_until_closed(link);
  });
  EXPECT_EQ(taskfarm::test::pump(peer.link(), kFrames, FrameKind::task, 1'000'000,
                                 FrameKind::result_ok, 2'000'000),
            "");
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, DeferredFramesWaitForFlush) {
  ForkedPeer peer(this->kTransport, [&](Link& link) {
    taskfarm::Frame f;
    for (std::uint64_t i = 0; i < 1000; ++i) {
      if (link.receive(f) || f.id() != i || compare_pattern(f.payload, i, 100) != "") return 1;
    }
    return drain_until_closed(link);
  });
  Link& link = peer.link();
  for (std::uint64_t i = 0; i < 1000; ++i)
    ASSERT_FALSE(link.try_send(FrameKind::task, i, pattern(i, 100), taskfarm::ipc::Flush::deferred));
  ASSERT_FALSE(link.flush_for(kPatience));
  EXPECT_FALSE(link.has_pending_output());
  EXPECT_FALSE(link.flush()) << "flush with nothing pending is ok";
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, DeferredFramesOfMixedSizesPackedTogetherArriveIntact) {
  // Deferred frames are packed into the channel back to back, so one piece (a
  // message, a span of the ring, a read) holds the end of one payload and the
  // start of the next frames: receivers that take payloads straight into the
  // frame must hand what lies past its end on.
  const std::size_t sizes[] = {5000, 30, 20'000, 16'400, 7, 40'000, 16'383, 0, 9000, 70'000};
  constexpr std::uint64_t kFrames = 400;
  auto size_of = [&](std::uint64_t i) { return sizes[i % std::size(sizes)]; };
  ForkedPeer peer(this->kTransport, [&](Link& link) {
    taskfarm::Frame f;
    for (std::uint64_t i = 0; i < kFrames; ++i) {
      if (link.receive(f) || f.id() != i || compare_pattern(f.payload, i, size_of(i)) != "") {
        std::fprintf(stderr, "peer: frame %llu wrong\n", static_cast<unsigned long long>(i));
        return 1;
      }
    }
    return drain_until_closed(link);
  });
  Link& link = peer.link();
  for (std::uint64_t i = 0; i < kFrames; ++i) {
    ASSERT_FALSE(link.try_send(FrameKind::task, i, pattern(i, size_of(i)), taskfarm::ipc::Flush::deferred));
    if (i % 16 == 15) {
      ASSERT_FALSE(link.flush_for(kPatience));
    }
  }
  ASSERT_FALSE(link.flush_for(kPatience));
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, TrySendNeverBlocksAndKeepsWhatItCouldNotWrite) {
  const std::size_t kBig = taskfarm::test::kLargestPayload;
  ForkedPeer peer(this->kTransport, [&](Link& link) {
    taskfarm::Frame f;
    if (link.receive(f) || f.id() != 9 || compare_pattern(f.payload, 9, kBig) != "") return 1;
    return drain_until_closed(link);
  });
  Link& link = peer.link();
  auto big = pattern(9, kBig);
  // 64 MiB cannot go into any pipe or socket buffer at once: try_send takes the
  // frame, writes what fits and keeps the rest.
  ASSERT_FALSE(link.try_send(FrameKind::task, 9, big));
  EXPECT_TRUE(link.has_pending_output());
  std::fill(big.begin(), big.end(), std::byte{0});  // the link owns its copy
  ASSERT_FALSE(link.flush_for(kPatience));
  EXPECT_FALSE(link.has_pending_output());
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, FramesAlreadyBufferedKeepTheOwnerAwake) {
  // Ten small frames arrive in one write; the first receive reads them all into
  // the link's buffer, so the descriptor is no longer readable. prepare_wait()
  // must say "do not sleep" while frames are waiting in the buffer.
  ForkedPeer peer(this->kTransport, [](Link& link) {
    for (std::uint64_t i = 0; i < 10; ++i)
      if (link.try_send(FrameKind::result_ok, i, pattern(i, 8), taskfarm::ipc::Flush::deferred))
        return 1;
    if (link.flush_for(kPatience)) return 2;
    return drain_until_closed(link);
  });
  Link& link = peer.link();
  taskfarm::Frame f;
  ASSERT_FALSE(link.receive_for(f, kPatience));
  EXPECT_EQ(f.id(), 0u);
  for (std::uint64_t i = 1; i < 10; ++i) {
    EXPECT_FALSE(link.prepare_wait()) << "frame " << i << " is buffered";
    ASSERT_FALSE(link.try_receive(f)) << "frame " << i;
    EXPECT_EQ(f.id(), i);
    EXPECT_EQ(compare_pattern(f.payload, i, 8), "");
  }
  EXPECT_TRUE(link.prepare_wait()) << "nothing left: the owner may sleep";
  EXPECT_EQ(link.try_receive(f), Errc::would_block);
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, EmptyLinkWouldBlockAndTimesOut) {
  ForkedPeer peer(this->kTransport, drain_until_closed);
  Link& link = peer.link();
  taskfarm::Frame f;
  EXPECT_EQ(link.try_receive(f), Errc::would_block);
  EXPECT_EQ(link.receive_for(f, 20ms), Errc::timed_out);
  EXPECT_TRUE(link.prepare_wait()) << "nothing buffered: the owner may sleep";
  EXPECT_GE(link.readable_fd(), 0);
  EXPECT_EQ(peer.finish(), 0);
}

// The bound: a peer killed while this side is blocked is reported
// within a second. The blocked call is given the second (after the kill) as its
// deadline, so a report that came later reads timed_out, not peer_gone.
TYPED_TEST(LinkConformance, PeerKilledWhileWeAreBlockedIsReportedWithinASecond) {
  static constexpr auto kKillAfter = 100ms;
  static constexpr auto kBound = 1s;
  for (const bool in_send : {false, true}) {
    SCOPED_TRACE(in_send ? "blocked in send" : "blocked in receive");
    ForkedPeer peer(this->kTransport, [](Link& link) {
      if (link.send(FrameKind::hello, 0, {})) return 1;
      ::pause();  // reads nothing; killed here
      return 2;
    });
    Link& link = peer.link();
    taskfarm::Frame f;
    ASSERT_FALSE(link.receive_for(f, kPatience));
    ASSERT_EQ(f.kind(), FrameKind::hello);
    // More than any channel holds, so the send blocks until the peer is gone.
    const auto big = in_send ? pattern(5, taskfarm::test::kLargestPayload) : std::vector<std::byte>{};
    const pid_t pid = peer.pid();
    std::thread killer([pid] {
      std::this_thread::sleep_for(kKillAfter);  // let this side block first
      ::kill(pid, SIGKILL);
    });
    const auto ec = in_send ? link.send_for(FrameKind::task, 1, big, kKillAfter + kBound)
                            : link.receive_for(f, kKillAfter + kBound);
    killer.join();
    EXPECT_EQ(ec, Errc::peer_gone) << ec.message();
    EXPECT_FALSE(sigpipe_pending());
    EXPECT_EQ(peer.finish(), 128 + SIGKILL);
  }
}

TYPED_TEST(LinkConformance, PeerThatExitsIsPeerGoneBothWays) {
  ForkedPeer peer(this->kTransport, [](Link&) { return 0; });
  Link& link = peer.link();
  taskfarm::Frame f;
  EXPECT_EQ(link.receive_for(f, kPatience), Errc::peer_gone);
  EXPECT_EQ(link.try_receive(f), Errc::peer_gone) << "end of stream is sticky";
  const auto p = pattern(1, 4096);
  EXPECT_EQ(link.send_for(FrameKind::task, 1, p, kPatience), Errc::peer_gone);
  EXPECT_FALSE(sigpipe_pending());
  EXPECT_EQ(peer.finish(), 0);
}

struct MidFrameDeath {
  const char* what;
  std::uint64_t announced;  // payload length in the header
  std::size_t sent;         // payload bytes actually written
  std::size_t header_part;  // header bytes written (24 = all)
  bool valid_frame_first;
};

// A peer writes part of a frame and exits; the master's receive (with a
// deadline: the link waits in poll(); without: a stream link blocks in read()
// itself) must end with peer_gone.
void expect_peer_gone_mid_frame(Transport transport, const MidFrameDeath& c, bool deadline) {
  ForkedPeer peer(transport, [&](Link& link) {
    if (c.valid_frame_first && link.send(FrameKind::result_ok, 1, pattern(7, 300))) return 1;
    auto bytes = header_bytes(taskfarm::make_header(FrameKind::result_ok, 2, c.announced));
    bytes.resize(c.header_part);
    const auto body = pattern(8, c.sent);
    bytes.insert(bytes.end(), body.begin(), body.end());
    return raw_write(link, bytes) ? 0 : 2;  // and exit, mid-frame
  });
  Link& link = peer.link();
  auto receive = [&](taskfarm::Frame& f) {
    return deadline ? link.receive_for(f, kPatience) : link.receive(f);
  };
  taskfarm::Frame f;
  if (c.valid_frame_first) {
    ASSERT_FALSE(receive(f));
    EXPECT_EQ(f.id(), 1u);
    EXPECT_EQ(compare_pattern(f.payload, 7, 300), "");
  }
  EXPECT_EQ(receive(f), Errc::peer_gone);
  EXPECT_EQ(link.try_receive(f), Errc::peer_gone);
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, PeerDyingMidFrameIsPeerGoneNotAHang) {
  const MidFrameDeath cases[] = {
      {"half a header", 1000, 0, 10, false},
      {"header only", 1000, 0, 24, false},
      {"small frame, part of its payload", 1000, 10, 24, false},
      {"large frame, part of its payload", 8u << 20, 100'000, 24, false},
      {"one good frame, then a broken one", 5000, 4999, 24, true},
  };
  for (const bool deadline : {true, false}) {
    for (const MidFrameDeath& c : cases) {
      SCOPED_TRACE(std::string(c.what) + (deadline ? ", receive_for" : ", receive without deadline"));
      expect_peer_gone_mid_frame(this->kTransport, c, deadline);
    }
  }
}

// In a peer: takes a little of a big frame as it starts to arrive and dies. The
// shared-memory transports have no byte stream to read from: their peer waits a
// little without reading (the sender fills the ring or queue and blocks), then
// dies.
int take_a_little_and_die(Link& link) {
  if (link.writable_fd() < 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return 0;
  }
  pollfd p{link.readable_fd(), POLLIN, 0};
  if (::poll(&p, 1, 30'000) != 1) return 1;
  char buf[4096];
  if (::read(link.readable_fd(), buf, sizeof buf) <= 0) return 2;
  return 0;
}

TYPED_TEST(LinkConformance, PeerDyingWhileWeAreBlockedInSendIsPeerGone) {
  // With a deadline (send_for: the link waits in poll()) and without (send: a
  // stream link blocks in write() itself).
  for (const bool deadline : {true, false}) {
    SCOPED_TRACE(deadline ? "send_for" : "send without deadline");
    ForkedPeer peer(this->kTransport, take_a_little_and_die);
    Link& link = peer.link();
    auto send = [&](std::uint64_t id, std::span<const std::byte> p) {
      return deadline ? link.send_for(FrameKind::task, id, p, kPatience)
                      : link.send(FrameKind::task, id, p);
    };
    // Far more than any pipe or socket buffer: send blocks until the peer is gone.
    const auto big = pattern(3, taskfarm::test::kLargestPayload);
    EXPECT_EQ(send(1, big), Errc::peer_gone);
    EXPECT_FALSE(sigpipe_pending()) << "the SIGPIPE the write caused must be consumed";
    EXPECT_EQ(send(2, big), Errc::peer_gone);
    EXPECT_EQ(peer.finish(), 0);
  }
}

TYPED_TEST(LinkConformance, NonBlockingCallsNeverBlockWhateverTheDescriptorMode) {
  // Stream links keep blocking descriptors and ask for non-blocking reads and
  // writes per call, unless the kernel cannot (then O_NONBLOCK, as forced for
  // the *_nonblocking_fds instance). Either way the try_ calls never block.
  ForkedPeer peer(this->kTransport, drain_until_closed);
  Link& link = peer.link();
  if (link.writable_fd() >= 0) {
    const int fl = ::fcntl(link.readable_fd(), F_GETFL);
    ASSERT_GE(fl, 0);
    if (TypeParam::nonblocking_fds) {
      EXPECT_NE(fl & O_NONBLOCK, 0) << "the fallback uses O_NONBLOCK descriptors";
    } else if (this->kTransport == Transport::socket) {
      EXPECT_EQ(fl & O_NONBLOCK, 0) << "a socket link asks per call (MSG_DONTWAIT)";
    }
  }
  taskfarm::Frame f;
  EXPECT_EQ(link.try_receive(f), Errc::would_block);
  // More than any channel holds: try_send takes what fits and keeps the rest.
  const auto big = pattern(4, std::size_t{8} << 20);
  EXPECT_FALSE(link.try_send(FrameKind::task, 1, big));
  EXPECT_TRUE(link.has_pending_output());
  EXPECT_EQ(link.try_receive(f), Errc::would_block);
  EXPECT_FALSE(link.flush_for(kPatience));
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, SendForThatTimesOutKeepsTheRestForLaterFlushes) {
  const std::size_t kBig = std::size_t{8} << 20;  // more than any buffer, ring or queue
  ForkedPeer peer(this->kTransport, [&](Link& link) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the sender times out meanwhile
    taskfarm::Frame f;
    if (link.receive_for(f, kPatience) || f.id() != 1 || compare_pattern(f.payload, 1, kBig) != "")
      return 1;
    if (link.receive_for(f, kPatience) || f.id() != 2 || compare_pattern(f.payload, 2, 100) != "")
      return 2;
    return 0;
  });
  Link& link = peer.link();
  const auto big = pattern(1, kBig);
  EXPECT_EQ(link.send_for(FrameKind::task, 1, big, std::chrono::milliseconds(50)), Errc::timed_out);
  EXPECT_TRUE(link.has_pending_output()) << "the unsent rest belongs to the link now";
  EXPECT_FALSE(link.flush_for(kPatience));
  EXPECT_FALSE(link.send_for(FrameKind::task, 2, pattern(2, 100), kPatience));
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, AThreadThatBlocksSigpipeWritesToADeadPeerWithoutAGuard) {
  ForkedPeer peer(this->kTransport, [](Link&) { return 0; });
  Link& link = peer.link();
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(peer.pid()), &info, WEXITED | WNOWAIT), 0);  // gone, not reaped
  // As the pool's dispatcher does: SIGPIPE blocked in the thread for good,
  // declared harmless, so no mask is changed around each write.
  std::thread t([&] {
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
    taskfarm::ipc::sigpipe_is_harmless_in_this_thread();
    const auto p = pattern(1, 4096);
    if (link.writable_fd() >= 0) {  // a byte stream: the write fails with EPIPE
      EXPECT_EQ(link.send_for(FrameKind::task, 1, p, kPatience), Errc::peer_gone);
      EXPECT_EQ(link.send_for(FrameKind::task, 2, p, kPatience), Errc::peer_gone);
    } else {  // shared memory: room in the ring is taken; death shows on receive
      for (std::uint64_t id : {1, 2}) {
        const auto ec = link.send_for(FrameKind::task, id, p, kPatience);
        EXPECT_TRUE(!ec || ec == Errc::peer_gone) << ec.message();
      }
    }
    EXPECT_FALSE(sigpipe_pending()) << "the SIGPIPE the write left pending must be consumed";
    taskfarm::ipc::sigpipe_is_harmless_in_this_thread(false);
  });
  t.join();
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, GarbageIsAProtocolError) {
  struct Case {
    const char* what;
    std::vector<std::byte> bytes;
  };
  auto bad = [](auto mutate) {
    auto h = taskfarm::make_header(FrameKind::result_ok, 1, 16);
    mutate(h);
    auto b = header_bytes(h);
    const auto body = pattern(1, 16);
    b.insert(b.end(), body.begin(), body.end());
    return b;
  };
  std::vector<Case> cases;
  cases.push_back({"random bytes", pattern(99, 4096)});
  cases.push_back({"text", [] {
                     const std::string s = "GET / HTTP/1.1\r\nHost: example\r\n\r\n";
                     std::vector<std::byte> b(s.size());
                     std::memcpy(b.data(), s.data(), s.size());
                     return b;
                   }()});
  cases.push_back({"bad version", bad([](taskfarm::FrameHeader& h) { h.version = 77; })});
  cases.push_back({"bad kind", bad([](taskfarm::FrameHeader& h) { h.kind = 0; })});
  cases.push_back({"bad kind high", bad([](taskfarm::FrameHeader& h) { h.kind = 4242; })});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ForkedPeer peer(this->kTransport, [&](Link& link) {
      if (!raw_write(link, c.bytes)) return 1;
      return drain_until_closed(link);  // stay alive: the error must not be end of file
    });
    taskfarm::Frame f;
    EXPECT_EQ(peer.link().receive_for(f, kPatience), Errc::protocol_error);
    EXPECT_EQ(peer.link().try_receive(f), Errc::protocol_error) << "a broken link stays broken";
    EXPECT_EQ(peer.finish(), 0);
  }
}

TYPED_TEST(LinkConformance, GarbageAfterAGoodFrame) {
  ForkedPeer peer(this->kTransport, [](Link& link) {
    if (link.send(FrameKind::result_ok, 5, pattern(5, 1000))) return 1;
    if (!raw_write(link, pattern(6, 100))) return 2;
    return drain_until_closed(link);
  });
  taskfarm::Frame f;
  ASSERT_FALSE(peer.link().receive_for(f, kPatience));
  EXPECT_EQ(f.id(), 5u);
  EXPECT_EQ(compare_pattern(f.payload, 5, 1000), "");
  EXPECT_EQ(peer.link().receive_for(f, kPatience), Errc::protocol_error);
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, AbsurdLengthIsTooLargeWithoutAllocatingIt) {
  for (std::uint64_t announced : {~std::uint64_t{0}, std::uint64_t{1} << 62,
                                  taskfarm::kDefaultMaxFrameBytes + 1}) {
    SCOPED_TRACE("announced " + std::to_string(announced));
    ForkedPeer peer(this->kTransport, [&](Link& link) {
      auto bytes = header_bytes(taskfarm::make_header(FrameKind::result_ok, 1, announced));
      const auto body = pattern(2, 1000);
      bytes.insert(bytes.end(), body.begin(), body.end());
      if (!raw_write(link, bytes)) return 1;
      return drain_until_closed(link);
    });
    taskfarm::test::reset_largest_allocation();
    taskfarm::Frame f;
    EXPECT_EQ(peer.link().receive_for(f, kPatience), Errc::too_large);
    EXPECT_LT(taskfarm::test::largest_allocation(), std::size_t{1} << 20);
    EXPECT_EQ(peer.link().try_receive(f), Errc::too_large) << "a broken link stays broken";
    EXPECT_EQ(peer.finish(), 0);
  }
}

TYPED_TEST(LinkConformance, HugeLengthWithinTheLimitAllocatesOnlyWhatArrives) {
  // The limit allows 1 TiB; the peer announces nearly that, sends 3 MiB and dies.
  LinkConfig roomy;
  roomy.max_frame_bytes = std::uint64_t{1} << 40;
  ForkedPeer peer(
      this->kTransport,
      [](Link& link) {
        auto bytes = header_bytes(
            taskfarm::make_header(FrameKind::result_ok, 1, (std::uint64_t{1} << 40) - 1));
        const auto body = pattern(4, 3u << 20);
        bytes.insert(bytes.end(), body.begin(), body.end());
        return raw_write(link, bytes) ? 0 : 1;
      },
      roomy, roomy);
  taskfarm::test::reset_largest_allocation();
  taskfarm::Frame f;
  EXPECT_EQ(peer.link().receive_for(f, kPatience), Errc::peer_gone);
  EXPECT_LE(taskfarm::test::largest_allocation(), std::size_t{16} << 20)
      << "the receive buffer grows with the data that arrived, not with the announced length";
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, PeerFrameOverOurLimitIsTooLarge) {
  // The peer may send 1 MiB frames; we accept at most 64 KiB.
  LinkConfig small;
  small.max_frame_bytes = 64 * 1024;
  ForkedPeer peer(
      this->kTransport,
      [](Link& link) {
        if (link.send(FrameKind::result_ok, 1, pattern(1, 64 * 1024))) return 1;
        // The next one is refused by the master; it stops reading, then closes.
        const auto ec = link.send(FrameKind::result_ok, 2, pattern(2, 1 << 20));
        return !ec || ec == Errc::peer_gone ? 0 : 2;
      },
      small, LinkConfig{});
  taskfarm::Frame f;
  ASSERT_FALSE(peer.link().receive_for(f, kPatience)) << "exactly the limit is fine";
  EXPECT_EQ(compare_pattern(f.payload, 1, 64 * 1024), "");
  EXPECT_EQ(peer.link().receive_for(f, kPatience), Errc::too_large);
  EXPECT_EQ(peer.finish(), 0);
}

TYPED_TEST(LinkConformance, OversizedSendIsRefusedAndTheLinkStaysUsable) {
  LinkConfig small;
  small.max_frame_bytes = 1024;
  ForkedPeer peer(
      this->kTransport,
      [](Link& link) {
        taskfarm::Frame f;
        if (link.receive(f) || f.id() != 2 || compare_pattern(f.payload, 2, 1024) != "") return 1;
        return drain_until_closed(link);
      },
      small, small);
  Link& link = peer.link();
  EXPECT_EQ(link.try_send(FrameKind::task, 1, pattern(1, 1025)), Errc::too_large);
  EXPECT_EQ(link.send(FrameKind::task, 1, pattern(1, 1 << 20)), Errc::too_large);
  EXPECT_FALSE(link.has_pending_output()) << "nothing of a refused frame is queued";
  EXPECT_FALSE(link.send(FrameKind::task, 2, pattern(2, 1024)));
  EXPECT_EQ(peer.finish(), 0);
}

}  // namespace
