#include "zygote.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

#include "pidfd.hpp"
#include "taskfarm/common/errors.hpp"
#include "taskfarm/ipc/errc.hpp"
#include "taskfarm/worker/fork_server.hpp"

extern char** environ;

namespace taskfarm::detail {

namespace {

using worker::ForkMsg;
using worker::ForkMsgHeader;

// How long a starting server may take to say hello (an executed root loads the
// whole program first, slowly under sanitizers).
constexpr auto kHelloPatience = std::chrono::seconds(60);

struct SocketPair {
  ipc::UniqueFd ours, theirs;
};

SocketPair control_socket() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw Error(std::string("cannot create a fork server's control socket: ") + std::strerror(errno));
  return {ipc::UniqueFd(sv[0]), ipc::UniqueFd(sv[1])};
}

// The clean root server of this process (one for all pools; leaked on purpose,
// so that no exit-time destructor order matters). It exits when this process does.
struct CleanRoot {
  std::mutex mu;
  ipc::UniqueFd ctl;  // guarded by mu
  std::atomic<pid_t> pid{0};
};
CleanRoot& clean_root() {
  static auto* r = new CleanRoot;
  return *r;
}

void reap_root_locked(CleanRoot& r) {
  r.ctl.reset();
  if (const pid_t pid = r.pid.exchange(0); pid > 0) {
    ::kill(pid, SIGKILL);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

// Executes /proc/self/exe as the root server. posix_spawn (vfork + exec) takes no
// lock in the child, so it is safe from a process with threads.
void start_root_locked(CleanRoot& r) {
  auto sock = control_socket();
  const int target = sock.theirs.get() == 3 ? 4 : 3;
  const std::string spec = std::string(worker::kForkServerEnv) + "=fd=" + std::to_string(target) +
                           ";master=" + std::to_string(::getpid());
  std::vector<char*> env;
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, worker::kForkServerEnv, std::strlen(worker::kForkServerEnv)) != 0) env.push_back(*e);
  env.push_back(const_cast<char*>(spec.c_str()));
  env.push_back(nullptr);

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&fa, sock.theirs.get(), target);  // dup2 clears close-on-exec
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  char* argv[] = {program_invocation_name, nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, env.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0)
    throw Error(std::string("cannot start a clean fork server (/proc/self/exe): ") + std::strerror(rc));
  r.ctl = std::move(sock.ours);
  r.pid.store(pid);
}

// Reads and drops what the root says (its hello; exits of copies are not sent).
// Returns false when the root is gone; `failure` gets a failed copy's message.
bool drain_root_locked(CleanRoot& r, std::string* failure) {
  for (;;) {
    ForkMsgHeader m{};
    std::string text;
    std::vector<int> fds;
    const int e = worker::receive_fork_msg(r.ctl.get(), m, text, fds, false);
    for (int fd : fds) ::close(fd);
    if (e == EAGAIN) return true;
    if (e == EPROTO) continue;
    if (e != 0) return false;
    if (m.type == ForkMsg::failed && failure) *failure = text;
  }
}

}  // namespace

unsigned threads_in_this_process() noexcept {
  std::ifstream st("/proc/self/stat");
  std::string line;
  if (!std::getline(st, line)) return 0;
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  // Fields after "pid (comm)": state(3) ppid pgrp session tty_nr tpgid flags
  // minflt cminflt majflt cmajflt utime stime cutime cstime priority nice num_threads(20).
  const char* p = line.c_str() + close + 1;
  for (int field = 3; field < 20 && *p; ++field) {
    while (*p == ' ') ++p;
    while (*p && *p != ' ') ++p;
  }
  return static_cast<unsigned>(std::strtoul(p, nullptr, 10));
}

pid_t clean_root_pid() noexcept { return clean_root().pid.load(); }

std::unique_ptr<Zygote> Zygote::fork_here(Start mode) {
  auto sock = control_socket();
  // Output the program buffered so far belongs to the master: flush it now, or
  // every worker would write it again when it flushes its own stdio at exit.
  std::fflush(nullptr);
  const pid_t master = ::getpid();
  // This process has one thread: nothing between fork and serving can meet a
  // lock that another thread holds.
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("cannot fork the pool's fork server: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the master even if stuck
    if (::getppid() != master) ::_exit(0);
    const int keep = sock.theirs.get();
    ipc::close_internal_fds_except({&keep, 1});  // other pools' links and sockets
    worker::serve_fork_server(keep, mode, pidfd_open(master));
  }
  return std::unique_ptr<Zygote>(new Zygote(std::move(sock.ours), pid, true, ForkImage::pool_creation, 0));
}

