#pragma once
// The master's handle on one fork server ("zygote") process; the server itself
// is worker/fork_server.hpp, which says why it exists and how it is made.
//
// A pool holds two: the active server, which forks its workers, and a standby
// copy of it, which takes over (and gets a standby of its own) when the active
// one dies. Where a pool's first server comes from:
//
//   - fork_here():       the master has a single thread right now, so it forks
//                        the server itself (workers see memory as of this moment);
//   - from_clean_root(): the master has threads; the process-wide root server,
//                        executed from /proc/self/exe on first need (through
//                        taskfarm::init), forks a copy of itself for the pool
//                        (workers see the program as after static initialisation).
//
// Control messages travel over a SOCK_SEQPACKET socket pair; descriptors go
// with them as SCM_RIGHTS.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "taskfarm/common/options.hpp"
#include "taskfarm/ipc/endpoint.hpp"
#include "taskfarm/ipc/fd.hpp"
#include "taskfarm/master/stats.hpp"

namespace taskfarm::detail {

class Zygote {
 public:
  struct Event {
    enum Kind { spawned, failed, exited } kind;
    int slot = -1;
    std::uint64_t token = 0;   // echoes the request
    pid_t pid = 0;
    int status = 0;            // exited: wait status; failed: errno
    ipc::UniqueFd pidfd;       // spawned: a pidfd for the worker
    std::string error;         // failed: what went wrong
  };

  // Forks a server from this process, which must have a single thread (see
  // threads_in_this_process). Throws Error if the system refuses.
  static std::unique_ptr<Zygote> fork_here(Start mode);
  // Asks the process-wide clean root server (started on first need) for a copy
  // serving a new pool, and waits until the copy says hello. Throws ConfigError
  // when taskfarm::init() was never called (the root could not be started
  // safely), Error when the system refuses.
  static std::unique_ptr<Zygote> from_clean_root(Start mode);
  // Asks `parent` for a copy of itself (the same memory image): a standby. The
  // answer is the copy's hello on its own socket (ready() turns true), or a
  // failed event with `token` on the parent's socket. Null, with `ec` set, when
  // the request cannot be sent.
  static std::unique_ptr<Zygote> copy_of(Zygote& parent, Start mode, std::uint64_t token,
                                         std::error_code& ec);
  ~Zygote();  // closes the control socket and waits (briefly) for the server to exit

  [[nodiscard]] int fd() const noexcept { return ctl_.get(); }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }  // 0 until its hello
  [[nodiscard]] bool ready() const noexcept { return pid_ > 0; }
  [[nodiscard]] ForkImage image() const noexcept { return image_; }
  [[nodiscard]] std::uint64_t token() const noexcept { return token_; }
  [[nodiscard]] std::chrono::steady_clock::time_point born() const noexcept { return born_; }

  // Asks for a worker on `endpoint` (its descriptors are sent along and may be
  // closed by the caller right after). The answer arrives as an Event.
  [[nodiscard]] std::error_code request_spawn(int slot, std::uint64_t token,
                                              const ipc::Endpoint& endpoint);
  // Reads every event available now (a hello only makes ready() true). Returns
  // peer_gone if the server is gone.
  [[nodiscard]] std::error_code read_events(std::vector<Event>& out);
  // SIGKILLs the server if its pid is known (a server that stopped answering).
  void kill() noexcept;

 private:
  Zygote(ipc::UniqueFd ctl, pid_t pid, bool child, ForkImage image, std::uint64_t token)
      : ctl_(std::move(ctl)), pid_(pid), child_(child), image_(image), token_(token),
        born_(std::chrono::steady_clock::now()) {}
  ipc::UniqueFd ctl_;
  pid_t pid_;
  bool child_;  // a child of this process (reaped here), not a copy made by a server
  ForkImage image_;
  std::uint64_t token_;
  std::chrono::steady_clock::time_point born_;
};

// The number of threads of this process (from /proc/self/stat); 0 if unknown.
[[nodiscard]] unsigned threads_in_this_process() noexcept;
// The pid of the process-wide clean root server, 0 when none runs.
[[nodiscard]] pid_t clean_root_pid() noexcept;

}  // namespace taskfarm::detail
