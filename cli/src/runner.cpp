// `taskfarm run` and `taskfarm validate`.
//
// A run, in order: load and validate the whole file (nothing else happens on
// an error: exit 2); read the joblog for --resume; block SIGINT/SIGTERM/SIGHUP
// (they are read from a signalfd by the run loop); start the pool; open the
// outputs; run the jobs one after another.
//
// A job streams: its inputs are pulled from a cursor into windows (one Batch
// each, at most kLookahead items submitted and not yet written), each item is
// expanded, hashed (for resume), encoded and submitted; outcomes come back
// through batch listeners (on the pool's dispatcher thread, which only queue
// the index and poke an eventfd), are turned into a result line and a joblog
// line on this thread, and are written in input or completion order. Memory
// is bounded by the window, whatever the number of inputs.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <system_error>
#include <typeinfo>
#include <utility>
#include <vector>

#include "builtin_tasks.hpp"
#include "taskfarm/cli/cli.hpp"
#include "taskfarm/cli/job.hpp"
#include "taskfarm/cli/outputs.hpp"
#include "taskfarm/cli/resume_hint.hpp"
#include "taskfarm/master/pool.hpp"

namespace taskfarm::cli {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string fixed(double v, int digits) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, digits);
  return std::string(buf, r.ptr);
}

