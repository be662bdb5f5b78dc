#pragma once
// The fork server: a single-threaded process that forks workers for one pool.
//
// Why it exists: a worker forked straight from a master that has threads could
// inherit a lock (malloc's, stdio's, a logger's, a sanitizer's) held by another
// thread at the moment of fork(), and would wait for it forever. A fork server
// is only ever created by a process that has a single thread, so it holds no
// such lock, and every worker is forked from it:
//
//   - forked from the master itself, when the master has one thread at the
//     moment the pool is created: workers see the master's memory as it was then;
//   - executed afresh (/proc/self/exe, entered through taskfarm::init) when the
//     master already has threads: workers see the program as it is after static
//     initialisation (ForkImage::program_start). One such "root" server per
//     master process is started on first need and then asked for a copy of
//     itself for every pool;
//   - forked from another fork server (a copy): the pool's standby, which takes
//     over when its active server dies, keeps the same memory image.
//
// The server dies with its master: it watches a pidfd of the master and its
// control socket (end of file = the master closed the pool or died); when it
// goes, it kills the workers it started, and they also carry PR_SET_PDEATHSIG
// for the server itself.
//
// Protocol: SOCK_SEQPACKET messages (Msg + optional text), descriptors as
// SCM_RIGHTS. Every server's first message on its control socket is `hello`
// with its pid.

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/common/options.hpp"

namespace taskfarm::worker {

enum class ForkMsg : std::uint32_t {
  spawn = 1,    // master -> server: fork a worker on the endpoint (text), link fds attached
  spawned = 2,  // server -> master: pid; a pidfd attached when the kernel has them
  failed = 3,   // server -> master: status = errno, text = what failed
  exited = 4,   // server -> master: a child was reaped; status = wait status
  copy = 5,     // master -> server: fork a copy of yourself serving the attached socket;
                //                   status = the copy's Start mode
  hello = 6,    // server -> master: first message of every server; pid = its pid
};

struct ForkMsgHeader {
  ForkMsg type;
  std::int32_t slot;
  std::uint64_t token;
  std::int32_t pid;
  std::int32_t status;
  std::uint32_t text_len;  // text follows the header
  std::uint32_t pad;
};
static_assert(sizeof(ForkMsgHeader) == 32);

inline constexpr std::size_t kMaxForkMsgBytes = 8192;
inline constexpr int kMaxForkMsgFds = 8;

// Sends one message with optional descriptors. Returns 0 or an errno value.
int send_fork_msg(int sock, const ForkMsgHeader& m, std::string_view text, const int* fds,
                  int nfds) noexcept;
// Receives one message; 0 ok, EAGAIN none (non-blocking), EPIPE end of file, EPROTO
// malformed, errno otherwise. Received descriptors are close-on-exec and are
// appended to `fds` (also on EPROTO, so that the caller can close them).
int receive_fork_msg(int sock, ForkMsgHeader& m, std::string& text, std::vector<int>& fds,
                     bool block);

// Environment variable that marks a process executed to be a root fork server
// ("fd=<control socket>;master=<pid>"); read and removed by taskfarm::init().
inline constexpr const char* kForkServerEnv = "TASKFARM_FORK_SERVER";

// The fork server's loop on control socket `ctl`, forking workers in `mode`.
// `master_pidfd` (may be -1) becomes readable when the master exits. Never returns.
[[noreturn]] void serve_fork_server(int ctl, Start mode, int master_pidfd) noexcept;

// Entered from taskfarm::init() in a process started with kForkServerEnv.
[[noreturn]] void run_root_fork_server(std::string_view spec) noexcept;

// Whether taskfarm::init() has run in this (master) process.
[[nodiscard]] bool init_was_called() noexcept;
void note_init_called() noexcept;

}  // namespace taskfarm::worker
