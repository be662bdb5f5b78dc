// `taskfarm run` and `taskfarm validate`.

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <system_error>
#include <typeinfo>
#include <vector>

#include "builtin_tasks.hpp"
#include "taskfarm/cli/cli.hpp"
#include "taskfarm/cli/job.hpp"
#include "taskfarm/master/pool.hpp"

namespace taskfarm::cli {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string plural(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

// The temporary results file of the run in progress, for the signal handler:
// an interrupted run (Ctrl-C, kill) removes it and then dies of the signal as
// it would have. Workers never run this handler: the fork server resets signal
// dispositions and workers ignore SIGINT.
char g_temp_path[PATH_MAX] = {};
constexpr int kCleanupSignals[] = {SIGINT, SIGTERM, SIGHUP};

extern "C" void remove_temp_and_die(int sig) {
  if (g_temp_path[0] != '\0') ::unlink(g_temp_path);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// Where result lines go: standard output, or a temporary file next to the
// requested one that is renamed over it once the run is complete, so a reader
// never sees a half-written results file. Lines are collected and handed to
// the kernel whole, several per write() call (looping only on a partial
// write), so standard output never carries a line cut by another write.
class ResultSink {
 public:
  // Throws std::system_error when the temporary file cannot be created.
  explicit ResultSink(std::optional<std::filesystem::path> target) : target_(std::move(target)) {
    if (!target_) return;
    *target_ = target_->lexically_normal();
    std::error_code ec;
    if (std::filesystem::is_directory(*target_, ec))
      throw std::system_error(std::make_error_code(std::errc::is_a_directory), target_->string());
    if (target_->has_parent_path()) {
      std::filesystem::create_directories(target_->parent_path(), ec);
      if (ec) throw std::system_error(ec, "cannot create the directory " + target_->parent_path().string());
    }
    temp_ = target_->parent_path() / ("." + target_->filename().string() + ".tmp-" + std::to_string(::getpid()));
    ::unlink(temp_.c_str());  // a leftover of a killed run that had our pid
    if (temp_.native().size() < sizeof g_temp_path) {
      std::memcpy(g_temp_path, temp_.c_str(), temp_.native().size() + 1);
      struct sigaction sa {};
      sa.sa_handler = remove_temp_and_die;
      sigemptyset(&sa.sa_mask);
      for (std::size_t i = 0; i < std::size(kCleanupSignals); ++i)
        ::sigaction(kCleanupSignals[i], &sa, &previous_[i]);
      handlers_ = true;
    }
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0) {
      const int e = errno;
      restore_handlers();
      throw std::system_error(e, std::generic_category(), "cannot create " + temp_.string());
    }
  }
  ResultSink(const ResultSink&) = delete;
  ResultSink& operator=(const ResultSink&) = delete;
  ~ResultSink() {
    if (target_ && fd_ >= 0) {  // not committed: leave nothing behind
      ::close(fd_);
      ::unlink(temp_.c_str());
    }
    restore_handlers();
  }

  void add_line(const std::string& line) {
    buffer_ += line;
    buffer_ += '\n';
    if (buffer_.size() >= kFlushBytes) flush();
  }

  void flush() {
    const char* p = buffer_.data();
    std::size_t left = buffer_.size();
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::system_error(errno, std::generic_category(), "cannot write the results");
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  // Makes the results visible under their final name.
  void commit() {
    flush();
    if (!target_) return;
    if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
      const int e = errno;
      fd_ = -1;
      ::unlink(temp_.c_str());
      throw std::system_error(e, std::generic_category(), "cannot write " + temp_.string());
    }
    fd_ = -1;
    if (::rename(temp_.c_str(), target_->c_str()) != 0) {
      const int e = errno;
      ::unlink(temp_.c_str());
      throw std::system_error(e, std::generic_category(), "cannot rename the results to " + target_->string());
    }
    restore_handlers();
  }

  [[nodiscard]] std::string describe() const {
    return target_ ? target_->string() : std::string("standard output");
  }

 private:
  void restore_handlers() noexcept {
    if (!handlers_) return;
    for (std::size_t i = 0; i < std::size(kCleanupSignals); ++i)
      ::sigaction(kCleanupSignals[i], &previous_[i], nullptr);
    g_temp_path[0] = '\0';
    handlers_ = false;
  }

  static constexpr std::size_t kFlushBytes = 1 << 16;
  struct sigaction previous_[std::size(kCleanupSignals)] {};
  bool handlers_ = false;
  std::optional<std::filesystem::path> target_;
  std::filesystem::path temp_;
  int fd_ = STDOUT_FILENO;
  std::string buffer_;  // whole lines not yet written
};

struct ErrorInfo {
  const char* status;
  std::string type;
  std::string message;
};

ErrorInfo classify(const std::exception_ptr& error) {
  if (!error) return {"failed", "unknown", "the task failed without an error"};
  try {
    std::rethrow_exception(error);
  } catch (const RemoteError& e) {
    return {"failed", e.type_name(), e.message()};
  } catch (const TaskTimeout& e) {
    return {"timeout", "taskfarm::TaskTimeout", e.what()};
  } catch (const WorkerLost& e) {
    return {"lost", "taskfarm::WorkerLost", e.what()};
  } catch (const Cancelled& e) {
    return {"cancelled", "taskfarm::Cancelled", e.what()};
  } catch (const std::exception& e) {
    return {"failed", demangle(typeid(e).name()), e.what()};
  } catch (...) {
    return {"failed", "unknown", "a non-standard exception"};
  }
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

struct JobReport {
  std::string name;
  std::string task;
  std::size_t total = 0, ok = 0, failed = 0, timeout = 0, lost = 0, cancelled = 0;
  double wall_s = 0;
  double busy_s = 0;
  std::string extra;                          // the task's own summary line
  std::vector<std::string> first_failures;    // "#3 std::runtime_error: boom"
};

constexpr std::size_t kFailuresShown = 3;

JobReport run_job(Pool& pool, const JobSpec& job, taskfarm::detail::BatchBuilder inputs, ResultSink& sink,
                  ResultOrder order) {
  JobReport rep;
  rep.name = job.name;
  rep.task = job.task;
  rep.total = job.inputs.size();
  std::vector<json> values;  // for the task's summary
  const std::string job_field = "{\"job\":" + dump(job.name) + ",\"index\":";

  // Outcomes are written as they land: the batch is observable and its listener
  // (run on the pool's dispatcher thread, so it only queues the index) wakes
  // this thread. Input order holds back items until all before them are done.
  struct Landed {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::size_t> done;  // indices completed and not yet taken
  };
  auto landed = std::make_shared<Landed>();
  const auto t0 = Clock::now();
  const auto batch = pool.run_batch(job.task, std::move(inputs), MapOptions{job.chunksize}, true);
  auto emit = [&](std::size_t i) {
    const auto& o = batch->outcome(i);
    std::string line = job_field + std::to_string(i) + ",\"input\":" + dump(job.inputs[i]);
    std::optional<ErrorInfo> err;
    if (o.ok) {
      try {
        json v = job.adapter->decode(o.value);
        line += ",\"status\":\"ok\",\"value\":" + dump(v);
        if (job.adapter->summarize) values.push_back(std::move(v));
        ++rep.ok;
      } catch (...) {
        err = classify(std::current_exception());
      }
    } else {
      err = classify(o.error);
    }
    if (err) {
      const std::string status = err->status;
      line += ",\"status\":\"" + status + "\",\"error\":{\"type\":" + dump(err->type) +
              ",\"message\":" + dump(err->message) + "}";
      if (status == "timeout")
        ++rep.timeout;
      else if (status == "lost")
        ++rep.lost;
      else if (status == "cancelled")
        ++rep.cancelled;
      else
        ++rep.failed;
      if (rep.first_failures.size() < kFailuresShown)
        rep.first_failures.push_back("#" + std::to_string(i) + " " + status + ": " + err->type + ": " +
                                     err->message);
    }
    line += ",\"attempts\":" + std::to_string(o.attempts);
    line += ",\"worker\":" + (o.worker < 0 ? std::string("null") : std::to_string(o.worker));
    line += ",\"seconds\":" + fixed(static_cast<double>(o.duration_ns) / 1e9, 6) + "}";
    rep.busy_s += static_cast<double>(o.duration_ns) / 1e9;
    sink.add_line(line);
  };

  const bool listening = batch->add_listener([landed](std::size_t i) {
    {
      std::lock_guard lock(landed->mu);
      landed->done.push_back(i);
    }
    landed->cv.notify_one();
  });
  if (!listening) throw Error("internal error: the pool returned a batch that cannot be observed");

  const std::size_t n = batch->size();
  std::vector<bool> ready(order == ResultOrder::input ? n : 0);
  std::size_t next = 0;     // input order: the next index to write
  std::size_t written = 0;
  std::vector<std::size_t> taken;
  while (written < n) {
    {
      std::unique_lock lock(landed->mu);
      landed->cv.wait(lock, [&] { return !landed->done.empty(); });
      taken.swap(landed->done);
    }
    for (const std::size_t i : taken) {
      if (order == ResultOrder::completion) {
        emit(i);
        ++written;
      } else {
        ready[i] = true;
      }
    }
    taken.clear();
    if (order == ResultOrder::input)
      for (; next < n && ready[next]; ++next, ++written) emit(next);
    sink.flush();  // what landed so far is visible while the rest runs
  }
  rep.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (job.adapter->summarize) {
    try {
      rep.extra = job.adapter->summarize(values);
    } catch (const std::exception& e) {
      rep.extra = std::string("(summary failed: ") + e.what() + ")";
    }
  }
  return rep;
}

void print_report(const JobReport& r, std::size_t workers, std::ostream& log) {
  const std::size_t bad = r.total - r.ok;
  log << "taskfarm: job \"" << r.name << "\" (" << r.task << "): " << plural(r.total, "task") << ", " << r.ok
      << " ok";
  if (r.failed) log << ", " << r.failed << " failed";
  if (r.timeout) log << ", " << r.timeout << " timed out";
  if (r.lost) log << ", " << r.lost << " lost";
  if (r.cancelled) log << ", " << r.cancelled << " cancelled";
  if (bad == 0) log << ", 0 failed";
  log << " in " << fixed(r.wall_s, 2) << " s";
  if (r.wall_s > 0)
    log << " (" << fixed(static_cast<double>(r.total) / r.wall_s, 1) << " tasks/s, "
        << plural(workers, "worker") << ", busy " << fixed(r.busy_s / r.wall_s, 2) << "x)";
  log << "\n";
  if (!r.extra.empty()) log << "    " << r.extra << "\n";
  for (const auto& f : r.first_failures) log << "    " << f << "\n";
  if (bad > r.first_failures.size())
    log << "    ... and " << (bad - r.first_failures.size()) << " more (see the results)\n";
}

// Loads, validates and encodes everything; throws JobError.
struct Prepared {
  JobFile file;
  std::vector<taskfarm::detail::BatchBuilder> inputs;
};

Prepared prepare(const std::filesystem::path& file) {
  Prepared p;
  p.file = load_job_file(file);
  for (const auto& job : p.file.jobs) p.inputs.push_back(encode_job(job));
  return p;
}

void print_job_error(const std::filesystem::path& file, const std::string& what, std::ostream& log) {
  log << "taskfarm: " << file.string() << ": " << what << "\n";
}

std::string describe_pool(const PoolOptions& o) {
  std::string s = o.workers == 0 ? std::string("one worker per CPU") : plural(o.workers, "worker");
  s += ", transport " + std::string(to_string(o.transport)) + ", start " + std::string(to_string(o.start));
  const auto ms = o.task_timeout.count();
  s += ", task timeout ";
  if (ms == 0)
    s += "none";
  else if (ms % 1000 == 0)
    s += std::to_string(ms / 1000) + " s";
  else
    s += std::to_string(ms) + " ms";
  s += ", max retries " + std::to_string(o.max_retries);
  s += ", max tasks per child " +
       (o.max_tasks_per_child == 0 ? std::string("unlimited") : std::to_string(o.max_tasks_per_child));
  return s;
}

}  // namespace

int run_job_file(const std::filesystem::path& file, const RunOverrides& ov, std::ostream& log) {
  Prepared p;
  try {
    p = prepare(file);
  } catch (const JobError& e) {
    print_job_error(file, e.what(), log);
    return kExitUsage;
  } catch (const std::exception& e) {
    print_job_error(file, e.what(), log);
    return kExitUsage;
  }
  JobFile& jf = p.file;
  if (ov.workers) jf.pool.workers = *ov.workers;
  if (ov.transport) jf.pool.transport = *ov.transport;
  if (ov.output) {
    if (*ov.output == "-")
      jf.output.results.reset();
    else
      jf.output.results = std::filesystem::path(*ov.output);
  }

  std::unique_ptr<ResultSink> sink;
  try {
    sink = std::make_unique<ResultSink>(jf.output.results);
  } catch (const std::system_error& e) {
    log << "taskfarm: " << (ov.output ? std::string("--output") : file.string() + ": output.results") << ": "
        << e.what() << "\n";
    return kExitUsage;
  }

  PoolOptions opts = jf.pool;
  if (!jf.output.results) opts.initializer = &stdout_to_stderr_initializer();
  std::fflush(nullptr);  // workers are forked: nothing buffered may be written twice
  log.flush();

  std::vector<JobReport> reports;
  std::size_t workers = 0;
  try {
    Pool pool(opts);
    workers = pool.size();
    for (std::size_t j = 0; j < jf.jobs.size(); ++j)
      reports.push_back(run_job(pool, jf.jobs[j], std::move(p.inputs[j]), *sink, jf.output.order));
    pool.shutdown();
    sink->commit();
  } catch (const ConfigError& e) {
    log << "taskfarm: " << file.string() << ": pool: " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    log << "taskfarm: the run failed: " << e.what() << "\n";
    return kExitTasksFailed;
  }

  std::size_t total = 0, ok = 0;
  for (const auto& r : reports) {
    print_report(r, workers, log);
    total += r.total;
    ok += r.ok;
  }
  log << "taskfarm: " << plural(reports.size(), "job") << ", " << plural(total, "task") << ": " << ok
      << " ok, " << (total - ok) << " not ok; results in " << sink->describe() << "\n";
  return ok == total ? kExitOk : kExitTasksFailed;
}

int validate_job_file(const std::filesystem::path& file, std::ostream& out, std::ostream& log) {
  Prepared p;
  try {
    p = prepare(file);
  } catch (const std::exception& e) {
    print_job_error(file, e.what(), log);
    return kExitUsage;
  }
  std::size_t total = 0;
  for (const auto& job : p.file.jobs) total += job.inputs.size();
  out << file.string() << ": valid: " << plural(p.file.jobs.size(), "job") << ", " << plural(total, "task")
      << "\n";
  out << "  pool: " << describe_pool(p.file.pool) << "\n";
  for (const auto& job : p.file.jobs) {
    out << "  job \"" << job.name << "\": task " << job.task << " x " << job.inputs.size() << " inputs, chunksize "
        << (job.chunksize == 0 ? std::string("auto") : std::to_string(job.chunksize)) << "\n";
  }
  out << "  results: "
      << (p.file.output.results ? p.file.output.results->string() : std::string("standard output")) << " ("
      << (p.file.output.order == ResultOrder::input ? "input" : "completion") << " order)\n";
  return kExitOk;
}

}  // namespace taskfarm::cli
