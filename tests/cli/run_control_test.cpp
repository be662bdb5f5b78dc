// Controlling a run, end to end: Ctrl-C (once: finish what runs; twice: kill),
// --resume and --resume-failed, halt policies, exec failures through the
// program, output integrity, streaming in bounded memory. Tests wait for
// states (lines in a file), never for durations.

#include <dirent.h>
#include <sys/stat.h>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "program_support.hpp"

namespace {

using namespace taskfarm::test;

class RunControl : public Program {
 protected:
  // index -> number of result lines for it, in one job
  static std::map<std::uint64_t, int> indices(const std::vector<json>& lines, const std::string& job = "") {
    std::map<std::uint64_t, int> out;
    for (const auto& l : lines)
      if (job.empty() || l["job"] == job) ++out[l["index"].get<std::uint64_t>()];
    return out;
  }

  // True when process `pid` has `path` open.
  static bool has_open(pid_t pid, const fs::path& path) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
      std::error_code ec2;
      if (fs::read_symlink(e.path(), ec2) == path) return true;
    }
    return false;
  }

  // A pipe holding `text` (closed for writing); the started program reads it.
  void stdin_from_pipe(const std::string& text) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    ASSERT_LE(text.size(), 65536u);  // fits in the pipe
    ASSERT_EQ(::write(fds[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fds[1]);
    stdin_fd_ = fds[0];
  }
  void TearDown() override {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    Program::TearDown();
  }

  // Processes whose command line contains `marker`.
  static std::vector<pid_t> processes_with(const std::string& marker) {
    std::vector<pid_t> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (const dirent* e = ::readdir(d)) {
      const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
      if (pid <= 0) continue;
      std::string cmd = slurp(fs::path("/proc") / e->d_name / "cmdline");
      std::replace(cmd.begin(), cmd.end(), '\0', ' ');
      const std::string stat = slurp(fs::path("/proc") / e->d_name / "stat");
      const auto close = stat.rfind(')');
      const bool zombie = close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z';
      if (!zombie && cmd.find(marker) != std::string::npos) out.push_back(pid);
    }
    ::closedir(d);
    return out;
  }

  // True once no process has `marker` in its command line (bounded: 10 s).
  // Whatever is left is killed, so that a failing test leaks nothing.
  static bool none_left(const std::string& marker) {
    for (int i = 0; i < 1000; ++i) {
      if (processes_with(marker).empty()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (const pid_t p : processes_with(marker)) ::kill(p, SIGKILL);
    return false;
  }

  static pid_t parent_of(pid_t pid) {
    const std::string stat = slurp(fs::path("/proc") / std::to_string(pid) / "stat");
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream in(stat.substr(close + 2));
    char state = 0;
    long ppid = 0;
    in >> state >> ppid;
    return static_cast<pid_t>(ppid);
  }

  // A job of `n` shell commands that each start two `sleep <marker>` children
  // (the shell's command line holds the marker too: three processes a task).
  std::string sleepers(const std::string& marker, int n, const std::string& pool) {
    return R"({"pool": )" + pool + R"(,
      "jobs": [{"name": "sleepers", "task": "exec", "inputs": {"range": {"stop": )" + std::to_string(n) + R"(}},
                "args": "sleep )" + marker + " & sleep " + marker + R"(; echo done", "chunksize": 1}],
      "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"}})";
  }
};

// Joblog columns beyond those of program_support.hpp.
enum { kStart = 2, kRuntime = 3, kSend = 4, kReceive = 5, kExitval = 6, kSignal = 7 };