std::string plural(std::uint64_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

double epoch_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// SIGINT, SIGTERM and SIGHUP, blocked in every thread (the pool's threads are
// started after this and inherit the mask; its fork server and workers reset
// theirs) and read from a signalfd by the run loop.
class SignalWatch {
 public:
  SignalWatch() {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set_, s);
    ::pthread_sigmask(SIG_BLOCK, &set_, &old_);
    fd_ = ::signalfd(-1, &set_, SFD_NONBLOCK | SFD_CLOEXEC);
  }
  ~SignalWatch() {
    while (take() != 0) {
    }  // nothing pending may kill us once the mask is restored
    if (fd_ >= 0) ::close(fd_);
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SignalWatch(const SignalWatch&) = delete;
  SignalWatch& operator=(const SignalWatch&) = delete;
  [[nodiscard]] int fd() const noexcept { return fd_; }
  // A signal received, or 0.
  int take() {
    if (fd_ < 0) return 0;
    signalfd_siginfo si{};
    const ssize_t n = ::read(fd_, &si, sizeof si);
    return n == static_cast<ssize_t>(sizeof si) ? static_cast<int>(si.ssi_signo) : 0;
  }

 private:
  sigset_t set_{}, old_{};
  int fd_ = -1;
};

// Outcomes that landed, queued by batch listeners (dispatcher thread) for the
// run loop. The eventfd is written only when the queue goes from empty to not
// empty, so a stream of fast tasks costs one write per loop turn, not per task.
struct Inbox {
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> done;  // (window id, item)
  int efd = -1;
  Inbox() : efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (efd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  }
  ~Inbox() { ::close(efd); }
  void push(std::uint64_t window, std::size_t item) {
    bool wake = false;
    {
      std::lock_guard lock(mu);
      wake = done.empty();
      done.emplace_back(window, static_cast<std::uint32_t>(item));
    }
    if (wake) {
      const std::uint64_t one = 1;
      (void)!::write(efd, &one, sizeof one);
    }
  }
  void take(std::vector<std::pair<std::uint64_t, std::uint32_t>>& out) {
    std::uint64_t n = 0;
    (void)!::read(efd, &n, sizeof n);
    std::lock_guard lock(mu);
    out.swap(done);
  }
};

// The progress line on a terminal: done/total, rate, ETA, failures, redrawn in
// place at most five times a second.
class Progress {
 public:
  explicit Progress(bool on, bool bar = false) : on_(on), bar_(bar) {}
  [[nodiscard]] bool on() const noexcept { return on_; }
  void show(const std::string& job, std::uint64_t done, std::optional<std::uint64_t> total, std::uint64_t ran,
            std::uint64_t failed, double elapsed, bool force = false) {
    if (!on_) return;
    const auto now = Clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double rate = elapsed > 0 ? static_cast<double>(ran) / elapsed : 0;
    std::string s = "\r" + job + ": ";
    if (bar_ && total && *total > 0) {  // [#########.........]  45%
      constexpr std::size_t kWidth = 30;
      const double part = std::min(1.0, static_cast<double>(done) / static_cast<double>(*total));
      const auto filled = static_cast<std::size_t>(part * kWidth);
      s += "[" + std::string(filled, '#') + std::string(kWidth - filled, '.') + "] " + fixed(100.0 * part, 0) + "%  ";
    }
    s += std::to_string(done) + "/" + (total ? std::to_string(*total) : "?");
    if (!bar_ && total && *total > 0)
      s += " (" + fixed(100.0 * static_cast<double>(done) / static_cast<double>(*total), 1) + "%)";
    s += "  " + fixed(rate, 1) + " tasks/s";
    if (total && rate > 0 && *total >= done) s += "  ETA " + clock_text(static_cast<double>(*total - done) / rate);
    if (failed) s += "  " + std::to_string(failed) + " failed";
    s += "\x1b[K";
    write_err(s);
    drawn_ = true;
  }
  // After the first Ctrl-C: no rate or ETA (nothing new starts), what is left instead.
  void show_finishing(const std::string& job, std::uint64_t done, std::optional<std::uint64_t> total,
                      std::uint64_t running, bool killed, bool force = false) {
    if (!on_) return;
    const auto now = Clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    std::string s = "\r" + job + ": " + std::to_string(done) + "/" + (total ? std::to_string(*total) : "?");
    const std::string tasks = std::to_string(running) + (running == 1 ? " running task" : " running tasks");
    s += killed ? " killing " + tasks : " finishing " + tasks + " (Ctrl-C again to kill them)";
    s += "\x1b[K";
    write_err(s);
    drawn_ = true;
  }
  void clear() {
    if (on_ && drawn_) write_err("\r\x1b[K");
    drawn_ = false;
  }

 private:
  static void write_err(const std::string& s) { (void)!::write(STDERR_FILENO, s.data(), s.size()); }
  bool on_;
  bool bar_;
  bool drawn_ = false;
  Clock::time_point last_{};
};

struct ErrorInfo {
  const char* status;
  std::string type;
  std::string message;
  int signal = 0;     // the signal that ended the task's worker, if one did
  bool killed = false;  // it was running when its worker was killed or died
};

ErrorInfo classify(const std::exception_ptr& error) {
  if (!error) return {"failed", "unknown", "the task failed without an error"};
  try {
    std::rethrow_exception(error);
  } catch (const RemoteError& e) {
    return {"failed", e.type_name(), e.message()};
  } catch (const TaskTimeout& e) {
    return {"timeout", "taskfarm::TaskTimeout", e.what(), SIGKILL, true};  // the pool kills with SIGKILL
  } catch (const WorkerLost& e) {
    return {"lost", "taskfarm::WorkerLost", e.what(), e.signal(), true};
  } catch (const Cancelled& e) {
    // Written only for items that had started: the pool was terminated, its
    // workers killed with SIGKILL.
    return {"cancelled", "taskfarm::Cancelled", e.what(), SIGKILL, true};
  } catch (const std::exception& e) {
    return {"failed", demangle(typeid(e).name()), e.what()};
  } catch (...) {
    return {"failed", "unknown", "a non-standard exception"};
  }
}

struct JobReport {
  std::string name, task;
  std::optional<std::uint64_t> total;
  std::uint64_t ok = 0, failed = 0, timeout = 0, lost = 0, cancelled = 0;
  std::uint64_t skipped_ok = 0, skipped_failed = 0;  // --resume: done in an earlier run
  std::uint64_t not_run = 0;   // pulled but never started (halt, Ctrl-C)
  std::uint64_t read = 0;      // inputs read from the source
  bool started = false, finished_inputs = false;
  double wall_s = 0, busy_s = 0;
  std::string extra;                        // the task's own summary line
  std::vector<std::string> first_failures;  // "#3 failed: std::runtime_error: boom"
  std::string halted;                       // why the job halted, if it did
  std::string run_error;                    // the inputs could not be read

  [[nodiscard]] std::uint64_t bad() const { return failed + timeout + lost + cancelled; }
  [[nodiscard]] std::uint64_t ran() const { return ok + bad(); }
};

constexpr std::size_t kFailuresShown = 3;

// What one run shares across its jobs.
struct RunState {
  Pool* pool = nullptr;
  LineFile* results = nullptr;
  LineFile* joblog = nullptr;
  const ResumeLog* resume = nullptr;
  bool resume_failed = false;
  ResultOrder order = ResultOrder::input;
  SignalWatch* signals = nullptr;
  Progress* progress = nullptr;
  std::ostream* log = nullptr;
  bool command_output = false;  // print each exec command's stdout/stderr when it ends
  bool tag = false;             // ... each line prefixed with the input and a tab
  int interrupted = 0;      // the first signal received
  bool killed = false;      // the workers were killed (second signal, halt now)
  bool halted = false;      // a job's on_error halted the run
  std::uint64_t seq_base = 0;  // joblog Seq: inputs read by the jobs before this one
};

// One submitted (or failed before submission) input, until its lines are written.
struct Pending {
  std::uint64_t index = 0;
  json input;
  std::uint64_t hash = 0;
  std::string command;
  std::uint64_t send_bytes = 0;
  bool done = false;
  bool dropped = false;  // cancelled before it started: no line anywhere
  std::string line, log_line;
  std::string out, err;  // command_output: what the command wrote, to print
  // job.retries: the encoded argument (for a re-run), the re-runs left, and
  // the attempts of the runs before the current one.
  std::vector<std::byte> encoded;
  unsigned retries_left = 0;
  std::uint32_t attempts_before = 0;
};

// A re-run of one failed input: a batch of its own, whose outcome belongs to
// item `item` of window `window`.
struct Rerun {
  std::uint64_t window = 0;
  std::size_t item = 0;
  std::shared_ptr<taskfarm::detail::Batch> batch;
};

struct Window {
  std::shared_ptr<taskfarm::detail::Batch> batch;  // null: an input that failed before submission
  std::vector<Pending> items;                        // items[i] is batch item i
  std::size_t emitted = 0;                           // input order: items [0, emitted) written
  std::size_t finished = 0;
};

class JobRun {
 public:
  JobRun(RunState& st, const JobSpec& job, const InputCheck& check) : st_(st), job_(job) {
    rep_.name = job.name;
    rep_.task = job.task;
    rep_.total = check.total;
    // The lines of a regular file: a fast count gives the progress line its
    // total and ETA (a stream has none: it is read once, by the run).
    if (!rep_.total && !check.streamed && job.inputs.kind == InputKind::lines && st.progress->on()) {
      try {
        rep_.total = job.inputs.count_lines();
      } catch (const JobError&) {
        // the run reports it when it opens the file
      }
    }
    chunk_ = job.chunksize ? job.chunksize : 1;
    const std::size_t workers = std::max<std::size_t>(1, st.pool->size());
    lookahead_ = std::max<std::size_t>(256, 16 * workers * chunk_);
    window_ = std::max<std::size_t>(chunk_, std::min<std::size_t>(64, lookahead_ / 4));
    job_field_ = "{\"job\":" + dump(job.name) + ",\"index\":";
    if (job.on_error.halt != Halt::never) {
      if (job.on_error.fail_percent > 0) {
        // (validation refused a percentage of a streamed input)
        const std::uint64_t total = rep_.total                                  ? *rep_.total
                                    : job.inputs.kind == InputKind::lines ? job.inputs.count_lines()
                                                                          : job.inputs.count();
        fail_limit_ = std::max<std::uint64_t>(
            1, static_cast<std::uint64_t>(std::ceil(static_cast<double>(total) * job.on_error.fail_percent / 100.0)));
      } else {
        fail_limit_ = job.on_error.fail_count;
      }
    }
  }

  JobReport run() {
    rep_.started = true;
    t0_ = Clock::now();
    try {
      cursor_ = job_.inputs.open();
    } catch (const JobError& e) {
      rep_.run_error = e.what();
      return finish();
    }
    std::vector<std::pair<std::uint64_t, std::uint32_t>> landed;
    for (;;) {
      fill();
      if (st_.order == ResultOrder::input) emit_in_order();
      flush_outputs();
      show_progress(false);
      if (outstanding_ == 0) {
        if (exhausted_ || stop_pulling_) break;
        if (!waiting_input_) continue;  // lines written after fill() made room for more
      }
      wait_for_events();
      inbox_->take(landed);
      for (const auto& [id, i] : landed) on_done(id, i);
      landed.clear();
    }
    rep_.read = next_index_;
    return finish();
  }

 private:
  // Pulls inputs and submits them, up to the look-ahead.
  void fill() {
    waiting_input_ = false;
    while (!stop_pulling_ && !exhausted_ && !waiting_input_ && outstanding_ < lookahead_) {
      taskfarm::detail::BatchBuilder b;
      std::vector<Pending> items;
      json item;
      std::string problem;
      while (items.size() < window_ && outstanding_ + items.size() < lookahead_) {
        InputCursor::Next n;
        try {
          n = cursor_->next(item, problem);
        } catch (const JobError& e) {
          rep_.run_error = e.what();
          stop_pulling_ = true;
          break;
        }
        if (n == InputCursor::Next::end) {
          exhausted_ = true;
          rep_.finished_inputs = true;
          break;
        }
        if (n == InputCursor::Next::pending) {
          // No whole line yet: what is read goes now, and the loop polls the
          // input with the results and the signals.
          waiting_input_ = true;
          break;
        }
        const std::uint64_t index = next_index_++;
        if (n == InputCursor::Next::bad) {
          submit(b, items);
          input_failure(index, nullptr, problem);
          continue;
        }
        json arg;
        try {
          arg = expand_argument(job_, item, index);
        } catch (const JobError& e) {
          submit(b, items);
          input_failure(index, std::move(item), e.what());
          continue;
        }
        // The hash and the command line are for the joblog (and resume) only.
        const std::uint64_t hash = st_.joblog || st_.resume ? input_hash(job_.task, arg) : 0;
        if (st_.resume) {
          const auto prior = st_.resume->lookup(job_.name, index, hash);
          if (prior == ResumeLog::Prior::ok || (prior == ResumeLog::Prior::failed && !st_.resume_failed)) {
            ++(prior == ResumeLog::Prior::ok ? rep_.skipped_ok : rep_.skipped_failed);
            submit(b, items);  // windows hold consecutive indices only
            continue;
          }
        }
        Pending p;
        p.index = index;
        p.hash = hash;
        if (st_.joblog) p.command = job_.adapter->command ? job_.adapter->command(arg) : job_.task + " " + dump(arg);
        const std::size_t before = b.arena().size();
        const std::optional<std::uint64_t> send =
            st_.joblog && job_.adapter->send ? std::optional<std::uint64_t>(job_.adapter->send(arg)) : std::nullopt;
        try {
          encode_argument(job_, std::move(arg), item, index, cursor_->where(), b.arena());
        } catch (const JobError& e) {
          submit(b, items);
          input_failure(index, std::move(item), e.what());
          continue;
        }
        b.end_item();
        p.send_bytes = send ? *send : b.arena().size() - before;
        if (job_.retries > 0) {
          p.retries_left = job_.retries;
          p.encoded.assign(b.arena().begin() + static_cast<std::ptrdiff_t>(before), b.arena().end());
        }
        p.input = std::move(item);
        items.push_back(std::move(p));
      }
      submit(b, items);
    }
  }

  void submit(taskfarm::detail::BatchBuilder& b, std::vector<Pending>& items) {
    if (items.empty()) return;
    const std::uint64_t id = next_window_++;
    const std::uint64_t first = items.front().index;
    auto batch = st_.pool->run_batch(job_.task, std::move(b), MapOptions{chunk_}, true, first);
    outstanding_ += items.size();
    Window& w = windows_[id];
    w.batch = batch;
    w.items = std::move(items);
    items.clear();
    b = taskfarm::detail::BatchBuilder{};
    batch->add_listener([inbox = inbox_, id](std::size_t i) { inbox->push(id, i); });
  }

  // An input that cannot become an argument fails alone, without running.
  void input_failure(std::uint64_t index, json input, const std::string& message) {
    const std::uint64_t id = next_window_++;
    Window& w = windows_[id];
    Pending p;
    p.index = index;
    p.input = std::move(input);
    p.command = "(input #" + std::to_string(index) + " could not be prepared)";
    w.items.push_back(std::move(p));
    ++outstanding_;
    record(w.items.back(), nullptr, ErrorInfo{"failed", "taskfarm.input", message});
    finish_item(id, w, 0);
  }

  // Waits for an outcome, a signal, or (while fill() waits for one) input.
  void wait_for_events() {
    pollfd fds[3] = {{inbox_->efd, POLLIN, 0}, {st_.signals->fd(), POLLIN, 0}, {-1, POLLIN, 0}};
    if (waiting_input_ && !stop_pulling_) fds[2].fd = cursor_->poll_fd();  // poll ignores a negative fd
    const int timeout = st_.progress->on() ? 200 : -1;
    const int n = ::poll(fds, 3, timeout);
    if (n > 0 && (fds[1].revents & POLLIN) != 0) {
      while (const int sig = st_.signals->take()) on_signal(sig);
    }
  }

  void on_signal(int sig) {
    if (st_.interrupted == 0) {
      st_.interrupted = sig;
      st_.progress->clear();
      if (waiting_input_ && outstanding_ == 0)
        *st_.log << "taskfarm: " << signal_text(sig) << " while waiting for input (" << plural(next_index_, "input")
                 << " read so far): stopping\n"
                 << std::flush;
      else
        *st_.log << "taskfarm: " << signal_text(sig) << ": starting nothing new; waiting for the running tasks to "
                 << "finish (press Ctrl-C again to kill them)\n"
                 << std::flush;
      stop_pulling_ = true;
      cancel_queued("not started: the run was interrupted");
      show_progress(true);
    } else if (!st_.killed) {
      st_.progress->clear();
      *st_.log << "taskfarm: " << signal_text(sig) << " again: killing the workers\n" << std::flush;
      kill_workers();
    }
  }

  static std::string signal_text(int sig) {
    switch (sig) {
      case SIGINT: return "interrupted (SIGINT)";
      case SIGTERM: return "terminated (SIGTERM)";
      case SIGHUP: return "hung up (SIGHUP)";
      default: return "signal " + std::to_string(sig);
    }
  }

  void cancel_queued(const char* why) {
    for (auto& [id, w] : windows_) {
      if (!w.batch) continue;
      for (std::size_t i = 0; i < w.items.size(); ++i)
        if (!w.items[i].done) (void)w.batch->cancel(i, why);  // false: it has started
    }
    for (auto& [id, r] : reruns_) (void)r.batch->cancel(0, why);
  }

  void kill_workers() {
    st_.killed = true;
    stop_pulling_ = true;
    st_.pool->terminate();  // what runs ends with Cancelled; the listeners report it
  }

  void on_done(std::uint64_t id, std::size_t i) {
    std::shared_ptr<taskfarm::detail::Batch> batch;  // holds a re-run's batch while its outcome is read
    auto it = windows_.find(id);
    if (it != windows_.end()) {
      batch = it->second.batch;
    } else {
      const auto r = reruns_.find(id);
      if (r == reruns_.end()) return;
      batch = std::move(r->second.batch);
      id = r->second.window;
      i = r->second.item;
      reruns_.erase(r);
      it = windows_.find(id);
      if (it == windows_.end()) return;
    }
    Window& w = it->second;
    Pending& p = w.items[i];
    auto& o = batch->outcome(batch == w.batch ? i : 0);
    if (o.ok) {
      std::optional<json> decoded;  // the verdict's decode, not done twice
      if (rerun_if_failed(id, i, p, o, std::nullopt, &decoded)) return;
      record(p, &o, std::nullopt, std::move(decoded));
    } else {
      ErrorInfo e = classify(o.error);
      if (std::strcmp(e.status, "cancelled") == 0 && o.attempts == 0 && p.attempts_before == 0) {
        p.dropped = true;  // never started: it has not run, and --resume will run it
        ++rep_.not_run;
      } else if (rerun_if_failed(id, i, p, o, e)) {
        return;
      } else {
        record(p, &o, std::move(e));
      }
    }
    o.value = {};  // the line holds what is needed now
    finish_item(id, w, i);
  }

  // job.retries: submits input `p` (item i of window `id`) again when its task
  // failed and it has re-runs left, unless the run is stopping. True when it
  // did (the outcome is then not recorded).
  // `decoded` (for an ok outcome) receives the value it decoded to judge it.
  bool rerun_if_failed(std::uint64_t id, std::size_t i, Pending& p, taskfarm::detail::Outcome& o,
                       const std::optional<ErrorInfo>& err, std::optional<json>* decoded = nullptr) {
    if (p.retries_left == 0 || stop_pulling_ || halting_ || st_.killed) return false;
    if (err) {
      if (std::strcmp(err->status, "cancelled") == 0) return false;
    } else if (job_.adapter->verdict) {
      try {
        json value = job_.adapter->decode(o.value);
        const bool failed = job_.adapter->verdict(value).has_value();
        if (decoded) *decoded = std::move(value);
        if (!failed) return false;
      } catch (...) {
        // a result that does not decode is a failure: run it again
      }
    } else {
      return false;  // ok
    }
    --p.retries_left;
    p.attempts_before += o.attempts;
    taskfarm::detail::BatchBuilder b;
    b.arena() = p.encoded;
    b.end_item();
    const std::uint64_t rid = next_window_++;
    auto batch = st_.pool->run_batch(job_.task, std::move(b), MapOptions{1}, true, p.index);
    reruns_[rid] = Rerun{id, i, batch};
    batch->add_listener([inbox = inbox_, rid](std::size_t k) { inbox->push(rid, k); });
    return true;
  }

  void finish_item(std::uint64_t id, Window& w, std::size_t i) {
    w.items[i].done = true;
    ++w.finished;
    if (st_.order == ResultOrder::completion) {
      write_lines(w.items[i]);
      --outstanding_;
      if (w.finished == w.items.size()) windows_.erase(id);
    }
  }

  void emit_in_order() {
    while (!windows_.empty()) {
      auto it = windows_.begin();
      Window& w = it->second;
      while (w.emitted < w.items.size() && w.items[w.emitted].done) {
        write_lines(w.items[w.emitted]);
        ++w.emitted;
        --outstanding_;
      }
      if (w.emitted < w.items.size()) return;
      windows_.erase(it);
    }
  }

  void write_lines(Pending& p) {
    if (p.dropped) return;
    if (st_.results) st_.results->add(p.line);
    if (st_.joblog) st_.joblog->add(p.log_line);
    if (!p.out.empty() || !p.err.empty()) {
      // Results and joblog first: what is printed is already on record.
      flush_outputs();
      st_.progress->clear();
      write_all(STDOUT_FILENO, p.out);
      write_all(STDERR_FILENO, p.err);
      std::string().swap(p.out);
      std::string().swap(p.err);
    }
    std::string().swap(p.line);
    std::string().swap(p.log_line);
  }

  static void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
      const ssize_t n = ::write(fd, s.data(), s.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // a closed terminal or pipe: nothing more can be shown
      s.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // The text a command wrote, each line prefixed with `prefix` (--tag), and
  // ending with a newline.
  static std::string tagged(const std::string& text, const std::string& prefix) {
    if (text.empty()) return {};
    std::string out;
    out.reserve(text.size() + (prefix.empty() ? 1 : prefix.size() * 8));
    std::size_t start = 0;
    while (start < text.size()) {
      std::size_t nl = text.find('\n', start);
      const std::size_t end = nl == std::string::npos ? text.size() : nl + 1;
      out += prefix;
      out.append(text, start, end - start);
      start = end;
    }
    if (out.back() != '\n') out += '\n';
    return out;
  }

  // --tag: the input as GNU parallel shows it: a string as it is, the values
  // of several inputs (an object, from several :::) separated by spaces.
  static std::string tag_of(const json& input) {
    auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : dump(v); };
    if (!input.is_object()) return text(input) + "\t";
    std::string s;
    for (const auto& [k, v] : input.items()) {
      if (!s.empty()) s += ' ';
      s += text(v);
    }
    return s + "\t";
  }

  // Results before joblog: a crash between the two leaves an input in the
  // results but not in the joblog, which --resume runs again (a duplicate line,
  // never a missing one).
  void flush_outputs() {
    if (st_.results) st_.results->flush();
    if (st_.joblog) st_.joblog->flush();
  }

  // Turns an outcome into its result line and joblog line, counts it, and
  // applies the halt policy. `o` is null for inputs that failed before running.
  void record(Pending& p, taskfarm::detail::Outcome* o, std::optional<ErrorInfo> err,
              std::optional<json> decoded = std::nullopt) {
    json value;
    bool has_value = false;
    std::optional<JsonVerdict> verdict;
    JoblogFacts facts;
    if (o && o->ok) {
      try {
        value = decoded ? std::move(*decoded) : job_.adapter->decode(o->value);
        has_value = true;
        if (job_.adapter->verdict) verdict = job_.adapter->verdict(value);
        if (job_.adapter->facts) job_.adapter->facts(value, facts);
      } catch (...) {
        err = classify(std::current_exception());
      }
    }
    std::string status = "ok";
    std::string etype, emsg;
    if (err) {
      status = err->status;
      etype = std::move(err->type);
      emsg = std::move(err->message);
    } else if (verdict) {
      status = verdict->status;
      etype = std::move(verdict->type);
      emsg = std::move(verdict->message);
    }
    const bool ok = status == "ok";
    if (!job_.adapter->facts || !has_value) facts.exitval = ok ? 0 : 1;
    if (err && err->killed) {  // GNU parallel's meaning: killed, no exit code
      facts.exitval = -1;
      facts.signal = err->signal;
    }
    const double seconds = o ? static_cast<double>(o->duration_ns) / 1e9 : 0.0;

    if (st_.results) {  // taskfarm exec without --results writes none: no line to build
      std::string& line = p.line;
      line = job_field_ + std::to_string(p.index) + ",\"input\":" + dump(p.input) + ",\"status\":\"" + status + "\"";
      if (has_value) line += ",\"value\":" + dump(value);
      if (!ok) line += ",\"error\":{\"type\":" + dump(etype) + ",\"message\":" + dump(emsg) + "}";
      line += ",\"attempts\":" + std::to_string(p.attempts_before + (o ? o->attempts : 0));
      line += ",\"worker\":" + (o && o->worker >= 0 ? std::to_string(o->worker) : std::string("null"));
      line += ",\"seconds\":" + fixed(seconds, 6) + "}";
    }

    rep_.busy_s += seconds;
    if (st_.command_output && has_value && value.is_object()) {
      const std::string prefix = st_.tag ? tag_of(p.input) : std::string();
      if (auto it = value.find("stdout"); it != value.end() && it->is_string()) p.out = tagged(it->get<std::string>(), prefix);
      if (auto it = value.find("stderr"); it != value.end() && it->is_string()) p.err = tagged(it->get<std::string>(), prefix);
      if (auto it = value.find("spawn_error"); it != value.end() && it->is_string())
        p.err += prefix + "taskfarm: " + it->get<std::string>() + "\n";
    }
    if (st_.joblog) {
      JoblogEntry e;
      e.seq = st_.seq_base + p.index + 1;
      e.runtime = seconds;
      e.start = epoch_now() - seconds;
      e.send = facts.send ? *facts.send : p.send_bytes;
      e.receive = facts.receive ? *facts.receive : (o ? o->value.size() : 0);
      e.exitval = facts.exitval;
      e.signal = facts.signal;
      e.command = p.command;
      e.job = job_.name;
      e.index = p.index;
      e.status = status;
      e.input_hash = p.hash;
      p.log_line = format_joblog(e);
    }

    if (ok) {
      ++rep_.ok;
      if (job_.adapter->summarize && has_value) values_.push_back(std::move(value));
      return;
    }
    if (status == "timeout")
      ++rep_.timeout;
    else if (status == "lost")
      ++rep_.lost;
    else if (status == "cancelled")
      ++rep_.cancelled;
    else
      ++rep_.failed;
    if (rep_.first_failures.size() < kFailuresShown)
      rep_.first_failures.push_back("#" + std::to_string(p.index) + " " + status + ": " + etype + ": " + emsg);
    if (status != "cancelled") {
      ++failures_;
      check_halt();
    }
  }

  void check_halt() {
    if (job_.on_error.halt == Halt::never || halting_ || failures_ < fail_limit_) return;
    halting_ = true;
    st_.halted = true;
    const bool now = job_.on_error.halt == Halt::now;
    rep_.halted = "halted (" + std::string(now ? "now" : "soon") + ") after " + plural(failures_, "failure") +
                  " (on_error.fail = " +
                  (job_.on_error.fail_percent > 0 ? fixed(job_.on_error.fail_percent, 1) + "% = " : std::string()) +
                  std::to_string(fail_limit_) + ")";
    stop_pulling_ = true;
    if (now) {
      if (!st_.killed) kill_workers();
    } else {
      cancel_queued("not started: its job halted");
    }
  }

  void show_progress(bool force) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0_).count();
    const std::uint64_t done = rep_.ran() + rep_.skipped_ok + rep_.skipped_failed;
    if (st_.interrupted != 0 && st_.progress->on()) {
      std::uint64_t running = 0;  // queued ones were cancelled: what is not done has started
      for (const auto& [id, w] : windows_)
        for (std::size_t i = 0; i < w.items.size(); ++i)
          running += !w.items[i].done && w.batch && !w.batch->is_done(i) ? 1 : 0;
      st_.progress->show_finishing(job_.name, done, rep_.total, running, st_.killed, force);
      return;
    }
    st_.progress->show(job_.name, done, rep_.total, rep_.ran(), failures_, elapsed, force);
  }

  JobReport finish() {
    rep_.wall_s = std::chrono::duration<double>(Clock::now() - t0_).count();
    if (job_.adapter->summarize && !values_.empty()) {
      try {
        rep_.extra = job_.adapter->summarize(values_);
      } catch (const std::exception& e) {
        rep_.extra = std::string("(summary failed: ") + e.what() + ")";
      }
    }
    st_.progress->clear();
    return std::move(rep_);
  }

  RunState& st_;
  const JobSpec& job_;
  JobReport rep_;
  std::unique_ptr<InputCursor> cursor_;
  std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  std::map<std::uint64_t, Window> windows_;
  std::map<std::uint64_t, Rerun> reruns_;  // by their own id (from next_window_)
  std::uint64_t next_window_ = 0;
  std::uint64_t next_index_ = 0;
  std::size_t outstanding_ = 0;  // items in windows whose lines are not written yet
  std::size_t chunk_ = 1, lookahead_ = 256, window_ = 64;
  bool exhausted_ = false, stop_pulling_ = false, halting_ = false;
  bool waiting_input_ = false;  // the cursor said pending: no whole line has arrived
  std::uint64_t failures_ = 0, fail_limit_ = 0;
  std::string job_field_;
  std::vector<json> values_;  // for the task's summary
  Clock::time_point t0_{};
};

