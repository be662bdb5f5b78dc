// run_command: fork/exec done carefully (see exec.hpp for the contract).
//
// The order of things, and why:
//  1. Everything the child needs (argv, envp, the resolved program path) is
//     built before fork: between fork and exec the child may only make
//     async-signal-safe calls, since another thread of this process may have
//     held the allocator's lock at the moment of the fork.
//  2. All signals are blocked around fork, so no handler of ours runs in the
//     child before it has reset the dispositions.
//  3. The child: own process group (a timeout kills the group), death signal
//     SIGKILL when its parent dies (a killed worker takes its command along),
//     every disposition back to default (a worker ignores SIGPIPE; an
//     ignored signal would survive exec), empty mask, stdio moved into place,
//     every other descriptor marked close-on-exec, then execve. A failure of
//     chdir or exec goes back to the parent through a CLOEXEC pipe that exec
//     closes on success, so the parent knows at once whether the command ran.
//  4. The parent writes stdin and reads stdout/stderr with one poll() over
//     non-blocking pipes, plus a pidfd that becomes readable when the child
//     exits (a command may exit while a background grandchild keeps the pipes
//     open). Without pidfds (old kernels) it looks with waitpid(WNOHANG) at
//     least every 10 ms.

#include "taskfarm/cli/exec.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <system_error>

extern char** environ;

namespace taskfarm::cli {

namespace {

using Clock = std::chrono::steady_clock;

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~Fd() { reset(); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

void make_pipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("exec: pipe");
  read_end = Fd(p[0]);
  write_end = Fd(p[1]);
}

void set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int pidfd_open(pid_t pid) noexcept {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u));
#else
  (void)pid;
  errno = ENOSYS;
  return -1;
#endif
}

// What the child reports through the error pipe when it cannot start.
struct ChildFailure {
  int stage;  // kStageChdir, kStageExec, kStageSetup
  int err;
};
constexpr int kStageSetup = 0;
constexpr int kStageChdir = 1;
constexpr int kStageExec = 2;

struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* cwd;  // nullptr: stay
  int stdin_fd, stdout_fd, stderr_fd, err_fd;
  pid_t parent;
};

// After fork, before exec: async-signal-safe calls only. Never returns.
[[noreturn]] void child_exec(const ChildPlan& p) {
  auto fail = [&](int stage) {
    const ChildFailure f{stage, errno};
    (void)!::write(p.err_fd, &f, sizeof f);
    ::_exit(127);
  };
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != p.parent) ::_exit(127);  // the parent died before the line above

  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);  // fails harmlessly for the C library's reserved signals
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  // Move the three sources above 2 first, so that no dup2 below overwrites a
  // source that happens to be 0, 1 or 2 already.
  const int src[3] = {::fcntl(p.stdin_fd, F_DUPFD_CLOEXEC, 3), ::fcntl(p.stdout_fd, F_DUPFD_CLOEXEC, 3),
                      ::fcntl(p.stderr_fd, F_DUPFD_CLOEXEC, 3)};
  for (int target = 0; target < 3; ++target) {
    if (src[target] < 0 || ::dup2(src[target], target) < 0) fail(kStageSetup);  // dup2 clears CLOEXEC
  }
  if (p.cwd != nullptr && ::chdir(p.cwd) != 0) fail(kStageChdir);

  // Nothing but 0, 1, 2 may reach the command (the error pipe is CLOEXEC too).
  if (::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) != 0) {
    struct rlimit rl {};
    int top = 65536;
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536)
      top = static_cast<int>(rl.rlim_cur);
    for (int fd = 3; fd < top; ++fd) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  ::execve(p.path, p.argv, p.envp);
  fail(kStageExec);
  ::_exit(127);
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Finds `name` (no slash) in `path_var` like execvp does, but before fork and
// in the command's own PATH. Relative PATH entries are relative to `cwd`.
std::string find_program(const std::string& name, const std::string& path_var, const std::string& cwd) {
  std::size_t start = 0;
  for (;;) {
    const std::size_t colon = path_var.find(':', start);
    std::string dir = path_var.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (dir.empty()) dir = ".";
    if (dir[0] != '/' && !cwd.empty()) dir = cwd + "/" + dir;
    const std::string candidate = dir + "/" + name;
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string::npos) return {};
    start = colon + 1;
  }
}

// Keeps the first `limit` bytes of a stream and counts the rest.
struct Capture {
  std::string text;
  std::uint64_t total = 0;
  std::size_t limit = 0;
  void add(const char* p, std::size_t n) {
    total += n;
    if (text.size() < limit) text.append(p, std::min(n, limit - text.size()));
  }
  std::string finish() {
    if (total > text.size()) text += truncation_marker(total);
    return std::move(text);
  }
};

