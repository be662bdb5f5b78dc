// run_command: fork/exec done carefully (see exec.hpp for the contract).
//
// Two processes per command: a small guard, forked from the caller, leads a
// new process group; the command is started by the guard (vfork + exec) in
// that group. The guard exists so that whatever ends the caller ends the whole
// group, including what the command started itself (a shell's children), even
// when the caller is killed with SIGKILL: the guard's parent-death signal is
// catchable, and its handler kills the group. The caller, on its own timeout,
// kills the group too.
//
// The order of things, and why:
//  1. Everything the guard and the command need (argv, envp, the resolved
//     program path) is built before fork: between fork and exec only
//     async-signal-safe calls may be made, since another thread of this
//     process may have held the allocator's lock at the moment of the fork.
//  2. All signals are blocked around fork, so no handler of ours runs in the
//     guard before it has reset the dispositions.
//  3. The guard: new process group (setpgid(0, 0)), SIGCHLD back to default,
//     a handler that kills the group for kGuardSignals, parent-death signal
//     kGuardSignal, then a check that the parent is still there (it may have
//     died before prctl). It closes every descriptor but the command's three
//     and the report pipe, vforks the command, closes its copies of the
//     command's pipes (so that the caller sees end of file), waits for the
//     command, writes the wait status into the report pipe, and kills the
//     group (what the command left running in the background, and itself).
//  4. The command, in the vfork child: parent-death signal SIGKILL (a killed
//     guard takes the command along), every disposition back to default (a
//     worker ignores SIGPIPE; an ignored signal would survive exec), empty
//     mask, stdio moved into place, every other descriptor close-on-exec, then
//     execve. A failure of chdir or exec goes into the report pipe (CLOEXEC:
//     exec closes it on success) before _exit(127).
//  5. The caller writes stdin and reads stdout/stderr with one poll() over
//     non-blocking pipes and the report pipe, which carries the command's
//     status the moment it ends (a command may exit while a background
//     grandchild keeps the output pipes open) and reaches end of file if the
//     guard dies without reporting. Then it reaps the guard.

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
#include <string_view>
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

// What goes through the report pipe, from the guard or from the command
// before its exec. One record is written at once (far below PIPE_BUF), so
// records never interleave.
struct Report {
  int kind;   // kReportFailure, kReportStatus
  int value;  // the stage that failed, or the command's wait status
  int err;    // errno of the failure
};
constexpr int kReportFailure = 1;
constexpr int kReportStatus = 2;

constexpr int kStageSetup = 0;
constexpr int kStageChdir = 1;
constexpr int kStageExec = 2;
constexpr int kStageFork = 3;

// The guard's parent-death signal; the same signals sent to the guard by
// anyone else also end its group.
constexpr int kGuardSignal = SIGTERM;
constexpr int kGuardSignals[] = {SIGTERM, SIGINT, SIGHUP};

struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* cwd;  // nullptr: stay
  int stdin_fd, stdout_fd, stderr_fd, report_fd;
  pid_t parent;  // the caller, the guard's parent
};

void write_report(int fd, int kind, int value, int err) noexcept {
  const Report r{kind, value, err};
  while (::write(fd, &r, sizeof r) < 0 && errno == EINTR) {
  }
}

void reset_dispositions() noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, &dfl, nullptr);  // fails harmlessly for the C library's reserved signals
  }
}

// The command, in the guard's vfork child: async-signal-safe calls only, and
// it never returns (the guard's stack frame is shared until exec).
[[noreturn]] void command_exec(const ChildPlan& p, pid_t guard) {
  auto fail = [&](int stage) {
    write_report(p.report_fd, kReportFailure, stage, errno);
    ::_exit(127);
  };
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != guard) ::_exit(127);  // the guard died before the line above

  reset_dispositions();
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

  // Nothing but 0, 1, 2 may reach the command (the report pipe is CLOEXEC too).
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

// Closes every descriptor from 3 up except the four in `keep`.
void close_all_but(int (&keep)[4]) noexcept {
  for (int i = 1; i < 4; ++i)  // insertion sort: no library calls here
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; --j) {
      const int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  unsigned lo = 3;
  bool ok = true;
  for (const int k : keep) {
    if (k < 0 || static_cast<unsigned>(k) < lo) continue;
    if (static_cast<unsigned>(k) > lo) ok = ok && ::syscall(SYS_close_range, lo, static_cast<unsigned>(k) - 1, 0u) == 0;
    lo = static_cast<unsigned>(k) + 1;
  }
  ok = ok && ::syscall(SYS_close_range, lo, ~0u, 0u) == 0;
  if (ok) return;
  struct rlimit rl {};  // no close_range (Linux < 5.9): one by one
  int top = 65536;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536)
    top = static_cast<int>(rl.rlim_cur);
  for (int fd = 3; fd < top; ++fd)
    if (fd != keep[0] && fd != keep[1] && fd != keep[2] && fd != keep[3]) ::close(fd);
}