void print_report(const JobReport& r, std::size_t workers, std::ostream& log) {
  log << "taskfarm: job \"" << r.name << "\" (" << r.task << "): ";
  if (!r.started) {
    log << "not started\n";
    return;
  }
  log << plural(r.ran(), "task") << ", " << r.ok << " ok";
  if (r.failed) log << ", " << r.failed << " failed";
  if (r.timeout) log << ", " << r.timeout << " timed out";
  if (r.lost) log << ", " << r.lost << " lost";
  if (r.cancelled) log << ", " << r.cancelled << " cancelled";
  if (r.bad() == 0) log << ", 0 failed";
  log << " in " << fixed(r.wall_s, 2) << " s";
  if (r.wall_s > 0 && r.ran() > 0)
    log << " (" << fixed(static_cast<double>(r.ran()) / r.wall_s, 1) << " tasks/s, " << plural(workers, "worker")
        << ", busy " << fixed(r.busy_s / r.wall_s, 2) << "x)";
  log << "\n";
  if (r.skipped_ok || r.skipped_failed) {
    log << "    skipped " << (r.skipped_ok + r.skipped_failed) << " inputs done in an earlier run (" << r.skipped_ok
        << " ok";
    if (r.skipped_failed) log << ", " << r.skipped_failed << " failed: --resume-failed runs them again";
    log << ")\n";
  }
  if (!r.extra.empty()) log << "    " << r.extra << "\n";
  for (const auto& f : r.first_failures) log << "    " << f << "\n";
  if (r.bad() > r.first_failures.size())
    log << "    ... and " << (r.bad() - r.first_failures.size()) << " more (see the results)\n";
  if (!r.halted.empty()) log << "    " << r.halted << "\n";
  if (!r.run_error.empty()) log << "    the inputs could not be read: " << r.run_error << "\n";
  if (!r.finished_inputs || r.not_run > 0) {
    log << "    not finished:";
    if (r.not_run) log << " " << r.not_run << " inputs read but not started" << (r.finished_inputs ? "" : ";");
    if (!r.finished_inputs) {
      log << " inputs from #" << r.read << " on never read";
      if (r.total) log << " (" << r.total.value() << " inputs in all)";
    }
    log << "\n";
  }
}

