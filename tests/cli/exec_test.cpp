// run_command and the exec task: exit codes, signals, timeouts that kill the
// whole process group, stdin/stdout/stderr without deadlock, bounded output,
// a clean child (no inherited descriptors, default signal dispositions, empty
// mask, own process group), and every child reaped.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "support/test_support.hpp"
#include "taskfarm/cli/exec.hpp"
#include "taskfarm/cli/json_task.hpp"
#include "taskfarm/cli/resume_hint.hpp"

namespace {

using nlohmann::json;
using taskfarm::cli::ExecRequest;
using taskfarm::cli::ExecResult;
using taskfarm::cli::run_command;

ExecRequest sh(const std::string& script) {
  ExecRequest r;
  r.argv = {script};
  r.shell = true;
  return r;
}

// True once `pid` is gone or a zombie (bounded wait: a killed process may take
// a moment to be reaped by whoever inherited it).
bool dies(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    if (!std::getline(stat, text)) return true;
    const auto close = text.rfind(')');
    if (close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z') return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// True if `pid` is gone or a zombie now.
bool dies_now(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  if (!std::getline(stat, text)) return true;
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'Z';
}

class Exec : public taskfarm::test::LeakCheck {};

TEST_F(Exec, ExitCodeAndBothOutputs) {
  const ExecResult r = run_command(sh("echo out; echo err >&2; exit 3"));
  EXPECT_TRUE(r.spawn_error.empty()) << r.spawn_error;
  ASSERT_TRUE(r.exit_code.has_value());
  EXPECT_EQ(*r.exit_code, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.stdout_text, "out\n");
  EXPECT_EQ(r.stderr_text, "err\n");
  EXPECT_FALSE(r.ok());
  EXPECT_GE(r.seconds, 0.0);
}

TEST_F(Exec, ArgvWithoutAShellIsTakenLiterally) {
  ExecRequest rq;
  rq.argv = {"printf", "%s|", "a b", "$HOME", "*"};
  const ExecResult r = run_command(rq);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.stdout_text, "a b|$HOME|*|");
}

TEST_F(Exec, ShellArgumentsArePositionalParameters) {
  ExecRequest rq = sh("echo \"$1-$2\"");
  rq.argv.push_back("x y");
  rq.argv.push_back("$(touch /nonexistent)");
  const ExecResult r = run_command(rq);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.stdout_text, "x y-$(touch /nonexistent)\n");
}

TEST_F(Exec, KilledBySignal) {
  const ExecResult r = run_command(sh("kill -SEGV $$"));
  EXPECT_FALSE(r.exit_code.has_value());
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_EQ(taskfarm::cli::signal_name(r.signal), "SIGSEGV");
}

TEST_F(Exec, TimeoutKillsTheWholeProcessGroup) {
  ExecRequest rq = sh("sleep 60 & echo $!; wait");
  rq.timeout = std::chrono::milliseconds(300);
  const ExecResult r = run_command(rq);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  const pid_t background = static_cast<pid_t>(std::stol(r.stdout_text));
  EXPECT_TRUE(dies(background)) << "the background sleep " << background << " survived the timeout";
}

TEST_F(Exec, WaitsForExitNotForEndOfOutput) {
  // The command closes its output and goes on: the result is its exit.
  ExecResult r = run_command(sh("exec >&- 2>&-; sleep 0.2; exit 4"));
  ASSERT_TRUE(r.exit_code.has_value());
  EXPECT_EQ(*r.exit_code, 4);
  // A background process keeps the pipes open after the command exits: the
  // command's exit ends the task (the limit only guards against a hang).
  ExecRequest rq = sh("sleep 30 & echo $!; exit 0");
  rq.timeout = std::chrono::seconds(25);
  r = run_command(rq);
  EXPECT_FALSE(r.timed_out);
  ASSERT_TRUE(r.exit_code.has_value());
  EXPECT_EQ(*r.exit_code, 0);
  // ... and the group is ended with the command: the background sleep too.
  const pid_t background = static_cast<pid_t>(std::stol(r.stdout_text));
  EXPECT_TRUE(dies(background)) << "the background sleep " << background << " outlived its command";
  ::kill(background, SIGKILL);
}

TEST_F(Exec, LargeStdinAndStdoutAtOnceDoNotDeadlock) {
  ExecRequest rq;
  rq.argv = {"cat"};
  rq.stdin_data = std::string(3 << 20, 'x');
  for (std::size_t i = 0; i < rq.stdin_data->size(); i += 997) (*rq.stdin_data)[i] = 'y';
  rq.output_limit = 4 << 20;
  const ExecResult r = run_command(rq);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.stdin_bytes, rq.stdin_data->size());
  EXPECT_EQ(r.stdout_bytes, rq.stdin_data->size());
  EXPECT_EQ(r.stdout_text, *rq.stdin_data);
}