// Reads what `fd` has now into `cap`. Returns false at end of file or on error.
bool read_available(int fd, Capture& cap) {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      cap.add(buf, static_cast<std::size_t>(n));
      if (static_cast<std::size_t>(n) < sizeof buf) return true;
      continue;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

std::string describe_failure(const ChildFailure& f, const std::string& program, const std::string& cwd) {
  const std::string why = std::strerror(f.err);
  switch (f.stage) {
    case kStageChdir: return "cannot change to the directory \"" + cwd + "\": " + why;
    case kStageExec: return "cannot execute \"" + program + "\": " + why;
    default: return "cannot set up the command's standard streams: " + why;
  }
}

}  // namespace

std::string truncation_marker(std::uint64_t total_bytes) {
  return "\n[taskfarm: output truncated, " + std::to_string(total_bytes) + " bytes in all]\n";
}

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

std::string shell_quote(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    const bool plain = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || std::strchr("@%+=:,./-_", c) != nullptr;
    });
    if (plain) {
      out += w;
      continue;
    }
    out += '\'';
    for (char c : w) {
      if (c == '\'')
        out += "'\\''";
      else
        out += c;
    }
    out += '\'';
  }
  return out;
}

ExecResult run_command(const ExecRequest& rq) {
  ExecResult res;
  const auto t0 = Clock::now();
  auto finish_time = [&] { res.seconds = std::chrono::duration<double>(Clock::now() - t0).count(); };

  // 1. Everything the child needs, built here.
  std::vector<std::string> args;
  if (rq.shell) {
    if (rq.argv.empty()) {
      res.spawn_error = "no shell command given";
      return res;
    }
    args = {"/bin/sh", "-c", rq.argv[0], "sh"};
    args.insert(args.end(), rq.argv.begin() + 1, rq.argv.end());
  } else {
    args = rq.argv;
  }
  if (args.empty() || args[0].empty()) {
    res.spawn_error = "no program given (argv is empty)";
    return res;
  }

  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  for (const auto& [key, value] : rq.env) {
    const std::string prefix = key + "=";
    env.erase(std::remove_if(env.begin(), env.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; }),
              env.end());
    if (value) env.push_back(prefix + *value);
  }
  std::string path_var = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& e : env)
    if (e.rfind("PATH=", 0) == 0) path_var = e.substr(5);

  std::string program = args[0];
  if (program.find('/') == std::string::npos) {
    program = find_program(args[0], path_var, rq.cwd);
    if (program.empty()) {
      res.spawn_error = "cannot execute \"" + args[0] + "\": command not found (PATH=" + path_var + ")";
      return res;
    }
  }

  std::vector<char*> argv_c, envp_c;
  for (auto& a : args) argv_c.push_back(a.data());
  argv_c.push_back(nullptr);
  for (auto& e : env) envp_c.push_back(e.data());
  envp_c.push_back(nullptr);

  Fd in_r, in_w, out_r, out_w, err_r, err_w, fail_r, fail_w;
  if (rq.stdin_data) {
    make_pipe(in_r, in_w);
  } else {
    in_r = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!in_r) throw_errno("exec: /dev/null");
  }
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);
  make_pipe(fail_r, fail_w);

  const ChildPlan plan{program.c_str(), argv_c.data(), envp_c.data(), rq.cwd.empty() ? nullptr : rq.cwd.c_str(),
                       in_r.get(), out_w.get(), err_w.get(), fail_w.get(), ::getpid()};

  // 2. fork with every signal blocked.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::fork();
  if (pid == 0) child_exec(plan);
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) throw std::system_error(fork_errno, std::generic_category(), "exec: fork");

  in_r.reset();
  out_w.reset();
  err_w.reset();
  fail_w.reset();

  // 3. Did it start? The pipe closes on exec (0 bytes) or carries the failure.
  ChildFailure failure{};
  ssize_t got = 0;
  do {
    got = ::read(fail_r.get(), &failure, sizeof failure);
  } while (got < 0 && errno == EINTR);
  fail_r.reset();
  if (got == static_cast<ssize_t>(sizeof failure)) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    res.spawn_error = describe_failure(failure, program, rq.cwd);
    finish_time();
    return res;
  }

  // 4. Feed and drain until it exits (or the timeout).
  Fd pidfd(pidfd_open(pid));
  set_nonblocking(out_r.get());
  set_nonblocking(err_r.get());
  if (in_w) set_nonblocking(in_w.get());
  const std::string empty;
  const std::string& input = rq.stdin_data ? *rq.stdin_data : empty;
  std::size_t written = 0;
  if (in_w && input.empty()) in_w.reset();

  // Writing to a command that exited raises SIGPIPE. Workers ignore it, but a
  // caller of run_command may not: block it in this thread while writing and
  // consume the one we caused, so that only EPIPE is seen.
  sigset_t pipe_set, saved_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  bool pipe_blocked = false, pipe_was_pending = false;
  if (in_w) {
    ::pthread_sigmask(SIG_BLOCK, &pipe_set, &saved_mask);
    sigset_t pending;
    sigpending(&pending);
    pipe_was_pending = sigismember(&pending, SIGPIPE) == 1;
    pipe_blocked = true;
  }
  bool broke_pipe = false;

  Capture out_cap{{}, 0, rq.output_limit}, err_cap{{}, 0, rq.output_limit};
  const bool has_deadline = rq.timeout.count() > 0;
  const auto deadline = t0 + rq.timeout;
  bool reaped = false;
  bool status_known = true;
  int status = 0;
  auto try_reap = [&](bool block) {
    if (reaped) return;
    for (;;) {
      const pid_t r = ::waitpid(pid, &status, block ? 0 : WNOHANG);
      if (r == pid) {
        reaped = true;
        return;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r < 0 && errno == ECHILD) {  // SIGCHLD ignored: the kernel reaped it, the status is gone
        reaped = true;
        status_known = false;
      }
      return;
    }
  };
  auto kill_group = [&] {
    res.timed_out = true;
    ::kill(-pid, SIGKILL);  // the process group: whatever the command started
    ::kill(pid, SIGKILL);   // in case it left the group
  };

  while (!reaped) {
    pollfd fds[4];
    int n = 0, i_out = -1, i_err = -1, i_in = -1, i_pid = -1;
    if (out_r) {
      i_out = n;
      fds[n++] = {out_r.get(), POLLIN, 0};
    }
    if (err_r) {
      i_err = n;
      fds[n++] = {err_r.get(), POLLIN, 0};
    }
    if (in_w) {
      i_in = n;
      fds[n++] = {in_w.get(), POLLOUT, 0};
    }
    if (pidfd) {
      i_pid = n;
      fds[n++] = {pidfd.get(), POLLIN, 0};
    }
    int wait_ms = -1;
    if (has_deadline && !res.timed_out) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      wait_ms = static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
    }
    if (!pidfd) wait_ms = wait_ms < 0 ? 10 : std::min(wait_ms, 10);
    const int ready = n == 0 ? (::usleep(static_cast<useconds_t>((wait_ms < 0 ? 10 : wait_ms) * 1000)), 0)
                             : ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (ready < 0 && errno != EINTR) throw_errno("exec: poll");

    if (ready > 0) {
      if (i_out >= 0 && fds[i_out].revents != 0 && !read_available(out_r.get(), out_cap)) out_r.reset();
      if (i_err >= 0 && fds[i_err].revents != 0 && !read_available(err_r.get(), err_cap)) err_r.reset();
      if (i_in >= 0 && fds[i_in].revents != 0) {
        if ((fds[i_in].revents & (POLLERR | POLLHUP)) != 0) {
          in_w.reset();  // it closed its end: it takes no more input
        } else {
          const ssize_t w = ::write(in_w.get(), input.data() + written, input.size() - written);
          if (w > 0) written += static_cast<std::size_t>(w);
          if (w < 0 && errno == EPIPE) broke_pipe = true;
          if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) in_w.reset();
        }
      }
      if (i_pid >= 0 && fds[i_pid].revents != 0) try_reap(true);
    }
    if (!pidfd) try_reap(false);
    if (has_deadline && !res.timed_out && !reaped && Clock::now() >= deadline) kill_group();
  }

  if (pipe_blocked) {
    if (broke_pipe && !pipe_was_pending) {
      const timespec zero{0, 0};
      while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  }

  // It exited: take what is already in the pipes, but do not wait for a
  // background process that inherited them.
  if (out_r) read_available(out_r.get(), out_cap);
  if (err_r) read_available(err_r.get(), err_cap);
  finish_time();

  res.stdin_bytes = written;
  res.stdout_bytes = out_cap.total;
  res.stderr_bytes = err_cap.total;
  res.stdout_text = out_cap.finish();
  res.stderr_text = err_cap.finish();
  if (!status_known)
    ;  // neither exit_code nor signal: reported as an unknown ending
  else if (WIFEXITED(status))
    res.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    res.signal = WTERMSIG(status);
  return res;
}

}  // namespace taskfarm::cli