void guard_kills_its_group(int) { ::kill(0, SIGKILL); }

// The guard, in the caller's fork child: async-signal-safe calls only (the
// caller may have threads). Every signal is blocked on entry. Never returns.
[[noreturn]] void guard_main(const ChildPlan& p) {
  ::setpgid(0, 0);
  // Every other signal stays blocked here, so only SIGCHLD's disposition
  // matters (ignored, it would reap the command before waitpid could); the
  // command resets all of them itself.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGCHLD, &dfl, nullptr);
  struct sigaction killer {};
  killer.sa_handler = guard_kills_its_group;
  sigfillset(&killer.sa_mask);
  for (const int sig : kGuardSignals) ::sigaction(sig, &killer, nullptr);
  ::prctl(PR_SET_PDEATHSIG, kGuardSignal);
  if (::getppid() != p.parent) ::_exit(127);  // the caller died before the line above: nothing started

  int keep[4] = {p.stdin_fd, p.stdout_fd, p.stderr_fd, p.report_fd};
  close_all_but(keep);

  const pid_t guard = ::getpid();
  const pid_t cmd = ::vfork();  // returns once the command has exec'd or exited
  if (cmd == 0) command_exec(p, guard);
  if (cmd < 0) {
    write_report(p.report_fd, kReportFailure, kStageFork, errno);
    ::_exit(127);
  }
  // The caller must see end of file once the command (and what it started)
  // closes its ends.
  ::close(p.stdin_fd);
  ::close(p.stdout_fd);
  ::close(p.stderr_fd);

  sigset_t mask;
  sigfillset(&mask);
  for (const int sig : kGuardSignals) sigdelset(&mask, sig);
  ::sigprocmask(SIG_SETMASK, &mask, nullptr);  // a death signal already pending is taken here

  int status = 0;
  pid_t r;
  while ((r = ::waitpid(cmd, &status, 0)) < 0 && errno == EINTR) {
  }
  if (r == cmd) write_report(p.report_fd, kReportStatus, status, 0);
  ::kill(0, SIGKILL);  // what the command left behind, and the guard itself
  ::_exit(0);
}

