#include "taskfarm/worker/fork_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "taskfarm/ipc/endpoint.hpp"
#include "taskfarm/ipc/fd.hpp"
#include "taskfarm/ipc/link.hpp"
#include "taskfarm/worker/worker.hpp"

namespace taskfarm::worker {

namespace {

std::atomic<bool> g_init_called{false};

int open_pidfd(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }

void reset_signals_for_worker() noexcept {
  // Dispositions a worker should not inherit from the user's master: default
  // termination on the usual signals, and EPIPE instead of SIGPIPE on writes.
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM, SIGTSTP})
    ::signal(sig, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

struct Child {
  pid_t pid;
  ipc::Endpoint endpoint;  // its named objects are released when it is reaped
};

// Body of a freshly forked worker. Never returns.
[[noreturn]] void become_worker(Start mode, pid_t server, ipc::Endpoint ep, int err_pipe) {
  ::setpgid(0, 0);  // own process group: terminal signals do not reach it, and a
                    // timeout can kill the worker together with its children
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != server) ::_exit(kExitAttachFailed);  // the server died meanwhile
  reset_signals_for_worker();
  if (mode == Start::fork) {
    const int code = run(ep, WorkerConfig::load(ep));
    std::fflush(nullptr);
    ::_exit(code);
  }
  // spawn: make the link descriptors survive exec, hand over the endpoint.
  for (int fd : ep.fds) ipc::set_cloexec(fd, false);
  const std::string text = ep.to_string();
  ::setenv(kWorkerEnv, text.c_str(), 1);
  char* argv[] = {program_invocation_name, nullptr};
  ::execv("/proc/self/exe", argv);
  const int e = errno;
  (void)!::write(err_pipe, &e, sizeof e);
  ::_exit(127);
}

void reply(int ctl, ForkMsg type, const ForkMsgHeader& req, int pid, int status,
           std::string_view text = {}, const int* fds = nullptr, int nfds = 0) {
  ForkMsgHeader out{type, req.slot, req.token, pid, status, 0, 0};
  (void)send_fork_msg(ctl, out, text, fds, nfds);
}

}  // namespace

bool init_was_called() noexcept { return g_init_called.load(std::memory_order_relaxed); }
void note_init_called() noexcept { g_init_called.store(true, std::memory_order_relaxed); }

int send_fork_msg(int sock, const ForkMsgHeader& m, std::string_view text, const int* fds,
                  int nfds) noexcept {
  char buf[kMaxForkMsgBytes];
  if (sizeof m + text.size() > sizeof buf || nfds > kMaxForkMsgFds) return EMSGSIZE;
  ForkMsgHeader hdr = m;
  hdr.text_len = static_cast<std::uint32_t>(text.size());
  std::memcpy(buf, &hdr, sizeof hdr);
  if (!text.empty()) std::memcpy(buf + sizeof hdr, text.data(), text.size());  // data() may be null
  iovec iov{buf, sizeof hdr + text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxForkMsgFds)];
  if (nfds > 0) {
    msg.msg_control = cbuf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<std::size_t>(nfds));
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<std::size_t>(nfds));
    std::memcpy(CMSG_DATA(c), fds, sizeof(int) * static_cast<std::size_t>(nfds));
  }
  for (;;) {
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

int receive_fork_msg(int sock, ForkMsgHeader& m, std::string& text, std::vector<int>& fds,
                     bool block) {
  char buf[kMaxForkMsgBytes];
  iovec iov{buf, sizeof buf};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxForkMsgFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  for (;;) {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | (block ? 0 : MSG_DONTWAIT));
    if (n >= 0 || errno != EINTR) break;
  }
  if (n < 0) return errno;
  if (n == 0) return EPIPE;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        fds.push_back(fd);
      }
    }
  }
  if (static_cast<std::size_t>(n) < sizeof m) return EPROTO;
  std::memcpy(&m, buf, sizeof m);
  if (sizeof m + m.text_len != static_cast<std::size_t>(n)) return EPROTO;
  text.assign(buf + sizeof m, m.text_len);
  return 0;
}