TEST_F(RunControl, CtrlCFinishesRunningTasksThenResumeRunsExactlyTheRest) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "naps", "task": "sleep_ms", "inputs": {"range": {"stop": 60}}, "args": 150, "chunksize": 1}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"}})");
  const fs::path results = dir_ / "out/r.jsonl", joblog = dir_ / "out/j.tsv";
  const pid_t pid = start({"run", job.string()});
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(eventually([&] { return lines_in(results) >= 4; }));
  ::kill(pid, SIGINT);
  const Outcome first = finish(pid);
  EXPECT_EQ(first.exit_code, 130) << first.err;
  EXPECT_NE(first.err.find("interrupted (SIGINT)"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find(" run --resume " + job.string() + "` runs what is left"), std::string::npos) << first.err;

  // What ran is in both files, whole, once; what did not is in neither.
  const auto done = indices(parse_lines(slurp(results)));
  ASSERT_GE(done.size(), 4u);
  ASSERT_LT(done.size(), 60u) << "the interrupt came too late to test anything";
  for (const auto& [i, n] : done) EXPECT_EQ(n, 1) << "index " << i;
  for (const auto& l : parse_lines(slurp(results))) EXPECT_EQ(l["status"], "ok");  // running tasks finished
  const auto rows = joblog_rows(joblog);
  EXPECT_EQ(rows.size(), done.size());
  for (const auto& r : rows) {
    ASSERT_EQ(r.size(), static_cast<std::size_t>(kColumns));
    EXPECT_EQ(r[kStatus], "ok");
    EXPECT_TRUE(done.count(std::stoull(r[kIndex])));
  }

  const Outcome second = run({"run", job.string(), "--resume"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("skipped " + std::to_string(done.size()) + " inputs done in an earlier run"),
            std::string::npos)
      << second.err;
  EXPECT_NE(second.err.find(std::to_string(60 - done.size()) + " tasks, " + std::to_string(60 - done.size()) + " ok"),
            std::string::npos)
      << second.err;
  const auto all = indices(parse_lines(slurp(results)));
  ASSERT_EQ(all.size(), 60u);
  for (const auto& [i, n] : all) EXPECT_EQ(n, 1) << "index " << i << " ran twice or never";
  EXPECT_EQ(joblog_rows(joblog).size(), 60u);

  // A third --resume has nothing left to do.
  const Outcome third = run({"run", job.string(), "--resume"});
  EXPECT_EQ(third.exit_code, 0) << third.err;
  EXPECT_NE(third.err.find("0 tasks"), std::string::npos) << third.err;
  EXPECT_EQ(lines_in(results), 60u);
}

TEST_F(RunControl, ASecondCtrlCKillsTheWorkers) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "long", "task": "exec", "inputs": {"range": {"stop": 6}},
              "args": ["sleep", "61.2345"]}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"}})");
  const pid_t pid = start({"run", job.string()});
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(eventually([&] { return processes_with("sleep 61.2345").size() >= 2; }));
  ::kill(pid, SIGINT);
  ASSERT_TRUE(eventually([&] { return slurp(dir_ / "stderr.txt").find("waiting for the running tasks") != std::string::npos; }));
  ::kill(pid, SIGINT);
  const Outcome o = finish(pid);
  EXPECT_EQ(o.exit_code, 130) << o.err;
  EXPECT_NE(o.err.find("killing the workers"), std::string::npos) << o.err;
  const auto lines = parse_lines(slurp(dir_ / "out/r.jsonl"));
  ASSERT_EQ(lines.size(), 2u);  // the two that were running; the rest never started
  for (const auto& l : lines) {
    EXPECT_EQ(l["status"], "cancelled");
    EXPECT_EQ(l["attempts"], 1);
  }
  for (const auto& r : joblog_rows(dir_ / "out/j.tsv")) EXPECT_EQ(r[kStatus], "cancelled");
  // The commands died with their workers.
  EXPECT_TRUE(eventually([&] { return processes_with("sleep 61.2345").empty(); }));
}

// After the first Ctrl-C the progress line says what is left, with no rate and
// no ETA (nothing new starts, so neither would mean anything).
TEST_F(RunControl, AfterCtrlCTheProgressLineSaysItIsFinishing) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "naps", "task": "exec", "inputs": {"range": {"stop": 6}},
              "args": ["sleep", "62.3456"]}],
    "output": {"results": "out/r.jsonl"}})");
  const pid_t pid = start({"run", job.string(), "--progress", "always"});
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(eventually([&] { return processes_with("sleep 62.3456").size() >= 2; }));
  ::kill(pid, SIGINT);
  const std::string finishing = "\rnaps: 0/6 finishing 2 running tasks (Ctrl-C again to kill them)";
  ASSERT_TRUE(eventually([&] { return slurp(dir_ / "stderr.txt").find(finishing) != std::string::npos; }))
      << slurp(dir_ / "stderr.txt");
  ::kill(pid, SIGINT);
  const Outcome o = finish(pid);
  EXPECT_EQ(o.exit_code, 130) << o.err;
  const std::string after = o.err.substr(o.err.find("waiting for the running tasks"));
  EXPECT_EQ(after.find("ETA"), std::string::npos) << after;
  EXPECT_TRUE(eventually([&] { return processes_with("sleep 62.3456").empty(); }));
}

