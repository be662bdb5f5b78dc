// Deaths: of a worker in each way a process can end, and of the master itself.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "pool_support.hpp"
#include "taskfarm/worker/worker.hpp"

namespace pool_test {
namespace {

using namespace std::chrono_literals;
using taskfarm::Pool;

// How input x ends its worker: 0 SIGSEGV, 1 abort() (SIGABRT), 2 _exit(7),
// 3 SIGBUS; anything else returns x.
int die_by_impl(int x) {
  switch (x) {
    case 0:
      ::raise(SIGSEGV);
      break;
    case 1:
      std::abort();
    case 2:
      ::_exit(7);
    case 3:
      ::raise(SIGBUS);
      break;
    default:
      break;
  }
  return x;
}
const taskfarm::Task<int(int)> die_by{"pool_test.die_by", &die_by_impl};

// Writes garbage into every close-on-exec pipe and socket the worker holds that
// has room (its link is one: taskfarm creates its descriptors close-on-exec),
// then returns x as if nothing happened. Others are left alone: they can only
// be inherited from the test's runner (they survived an exec).
int spew_impl(int x) {
  const std::string junk(64, '!');
  for (int fd = 3; fd < 1024; ++fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) continue;
    const int fd_flags = ::fcntl(fd, F_GETFD);
    if (fd_flags < 0 || !(fd_flags & FD_CLOEXEC)) continue;
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) continue;  // 64 bytes fit: no blocking
    (void)!::write(fd, junk.data(), junk.size());
  }
  return x;
}
const taskfarm::Task<int(int)> spew{"pool_test.spew", &spew_impl};

class PoolDeath : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolDeath);

TEST_P(PoolDeath, EveryWayAWorkerEndsIsWorkerLostNamingTheCause) {
  auto o = options(2);
  o.max_retries = 0;
  Pool pool(o);
  const auto r = pool.try_map(die_by, std::vector{0, 1, 2, 3, 4, 5}, {.chunksize = 1});
  ASSERT_EQ(r.size(), 6u);
  const char* expected[] = {"was killed by SIGSEGV", "was killed by SIGABRT", "exited with code 7",
                            "was killed by SIGBUS"};
  for (std::size_t i = 0; i < 4; ++i) {
    ASSERT_FALSE(r[i].ok()) << "input " << i;
    try {
      std::rethrow_exception(r[i].error());
    } catch (const taskfarm::WorkerLost& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(expected[i]), std::string::npos) << what;
      EXPECT_NE(what.find("while running task \"pool_test.die_by\" #" + std::to_string(i)),
                std::string::npos)
          << what;
      EXPECT_NE(what.find("(pid "), std::string::npos) << what;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "input " << i << ": expected WorkerLost, got " << e.what();
    }
  }
  EXPECT_TRUE(r[4].ok() && r[4].value() == 4);
  EXPECT_TRUE(r[5].ok() && r[5].value() == 5);
  // The pool replaced its workers and keeps serving.
  EXPECT_EQ(pool.map(square, std::vector{1, 2, 3}), (std::vector{1, 4, 9}));
  EXPECT_GE(pool.stats().restarts, 4u);
}

// The stream transports: a task can reach its own link's descriptors there.
TEST_P(PoolDeath, GarbageOnTheLinkReplacesTheWorkerAndFailsOnlyThatTask) {
  if (GetParam() != taskfarm::Transport::pipe && GetParam() != taskfarm::Transport::socket)
    GTEST_SKIP() << "a task cannot write into a shared-memory or queue link";
  auto o = options(1);
  o.max_retries = 2;
  Pool pool(o);
  const auto r = pool.try_map(spew, std::vector{7}, {.chunksize = 1});
  ASSERT_EQ(r.size(), 1u);
  ASSERT_FALSE(r[0].ok()) << "garbage cannot pass for a result";
  try {
    std::rethrow_exception(r[0].error());
  } catch (const taskfarm::WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("corrupt frame"), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected WorkerLost, got " << e.what();
  }
  // Charged each time (1 + 2 retries), then given up: not re-queued forever.
  EXPECT_EQ(pool.stats().retried, 2u);
  EXPECT_EQ(pool.map(square, std::vector{1, 2, 3}), (std::vector{1, 4, 9}));
}

bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  // A zombie waiting for its (new) parent to reap it has exited too.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  // No stat to read: the zombie was reaped between kill() and the open.
  if (!stat || !std::getline(stat, line)) return true;
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

