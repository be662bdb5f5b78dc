// Names of kernel objects and the sweep of those whose creator is gone
// (taskfarm/ipc/names.hpp): a name records its creator's pid and start time;
// sweep_stale_names() removes the names of dead creators and of reused pids and
// never those of a live creator.
//
// Other test programs may run at the same time and sweep too (every Pool sweeps
// once per process), so a stale name may be gone before this program's sweep:
// the tests check which names are left afterwards, not how many this process's
// sweep counted.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "shared_control.hpp"
#include "support/test_support.hpp"
#include "taskfarm/ipc/link.hpp"
#include "taskfarm/ipc/names.hpp"

namespace {

using taskfarm::ipc::process_start_time;
using taskfarm::ipc::sweep_stale_names;

bool exists(const std::string& name) {  // name with its leading slash
  struct stat st {};
  return ::stat(("/dev/shm" + name).c_str(), &st) == 0;
}

// Creates an empty object of that name (as taskfarm would: exclusive, 0600).
bool plant(const std::string& name) {
  const int fd = ::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

std::string with_pid(pid_t pid, const std::string& rest) {
  return "/taskfarm-" + std::to_string(pid) + "-" + rest;
}

// A process id that is not in use: a child that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

int reap(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class StaleNames : public taskfarm::test::LeakCheck {};

TEST_F(StaleNames, StartTimeIdentifiesAProcess) {
  const auto self = process_start_time(::getpid());
  ASSERT_TRUE(self.has_value()) << "/proc/self/stat unreadable";
  EXPECT_EQ(process_start_time(::getpid()), self) << "it does not change";
  EXPECT_EQ(process_start_time(dead_pid()), std::nullopt);
  EXPECT_EQ(process_start_time(0), std::nullopt);
  EXPECT_EQ(process_start_time(-1), std::nullopt);

  // A child started after this process: its start time is not earlier.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(p[1]);
    char c;
    (void)!::read(p[0], &c, 1);  // until the parent closes its end
    ::_exit(0);
  }
  ::close(p[0]);
  const auto theirs = process_start_time(child);
  ::close(p[1]);
  EXPECT_EQ(reap(child), 0);
  ASSERT_TRUE(theirs.has_value());
  EXPECT_GE(*theirs, *self);
}

TEST_F(StaleNames, NamesCarryTheCreatorsPidAndStartTime) {
  const auto start = process_start_time(::getpid());
  ASSERT_TRUE(start.has_value());
  const std::string prefix = with_pid(::getpid(), std::to_string(*start) + "-");
  const std::string name = taskfarm::ipc::detail::unique_name("tag");
  ASSERT_EQ(name.rfind(prefix, 0), 0u) << name;
  ASSERT_EQ(name.size(), prefix.size() + 16 + 4) << name;  // 16 hex digits, "-tag"
  EXPECT_EQ(name.substr(prefix.size() + 16), "-tag");

  // A forked child names its objects after itself, not after its parent.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(p[0]);
    const std::string n = taskfarm::ipc::detail::unique_name("tag");
    (void)!::write(p[1], n.data(), n.size());
    ::_exit(0);
  }
  ::close(p[1]);
  char buf[256];
  const ssize_t n = ::read(p[0], buf, sizeof buf);
  ::close(p[0]);
  EXPECT_EQ(reap(child), 0);
  ASSERT_GT(n, 0);
  const std::string theirs(buf, static_cast<std::size_t>(n));
  EXPECT_EQ(theirs.rfind(with_pid(child, ""), 0), 0u) << theirs;
}

TEST_F(StaleNames, SweepRemovesTheNamesOfDeadCreatorsAndReusedPidsOnly) {
  // A creator that is SIGKILLed holding real objects: an mqueue link whose
  // worker never attached leaves its two queue names, and an object named as
  // taskfarm names them, not yet unlinked.
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::fflush(nullptr);
  const pid_t creator = ::fork();
  ASSERT_GE(creator, 0);
  if (creator == 0) {
    ::close(p[0]);
    static taskfarm::ipc::LinkPair pair;  // never destroyed: the process is killed
    if (taskfarm::ipc::create_link(taskfarm::Transport::mqueue, {}, pair)) ::_exit(1);
    const std::string planted = taskfarm::ipc::detail::unique_name("sweep");
    if (!plant(planted)) ::_exit(2);
    std::string names = planted + "\n";
    for (const char* key : {"m2w", "w2m"})
      if (const auto* q = pair.worker.param(key)) names += *q + "\n";
    (void)!::write(p[1], names.data(), names.size());
    ::close(p[1]);
    for (;;) ::pause();
  }
  ::close(p[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  ::close(p[0]);
  std::vector<std::string> of_killed;
  for (std::size_t pos = 0, nl; (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1)
    of_killed.push_back(text.substr(pos, nl - pos));
  ::kill(creator, SIGKILL);
  EXPECT_EQ(reap(creator), 128 + SIGKILL);
  ASSERT_EQ(of_killed.size(), 3u) << "the creator failed: " << text;
  for (const auto& n : of_killed) EXPECT_EQ(n.rfind(with_pid(creator, ""), 0), 0u) << n;

  const auto start = process_start_time(::getpid());
  ASSERT_TRUE(start.has_value());
  const pid_t dead = dead_pid();
  const std::string random = "0123456789abcdef";
  // Stale: this process's pid with another start time (a reused pid), and a
  // dead pid in the older format without a start time.
  const std::vector<std::string> stale_planted = {
      with_pid(::getpid(), std::to_string(*start + 1) + "-" + random + "-reused"),
      with_pid(dead, random + "-old"),
  };
  // Alive: this process's names, in both formats, and names that are not
  // taskfarm's (no random part, no pid).
  const std::vector<std::string> alive = {
      taskfarm::ipc::detail::unique_name("alive"),
      with_pid(::getpid(), random + "-old"),
      with_pid(dead, "not-ours"),
      "/taskfarm-x-" + random + "-notapid",
      "/taskfarmsweep-" + std::to_string(dead) + "-" + random + "-other",
  };
  for (const auto& n : stale_planted) ASSERT_TRUE(plant(n)) << n;
  for (const auto& n : alive) ASSERT_TRUE(plant(n)) << n;

  const std::size_t removed = sweep_stale_names();
  std::printf("[sweep] removed %zu object(s)\n", removed);

  for (const auto& n : of_killed) EXPECT_FALSE(exists(n)) << n << " of the killed creator was kept";
  for (const auto& n : stale_planted) EXPECT_FALSE(exists(n)) << n << " was kept";
  for (const auto& n : alive) {
    EXPECT_TRUE(exists(n)) << n << " was removed";
    ::shm_unlink(n.c_str());
  }
  for (const auto& n : of_killed) ::shm_unlink(n.c_str());  // only if the test failed
  for (const auto& n : stale_planted) ::shm_unlink(n.c_str());
}

TEST_F(StaleNames, SweepingOncePerProcessSweepsAgainInAForkedChild) {
  (void)taskfarm::ipc::sweep_stale_names_once();
  EXPECT_EQ(taskfarm::ipc::sweep_stale_names_once(), 0u) << "a second call sweeps nothing";
  const std::string stale = with_pid(dead_pid(), "0123456789abcdef-once");
  ASSERT_TRUE(plant(stale));
  std::fflush(nullptr);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    (void)taskfarm::ipc::sweep_stale_names_once();
    ::_exit(!exists(stale) && taskfarm::ipc::sweep_stale_names_once() == 0 ? 0 : 1);
  }
  EXPECT_EQ(reap(child), 0) << "the child's first call did not sweep, or its second did";
  EXPECT_FALSE(exists(stale));
  ::shm_unlink(stale.c_str());
}

}  // namespace