TEST_F(RunControl, ResumeFailedRunsFailuresAgainAndChangedInputsCountAsNotRun) {
  // Each task fails the first time it runs and succeeds after (a marker file).
  const std::string tmpl = R"({"pool": {"workers": 2},
    "jobs": [{"name": "flaky", "task": "exec", "inputs": {"list": LIST},
              "args": {"argv": ["if [ -e \"m-$1\" ]; then echo second; else touch \"m-$1\"; [ \"$1\" != bad ]; fi", "{}"],
                       "shell": true}}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"}})";
  auto job_with = [&](const std::string& list) {
    std::string t = tmpl;
    t.replace(t.find("LIST"), 4, list);
    return write("job.json", t);
  };
  fs::path job = job_with(R"(["a", "bad", "c"])");
  const Outcome first = run({"run", job.string()});
  EXPECT_EQ(first.exit_code, 1) << first.err;
  const fs::path results = dir_ / "out/r.jsonl";
  auto lines = parse_lines(slurp(results));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[1]["status"], "failed");
  EXPECT_EQ(lines[1]["error"]["type"], "exec.exit");

  // --resume: the failure stays a failure (exit 1), nothing runs.
  const Outcome resumed = run({"run", job.string(), "--resume"});
  EXPECT_EQ(resumed.exit_code, 1) << resumed.err;
  EXPECT_NE(resumed.err.find("1 failed: --resume-failed runs them again"), std::string::npos) << resumed.err;
  EXPECT_EQ(lines_in(results), 3u);

  // --resume-failed: runs only "bad", which now succeeds.
  const Outcome refailed = run({"run", job.string(), "--resume-failed"});
  EXPECT_EQ(refailed.exit_code, 0) << refailed.err;
  lines = parse_lines(slurp(results));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[3]["index"], 1);
  EXPECT_EQ(lines[3]["status"], "ok");
  EXPECT_EQ(lines[3]["value"]["stdout"], "second\n");

  // An input whose value changed since it ran counts as not run.
  job = job_with(R"(["a", "bad", "z"])");
  const Outcome changed = run({"run", job.string(), "--resume"});
  EXPECT_EQ(changed.exit_code, 0) << changed.err;
  EXPECT_NE(changed.err.find("1 task, 1 ok"), std::string::npos) << changed.err;
  lines = parse_lines(slurp(results));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[4]["index"], 2);
  EXPECT_EQ(lines[4]["input"], "z");
  // The joblog keeps the history; its last line per input is what counts.
  const auto rows = joblog_rows(dir_ / "out/j.tsv");
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_NE(rows[4][kHash], rows[2][kHash]);
}

TEST_F(RunControl, HaltSoonStartsNothingNewAndLetsRunningTasksFinish) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "soon", "task": "exec", "inputs": {"range": {"stop": 500}},
              "args": {"argv": ["sleep 0.02; [ \"$1\" != 5 ]", "{}"], "shell": true},
              "on_error": {"halt": "soon", "fail": 1}},
             {"name": "after", "task": "echo", "inputs": {"list": [1]}}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"}})");
  const Outcome o = run({"run", job.string()});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_NE(o.err.find("halted (soon) after 1 failure"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("job \"after\" (echo): not started"), std::string::npos) << o.err;
  const auto lines = parse_lines(slurp(dir_ / "out/r.jsonl"));
  EXPECT_LT(lines.size(), 500u);
  int failed = 0;
  for (const auto& l : lines) {
    EXPECT_EQ(l["job"], "soon");
    EXPECT_NE(l["status"], "cancelled");  // soon: what ran finished
    if (l["status"] == "failed") ++failed;
  }
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(joblog_rows(dir_ / "out/j.tsv").size(), lines.size());
}

TEST_F(RunControl, HaltNowKillsRunningTasks) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "now", "task": "exec",
              "inputs": {"list": [["sh", "-c", "sleep 0.3; exit 1"], ["sleep", "62.345"], ["sleep", "62.345"],
                                  ["sleep", "62.345"]]},
              "chunksize": 1,
              "on_error": {"halt": "now"}}],
    "output": {"results": "out/r.jsonl"}})");
  const Outcome o = run({"run", job.string()});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_NE(o.err.find("halted (now) after 1 failure"), std::string::npos) << o.err;
  // The failure, the task killed while running, and perhaps the next one (the
  // pool may start it on the freed worker before the failure is seen); not all four.
  const auto lines = parse_lines(slurp(dir_ / "out/r.jsonl"));
  ASSERT_GE(lines.size(), 2u) << o.err;
  ASSERT_LE(lines.size(), 3u) << o.err;
  EXPECT_EQ(lines[0]["index"], 0);
  EXPECT_EQ(lines[0]["status"], "failed");
  for (std::size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["index"], i);
    EXPECT_EQ(lines[i]["status"], "cancelled");  // killed, not finished
    EXPECT_EQ(lines[i]["error"]["type"], "taskfarm::Cancelled");
  }
  EXPECT_TRUE(eventually([&] { return processes_with("sleep 62.345").empty(); }));
}