// A child process that makes a pool, starts tasks that would run for a minute,
// reports its workers' pids through `fd`, then waits to be killed (or, with
// `exit_at_once`, calls exit() without stopping its pool).
[[noreturn]] void pool_owner(taskfarm::Transport t, int fd, bool exit_at_once) {
  taskfarm::PoolOptions o;
  o.workers = 2;
  o.transport = t;
  static Pool* pool = nullptr;  // never destroyed: the process ends with it running
  pool = new Pool(o);           // (reachable from a static: not a leak to LeakSanitizer)
  std::vector<taskfarm::Future<int>> running;
  for (int i = 0; i < 2; ++i) running.push_back(pool->submit(sleep_ms, 60'000));
  std::vector<long> pids;
  for (int tries = 0; tries < 1000; ++tries) {
    pids.clear();
    for (const auto& w : pool->stats().workers)
      if (w.pid > 0) pids.push_back(w.pid);
    if (pids.size() == 2) break;
    std::this_thread::sleep_for(5ms);
  }
  std::string text;
  for (long p : pids) text += std::to_string(p) + "\n";
  (void)!::write(fd, text.data(), text.size());
  ::close(fd);
  if (exit_at_once) std::exit(0);  // static destructors run; the pool's do not
  for (;;) ::pause();
}

// Reads `count` lines of pids. Not to end of file: the pool's fork server and
// workers, forked by the owner, hold the write end open too.
std::vector<pid_t> read_pids(int fd, std::size_t count) {
  std::string text;
  char buf[256];
  while (static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) < count) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  std::vector<pid_t> pids;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto nl = text.find('\n', pos);
    pids.push_back(static_cast<pid_t>(std::stol(text.substr(pos, nl - pos))));
    pos = nl + 1;
  }
  return pids;
}

// Waits (up to `patience`) for every pid to be gone; returns how long it took.
std::chrono::milliseconds wait_gone(const std::vector<pid_t>& pids, std::chrono::milliseconds patience) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    bool all = true;
    for (pid_t p : pids) all = all && process_gone(p);
    const auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
    if (all || spent >= patience) return spent;
    std::this_thread::sleep_for(2ms);
  }
}