// Loads and validates everything; throws JobError.
struct Prepared {
  JobFile file;
  std::vector<InputCheck> checks;
};

Prepared prepare(const std::filesystem::path& file, const JobFile* in_memory = nullptr) {
  Prepared p;
  p.file = in_memory ? *in_memory : load_job_file(file);
  for (const auto& job : p.file.jobs) p.checks.push_back(check_inputs(job));
  return p;
}

void print_job_error(const std::filesystem::path& file, const std::string& what, std::ostream& log) {
  log << "taskfarm: " << file.string() << ": " << what << "\n";
}

std::string describe_duration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms == 0) return "none";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

// "512 MiB" when it is a whole number of MiB (or GiB, KiB), else bytes.
std::string describe_bytes(std::uint64_t n) {
  for (const auto& [shift, unit] : {std::pair{30, " GiB"}, std::pair{20, " MiB"}, std::pair{10, " KiB"}})
    if (n % (std::uint64_t{1} << shift) == 0) return std::to_string(n >> shift) + unit;
  return std::to_string(n) + " bytes";
}

std::string describe_pool(const PoolOptions& o) {
  std::string s = o.workers == 0 ? std::string("one worker per CPU") : plural(o.workers, "worker");
  s += ", transport " + std::string(to_string(o.transport)) + ", start " + std::string(to_string(o.start));
  s += ", task timeout " + describe_duration(o.task_timeout);
  s += ", max retries " + std::to_string(o.max_retries);
  s += ", max tasks per child " +
       (o.max_tasks_per_child == 0 ? std::string("unlimited") : std::to_string(o.max_tasks_per_child));
  if (o.max_memory_per_child != 0) s += ", max memory per child " + describe_bytes(o.max_memory_per_child);
  return s;
}