TEST_F(RunControl, HaltOnAPercentageOfTheInputs) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 1},
    "jobs": [{"task": "exec", "inputs": {"lines": "codes.txt"}, "args": ["sh", "-c", "exit {}"], "chunksize": 1,
              "on_error": {"halt": "soon", "fail": "20%"}}]})");
  write("codes.txt", "0\n1\n0\n1\n0\n0\n0\n0\n0\n0\n1\n0\n0\n0\n0\n0\n0\n0\n0\n0\n");  // 20 lines: 20% = 4 failures
  const Outcome o = run({"run", job.string()});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.err.find("halted"), std::string::npos) << o.err;  // only 3 failures
  write("codes.txt", "1\n1\n1\n1\n0\n0\n0\n0\n0\n0\n0\n0\n0\n0\n0\n0\n0\n0\n0\n0\n");
  const Outcome h = run({"run", job.string()});
  EXPECT_EQ(h.exit_code, 1);
  EXPECT_NE(h.err.find("halted (soon) after 4 failures (on_error.fail = 20.0% = 4)"), std::string::npos) << h.err;
}

TEST_F(RunControl, ExecTimeoutsSignalsAndExitCodesThroughTheProgram) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "x", "task": "exec", "inputs": {"list": [
        {"argv": ["sh", "-c", "echo started; sleep 60"], "timeout": "300ms"},
        {"argv": ["sh", "-c", "kill -TERM $$"]},
        {"argv": ["sh", "-c", "echo oops >&2; exit 7"]},
        {"argv": ["no-such-command-taskfarm"]},
        {"argv": ["cat"], "stdin": "fed through stdin"},
        {"argv": ["sh", "-c", "pwd"], "cwd": "sub"}]}}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"}})");
  fs::create_directories(dir_ / "sub");
  const Outcome o = run({"run", job.string()});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  const auto lines = parse_lines(slurp(dir_ / "out/r.jsonl"));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0]["status"], "timeout");
  EXPECT_EQ(lines[0]["error"]["type"], "exec.timeout");
  EXPECT_EQ(lines[0]["value"]["stdout"], "started\n");  // what it said before it was killed is kept
  EXPECT_EQ(lines[0]["value"]["timed_out"], true);
  EXPECT_EQ(lines[1]["status"], "failed");
  EXPECT_EQ(lines[1]["error"]["type"], "exec.signal");
  EXPECT_EQ(lines[1]["error"]["message"], "killed by SIGTERM");
  EXPECT_EQ(lines[2]["error"]["type"], "exec.exit");
  EXPECT_EQ(lines[2]["error"]["message"], "exited with code 7: oops");
  EXPECT_EQ(lines[2]["value"]["stderr"], "oops\n");
  EXPECT_EQ(lines[3]["error"]["type"], "exec.spawn");
  EXPECT_EQ(lines[4]["status"], "ok");
  EXPECT_EQ(lines[4]["value"]["stdout"], "fed through stdin");
  EXPECT_EQ(lines[5]["value"]["stdout"], (fs::canonical(dir_) / "sub").string() + "\n");  // relative to the job file
  // GNU parallel's columns: Exitval and Signal of each command.
  const auto rows = joblog_rows(dir_ / "out/j.tsv");
  ASSERT_EQ(rows.size(), 6u);
  // Killed commands have no exit code: Exitval -1 and the signal. Its own
  // timeout kills with SIGKILL, after it ran 300 ms.
  EXPECT_EQ(rows[0][kExitval], "-1");
  EXPECT_EQ(rows[0][kSignal], std::to_string(SIGKILL));
  EXPECT_GE(std::stod(rows[0][kRuntime]), 0.3);
  EXPECT_EQ(rows[0][kSend], "0");  // no stdin
  EXPECT_EQ(rows[0][kReceive], "8");  // "started\n"
  EXPECT_NEAR(lines[0]["seconds"].get<double>(), std::stod(rows[0][kRuntime]), 0.001);
  EXPECT_EQ(rows[1][kExitval], "-1");
  EXPECT_EQ(rows[1][7], std::to_string(SIGTERM));
  EXPECT_EQ(rows[2][6], "7");
  EXPECT_EQ(rows[4][4], "17");  // Send: the bytes of stdin
  EXPECT_EQ(rows[4][5], "17");  // Receive: the bytes of stdout
  EXPECT_EQ(rows[2][kCommand], "sh -c 'echo oops >&2; exit 7'");
}