void serve_fork_server(int ctl, Start mode, int master_pidfd) noexcept {
  ::setpgid(0, 0);
  for (int sig : {SIGINT, SIGQUIT, SIGTSTP, SIGHUP}) ::signal(sig, SIG_IGN);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGCHLD, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  const pid_t self = ::getpid();
  // Children are reaped through a signalfd for SIGCHLD: it works for every
  // child on every kernel (pidfds are only handed to the master, for killing).
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &chld, nullptr);
  const int sfd = ::signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

  {
    const ForkMsgHeader hello{ForkMsg::hello, -1, 0, self, 0, 0, 0};
    if (send_fork_msg(ctl, hello, {}, nullptr, 0) != 0) ::_exit(0);  // nobody to serve
  }

  std::vector<Child> children;
  ForkMsgHeader m{};
  std::string text;
  std::vector<int> fds;

  for (;;) {
    pollfd pfds[3] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}, {master_pidfd, POLLIN, 0}};
    // Without a signalfd (never seen, but cheap to survive) poll for exits.
    if (::poll(pfds, 3, sfd >= 0 ? -1 : 50) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfds[2].revents) break;  // the master exited
    // Exits first, so a slot's death is reported before a respawn request is read.
    if (sfd >= 0 && pfds[1].revents) {
      signalfd_siginfo info;
      while (::read(sfd, &info, sizeof info) == sizeof info) {
      }
    }
    for (;;) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      bool ours = false;
      for (auto& c : children)
        if (c.pid == pid) {
          // Dead before it attached (killed, or the master died first), it left
          // names only it would have removed.
          ipc::release_endpoint_names(c.endpoint);
          c.pid = -1;
          ours = true;
        }
      if (!ours) continue;  // a copy of this server
      const ForkMsgHeader out{ForkMsg::exited, -1, 0, pid, status, 0, 0};
      (void)send_fork_msg(ctl, out, {}, nullptr, 0);
    }
    std::erase_if(children, [](const Child& c) { return c.pid < 0; });

    if (!(pfds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    fds.clear();
    const int r = receive_fork_msg(ctl, m, text, fds, false);
    if (r == EAGAIN) continue;
    if (r != 0) {
      for (int fd : fds) ::close(fd);
      if (r == EPROTO) continue;
      break;  // the master is gone or closed the pool
    }
    if (m.type == ForkMsg::copy) {
      if (fds.size() != 1) {
        for (int fd : fds) ::close(fd);
        reply(ctl, ForkMsg::failed, m, 0, EINVAL, "a copy request carries one socket");
        continue;
      }
      const Start copy_mode = m.status == static_cast<int>(Start::spawn) ? Start::spawn : Start::fork;
      const pid_t pid = ::fork();
      if (pid == 0) {
        // The copy serves its own socket; this server's descriptors are not its own.
        ipc::close_internal_fds_except({});
        ::close(ctl);
        if (sfd >= 0) ::close(sfd);
        serve_fork_server(fds[0], copy_mode, master_pidfd);
      }
      const int e = errno;
      ::close(fds[0]);
      if (pid < 0)
        reply(ctl, ForkMsg::failed, m, 0, e, std::string("fork failed: ") + std::strerror(e));
      continue;
    }
    if (m.type != ForkMsg::spawn) {
      for (int fd : fds) ::close(fd);
      continue;
    }
    std::string error;
    auto ep = ipc::Endpoint::parse(text, &error);
    if (!ep || ep->fds.size() != fds.size()) {
      if (error.empty()) error = "descriptor count mismatch in spawn request";
      reply(ctl, ForkMsg::failed, m, 0, EINVAL, error);
      for (int fd : fds) ::close(fd);
      continue;
    }
    ep->fds = fds;  // the numbers they got in this process
    int err_pipe[2] = {-1, -1};
    if (mode == Start::spawn && ::pipe2(err_pipe, O_CLOEXEC) != 0) err_pipe[0] = -1;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ipc::close_internal_fds_except({});
      ::close(ctl);
      if (sfd >= 0) ::close(sfd);
      if (master_pidfd >= 0) ::close(master_pidfd);
      if (err_pipe[0] >= 0) ::close(err_pipe[0]);
      become_worker(mode, self, std::move(*ep), err_pipe[1]);
    }
    const int fork_errno = errno;
    for (int fd : fds) ::close(fd);
    if (err_pipe[1] >= 0) ::close(err_pipe[1]);
    if (pid < 0) {
      reply(ctl, ForkMsg::failed, m, 0, fork_errno, std::string("fork failed: ") + std::strerror(fork_errno));
      if (err_pipe[0] >= 0) ::close(err_pipe[0]);
      continue;
    }
    if (err_pipe[0] >= 0) {
      int e = 0;
      ssize_t n;
      while ((n = ::read(err_pipe[0], &e, sizeof e)) < 0 && errno == EINTR) {
      }
      ::close(err_pipe[0]);
      if (n == sizeof e) {  // exec failed; the child exits with 127
        int status;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        reply(ctl, ForkMsg::failed, m, 0, e,
              std::string("cannot execute /proc/self/exe for a spawned worker: ") + std::strerror(e));
        continue;
      }
    }
    const int pidfd = open_pidfd(pid);  // for the master; -1 on kernels without pidfds
    children.push_back({pid, std::move(*ep)});
    reply(ctl, ForkMsg::spawned, m, pid, 0, {}, &pidfd, pidfd >= 0 ? 1 : 0);
    if (pidfd >= 0) ::close(pidfd);
  }

  // The master is gone (or done): nothing may outlive it.
  for (const auto& c : children) ::kill(c.pid, SIGKILL);
  for (const auto& c : children) {
    int status;
    while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
    }
    ipc::release_endpoint_names(c.endpoint);
  }
  ::_exit(0);
}

void run_root_fork_server(std::string_view spec) noexcept {
  // "fd=<n>;master=<pid>", written by the master (zygote.cpp).
  int fd = -1;
  long master = -1;
  std::sscanf(std::string(spec).c_str(), "fd=%d;master=%ld", &fd, &master);
  if (fd < 0 || master <= 0 || ::getppid() != static_cast<pid_t>(master)) ::_exit(kExitAttachFailed);
  ::prctl(PR_SET_NAME, "tf-fork-root");
  ipc::set_cloexec(fd, true);
  const int master_pidfd = open_pidfd(static_cast<pid_t>(master));
  // The master may have died between the check above and pidfd_open (then the
  // pidfd, if any, is of an unrelated process): check again.
  if (::getppid() != static_cast<pid_t>(master)) ::_exit(0);
  std::fflush(nullptr);
  serve_fork_server(fd, Start::fork, master_pidfd);
}

}  // namespace taskfarm::worker