std::string describe_on_error(const OnError& e) {
  if (e.halt == Halt::never) return "continue";
  return std::string(e.halt == Halt::soon ? "halt soon" : "halt now") + " after " +
         (e.fail_percent > 0 ? fixed(e.fail_percent, 1) + "% of the inputs failed" : plural(e.fail_count, "failure"));
}

// --dry-run: what would run, one line per input: job, index, command.
// `commands_only` (taskfarm exec): the command alone, as GNU parallel prints it.
int dry_run(const JobFile& jf, const ResumeLog* resume, bool resume_failed, bool commands_only, std::ostream& log) {
  std::string out;
  auto flush = [&] {
    (void)!::write(STDOUT_FILENO, out.data(), out.size());
    out.clear();
  };
  bool problems = false;
  for (const auto& job : jf.jobs) {
    auto cursor = job.inputs.open();
    json item;
    std::string problem;
    std::uint64_t index = 0, skipped = 0;
    for (;; ++index) {
      const auto n = cursor->next_wait(item, problem);
      if (n == InputCursor::Next::end) break;
      if (n == InputCursor::Next::bad) {
        log << "taskfarm: " << job.inputs.path << ": input #" << index << ": " << problem << "\n";
        problems = true;
        continue;
      }
      json arg;
      try {
        arg = expand_argument(job, item, index);
      } catch (const JobError& e) {
        log << "taskfarm: " << e.what() << "\n";
        problems = true;
        continue;
      }
      if (resume) {
        const auto prior = resume->lookup(job.name, index, input_hash(job.task, arg));
        if (prior == ResumeLog::Prior::ok || (prior == ResumeLog::Prior::failed && !resume_failed)) {
          ++skipped;
          continue;
        }
      }
      if (!commands_only) out += job.name + "\t" + std::to_string(index) + "\t";
      out += (job.adapter->command ? job.adapter->command(arg) : job.task + " " + dump(arg)) + "\n";
      if (out.size() > 65536) flush();
    }
    flush();
    if (skipped) log << "taskfarm: job \"" << job.name << "\": " << skipped << " inputs already done (--resume)\n";
  }
  return problems ? kExitTasksFailed : kExitOk;
}

