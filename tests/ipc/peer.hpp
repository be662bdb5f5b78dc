#pragma once
// A forked peer on the other end of a link, for the conformance suite.
//
// The test process creates a link with create_link() and forks. The child closes
// the master's descriptors (they are close-on-exec only, so fork keeps them),
// attaches the worker endpoint with attach_link() and runs a body that either
// plays by the rules or misbehaves on purpose (dies mid-frame, writes garbage).
// Its return value is the child's exit code. The parent keeps the master end;
// finish() closes it and reaps the child.

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "taskfarm/common/frame.hpp"
#include "taskfarm/common/options.hpp"
#include "taskfarm/ipc/link.hpp"

namespace taskfarm::test {

class ForkedPeer {
 public:
  using Body = std::function<int(ipc::Link& link)>;

  // Throws std::runtime_error if the link or the process cannot be created.
  ForkedPeer(Transport transport, Body body, ipc::LinkConfig master_config = {},
             ipc::LinkConfig worker_config = {});
  ForkedPeer(const ForkedPeer&) = delete;
  ForkedPeer& operator=(const ForkedPeer&) = delete;
  ~ForkedPeer();

  [[nodiscard]] ipc::Link& link() { return *link_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  // Closes the master end, waits for the child: its exit code, or 128 + the
  // signal that killed it. Idempotent.
  int finish();

 private:
  std::unique_ptr<ipc::Link> link_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// Exit code of a child whose body threw, or that could not attach.
inline constexpr int kBodyThrew = 101;
inline constexpr int kAttachFailed = 102;

// Deterministic pseudo-random content, different for every seed.
std::vector<std::byte> pattern(std::uint64_t seed, std::size_t n);
// Empty when `got` is pattern(seed, n); otherwise says where they differ.
std::string compare_pattern(std::span<const std::byte> got, std::uint64_t seed, std::size_t n);

// Writes all of `bytes` to a (possibly non-blocking) descriptor; false on error.
bool write_all(int fd, std::span<const std::byte> bytes);
// Raw bytes of a frame header.
std::vector<std::byte> header_bytes(const FrameHeader& h);

// Sends `n` frames (kind `out_kind`, id i, payload pattern(out_seed + i, size_of(i)))
// while receiving `n` (kind `in_kind`, id i, pattern(in_seed + i, size_of(i))),
// with the non-blocking calls and poll(), the way the dispatcher drives a link.
// Empty on success, else what went wrong.
std::string pump(ipc::Link& link, std::size_t n, FrameKind out_kind, std::uint64_t out_seed,
                 FrameKind in_kind, std::uint64_t in_seed);
std::size_t pump_size(std::size_t i);

// Typed suites over transports: TYPED_TEST_SUITE(Suite, Types<On<Transport::pipe>, ...>,
// TransportName) names each instance after its transport. `NonblockingFds`: the
// pipe transport as it runs on a kernel without RWF_NOWAIT for pipes (O_NONBLOCK
// descriptors and poll(); ipc::detail::stream_links_use_nonblocking_descriptors),
// which the suite must set up and undo around each test.
template <Transport T, bool NonblockingFds = false>
struct On {
  static constexpr Transport transport = T;
  static constexpr bool nonblocking_fds = NonblockingFds;
};
struct TransportName {
  template <class P>
  static std::string GetName(int) {
    return std::string(to_string(P::transport)) + (P::nonblocking_fds ? "_nonblocking_fds" : "");
  }
};

}  // namespace taskfarm::test