TEST_F(Exec, ACommandThatStopsReadingDoesNotKillTheCaller) {
  // SIGPIPE at its default here: writing to the exited command must give EPIPE, not death.
  struct sigaction dfl {}, old {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGPIPE, &dfl, &old);
  ExecRequest rq = sh("head -c 1 >/dev/null; exit 0");
  rq.stdin_data = std::string(8 << 20, 'z');
  const ExecResult r = run_command(rq);
  ::sigaction(SIGPIPE, &old, nullptr);
  EXPECT_TRUE(r.ok()) << r.spawn_error;
  EXPECT_LT(r.stdin_bytes, rq.stdin_data->size());
}

TEST_F(Exec, StdinIsDevNullByDefault) {
  const ExecResult r = run_command(sh("cat; echo end"));
  EXPECT_EQ(r.stdout_text, "end\n");
}

TEST_F(Exec, OutputIsBoundedWithAMarker) {
  ExecRequest rq = sh("head -c 200000 /dev/zero | tr '\\0' a; head -c 10 /dev/zero | tr '\\0' b >&2");
  rq.output_limit = 1000;
  const ExecResult r = run_command(rq);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.stdout_bytes, 200000u);
  EXPECT_EQ(r.stdout_text, std::string(1000, 'a') + taskfarm::cli::truncation_marker(200000));
  EXPECT_EQ(r.stderr_text, "bbbbbbbbbb");  // under the limit: whole, no marker
}

TEST_F(Exec, CannotStart) {
  ExecRequest rq;
  rq.argv = {"no-such-program-taskfarm"};
  ExecResult r = run_command(rq);
  EXPECT_NE(r.spawn_error.find("command not found"), std::string::npos) << r.spawn_error;
  EXPECT_FALSE(r.ok());
  rq.argv = {"/nonexistent/prog"};
  r = run_command(rq);
  EXPECT_NE(r.spawn_error.find("cannot execute \"/nonexistent/prog\": No such file or directory"), std::string::npos)
      << r.spawn_error;
  rq.argv = {"true"};
  rq.cwd = "/nonexistent-dir";
  r = run_command(rq);
  EXPECT_NE(r.spawn_error.find("cannot change to the directory \"/nonexistent-dir\""), std::string::npos)
      << r.spawn_error;
}

TEST_F(Exec, CwdAndEnvironment) {
  ::setenv("TASKFARM_TEST_UNSET_ME", "present", 1);
  ExecRequest rq = sh("pwd; echo \"$FOO\"; echo \"${TASKFARM_TEST_UNSET_ME-unset}\"");
  rq.cwd = "/";
  rq.env = {{"FOO", "bar baz"}, {"TASKFARM_TEST_UNSET_ME", std::nullopt}};
  const ExecResult r = run_command(rq);
  ::unsetenv("TASKFARM_TEST_UNSET_ME");
  EXPECT_EQ(r.stdout_text, "/\nbar baz\nunset\n");
}