// Checks the outputs (check_outputs) and prints each problem; false if any.
bool report_output_problems(const std::filesystem::path& file, const OutputSpec& out, bool results_from_option,
                            bool joblog_from_option, std::ostream& log) {
  const auto problems = check_outputs({out.results, results_from_option ? "--output" : "output.results"},
                                      {out.joblog, joblog_from_option ? "--joblog" : "output.joblog"});
  for (const auto& p : problems) {
    if (p.rfind("--", 0) == 0)
      log << "taskfarm: " << p << "\n";
    else
      log << "taskfarm: " << file.string() << ": " << p << "\n";
  }
  return problems.empty();
}

// After a run that did not finish (or had failures): the command that
// resumes exactly this run, overrides included.
void print_resume_hint(const std::filesystem::path& file, const RunOptions& opt, const JobFile& jf,
                       const char* what, bool failures_only, std::ostream& log) {
  if (failures_only && !jf.output.joblog) return;
  log << "taskfarm: " << what << "; ";
  if (!jf.output.joblog) {
    log << "give it a joblog (output.joblog in the job file, or --joblog FILE) to be able to resume\n";
    return;
  }
  std::vector<std::string> argv = opt.command_line;
  if (argv.size() < 2) argv = {"taskfarm", "run", file.string()};
  const bool failed = failures_only || opt.resume == Resume::failed;
  log << "`" << resume_command(argv, failed) << "` "
      << (failures_only ? "runs the failed inputs again" : failed ? "runs what is left and what failed"
                                                                  : "runs what is left")
      << "\n";
  for (const auto& job : jf.jobs) {
    if (job.inputs.streamed()) {
      log << "    (the inputs of job \"" << job.name << "\" came from a stream (" << job.inputs.file_text
          << "): give it the same input again)\n";
      break;
    }
  }
}

}  // namespace

