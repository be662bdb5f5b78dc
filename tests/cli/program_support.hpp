#pragma once
// End-to-end test support: runs a real program (taskfarm, or the custom runner
// example) on job files in a temporary directory.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/test_support.hpp"

extern char** environ;

namespace taskfarm::test {

namespace fs = std::filesystem;
using nlohmann::json;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
  // The program's own peak resident memory after exec (VmHWM, sampled every
  // few ms while it ran). Not ru_maxrss: that also holds the peak of this test
  // process, whose memory the spawned child shared until its exec.
  long max_rss_kb = 0;
};

inline std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every line of a JSON Lines text, parsed; a line that does not parse fails
// the test (and is skipped).
inline std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::parse_error& e) {
      ADD_FAILURE() << "a result line does not parse: " << e.what() << "\n" << line.substr(0, 200);
    }
  }
  return out;
}

// The rows of a joblog (without its header), split on tabs.
inline std::vector<std::vector<std::string>> joblog_rows(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(slurp(p));
  std::string line;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      header = false;
      continue;
    }
    std::vector<std::string> cols;
    std::size_t start = 0;
    for (;;) {
      const auto tab = line.find('\t', start);
      cols.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
      if (tab == std::string::npos) break;
      start = tab + 1;
    }
    rows.push_back(std::move(cols));
  }
  return rows;
}

// Joblog columns by name.
enum JoblogColumn { kSeq = 0, kCommand = 8, kJob = 9, kIndex = 10, kStatus = 11, kHash = 12, kColumns = 13 };

class Program : public LeakCheck {
 protected:
  void SetUp() override {
    LeakCheck::SetUp();
    std::string tmpl = (fs::temp_directory_path() / "taskfarm-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    LeakCheck::TearDown();
  }

  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }

  // Starts `exe` with `args` (stdout, stderr to files in the directory);
  // returns its pid (0 on failure).
  pid_t start(const std::vector<std::string>& args, const std::string& exe = TASKFARM_EXE) {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    std::vector<std::string> all{exe};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (stdin_fd_ >= 0)
      posix_spawn_file_actions_adddup2(&fa, stdin_fd_, STDIN_FILENO);
    else
      posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, exe.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      ADD_FAILURE() << "cannot start " << exe;
      return 0;
    }
    return pid;
  }

  // Waits for a started program; collects its outputs.
  Outcome finish(pid_t pid) {
    Outcome o;
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR)) break;
      o.max_rss_kb = std::max(o.max_rss_kb, peak_rss_kb(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
    }
    o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    o.out = slurp(dir_ / "stdout.txt");
    o.err = slurp(dir_ / "stderr.txt");
    fs::remove(dir_ / "stdout.txt");
    fs::remove(dir_ / "stderr.txt");
    return o;
  }

  Outcome run(const std::vector<std::string>& args, const std::string& exe = TASKFARM_EXE) {
    const pid_t pid = start(args, exe);
    if (pid == 0) return {};
    return finish(pid);
  }

  // Waits (bounded: 60 s) until `ready()`; false if it never was.
  static bool eventually(const std::function<bool()>& ready) {
    for (int i = 0; i < 6000; ++i) {
      if (ready()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Waits for a started program, at most 60 s; then kills it (SIGKILL) and
  // fails the test, so that a hang ends.
  Outcome finish_within_a_minute(pid_t pid) {
    const bool exited = eventually([&] {
      siginfo_t info{};
      return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
    });
    if (!exited) {
      ADD_FAILURE() << "the program did not exit within a minute: killed";
      ::kill(pid, SIGKILL);
    }
    return finish(pid);
  }

  // VmHWM of a live process, in KiB (0 once it is gone).
  static long peak_rss_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
    return 0;
  }

  // Complete lines in a file (a line counts once its '\n' is there), read in
  // pieces: a results file can be hundreds of MB.
  static std::size_t lines_in(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::vector<char> buf(1 << 16);
    std::size_t n = 0;
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      n += static_cast<std::size_t>(std::count(buf.data(), buf.data() + in.gcount(), '\n'));
    }
    return n;
  }

  fs::path dir_;
  int stdin_fd_ = -1;  // the started program's standard input (-1: /dev/null)
};

}  // namespace taskfarm::test
