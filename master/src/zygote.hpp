#pragma once
// The fork server ("zygote") of one pool.
//
// Forked from the master when the pool is created, before the pool starts any
// thread, it is single-threaded for its whole life. Every worker -- the first
// ones and every replacement -- is forked from it, so no worker is ever forked
// from the multi-threaded master (a lock held by another master thread at that
// moment would stay locked in the child forever). For Start::spawn it forks and
// executes /proc/self/exe, reporting exec failures through a close-on-exec pipe.
//
// It reaps its children and reports each exit (with the wait status) to the
// master. When the master goes away (its control socket reaches end of file),
// the zygote kills every worker it started and exits, so nothing outlives the
// master; the workers also carry PR_SET_PDEATHSIG for the zygote itself.
//
// Control messages travel over a SOCK_SEQPACKET socket pair; descriptors go
// with them as SCM_RIGHTS.

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "taskfarm/common/options.hpp"
#include "taskfarm/ipc/endpoint.hpp"
#include "taskfarm/ipc/fd.hpp"

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

  // Forks the zygote. Throws Error if the system refuses.
  static std::unique_ptr<Zygote> start(Start mode);
  ~Zygote();  // closes the control socket and reaps the zygote

  [[nodiscard]] int fd() const noexcept { return ctl_.get(); }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  // Asks for a worker on `endpoint` (its descriptors are sent along and may be
  // closed by the caller right after). The answer arrives as an Event.
  [[nodiscard]] std::error_code request_spawn(int slot, std::uint64_t token,
                                              const ipc::Endpoint& endpoint);
  // Reads every event available now. Returns peer_gone if the zygote is gone.
  [[nodiscard]] std::error_code read_events(std::vector<Event>& out);

 private:
  Zygote(ipc::UniqueFd ctl, pid_t pid) : ctl_(std::move(ctl)), pid_(pid) {}
  ipc::UniqueFd ctl_;
  pid_t pid_;
};

}  // namespace taskfarm::detail