int run_job_file(const std::filesystem::path& file, const RunOptions& opt, std::ostream& log) {
  // 1. Everything is checked before anything starts or is written.
  Prepared p;
  try {
    p = prepare(file, opt.job);
  } catch (const std::exception& e) {
    print_job_error(file, e.what(), log);
    return kExitUsage;
  }
  JobFile& jf = p.file;
  if (opt.workers) jf.pool.workers = *opt.workers;
  if (opt.transport) jf.pool.transport = *opt.transport;
  if (opt.start) jf.pool.start = *opt.start;
  if (opt.timeout) jf.pool.task_timeout = *opt.timeout;
  if (opt.retries) jf.pool.max_retries = *opt.retries;
  if (opt.max_memory_per_child) jf.pool.max_memory_per_child = *opt.max_memory_per_child;
  if (opt.output) {
    if (*opt.output == "-")
      jf.output.results.reset();
    else
      jf.output.results = std::filesystem::path(*opt.output).lexically_normal();
  }
  if (opt.joblog) jf.output.joblog = std::filesystem::path(*opt.joblog).lexically_normal();
  // Every output is checked before anything is opened: a run that cannot
  // start changes nothing that was there.
  if (!report_output_problems(file, jf.output, opt.output.has_value(), opt.joblog.has_value(), log))
    return kExitUsage;

  std::optional<ResumeLog> resume;
  if (opt.resume != Resume::none) {
    if (!jf.output.joblog) {
      log << "taskfarm: " << (opt.resume == Resume::failed ? "--resume-failed" : "--resume")
          << " needs a joblog (output.joblog in the job file, or --joblog FILE): it is what says which inputs ran\n";
      return kExitUsage;
    }
    std::error_code ec;
    if (std::filesystem::exists(*jf.output.joblog, ec)) {
      try {
        resume = ResumeLog::read(*jf.output.joblog);
      } catch (const std::exception& e) {
        log << "taskfarm: --resume: " << e.what() << "\n";
        return kExitUsage;
      }
    }
  }

  if (opt.dry_run) {
    try {
      return dry_run(jf, resume ? &*resume : nullptr, opt.resume == Resume::failed, opt.command_output, log);
    } catch (const std::exception& e) {
      log << "taskfarm: " << e.what() << "\n";
      return kExitTasksFailed;
    }
  }

  // 2. Signals are read by the run loop from here on.
  SignalWatch signals;
  const bool progress_on = opt.progress == ProgressMode::always ||
                           (opt.progress == ProgressMode::automatic && ::isatty(STDERR_FILENO) == 1);
  Progress progress(progress_on, opt.progress_bar);

  PoolOptions pool_opts = jf.pool;
  if (!jf.output.results && !opt.no_results) pool_opts.initializer = &stdout_to_stderr_initializer();
  std::fflush(nullptr);  // workers are forked: nothing buffered may be written twice
  log.flush();

  std::vector<JobReport> reports;
  std::size_t workers = 0;
  std::uint64_t replaced_for_memory = 0;
  RunState st;
  std::string outputs_text;
  try {
    std::unique_ptr<Pool> pool;
    try {
      pool = std::make_unique<Pool>(pool_opts);
    } catch (const ConfigError& e) {
      log << "taskfarm: " << file.string() << ": pool: " << e.what() << "\n";
      return kExitUsage;
    }
    workers = pool->size();
    const bool append = opt.resume != Resume::none;
    LineFile results, joblog;
    try {
      // Both open before either is truncated: a failure leaves both as they were.
      if (!opt.no_results || jf.output.results) results = LineFile::open(jf.output.results, append, true);
      if (jf.output.joblog) joblog = LineFile::open(jf.output.joblog, append, true);
      if (results.is_open()) results.truncate();
      if (joblog.is_open()) {
        joblog.truncate();
        if (joblog.empty_at_open()) {
          joblog.add(kJoblogHeader);
          joblog.flush();
        }
      }
    } catch (const std::system_error& e) {
      log << "taskfarm: " << e.what() << "\n";
      pool->terminate();
      return kExitUsage;
    }
    outputs_text = results.is_open() ? "results in " + results.describe() : std::string("no results file");
    if (joblog.is_open()) outputs_text += ", joblog in " + joblog.describe();

    st.pool = pool.get();
    st.results = results.is_open() ? &results : nullptr;
    st.command_output = opt.command_output;
    st.tag = opt.tag;
    st.joblog = joblog.is_open() ? &joblog : nullptr;
    st.resume = resume ? &*resume : nullptr;
    st.resume_failed = opt.resume == Resume::failed;
    st.order = jf.output.order;
    st.signals = &signals;
    st.progress = &progress;
    st.log = &log;
    for (std::size_t j = 0; j < jf.jobs.size(); ++j) {
      if (st.interrupted || st.halted || st.killed) {
        JobReport r;
        r.name = jf.jobs[j].name;
        r.task = jf.jobs[j].task;
        reports.push_back(std::move(r));
        continue;
      }
      reports.push_back(JobRun(st, jf.jobs[j], p.checks[j]).run());
      st.seq_base += reports.back().read;
    }
    if (!st.killed) pool->shutdown();
    replaced_for_memory = pool->stats().replaced_for_memory;
  } catch (const std::exception& e) {
    progress.clear();
    log << "taskfarm: the run failed: " << e.what() << "\n";
    return st.interrupted ? 128 + st.interrupted : kExitTasksFailed;
  }

  std::uint64_t ran = 0, ok = 0, skipped_failed = 0, skipped = 0;
  bool incomplete = false;
  // taskfarm exec, like GNU parallel, prints no summary when all went well.
  const bool quiet = opt.command_output && !st.interrupted && !st.halted &&
                     std::all_of(reports.begin(), reports.end(), [](const JobReport& r) {
                       return r.bad() == 0 && r.skipped_failed == 0 && r.started && r.finished_inputs &&
                              r.not_run == 0 && r.run_error.empty();
                     });
  std::ostringstream discarded;
  std::ostream& summary = quiet ? discarded : log;
  for (const auto& r : reports) {
    print_report(r, workers, summary);
    ran += r.ran();
    ok += r.ok;
    skipped += r.skipped_ok + r.skipped_failed;
    skipped_failed += r.skipped_failed;
    incomplete = incomplete || !r.started || !r.finished_inputs || r.not_run > 0 || !r.run_error.empty();
  }
  summary << "taskfarm: " << plural(reports.size(), "job") << ", " << plural(ran, "task") << ": " << ok << " ok, "
          << (ran - ok) << " not ok";
  if (skipped) summary << ", " << skipped << " skipped (already run)";
  summary << "; " << outputs_text << "\n";
  if (replaced_for_memory != 0)
    log << "taskfarm: " << plural(replaced_for_memory, "worker") << " replaced for holding more than max_memory_per_child ("
        << describe_bytes(jf.pool.max_memory_per_child) << ") after a task\n";
  if (st.interrupted || st.halted || incomplete || ran != ok) {
    print_resume_hint(file, opt, jf, st.interrupted ? "the run was interrupted"
                                     : st.halted    ? "the run halted"
                                     : incomplete   ? "the run did not finish"
                                                    : "some tasks failed",
                      /*failures_only=*/!st.interrupted && !st.halted && !incomplete, log);
  }
  if (st.interrupted) return 128 + st.interrupted;
  if (ran != ok || skipped_failed > 0 || st.halted || incomplete) return kExitTasksFailed;
  return kExitOk;
}