// No command outlives taskfarm: whatever ends a task ends everything its
// command started (here a shell's children), however the task ends.

TEST_F(RunControl, ThePoolsTaskTimeoutEndsTheCommandsChildrenAndTheJoblogSaysHowLongItRan) {
  const std::string marker = "30.1231";
  const fs::path job = write("job.json", sleepers(marker, 1, R"({"workers": 1, "max_retries": 0})"));
  const double before = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const Outcome o = run({"run", job.string(), "--timeout", "1s"});
  const double after = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_TRUE(none_left("sleep " + marker)) << "a child of the timed-out command outlived it";
  const auto lines = parse_lines(slurp(dir_ / "out/r.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["status"], "timeout");
  const auto rows = joblog_rows(dir_ / "out/j.tsv");
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_EQ(rows[0].size(), static_cast<std::size_t>(kColumns));
  // Started when the task did, ran until the kill at the timeout, killed by SIGKILL.
  const double start = std::stod(rows[0][kStart]), runtime = std::stod(rows[0][kRuntime]);
  EXPECT_GE(runtime, 0.999);
  EXPECT_LT(runtime, 30.0);
  EXPECT_GE(start, before - 0.001);
  EXPECT_LE(start + runtime, after + 0.001);
  EXPECT_EQ(rows[0][kExitval], "-1");
  EXPECT_EQ(rows[0][kSignal], std::to_string(SIGKILL));
  EXPECT_EQ(rows[0][kSend], "0");
  EXPECT_EQ(rows[0][kStatus], "timeout");
  EXPECT_NEAR(lines[0]["seconds"].get<double>(), runtime, 0.001);
}

TEST_F(RunControl, HaltNowEndsTheChildrenOfTheCommandsItKills) {
  const std::string marker = "30.1232";
  // The failure waits for the file "go", written once the sleepers run.
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "now", "task": "exec", "chunksize": 1, "on_error": {"halt": "now"},
              "inputs": {"list": ["while [ ! -e go ]; do sleep 0.02; done; exit 1",
                                  "sleep )" + marker + " & sleep " + marker + R"(; echo done"]}}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"}})");
  const pid_t pid = start({"run", job.string()});
  ASSERT_NE(pid, 0);
  const bool running = eventually([&] { return processes_with("sleep " + marker).size() >= 3; });
  write("go", "");
  const Outcome o = finish(pid);
  EXPECT_TRUE(running);
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_NE(o.err.find("halted (now)"), std::string::npos) << o.err;
  EXPECT_TRUE(none_left("sleep " + marker)) << "a child of a command killed by halt now outlived it";
}

TEST_F(RunControl, ASecondCtrlCEndsTheCommandsChildrenAndTheirRowsSayKilled) {
  const std::string marker = "30.1233";
  const fs::path job = write("job.json", sleepers(marker, 4, R"({"workers": 2})"));
  const pid_t pid = start({"run", job.string()});
  ASSERT_NE(pid, 0);
  const bool running = eventually([&] { return processes_with("sleep " + marker).size() >= 6; });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // so that each has run a measurable time
  ::kill(pid, SIGINT);
  const bool asked = eventually([&] { return slurp(dir_ / "stderr.txt").find("waiting for the running tasks") != std::string::npos; });
  ::kill(pid, SIGINT);
  const Outcome o = finish(pid);
  EXPECT_TRUE(running && asked) << o.err;
  EXPECT_EQ(o.exit_code, 130) << o.err;
  EXPECT_TRUE(none_left("sleep " + marker)) << "a child of a cancelled command outlived it";
  // Only the two running tasks have rows: killed, with the time they ran.
  const auto rows = joblog_rows(dir_ / "out/j.tsv");
  ASSERT_EQ(rows.size(), 2u);
  for (const auto& r : rows) {
    ASSERT_EQ(r.size(), static_cast<std::size_t>(kColumns));
    EXPECT_EQ(r[kStatus], "cancelled");
    EXPECT_EQ(r[kExitval], "-1");
    EXPECT_EQ(r[kSignal], std::to_string(SIGKILL));
    EXPECT_GE(std::stod(r[kRuntime]), 0.1);
  }
}

