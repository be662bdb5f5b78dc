#include "zygote.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include "pidfd.hpp"
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "taskfarm/common/errors.hpp"
#include "taskfarm/ipc/errc.hpp"
#include "taskfarm/ipc/link.hpp"
#include "taskfarm/worker/worker.hpp"

namespace taskfarm::detail {

namespace {

enum MsgType : std::uint32_t { kSpawn = 1, kSpawned = 2, kFailed = 3, kExited = 4 };

struct Msg {
  std::uint32_t type;
  std::int32_t slot;
  std::uint64_t token;
  std::int32_t pid;
  std::int32_t status;
  std::uint32_t text_len;  // text follows the struct
  std::uint32_t pad;
};
static_assert(sizeof(Msg) == 32);

constexpr std::size_t kMaxMsg = 8192;
constexpr int kMaxFds = 8;

// Sends one message with optional descriptors. Returns errno or 0.
int send_msg(int sock, const Msg& m, std::string_view text, const int* fds, int nfds) {
  char buf[kMaxMsg];
  if (sizeof m + text.size() > sizeof buf || nfds > kMaxFds) return EMSGSIZE;
  Msg hdr = m;
  hdr.text_len = static_cast<std::uint32_t>(text.size());
  std::memcpy(buf, &hdr, sizeof hdr);
  if (!text.empty()) std::memcpy(buf + sizeof hdr, text.data(), text.size());  // data() may be null
  iovec iov{buf, sizeof hdr + text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxFds)];
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

// Receives one message; 0 ok, EAGAIN none, EPIPE end of file, errno otherwise.
// Received descriptors are close-on-exec.
int recv_msg(int sock, Msg& m, std::string& text, std::vector<int>& fds, bool block) {
  char buf[kMaxMsg];
  iovec iov{buf, sizeof buf};
  alignas(cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kMaxFds)];
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
  fds.clear();
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

void reset_signals_for_worker() {
  // Dispositions a worker should not inherit from the user's master: default
  // termination on the usual signals, and EPIPE instead of SIGPIPE on writes.
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM})
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
[[noreturn]] void become_worker(Start mode, pid_t zygote, ipc::Endpoint ep, int err_pipe) {
  ::setpgid(0, 0);  // own process group: terminal signals do not reach it, and a
                    // timeout can kill the worker together with its children
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != zygote) ::_exit(worker::kExitAttachFailed);  // zygote died meanwhile
  reset_signals_for_worker();
  if (mode == Start::fork) {
    const int code = worker::run(ep, worker::WorkerConfig::load(ep));
    std::fflush(nullptr);
    ::_exit(code);
  }
  // spawn: make the link descriptors survive exec, hand over the endpoint.
  for (int fd : ep.fds) ipc::set_cloexec(fd, false);
  const std::string text = ep.to_string();
  ::setenv(worker::kWorkerEnv, text.c_str(), 1);
  char* argv[] = {program_invocation_name, nullptr};
  ::execv("/proc/self/exe", argv);
  const int e = errno;
  (void)!::write(err_pipe, &e, sizeof e);
  ::_exit(127);
}