bool is_executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Finds `name` (no slash) in `path_var` like execvp does, but before fork and
// in the command's own PATH. Relative PATH entries are relative to `cwd`.
std::string find_program(const std::string& name, const std::string& path_var, const std::string& cwd) {
  // The candidate is assembled by appends into one reserved string: every
  // length is explicit (GCC 12 at -O3 warned, wrongly, on `dir + "/" + name`).
  std::string candidate;
  std::string_view rest = path_var;
  for (;;) {
    const std::size_t colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    if (dir.empty()) dir = ".";
    const bool relative = dir.front() != '/' && !cwd.empty();
    candidate.clear();
    candidate.reserve((relative ? cwd.size() + 1 : 0) + dir.size() + 1 + name.size());
    if (relative) {
      candidate.append(cwd);
      candidate.push_back('/');
    }
    candidate.append(dir);
    candidate.push_back('/');
    candidate.append(name);
    if (is_executable_file(candidate)) return candidate;
    if (colon == std::string_view::npos) return {};
    rest.remove_prefix(colon + 1);
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

std::string describe_failure(const Report& f, const std::string& program, const std::string& cwd) {
  const std::string why = std::strerror(f.err);
  switch (f.value) {
    case kStageFork: return "cannot start \"" + program + "\": fork failed: " + why;
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

  Fd in_r, in_w, out_r, out_w, err_r, err_w, rep_r, rep_w;
  if (rq.stdin_data) {
    make_pipe(in_r, in_w);
  } else {
    in_r = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!in_r) throw_errno("exec: /dev/null");
  }
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);
  make_pipe(rep_r, rep_w);

  const ChildPlan plan{program.c_str(), argv_c.data(), envp_c.data(), rq.cwd.empty() ? nullptr : rq.cwd.c_str(),
                       in_r.get(), out_w.get(), err_w.get(), rep_w.get(), ::getpid()};

  // 2. fork the guard with every signal blocked.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t guard = ::fork();
  if (guard == 0) guard_main(plan);
  const int fork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (guard < 0) throw std::system_error(fork_errno, std::generic_category(), "exec: fork");
  // The group exists at once for a kill of ours: the guard's setpgid may not
  // have run yet (EACCES once it has exec'd cannot happen: it never does).
  ::setpgid(guard, guard);

  in_r.reset();
  out_w.reset();
  err_w.reset();
  rep_w.reset();

  // 3. Feed and drain until the report pipe says the command ended (or the
  // guard is gone), or the timeout.
  set_nonblocking(out_r.get());
  set_nonblocking(err_r.get());
  set_nonblocking(rep_r.get());
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
  std::optional<int> status;       // the command's wait status, from the guard
  std::optional<Report> failure;   // it could not be started
  char rep_buf[2 * sizeof(Report)];
  std::size_t rep_have = 0;
  // Reads what the report pipe has; false once it is at end of file (or broken).
  auto read_reports = [&]() -> bool {
    for (;;) {
      const ssize_t n = ::read(rep_r.get(), rep_buf + rep_have, sizeof rep_buf - rep_have);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
      if (n == 0) return false;
      rep_have += static_cast<std::size_t>(n);
      while (rep_have >= sizeof(Report)) {
        Report r;
        std::memcpy(&r, rep_buf, sizeof r);
        std::memmove(rep_buf, rep_buf + sizeof r, rep_have - sizeof r);
        rep_have -= sizeof r;
        if (r.kind == kReportFailure && !failure) failure = r;
        if (r.kind == kReportStatus) status = r.value;
      }
    }
  };
  auto kill_group = [&] {
    res.timed_out = true;
    ::kill(-guard, SIGKILL);  // the guard, the command, and whatever the command started
  };

  while (!status && rep_r) {
    pollfd fds[4];
    int n = 0, i_out = -1, i_err = -1, i_in = -1, i_rep = -1;
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
    i_rep = n;
    fds[n++] = {rep_r.get(), POLLIN, 0};
    int wait_ms = -1;
    if (has_deadline && !res.timed_out) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      wait_ms = static_cast<int>(std::clamp<long long>(left, 0, 1 << 30));
    }
    const int ready = ::poll(fds, static_cast<nfds_t>(n), wait_ms);
    if (ready < 0 && errno != EINTR) {
      const int poll_errno = errno;
      ::kill(-guard, SIGKILL);  // the command must not outlive this call
      while (::waitpid(guard, nullptr, 0) < 0 && errno == EINTR) {
      }
      throw std::system_error(poll_errno, std::generic_category(), "exec: poll");
    }

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
      if (fds[i_rep].revents != 0 && !read_reports()) rep_r.reset();
    }
    if (has_deadline && !res.timed_out && !status && rep_r && Clock::now() >= deadline) kill_group();
  }

  // The guard has reported (and is killing its group) or is gone: reap it.
  if (!status) ::kill(-guard, SIGKILL);  // it died without reporting: leave nothing of its group
  int guard_status = 0;
  bool guard_known = false;
  for (;;) {
    const pid_t r = ::waitpid(guard, &guard_status, 0);
    if (r == guard) {
      guard_known = true;
      break;
    }
    if (r < 0 && errno == EINTR) continue;
    break;  // ECHILD: SIGCHLD is ignored here and the kernel reaped it
  }

  if (pipe_blocked) {
    if (broke_pipe && !pipe_was_pending) {
      const timespec zero{0, 0};
      while (::sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  }

  // It exited: take what is already in the pipes, but do not wait for more.
  if (out_r) read_available(out_r.get(), out_cap);
  if (err_r) read_available(err_r.get(), err_cap);
  finish_time();

  if (failure) {
    res.spawn_error = describe_failure(*failure, program, rq.cwd);
    return res;
  }
  res.stdin_bytes = written;
  res.stdout_bytes = out_cap.total;
  res.stderr_bytes = err_cap.total;
  res.stdout_text = out_cap.finish();
  res.stderr_text = err_cap.finish();
  if (!status) {
    // Killed with its group at the timeout, or its guard was killed from
    // outside (the command then died of SIGKILL, its parent-death signal).
    if (res.timed_out || (guard_known && WIFSIGNALED(guard_status)))
      res.signal = SIGKILL;
    // else: neither exit_code nor signal, reported as an unknown ending
  } else if (WIFEXITED(*status)) {
    res.exit_code = WEXITSTATUS(*status);
  } else if (WIFSIGNALED(*status)) {
    res.signal = WTERMSIG(*status);
  }
  return res;
}

}  // namespace taskfarm::cli