int validate_job_file(const std::filesystem::path& file, std::ostream& out, std::ostream& log) {
  Prepared p;
  try {
    p = prepare(file);
  } catch (const std::exception& e) {
    print_job_error(file, e.what(), log);
    return kExitUsage;
  }
  // The job file's own outputs (the command line may override them at run time).
  if (!report_output_problems(file, p.file.output, false, false, log)) return kExitUsage;
  // The lines of a regular file are counted (a fast scan); a stream is not read.
  for (std::size_t j = 0; j < p.file.jobs.size(); ++j) {
    auto& c = p.checks[j];
    const auto& in = p.file.jobs[j].inputs;
    if (!c.total && !c.streamed && in.kind == InputKind::lines) {
      try {
        c.total = in.count_lines();
      } catch (const JobError& e) {
        print_job_error(file, e.what(), log);
        return kExitUsage;
      }
    }
  }
  std::uint64_t total = 0;
  bool all_known = true;
  for (const auto& c : p.checks) {
    if (c.total)
      total += *c.total;
    else
      all_known = false;
  }
  out << file.string() << ": valid: " << plural(p.file.jobs.size(), "job") << ", "
      << (all_known ? plural(total, "task") : std::string("tasks streamed")) << "\n";
  out << "  pool: " << describe_pool(p.file.pool) << "\n";
  for (std::size_t j = 0; j < p.file.jobs.size(); ++j) {
    const auto& job = p.file.jobs[j];
    const auto& c = p.checks[j];
    out << "  job \"" << job.name << "\": task " << job.task << " x "
        << (c.total ? std::to_string(*c.total) : std::string("?")) << " inputs (" << job.inputs.kind_name()
        << (c.streamed ? ", streamed from " + dump(job.inputs.file_text) +
                             ": not read now (it can be read only once); each line is checked as it is read, and "
                             "one that is bad fails alone"
                       : ", first " + std::to_string(c.checked) + " checked")
        << "), chunksize "
        << (job.chunksize == 0 ? std::string("auto") : std::to_string(job.chunksize)) << ", on error "
        << describe_on_error(job.on_error) << "\n";
  }
  out << "  results: "
      << (p.file.output.results ? p.file.output.results->string() : std::string("standard output")) << " ("
      << (p.file.output.order == ResultOrder::input ? "input" : "completion") << " order)\n";
  out << "  joblog: " << (p.file.output.joblog ? p.file.output.joblog->string() : std::string("none")) << "\n";
  return kExitOk;
}

}  // namespace taskfarm::cli