TEST_F(RunControl, AWorkerKilledWithSigkillTakesItsCommandsChildrenAlong) {
  const std::string marker = "30.1234";
  const fs::path job = write("job.json", sleepers(marker, 1, R"({"workers": 1, "max_retries": 0})"));
  const pid_t pid = start({"run", job.string()});
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(eventually([&] { return processes_with("sleep " + marker).size() >= 3; }));
  // The shell's parent is its guard, whose parent is the worker.
  pid_t shell = 0;
  for (const pid_t p : processes_with("sleep " + marker))
    if (slurp(fs::path("/proc") / std::to_string(p) / "comm").rfind("sh", 0) == 0) shell = p;
  const pid_t guard = shell ? parent_of(shell) : 0;
  const pid_t worker = guard ? parent_of(guard) : 0;
  EXPECT_GT(worker, 1);
  EXPECT_NE(worker, pid);
  if (worker > 1 && worker != pid) ::kill(worker, SIGKILL);
  const Outcome o = finish(pid);
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_TRUE(none_left("sleep " + marker)) << "a child of the killed worker's command outlived it";
  const auto lines = parse_lines(slurp(dir_ / "out/r.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["status"], "lost");
  const auto rows = joblog_rows(dir_ / "out/j.tsv");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][kExitval], "-1");
  EXPECT_EQ(rows[0][kSignal], std::to_string(SIGKILL));
}

TEST_F(RunControl, TaskfarmKilledWithSigkillLeavesNoCommandBehind) {
  const std::string marker = "30.1235";
  const fs::path job = write("job.json", sleepers(marker, 4, R"({"workers": 2})"));
  const pid_t pid = start({"run", job.string()});
  ASSERT_NE(pid, 0);
  const bool running = eventually([&] { return processes_with("sleep " + marker).size() >= 6; });
  ::kill(pid, SIGKILL);
  const Outcome o = finish(pid);
  EXPECT_TRUE(running);
  EXPECT_EQ(o.exit_code, 128 + SIGKILL);
  EXPECT_TRUE(none_left("sleep " + marker)) << "a command outlived taskfarm";
}

TEST_F(RunControl, JoblogSeqCountsAcrossJobsInInputOrder) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "a", "task": "echo", "inputs": {"range": {"stop": 3}}},
             {"name": "b", "task": "echo", "inputs": {"range": {"stop": 4}}}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv", "order": "completion"}})");
  const Outcome o = run({"run", job.string()});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  std::map<std::string, std::string> seq_of;  // "job/index" -> Seq
  for (const auto& r : joblog_rows(dir_ / "out/j.tsv")) seq_of[r[kJob] + "/" + r[kIndex]] = r[kSeq];
  EXPECT_EQ(seq_of, (std::map<std::string, std::string>{{"a/0", "1"}, {"a/1", "2"}, {"a/2", "3"}, {"b/0", "4"},
                                                        {"b/1", "5"}, {"b/2", "6"}, {"b/3", "7"}}));
}

TEST_F(RunControl, EveryLineIsWholeAfterCtrlCAndAfterKill9) {
  // Lines written before each stop (fewer under sanitizers, where a line costs more).
  constexpr std::size_t kLinesBeforeStopping = taskfarm::test::full_or_sanitized(20'000, 2'000);
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "many", "task": "echo", "inputs": {"range": {"stop": 3000000}},
              "args": {"n": "{}", "pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{}"}}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv", "order": "completion"}})");
  const fs::path results = dir_ / "out/r.jsonl";
  for (int sig : {SIGINT, SIGKILL}) {
    const pid_t pid = start({"run", job.string(), "--resume"});
    ASSERT_NE(pid, 0);
    const std::size_t before = lines_in(results);
    ASSERT_TRUE(eventually([&] { return lines_in(results) >= before + kLinesBeforeStopping; }));
    ::kill(pid, sig);
    const Outcome o = finish(pid);
    EXPECT_EQ(o.exit_code, 128 + sig) << o.err;
    const std::string text = slurp(results);
    if (sig == SIGINT) {
      ASSERT_FALSE(text.empty());
      EXPECT_EQ(text.back(), '\n');
      const auto lines = parse_lines(text);  // fails the test on any partial line
      EXPECT_EQ(lines.size(), lines_in(results));
      for (const auto& [i, n] : indices(lines)) ASSERT_EQ(n, 1) << "index " << i;
    }
  }
  // A kill -9 may tear the last line (it was killed inside a write); --resume
  // repairs it, and everything that ran is there, whole, once or (run again
  // after the kill) twice.
  const pid_t pid = start({"run", job.string(), "--resume"});
  ASSERT_NE(pid, 0);
  const std::size_t before = lines_in(results);
  ASSERT_TRUE(eventually([&] { return lines_in(results) > before; }));
  ::kill(pid, SIGINT);
  const Outcome o = finish(pid);
  EXPECT_EQ(o.exit_code, 130);
  const auto lines = parse_lines(slurp(results));
  EXPECT_EQ(lines.size(), lines_in(results));
  const auto rows = joblog_rows(dir_ / "out/j.tsv");
  std::set<std::uint64_t> logged;
  for (const auto& r : rows) {
    ASSERT_EQ(r.size(), static_cast<std::size_t>(kColumns));
    logged.insert(std::stoull(r[kIndex]));
  }
  const auto in_results = indices(lines);
  for (const auto i : logged) EXPECT_TRUE(in_results.count(i)) << "index " << i << " is logged but has no result";
}