void owner_ends_and_takes_everything_with_it(taskfarm::Transport t, bool killed) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::fflush(nullptr);
  const pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::close(p[0]);
    pool_owner(t, p[1], !killed);
  }
  ::close(p[1]);
  const auto pids = read_pids(p[0], 2);
  ::close(p[0]);
  ASSERT_EQ(pids.size(), 2u) << "the pool's workers did not start";
  // (A program that exits at once may already be gone with its workers.)
  if (killed) {
    for (pid_t w : pids) EXPECT_FALSE(process_gone(w));
  }

  if (killed) {
    ASSERT_EQ(::kill(owner, SIGKILL), 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  if (killed) {
    EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  } else {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the program did not exit cleanly";
  }
  // The workers (busy in a minute-long task) follow their master: the spec is
  // "within a second"; the bound here is generous for a loaded CI machine.
  const auto took = wait_gone(pids, 10s);
  for (pid_t w : pids) EXPECT_TRUE(process_gone(w)) << "worker " << w << " outlived its master";
  std::printf("[master death] transport=%s %s: workers gone after %lld ms\n",
              taskfarm::to_string(t).data(), killed ? "SIGKILL" : "exit()",
              static_cast<long long>(took.count()));
  ::testing::Test::RecordProperty("workers_gone_ms", static_cast<int>(took.count()));
  // Nothing of the dead master's is left in /dev/shm (shm objects and Boost's
  // message queues live there).
  for (int i = 0; i < 500 && !taskfarm::test::shm_objects_of(owner).empty(); ++i)
    std::this_thread::sleep_for(2ms);
  EXPECT_EQ(taskfarm::test::shm_objects_of(owner), std::vector<std::string>{});
}

TEST_P(PoolDeath, KilledMasterTakesItsWorkersAndLeavesNothing) {
  owner_ends_and_takes_everything_with_it(GetParam(), true);
}

TEST_P(PoolDeath, ProgramExitingWithARunningPoolNeitherHangsNorLeavesWorkers) {
  owner_ends_and_takes_everything_with_it(GetParam(), false);
}

// ---- names left in /dev/shm by a pool killed before its workers attached ----

// A spawned worker of a process that set kHoldEnv stops itself here, in static
// initialisation: before main(), so before it opens its link. Its mqueue names
// then wait in /dev/shm for a worker that never comes.
constexpr const char* kHoldEnv = "POOL_TEST_STOP_SPAWNED_WORKERS";
[[maybe_unused]] const bool g_held_before_attach = [] {
  if (std::getenv(taskfarm::worker::kWorkerEnv) != nullptr && std::getenv(kHoldEnv) != nullptr)
    ::raise(SIGSTOP);
  return true;
}();

// A child process that makes an mqueue pool of 2 spawned workers that stop
// before they attach, reports their pids through `fd`, then waits to be killed.
[[noreturn]] void owner_of_unattached_workers(int fd) {
  ::setenv(kHoldEnv, "1", 1);
  taskfarm::PoolOptions o;
  o.workers = 2;
  o.transport = taskfarm::Transport::mqueue;
  o.start = taskfarm::Start::spawn;
  static Pool* pool = nullptr;  // never destroyed: the process is killed with it running
  try {
    pool = new Pool(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "owner: %s\n", e.what());
    ::_exit(3);
  }
  std::vector<long> pids;
  for (int tries = 0; tries < 2000; ++tries) {
    pids.clear();
    for (const auto& w : pool->stats().workers)
      if (w.pid > 0) pids.push_back(w.pid);
    if (pids.size() == 2) break;
    std::this_thread::sleep_for(5ms);
  }
  std::string text;
  for (long p : pids) text += std::to_string(p) + "\n";
  (void)!::write(fd, text.data(), text.size());
  ::close(fd);
  for (;;) ::pause();
}

class PoolSweep : public taskfarm::test::LeakCheck {};

TEST_F(PoolSweep, NamesLeftByASigkilledMqueuePoolAreRemovedByTheNextPool) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::fflush(nullptr);
  const pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::close(p[0]);
    owner_of_unattached_workers(p[1]);
  }
  struct Cleanup {  // whatever happens below, the owner and its names do not outlive the test
    pid_t owner, unreaped;
    ~Cleanup() {
      if (unreaped > 0 && ::kill(unreaped, SIGKILL) == 0) ::waitpid(unreaped, nullptr, 0);
      for (const auto& name : taskfarm::test::shm_objects_of(owner)) ::shm_unlink(("/" + name).c_str());
    }
  } cleanup{owner, owner};
  ::close(p[1]);
  const auto workers = read_pids(p[0], 2);
  ::close(p[0]);
  ASSERT_EQ(workers.size(), 2u) << "the pool did not start its workers";
  // Each worker's two queues (the control block is unlinked at once).
  const auto left = taskfarm::test::shm_objects_of(owner);
  ASSERT_EQ(left.size(), 4u) << "expected the names of 2 x 2 queues nobody opened";

  // Every process of the pool is stopped first, then all are killed: none sees
  // another die and cleans up after it (the fork server removes the names of
  // the workers it reaps, a master those of the links it drops).
  ASSERT_EQ(::kill(owner, SIGSTOP), 0);
  std::vector<pid_t> pool_processes = workers;
  for (pid_t server : taskfarm::test::children_of(owner)) {
    ::kill(server, SIGSTOP);
    pool_processes.push_back(server);
    for (pid_t w : taskfarm::test::children_of(server))
      if (std::find(pool_processes.begin(), pool_processes.end(), w) == pool_processes.end())
        pool_processes.push_back(w);
  }
  for (pid_t pid : pool_processes) ::kill(pid, SIGKILL);
  ASSERT_EQ(::kill(owner, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  cleanup.unreaped = 0;
  (void)wait_gone(pool_processes, 10s);
  for (pid_t pid : pool_processes) EXPECT_TRUE(process_gone(pid)) << "process " << pid << " outlived the kill";
  // The kill itself removes none (every process was stopped before it died);
  // only the sweep of another test program's first pool, running at the same
  // time (ctest -j), may already have removed some or all of them.
  const auto after_kill = taskfarm::test::shm_objects_of(owner);
  EXPECT_TRUE(std::includes(left.begin(), left.end(), after_kill.begin(), after_kill.end()))
      << "names appeared after the kill";
  if (after_kill != left)
    std::printf("[sweep] %zu of the names were swept by another process's pool before this test's\n",
                left.size() - after_kill.size());

  // The next pool (in a process of its own, which has not swept yet) removes them.
  std::fflush(nullptr);
  const pid_t next = ::fork();
  ASSERT_GE(next, 0);
  if (next == 0) {
    int code = 1;
    try {
      taskfarm::PoolOptions o;
      o.workers = 1;
      o.transport = taskfarm::Transport::mqueue;
      Pool pool(o);
      code = pool.map(square, std::vector{1, 2, 3}) == std::vector{1, 4, 9} ? 0 : 2;
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  ASSERT_EQ(::waitpid(next, &status, 0), next);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the next pool failed";
  EXPECT_EQ(taskfarm::test::shm_objects_of(owner), std::vector<std::string>{});
  std::printf("[sweep] %zu names of killed pool %ld: %zu left after the next pool started\n", left.size(),
              static_cast<long>(owner), taskfarm::test::shm_objects_of(owner).size());
}

}  // namespace
}  // namespace pool_test