[[noreturn]] void zygote_main(int ctl, Start mode) {
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

  std::vector<Child> children;
  Msg m{};
  std::string text;
  std::vector<int> fds;

  for (;;) {
    pollfd pfds[2] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}};
    // Without a signalfd (never seen, but cheap to survive) poll for exits.
    if (::poll(pfds, sfd >= 0 ? 2 : 1, sfd >= 0 ? -1 : 50) < 0) {
      if (errno == EINTR) continue;
      break;
    }
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
      for (auto& c : children)
        if (c.pid == pid) {
          // Dead before it attached (killed, or the master died first), it left
          // names only it would have removed.
          ipc::release_endpoint_names(c.endpoint);
          c.pid = -1;
        }
      Msg out{kExited, -1, 0, pid, status, 0, 0};
      send_msg(ctl, out, {}, nullptr, 0);
    }
    std::erase_if(children, [](const Child& c) { return c.pid < 0; });

    if (!(pfds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    const int r = recv_msg(ctl, m, text, fds, false);
    if (r == EAGAIN) continue;
    if (r != 0) break;  // the master is gone or closed the pool
    if (m.type != kSpawn) {
      for (int fd : fds) ::close(fd);
      continue;
    }
    std::string error;
    auto ep = ipc::Endpoint::parse(text, &error);
    Msg reply{kFailed, m.slot, m.token, 0, EINVAL, 0, 0};
    if (!ep || ep->fds.size() != fds.size()) {
      if (error.empty()) error = "descriptor count mismatch in spawn request";
      send_msg(ctl, reply, error, nullptr, 0);
      for (int fd : fds) ::close(fd);
      continue;
    }
    ep->fds = fds;  // the numbers they got in this process
    int err_pipe[2] = {-1, -1};
    if (mode == Start::spawn && ::pipe2(err_pipe, O_CLOEXEC) != 0) err_pipe[0] = -1;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ipc::close_internal_fds_except({});  // the control socket (and its record)
      if (sfd >= 0) ::close(sfd);
      if (err_pipe[0] >= 0) ::close(err_pipe[0]);
      become_worker(mode, self, std::move(*ep), err_pipe[1]);
    }
    for (int fd : fds) ::close(fd);
    if (err_pipe[1] >= 0) ::close(err_pipe[1]);
    if (pid < 0) {
      reply.status = errno;
      send_msg(ctl, reply, std::string("fork failed: ") + std::strerror(reply.status), nullptr, 0);
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
        reply.status = e;
        send_msg(ctl, reply,
                 std::string("cannot execute /proc/self/exe for a spawned worker: ") +
                     std::strerror(e),
                 nullptr, 0);
        continue;
      }
    }
    const int pidfd = pidfd_open(pid);  // for the master; -1 on kernels without pidfds
    children.push_back({pid, std::move(*ep)});
    Msg ok{kSpawned, m.slot, m.token, pid, 0, 0, 0};
    send_msg(ctl, ok, {}, &pidfd, pidfd >= 0 ? 1 : 0);
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

}  // namespace

std::unique_ptr<Zygote> Zygote::start(Start mode) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw Error(std::string("cannot create the pool's control socket: ") + std::strerror(errno));
  ipc::UniqueFd master_end(sv[0]);
  ipc::UniqueFd zygote_end(sv[1]);
  // Output the program buffered so far belongs to the master: flush it now, or
  // every worker would write it again when it flushes its own stdio at exit.
  std::fflush(nullptr);
  // Nothing between fork and zygote_main may take a lock another thread could hold.
  const pid_t pid = ::fork();
  if (pid < 0)
    throw Error(std::string("cannot fork the pool's fork server: ") + std::strerror(errno));
  if (pid == 0) {
    const int keep = zygote_end.get();
    ipc::close_internal_fds_except({&keep, 1});  // other pools' links and sockets
    zygote_main(keep, mode);
  }
  ipc::set_nonblocking(master_end.get(), true);
  return std::unique_ptr<Zygote>(new Zygote(std::move(master_end), pid));
}

Zygote::~Zygote() {
  ctl_.reset();  // end of file: the zygote kills what is left and exits
  int status;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
}

std::error_code Zygote::request_spawn(int slot, std::uint64_t token, const ipc::Endpoint& ep) {
  Msg m{kSpawn, slot, token, 0, 0, 0, 0};
  const std::string text = ep.to_string();
  if (int e = send_msg(ctl_.get(), m, text, ep.fds.data(), static_cast<int>(ep.fds.size())))
    return ipc::from_errno(e);
  return {};
}

std::error_code Zygote::read_events(std::vector<Event>& out) {
  Msg m{};
  std::string text;
  std::vector<int> fds;
  for (;;) {
    const int r = recv_msg(ctl_.get(), m, text, fds, false);
    if (r == EAGAIN) return {};
    if (r != 0) {
      for (int fd : fds) ::close(fd);
      return ipc::Errc::peer_gone;
    }
    Event e;
    e.slot = m.slot;
    e.token = m.token;
    e.pid = m.pid;
    e.status = m.status;
    e.error = text;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (i == 0 && m.type == kSpawned)
        e.pidfd = ipc::UniqueFd(fds[i]);
      else
        ::close(fds[i]);
    }
    switch (m.type) {
      case kSpawned: e.kind = Event::spawned; break;
      case kFailed: e.kind = Event::failed; break;
      case kExited: e.kind = Event::exited; break;
      default: continue;
    }
    out.push_back(std::move(e));
  }
}

}  // namespace taskfarm::detail