std::unique_ptr<Zygote> Zygote::from_clean_root(Start mode) {
  if (!worker::init_was_called())
    throw ConfigError(
        "cannot start the pool's fork server safely: this process has " +
        std::to_string(threads_in_this_process()) +
        " threads, and a process forked from it could inherit a lock another thread holds "
        "(malloc's, stdio's, a logger's) and wait for it forever. Call taskfarm::init(argc, argv) "
        "first in main() (a clean fork server is then started from the program itself), or create "
        "the pool before the program starts threads");
  CleanRoot& r = clean_root();
  std::lock_guard lock(r.mu);
  for (int attempt = 0;; ++attempt) {
    if (!r.ctl) start_root_locked(r);
    std::string failure;
    if (!drain_root_locked(r, &failure)) {  // died since the last pool
      reap_root_locked(r);
      if (attempt >= 2) throw Error("the clean fork server keeps dying as it starts");
      continue;
    }
    auto sock = control_socket();
    const ForkMsgHeader m{ForkMsg::copy, -1, 0, 0, static_cast<std::int32_t>(mode), 0, 0};
    const int their = sock.theirs.get();
    if (worker::send_fork_msg(r.ctl.get(), m, {}, &their, 1) != 0) {
      reap_root_locked(r);
      if (attempt >= 2) throw Error("the clean fork server keeps dying as it starts");
      continue;
    }
    sock.theirs.reset();
    auto z = std::unique_ptr<Zygote>(new Zygote(std::move(sock.ours), 0, false, ForkImage::program_start, 0));
    // Wait for the copy's hello, or for the root to say it failed or die.
    const auto deadline = std::chrono::steady_clock::now() + kHelloPatience;
    bool root_gone = false;
    while (!z->ready()) {
      pollfd p[2] = {{z->fd(), POLLIN, 0}, {r.ctl.get(), POLLIN, 0}};
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        throw Error("the clean fork server did not answer within " + std::to_string(kHelloPatience.count()) + " s");
      if (::poll(p, 2, static_cast<int>(left.count())) < 0 && errno != EINTR)
        throw Error(std::string("poll failed: ") + std::strerror(errno));
      if (p[1].revents) {
        if (!drain_root_locked(r, &failure)) root_gone = true;
        if (!failure.empty()) throw Error("the clean fork server cannot make a pool's server: " + failure);
      }
      if (p[0].revents) {
        std::vector<Event> ignored;
        if (z->read_events(ignored) && !z->ready()) {
          root_gone = true;  // the copy died before its hello (with the root, perhaps)
          break;
        }
      }
      if (root_gone && !z->ready()) break;
    }
    if (z->ready()) return z;
    reap_root_locked(r);
    if (attempt >= 2) throw Error("the clean fork server keeps dying as it starts");
  }
}

std::unique_ptr<Zygote> Zygote::copy_of(Zygote& parent, Start mode, std::uint64_t token,
                                        std::error_code& ec) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    ec = ipc::from_errno(errno);
    return nullptr;
  }
  ipc::UniqueFd ours(sv[0]);
  ipc::UniqueFd theirs(sv[1]);
  const ForkMsgHeader m{ForkMsg::copy, -1, token, 0, static_cast<std::int32_t>(mode), 0, 0};
  if (int e = worker::send_fork_msg(parent.fd(), m, {}, &sv[1], 1)) {
    ec = ipc::from_errno(e);
    return nullptr;
  }
  ec.clear();
  return std::unique_ptr<Zygote>(new Zygote(std::move(ours), 0, false, parent.image(), token));
}

Zygote::~Zygote() {
  ctl_.reset();  // end of file: the server kills what is left and exits
  if (pid_ <= 0) return;
  if (child_) {
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    return;
  }
  // A copy is not our child: wait for it through a pidfd, so that no process of
  // the pool is left when the pool is gone.
  const int pfd = pidfd_open(pid_);
  if (pfd < 0) return;
  pollfd p{pfd, POLLIN, 0};
  if (::poll(&p, 1, 5000) == 0) pidfd_send_signal(pfd, SIGKILL);
  ::close(pfd);
}

void Zygote::kill() noexcept {
  if (pid_ > 0) ::kill(pid_, SIGKILL);
}

std::error_code Zygote::request_spawn(int slot, std::uint64_t token, const ipc::Endpoint& ep) {
  const ForkMsgHeader m{ForkMsg::spawn, slot, token, 0, 0, 0, 0};
  const std::string text = ep.to_string();
  if (int e = worker::send_fork_msg(ctl_.get(), m, text, ep.fds.data(), static_cast<int>(ep.fds.size())))
    return ipc::from_errno(e);
  return {};
}

std::error_code Zygote::read_events(std::vector<Event>& out) {
  for (;;) {
    ForkMsgHeader m{};
    std::string text;
    std::vector<int> fds;
    const int r = worker::receive_fork_msg(ctl_.get(), m, text, fds, false);
    if (r == EAGAIN) return {};
    if (r != 0) {
      for (int fd : fds) ::close(fd);
      if (r == EPROTO) continue;
      return ipc::Errc::peer_gone;
    }
    Event e;
    e.slot = m.slot;
    e.token = m.token;
    e.pid = m.pid;
    e.status = m.status;
    e.error = text;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (i == 0 && m.type == ForkMsg::spawned)
        e.pidfd = ipc::UniqueFd(fds[i]);
      else
        ::close(fds[i]);
    }
    switch (m.type) {
      case ForkMsg::hello:
        if (pid_ <= 0) pid_ = m.pid;
        continue;
      case ForkMsg::spawned: e.kind = Event::spawned; break;
      case ForkMsg::failed: e.kind = Event::failed; break;
      case ForkMsg::exited: e.kind = Event::exited; break;
      default: continue;
    }
    out.push_back(std::move(e));
  }
}

}  // namespace taskfarm::detail