TEST_F(Exec, ProgramIsLookedUpInTheCommandsOwnPath) {
  const auto dir = std::filesystem::temp_directory_path() / ("taskfarm-exec-path-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream s(dir / "hello-taskfarm");
    s << "#!/bin/sh\necho hello from PATH\n";
  }
  std::filesystem::permissions(dir / "hello-taskfarm", std::filesystem::perms::owner_all);
  ExecRequest rq;
  rq.argv = {"hello-taskfarm"};
  rq.env = {{"PATH", dir.string() + ":/usr/bin:/bin"}};
  const ExecResult r = run_command(rq);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.stdout_text, "hello from PATH\n") << r.spawn_error;
}

TEST_F(Exec, TheChildInheritsNoDescriptorsMaskOrIgnoredSignals) {
  // A descriptor without CLOEXEC, an ignored SIGPIPE (as in a worker) and a
  // blocked SIGUSR1: none of them may reach the command.
  const int leaked = ::fcntl(STDERR_FILENO, F_DUPFD, 50);
  ASSERT_GE(leaked, 50);
  struct sigaction ign {}, old_pipe {};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old_pipe);
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);

  // The shell's descriptors; the signal state of a program run directly (a
  // shell blocks signals around its own forks).
  const ExecResult r = run_command(sh("ls /proc/$$/fd"));
  ExecRequest status;
  status.argv = {"cat", "/proc/self/status"};
  const ExecResult st = run_command(status);

  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ::close(leaked);

  std::istringstream lines(r.stdout_text + st.stdout_text);
  std::set<std::string> fds;
  std::string line, ign_line, blk_line;
  while (std::getline(lines, line)) {
    if (line.rfind("SigIgn:", 0) == 0)
      ign_line = line;
    else if (line.rfind("SigBlk:", 0) == 0)
      blk_line = line;
    else if (line.find(':') == std::string::npos)
      fds.insert(line);
  }
  EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2"})) << r.stdout_text;
  EXPECT_EQ(ign_line, "SigIgn:\t0000000000000000");
  EXPECT_EQ(blk_line, "SigBlk:\t0000000000000000");
}

TEST_F(Exec, TheCommandRunsInAGroupOfItsOwnLedByItsGuard) {
  // $$ is the shell (the command); field 4 of its stat is its parent (the
  // guard), field 5 its process group.
  const ExecResult r = run_command(sh("echo $$; cut -d' ' -f4,5 /proc/$$/stat"));
  std::istringstream in(r.stdout_text);
  long pid = 0, ppid = -1, pgid = -1;
  in >> pid >> ppid >> pgid;
  EXPECT_EQ(ppid, pgid) << r.stdout_text;
  EXPECT_NE(pid, pgid);
  EXPECT_NE(ppid, static_cast<long>(::getpid()));
  EXPECT_NE(pgid, static_cast<long>(::getpgrp()));
}

// Processes (not zombies) whose command line contains `marker`.
std::vector<pid_t> processes_with(const std::string& marker) {
  std::vector<pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const pid_t pid = static_cast<pid_t>(std::atol(e.path().filename().c_str()));
    if (pid <= 0) continue;
    std::ifstream f(e.path() / "cmdline", std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(marker) != std::string::npos && !dies_now(pid)) out.push_back(pid);
  }
  return out;
}