TEST_F(RunControl, AMillionLineFileStreamsInBoundedMemory) {
  // The memory bound is only checked without sanitizers (see below); under them
  // (5-20x slower) 20 000 lines still run the whole path.
  constexpr int kLines = taskfarm::test::full_or_sanitized(1'000'000, 20'000);
  {
    std::ofstream f(dir_ / "big.txt");
    const std::string pad(60, 'p');
    for (int i = 0; i < kLines; ++i) f << "line-" << i << "-" << pad << "\n";
  }
  const fs::path job = write("job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "big", "task": "echo", "inputs": {"lines": "big.txt"}, "args": {"l": "{}", "i": "{#}"}}],
    "output": {"results": "out/r.jsonl"}})");
  const Outcome o = run({"run", job.string()});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(lines_in(dir_ / "out/r.jsonl"), static_cast<std::size_t>(kLines));
  // The inputs are ~70 MB and the results ~250 MB: holding either would show.
  // (Under AddressSanitizer freed memory is held in quarantine: no bound then.)
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_LT(o.max_rss_kb, 64 * 1024) << "taskfarm's peak memory for a streamed job";
#endif
}

TEST_F(RunControl, StandardInputIsReadExactlyOnce) {
  // Validation must not read a stream: every line is an input, once.
  for (const std::string& name : std::vector<std::string>{"-", "/dev/stdin"}) {
    for (const int count : {3, 1500}) {
      std::string text;
      for (int i = 1; i <= count; ++i) text += std::to_string(i) + "\n";
      const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"lines": ")" + name + R"("}}],
        "output": {"results": "r.jsonl"}})");
      stdin_from_pipe(text);
      const Outcome o = run({"run", job.string()});
      ::close(stdin_fd_);
      stdin_fd_ = -1;
      ASSERT_EQ(o.exit_code, 0) << name << "\n" << o.err;
      const auto lines = parse_lines(slurp(dir_ / "r.jsonl"));
      ASSERT_EQ(lines.size(), static_cast<std::size_t>(count)) << name;
      for (int i = 0; i < count; ++i) {
        EXPECT_EQ(lines[i]["index"], i) << name;
        EXPECT_EQ(lines[i]["input"], std::to_string(i + 1)) << name;
      }
    }
  }
}

TEST_F(RunControl, ValidateDoesNotReadAStream) {
  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"lines": "-"}}]})");
  stdin_from_pipe("a\nb\n");
  const Outcome o = run({"validate", job.string()});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("streamed from \"-\": not read now"), std::string::npos) << o.out;
  char buf[16];
  EXPECT_EQ(::read(stdin_fd_, buf, sizeof buf), 4);  // all still there
}

TEST_F(RunControl, ABadLineOfAStreamFailsAlone) {
  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"lines": {"file": "-", "json": true}}}],
    "output": {"results": "r.jsonl"}})");
  stdin_from_pipe("1\n{oops\n3");  // and a last line without '\n'
  const Outcome o = run({"run", job.string()});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  const auto lines = parse_lines(slurp(dir_ / "r.jsonl"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["value"], 1);
  EXPECT_EQ(lines[1]["error"]["type"], "taskfarm.input");
  EXPECT_NE(lines[1]["error"]["message"].get<std::string>().find("line 2 of \"-\""), std::string::npos) << lines[1];
  EXPECT_EQ(lines[2]["value"], 3);
}

TEST_F(RunControl, SigtermWhileAFifoHasNoWriterEndsTheRunPromptly) {
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"lines": "fifo"}}],
    "output": {"results": "r.jsonl", "joblog": "j.tsv"}})");
  const pid_t pid = start({"run", job.string()});
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(eventually([&] { return has_open(pid, fifo); }));  // opened (O_NONBLOCK): waiting for a writer
  ::kill(pid, SIGTERM);
  const Outcome o = finish_within_a_minute(pid);
  EXPECT_EQ(o.exit_code, 143) << o.err;
  EXPECT_NE(o.err.find("terminated (SIGTERM) while waiting for input (0 inputs read so far)"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("give it the same input again"), std::string::npos) << o.err;
}

