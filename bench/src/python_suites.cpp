// The Python baselines: bench/python/pool_baseline.py run in a child process.

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine.hpp"

extern char** environ;

namespace taskfarm::bench::detail {

namespace {

// Runs argv with stdout captured (stderr passes through). Returns the exit status
// (or -1 with `error` set when it could not start).
int capture(const std::vector<std::string>& args, std::string& out, std::string& error) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    error = std::strerror(errno);
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(p[1]);
  if (rc != 0) {
    ::close(p[0]);
    error = args[0] + ": " + std::strerror(rc);
    return -1;
  }
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) break;
  }
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// A file that removes itself.
struct TempFile {
  std::string path;
  ~TempFile() {
    if (!path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void run_python_suites(Context& ctx) {
  const auto& o = ctx.opt;
  auto& machine = ctx.report.machine;
  const bool pool = ctx.wants("pool"), start = ctx.wants("startup");
  if (!o.python) {
    machine.python = "not run (--no-python)";
    return;
  }
  if (!pool && !start) {
    machine.python = "not run (no pool or startup suite)";
    return;
  }
  std::string version, err;
  if (capture({o.python_exe, "-c", "import sys; print(sys.version.split()[0])"}, version, err) != 0) {
    machine.python = "unavailable (" + (err.empty() ? o.python_exe + " failed" : err) + ")";
    ctx.warn("no Python baselines: " + machine.python);
    return;
  }
  while (!version.empty() && (version.back() == '\n' || version.back() == '\r')) version.pop_back();
  machine.python = "Python " + version;

  TempFile tmp;
  std::string script = o.python_script.string();
  if (script.empty()) {
    char name[] = "/tmp/taskfarm-bench-XXXXXX.py";
    const int fd = ::mkstemps(name, 3);
    if (fd < 0) throw std::runtime_error(std::string("mkstemps: ") + std::strerror(errno));
    ::close(fd);
    tmp.path = name;
    std::ofstream(tmp.path) << kPoolBaselinePy;
    script = tmp.path;
  }
  std::vector<std::string> args{o.python_exe, script, "--json",
                                "--tasks", std::to_string(o.pool_tasks),
                                "--repeats", std::to_string(o.repeats),
                                "--workers", std::to_string(o.workers),
                                "--submit-tasks", std::to_string(o.submit_tasks),
                                "--payload-tasks", std::to_string(o.payload_tasks),
                                "--payload-bytes", std::to_string(o.payload_bytes),
                                "--start-repeats", std::to_string(start ? o.start_repeats : 0)};
  if (!pool) args.push_back("--no-rates");
  if (!o.spawn) args.push_back("--no-spawn");
  ctx.progress("python: " + machine.python + " multiprocessing baselines");
  ctx.suite_started("python");
  std::string out;
  const int rc = capture(args, out, err);
  if (rc != 0) {
    ctx.warn("the Python baselines failed (exit " + std::to_string(rc) + (err.empty() ? "" : ", " + err) + ")");
    return;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(out);
  } catch (const std::exception& e) {
    ctx.warn(std::string("the Python baselines printed no valid JSON: ") + e.what());
    return;
  }
  // name in the script -> how it is recorded
  struct Map {
    const char* key;
    const char* suite;
    const char* subject;
    const char* metric;
    const char* chunking;
    const char* start;
  };
  static const Map maps[] = {
      {"map_noop_chunk1", "pool", "Python Pool", "map_noop_chunk1", "1", ""},
      {"map_noop_auto", "pool", "Python Pool", "map_noop_auto", "auto", ""},
      {"executor_submit", "pool", "Python ProcessPoolExecutor", "submit_get", "", ""},
      {"map_payload", "pool", "Python Pool", "map_payload", "1", ""},
      {"start_fork", "startup", "Python Pool", "start_to_first_result", "", "fork"},
      {"shutdown_fork", "startup", "Python Pool", "shutdown", "", "fork"},
      {"start_spawn", "startup", "Python Pool", "start_to_first_result", "", "spawn"},
      {"shutdown_spawn", "startup", "Python Pool", "shutdown", "", "spawn"},
  };
  const auto& w = j.value("workloads", nlohmann::json::object());
  for (const auto& m : maps) {
    if (!w.contains(m.key)) continue;
    const auto& x = w[m.key];
    const bool is_start = std::string(m.suite) == "startup";
    auto rec = make_record(m.suite, "python", m.subject, "", m.metric, is_start ? "ms" : "tasks/s", !is_start);
    rec.chunking = m.chunking;
    rec.start = m.start;
    rec.workers = o.workers;
    const double tasks = x.value("tasks", 1.0);
    rec.samples_per_run = static_cast<std::uint64_t>(tasks);
    if (std::string(m.metric) == "map_payload") rec.payload_bytes = o.payload_bytes;
    for (double s : x.at("seconds")) rec.runs.push_back(is_start ? s * 1e3 : tasks / s);
    if (!rec.runs.empty()) ctx.add(std::move(rec));
  }
}

}  // namespace taskfarm::bench::detail