// True once no process has `marker` in its command line (waits up to 5 s);
// kills any that are left, so that a failing test leaks nothing.
bool all_gone(const std::string& marker) {
  for (int i = 0; i < 500; ++i) {
    if (processes_with(marker).empty()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const pid_t p : processes_with(marker)) ::kill(p, SIGKILL);
  return false;
}

TEST_F(Exec, KillingTheCallerWithSigkillEndsEverythingTheCommandStarted) {
  // The caller (a forked copy of this test, as a worker would be) runs a shell
  // whose children are not the command itself; it is killed with SIGKILL.
  const std::string marker = "30.4711";
  const pid_t caller = ::fork();
  ASSERT_GE(caller, 0);
  if (caller == 0) {
    (void)run_command(sh("sleep " + marker + " & sleep " + marker + " & wait"));
    ::_exit(0);
  }
  // Wait until both sleeps run (the shell's command line has the marker too).
  bool running = false;
  for (int i = 0; i < 1000 && !running; ++i) {
    running = processes_with("sleep " + marker).size() == 3;  // the shell and its two sleeps
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(running);
  ::kill(caller, SIGKILL);
  int status = 0;
  ::waitpid(caller, &status, 0);
  EXPECT_TRUE(all_gone("sleep " + marker)) << "the shell's children outlived the killed caller";
}

TEST_F(Exec, JsonForms) {
  const auto exec = taskfarm::cli::find_json_adapter("exec");
  ASSERT_NE(exec, nullptr);
  ExecRequest r;
  from_json(json{"ls", "-l", 3}, r);
  EXPECT_EQ(r.argv, (std::vector<std::string>{"ls", "-l", "3"}));
  EXPECT_FALSE(r.shell);
  from_json(json("ls | wc -l"), r);
  EXPECT_TRUE(r.shell);
  from_json(json{{"argv", {"x"}}, {"timeout", "1.5s"}, {"output_limit", 10}, {"stdin", "in"}, {"env", {{"A", 1}}}}, r);
  EXPECT_EQ(r.timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(r.output_limit, 10u);
  EXPECT_EQ(r.stdin_data, "in");
  ASSERT_EQ(r.env.size(), 1u);
  EXPECT_EQ(r.env[0].second, "1");
  EXPECT_THROW(from_json(json{{"argv", {"x"}}, {"cmd", 1}}, r), std::invalid_argument);
  EXPECT_THROW(from_json(json{{"argv", json::array()}}, r), std::invalid_argument);
  EXPECT_THROW(from_json(json{{"argv", {"x"}}, {"timeout", -1}}, r), std::invalid_argument);

  // The task's verdict on its own values.
  ExecResult ok;
  ok.exit_code = 0;
  EXPECT_FALSE(exec->verdict(json(ok)).has_value());
  ExecResult bad;
  bad.exit_code = 2;
  bad.stderr_text = "first\nthe reason\n";
  auto v = exec->verdict(json(bad));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->status, "failed");
  EXPECT_EQ(v->type, "exec.exit");
  EXPECT_EQ(v->message, "exited with code 2: the reason");
  ExecResult sig;
  sig.signal = SIGTERM;
  EXPECT_EQ(exec->verdict(json(sig))->type, "exec.signal");
  ExecResult late;
  late.timed_out = true;
  late.signal = SIGKILL;
  EXPECT_EQ(exec->verdict(json(late))->status, "timeout");
  ExecResult none;
  none.spawn_error = "cannot execute";
  EXPECT_EQ(exec->verdict(json(none))->type, "exec.spawn");
  // The command line for the joblog.
  EXPECT_EQ(exec->command(json{"echo", "a b", "it's"}), "echo 'a b' 'it'\\''s'");
  EXPECT_EQ(exec->command(json{{"argv", {"echo $1", "x"}}, {"shell", true}}), "sh -c 'echo $1' sh x");
}

TEST(ResumeCommand, KeepsTheCommandLineAndPutsTheFlagAfterTheSubcommand) {
  using taskfarm::cli::resume_command;
  const std::vector<std::string> run{"./taskfarm", "run", "my job.json", "--joblog", "out/o2.tsv", "-o", "out/r.jsonl"};
  EXPECT_EQ(resume_command(run, false), "./taskfarm run --resume 'my job.json' --joblog out/o2.tsv -o out/r.jsonl");
  EXPECT_EQ(resume_command(run, true), "./taskfarm run --resume-failed 'my job.json' --joblog out/o2.tsv -o out/r.jsonl");
  // An earlier --resume or --resume-failed goes, wherever it was.
  EXPECT_EQ(resume_command({"taskfarm", "run", "--resume-failed", "j.json", "--resume", "--resume=true"}, false),
            "taskfarm run --resume j.json");
  // Trailing words after ::: (or --) are inputs: kept, even "--resume".
  EXPECT_EQ(resume_command({"taskfarm", "exec", "--resume", "echo", "{}", ":::", "a b", "--resume"}, false),
            "taskfarm exec --resume echo '{}' ::: 'a b' --resume");
  EXPECT_EQ(resume_command({"taskfarm"}, false), "");
}

}  // namespace