TEST_F(RunControl, ResultsAreWrittenWhileAStreamWaitsForItsNextLine) {
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"lines": "fifo"}}],
    "output": {"results": "r.jsonl"}})");
  const pid_t pid = start({"run", job.string()});
  ASSERT_NE(pid, 0);
  int w = -1;  // O_NONBLOCK: ENXIO until the run has the FIFO open for reading
  ASSERT_TRUE(eventually([&] { return (w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0; }));
  ASSERT_EQ(::write(w, "a\n", 2), 2);
  // The first result is written while the writer holds back the second line.
  const bool first = eventually([&] { return lines_in(dir_ / "r.jsonl") == 1; });
  ASSERT_EQ(::write(w, "b\n", 2), 2);
  ::close(w);
  const Outcome o = finish_within_a_minute(pid);
  EXPECT_TRUE(first) << "no result before the second line came";
  EXPECT_EQ(o.exit_code, 0) << o.err;
  const auto lines = parse_lines(slurp(dir_ / "r.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["value"], "a");
  EXPECT_EQ(lines[1]["value"], "b");
}

TEST_F(RunControl, TheResumeHintKeepsTheOverridesAndResumesWhenPasted) {
  const fs::path job = write("job dir/job.json", R"({"pool": {"workers": 2},
    "jobs": [{"name": "naps", "task": "sleep_ms", "inputs": {"range": {"stop": 40}}, "args": 100, "chunksize": 1}],
    "output": {"results": "from-file.jsonl", "joblog": "from-file.tsv"}})");
  const fs::path results = dir_ / "out/r 2.jsonl", joblog = dir_ / "out/o2.tsv";
  const pid_t pid = start({"run", job.string(), "-o", results.string(), "--joblog", joblog.string()});
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(eventually([&] { return lines_in(results) >= 4; }));
  ::kill(pid, SIGINT);
  const Outcome first = finish(pid);
  ASSERT_EQ(first.exit_code, 130) << first.err;
  const auto at = first.err.find("`" TASKFARM_EXE " run --resume ");
  ASSERT_NE(at, std::string::npos) << first.err;
  const auto end = first.err.find("` runs what is left", at);
  ASSERT_NE(end, std::string::npos) << first.err;
  const std::string hint = first.err.substr(at + 1, end - at - 1);
  EXPECT_NE(hint.find("--joblog " + joblog.string()), std::string::npos) << hint;
  EXPECT_NE(hint.find("-o '" + results.string() + "'"), std::string::npos) << hint;

  const Outcome second = run({"-c", hint}, "/bin/sh");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("inputs done in an earlier run"), std::string::npos) << second.err;
  const auto all = indices(parse_lines(slurp(results)));
  ASSERT_EQ(all.size(), 40u);
  for (const auto& [i, n] : all) EXPECT_EQ(n, 1) << "index " << i;
  EXPECT_FALSE(fs::exists(dir_ / "job dir/from-file.jsonl"));
  EXPECT_FALSE(fs::exists(dir_ / "job dir/from-file.tsv"));
}

TEST_F(RunControl, AHaltedRunPrintsAResumeHint) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 1},
    "jobs": [{"task": "exec", "inputs": {"list": [1, 2, 3]}, "args": ["false"], "on_error": {"halt": "soon", "fail": 1}}],
    "output": {"results": "r.jsonl"}})");
  const Outcome o = run({"run", job.string(), "--joblog", (dir_ / "j.tsv").string()});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  EXPECT_NE(o.err.find("the run halted; `" TASKFARM_EXE " run --resume " + job.string() + " --joblog " +
                       (dir_ / "j.tsv").string() + "` runs what is left"),
            std::string::npos)
      << o.err;
}

TEST_F(RunControl, TheProgressLineCountsTheLinesOfAFile) {
  write("data.txt", "a\n\nb\nc\n");
  const fs::path job = write("job.json", R"({"jobs": [{"name": "l", "task": "echo", "inputs": {"lines": "data.txt"}}],
    "output": {"results": "r.jsonl"}})");
  const Outcome o = run({"run", job.string(), "--progress", "always"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.err.find("/3 ("), std::string::npos) << o.err;  // a total (and a percentage)
}

}  // namespace
