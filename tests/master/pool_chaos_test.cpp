// Chaos: a long map while another thread SIGKILLs a random worker of the pool
// every few milliseconds, on every transport.
//
//  - With retries enough, map returns every result, each exactly once and
//    correct: no input is lost, none is answered twice, nothing hangs.
//  - With max_retries = 0, every input ends exactly once, either with its
//    correct result or with WorkerLost, and nothing hangs.
//
// The killer only ever signals grandchildren of this process (the workers,
// children of the pool's fork server), so a recycled pid can never hit an
// unrelated process. Each case prints its figures on one line:
//
//   [chaos] transport=shm max_retries=1000 tasks=20000 kills=268 retried=252 ...

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "pool_support.hpp"

namespace pool_test {

// Counts its run in g_runs[x], spins about 40 us (long enough that a worker
// reports each result at once), returns a value only x gives.
std::uint64_t chaos_spin_impl(std::uint64_t x);
inline const taskfarm::Task<std::uint64_t(std::uint64_t)> chaos_spin{"pool_test.chaos_spin",
                                                                    &chaos_spin_impl};

std::uint64_t chaos_expected(std::uint64_t x) { return (x * 0x9e3779b97f4a7c15ull) ^ (x >> 7) ^ 0x5au; }

std::uint64_t chaos_spin_impl(std::uint64_t x) {
  if (x < kRunSlots) g_runs[x].fetch_add(1, std::memory_order_relaxed);
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(40);
  while (std::chrono::steady_clock::now() < until) {
  }
  return chaos_expected(x);
}

// Initializers: one slow enough that its worker can be killed before it is
// ready, one that crashes (without a core dump).
void chaos_slow_init_impl() { std::this_thread::sleep_for(std::chrono::milliseconds(300)); }
inline const taskfarm::Task<void()> chaos_slow_init{"pool_test.chaos_slow_init", &chaos_slow_init_impl};
void chaos_hang_init_impl() { std::this_thread::sleep_for(std::chrono::seconds(30)); }
inline const taskfarm::Task<void()> chaos_hang_init{"pool_test.chaos_hang_init", &chaos_hang_init_impl};
void chaos_crash_init_impl() {
  const rlimit none{0, 0};
  ::setrlimit(RLIMIT_CORE, &none);
  ::raise(SIGSEGV);
}
inline const taskfarm::Task<void()> chaos_crash_init{"pool_test.chaos_crash_init",
                                                     &chaos_crash_init_impl};

namespace {

using taskfarm::Pool;

constexpr std::uint64_t kTasks = taskfarm::test::full_or_sanitized<std::uint64_t>(20'000, 5'000);
static_assert(kTasks <= kRunSlots);
// The killer keeps going until the map is done; the case insists on at least
// this many kills so that it proves something.
constexpr std::uint64_t kMinKills = taskfarm::test::full_or_sanitized<std::uint64_t>(20, 8);

// The parent pid of live process `pid` from /proc; -1 if it is gone or a
// zombie (dead already, not reaped yet: killing it again would count a kill
// that killed nothing).
pid_t parent_of(pid_t pid) {
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(st, line)) return -1;
  // pid (comm) state ppid ...; comm may contain spaces and parentheses.
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 4 > line.size()) return -1;
  const char state = line[close + 2];
  if (state == 'Z' || state == 'X') return -1;
  return static_cast<pid_t>(std::atol(line.c_str() + close + 4));
}

// SIGKILLs a random live worker of `pool` every 3..5 ms (15..25 ms under the
// sanitizers) until stopped; with
// `servers_too`, one kill in four goes to the pool's fork server instead.
class Killer {
 public:
  Killer(const Pool& pool, unsigned seed, bool servers_too = false)
      : pool_(pool), rng_(seed), servers_too_(servers_too) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Killer() { stop(); }
  Killer(const Killer&) = delete;
  Killer& operator=(const Killer&) = delete;

  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  [[nodiscard]] std::uint64_t kills() const { return kills_.load(); }
  [[nodiscard]] std::uint64_t server_kills() const { return server_kills_.load(); }
  [[nodiscard]] std::vector<pid_t> killed() const {
    std::lock_guard lock(mu_);
    return killed_;
  }

 private:
  void loop() {
    // Under the sanitizers a worker takes 5-20 times as long to start, so kills
    // as frequent as in the release build would strike nearly every start
    // before it is ready: kill at the same rate relative to the work.
    std::uniform_int_distribution<int> pause_us(taskfarm::test::full_or_sanitized(3000, 15000),
                                                taskfarm::test::full_or_sanitized(5000, 25000));
    const pid_t self = ::getpid();
    // Kills from outside are transient faults: the pool gives up on a slot
    // whose starts are all killed before it is ready (PoolStats: 50 in a
    // row). On a loaded machine a start can take longer than the pause, so a
    // slot that has not finished a task since it was last killed kStuck times
    // is spared until it has (and so is the fork server, whose death takes
    // every worker along).
    constexpr std::uint64_t kStuck = 20;
    std::vector<std::pair<std::uint64_t, std::uint64_t>> slot_tasks_kills;  // per slot: tasks seen, kills since
    while (!stop_.load()) {
      std::this_thread::sleep_for(std::chrono::microseconds(pause_us(rng_)));
      const auto st = pool_.stats();
      const auto server = static_cast<pid_t>(st.fork_server_pid);
      bool any_stuck = false;
      slot_tasks_kills.resize(std::max(slot_tasks_kills.size(), st.workers.size()));
      for (const auto& w : st.workers) {
        auto& [tasks, kills] = slot_tasks_kills[static_cast<std::size_t>(w.slot)];
        if (w.tasks != tasks) {
          tasks = w.tasks;
          kills = 0;
        }
        any_stuck = any_stuck || kills >= kStuck;
      }
      if (servers_too_ && server > 0 && !any_stuck && std::uniform_int_distribution<int>(0, 3)(rng_) == 0) {
        // The fork server in use: a child of this process, of the clean root
        // server, or (a standby that took over) of a server that died.
        if (parent_of(server) > 0 && ::kill(server, SIGKILL) == 0) {
          for (auto& [tasks, kills] : slot_tasks_kills) ++kills;  // its workers die with it
          std::lock_guard lock(mu_);
          killed_.push_back(server);
          kills_.fetch_add(1);
          server_kills_.fetch_add(1);
        }
        continue;
      }
      std::vector<std::pair<long, int>> pids;  // (pid, slot)
      for (const auto& w : st.workers)
        if (w.pid > 0 && slot_tasks_kills[static_cast<std::size_t>(w.slot)].second < kStuck)
          pids.emplace_back(w.pid, w.slot);
      if (pids.empty()) continue;
      const auto [victim, slot] = pids[std::uniform_int_distribution<std::size_t>(0, pids.size() - 1)(rng_)];
      const auto pid = static_cast<pid_t>(victim);
      // Only a live worker of this pool: a child of our child, the fork server.
      const pid_t zygote = parent_of(pid);
      if (zygote <= 0 || (parent_of(zygote) != self && zygote != server)) continue;
      if (::kill(pid, SIGKILL) == 0) {
        ++slot_tasks_kills[static_cast<std::size_t>(slot)].second;
        std::lock_guard lock(mu_);
        killed_.push_back(pid);
        kills_.fetch_add(1);
      }
    }
  }

  const Pool& pool_;
  std::mt19937 rng_;
  std::atomic<bool> stop_{false};
  const bool servers_too_;
  std::atomic<std::uint64_t> kills_{0};
  std::atomic<std::uint64_t> server_kills_{0};
  mutable std::mutex mu_;
  std::vector<pid_t> killed_;
  std::thread thread_;
};

// After the killer stopped, waits until the pool has replaced every worker it
// killed (a kill at the very end may not have been noticed yet when the map
// returned): then work sent from now on meets no dying worker. False if that
// takes longer than `patience`.
bool wait_calm(const Pool& pool, const std::vector<pid_t>& killed,
               std::chrono::seconds patience = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  for (;;) {
    bool calm = true;
    for (const auto& w : pool.stats().workers)
      if (w.pid <= 0 || std::find(killed.begin(), killed.end(), static_cast<pid_t>(w.pid)) != killed.end())
        calm = false;
    if (calm) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::vector<std::uint64_t> chaos_inputs() {
  std::vector<std::uint64_t> in(kTasks);
  for (std::uint64_t i = 0; i < kTasks; ++i) in[i] = i;
  return in;
}

void report(const char* transport, unsigned max_retries, std::uint64_t kills,
            const taskfarm::PoolStats& st, std::uint64_t ok, std::uint64_t lost_worker,
            std::uint64_t reruns) {
  // Every item ends exactly once when the pool's count of finished items equals
  // the inputs: beyond them is a duplicate completion, short of them a loss.
  const std::uint64_t duplicates = st.done > kTasks ? st.done - kTasks : 0;
  const std::uint64_t lost = st.done < kTasks ? kTasks - st.done : 0;
  std::printf(
      "[chaos] transport=%s max_retries=%u tasks=%llu kills=%llu retried=%llu restarts=%llu "
      "ok=%llu worker_lost=%llu reruns=%llu duplicates=%llu lost=%llu\n",
      transport, max_retries, static_cast<unsigned long long>(kTasks),
      static_cast<unsigned long long>(kills), static_cast<unsigned long long>(st.retried),
      static_cast<unsigned long long>(st.restarts), static_cast<unsigned long long>(ok),
      static_cast<unsigned long long>(lost_worker), static_cast<unsigned long long>(reruns),
      static_cast<unsigned long long>(duplicates), static_cast<unsigned long long>(lost));
  std::fflush(stdout);
  ::testing::Test::RecordProperty("tasks", std::to_string(kTasks));
  ::testing::Test::RecordProperty("kills", std::to_string(kills));
  ::testing::Test::RecordProperty("retried", std::to_string(st.retried));
  ::testing::Test::RecordProperty("restarts", std::to_string(st.restarts));
  ::testing::Test::RecordProperty("ok", std::to_string(ok));
  ::testing::Test::RecordProperty("worker_lost", std::to_string(lost_worker));
  ::testing::Test::RecordProperty("reruns", std::to_string(reruns));
  ::testing::Test::RecordProperty("duplicates", std::to_string(duplicates));
  ::testing::Test::RecordProperty("lost", std::to_string(lost));
}

class PoolChaos : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolChaos);

void chaos_with_retries(taskfarm::Transport transport, const taskfarm::PoolOptions& base, bool servers_too) {
  constexpr unsigned kRetries = 1000;  // the most PoolOptions allows
  auto o = base;
  o.max_retries = kRetries;
  const auto in = chaos_inputs();
  std::vector<std::uint64_t> out;
  std::uint64_t kills = 0, server_kills = 0;
  taskfarm::PoolStats st;
  {
    Pool pool(o);
    {
      HangGuard guard("map under SIGKILLs (" + std::string(taskfarm::to_string(transport)) + ")",
                      std::chrono::seconds(120));
      Killer killer(pool, 1234u + static_cast<unsigned>(transport), servers_too);
      try {
        out = pool.map(chaos_spin, in);
      } catch (const std::exception& e) {
        killer.stop();
        FAIL() << "map failed under SIGKILLs after " << killer.kills() << " kills: " << e.what();
      }
      killer.stop();
      kills = killer.kills();
      server_kills = killer.server_kills();
      ASSERT_TRUE(wait_calm(pool, killer.killed())) << "the killed workers were not replaced";
    }
    st = pool.stats();
    // The pool survived the chaos: it still answers.
    EXPECT_EQ(pool.map(square, iota(100)).size(), 100u);
  }

  ASSERT_EQ(out.size(), in.size()) << "one result per input";
  std::uint64_t wrong = 0, never_ran = 0, reruns = 0;
  std::size_t first_wrong = 0;
  for (std::uint64_t i = 0; i < kTasks; ++i) {
    if (out[i] != chaos_expected(i) && wrong++ == 0) first_wrong = static_cast<std::size_t>(i);
    const auto runs = g_runs[i].load();
    if (runs == 0) ++never_ran;
    if (runs > 1) reruns += runs - 1;
  }
  report(taskfarm::to_string(transport).data(), kRetries, kills, st, kTasks - wrong, 0, reruns);
  if (servers_too) {
    std::printf("[chaos] transport=%s fork_server_kills=%llu fork_server_restarts=%llu\n",
                taskfarm::to_string(transport).data(), static_cast<unsigned long long>(server_kills),
                static_cast<unsigned long long>(st.fork_server_restarts));
    EXPECT_GE(server_kills, 1u) << "the killer must have struck the fork server";
    EXPECT_GE(st.fork_server_restarts, 1u);
  }

  EXPECT_EQ(wrong, 0u) << "first wrong result at input " << first_wrong;
  // The run counters are memory shared with workers forked from this process's
  // image; after both the fork server and its standby died, a clean server
  // (ForkImage::program_start) forks workers that count elsewhere.
  if (st.fork_image == taskfarm::ForkImage::pool_creation) EXPECT_EQ(never_ran, 0u) << "a result without a run";
  EXPECT_EQ(st.submitted, kTasks);
  // Every item ends exactly once (the 100 squares above came after the snapshot).
  EXPECT_EQ(st.done, kTasks) << "more is a duplicate completion, fewer a loss";
  EXPECT_EQ(st.failed, 0u);
  EXPECT_GE(kills, kMinKills) << "the killer must actually have struck";
  EXPECT_GE(st.restarts, 1u) << "killed workers were replaced";
  EXPECT_GE(st.retried, 1u) << "some killed worker was running a task";
  if (transport != taskfarm::Transport::mqueue && !servers_too) {
    // A kill makes at most two tasks run again: the one its worker was running
    // (a retry), and one it had finished but not yet written the result of
    // (tasks this long are not coalesced: see worker.cpp). (mqueue: a worker
    // killed inside a queue operation leaves the queue's lock taken for good,
    // so the results it had queued are lost and those tasks run again.)
    EXPECT_LE(reruns, st.retried + kills);
  }
}

TEST_P(PoolChaos, RandomSigkillsWithRetriesLoseAndDuplicateNothing) {
  chaos_with_retries(GetParam(), options(2), false);
}

TEST_P(PoolChaos, RandomSigkillsOfWorkersAndTheForkServerLoseNothing) {
  // The fork server among the victims: its standby takes over each time.
  chaos_with_retries(GetParam(), options(2), true);
}

TEST_P(PoolChaos, RandomSigkillsWithoutRetriesEndEveryTaskOnce) {
  auto o = options(2);
  o.max_retries = 0;
  const auto in = chaos_inputs();
  std::vector<taskfarm::Result<std::uint64_t>> out;
  std::uint64_t kills = 0;
  taskfarm::PoolStats st;
  {
    Pool pool(o);
    {
      HangGuard guard("try_map under SIGKILLs (" +
                          std::string(taskfarm::to_string(GetParam())) + ")",
                      std::chrono::seconds(120));
      Killer killer(pool, 4321u + static_cast<unsigned>(GetParam()));
      out = pool.try_map(chaos_spin, in);
      killer.stop();
      kills = killer.kills();
      ASSERT_TRUE(wait_calm(pool, killer.killed())) << "the killed workers were not replaced";
    }
    st = pool.stats();
    EXPECT_EQ(pool.map(square, iota(100)).size(), 100u);
  }

  ASSERT_EQ(out.size(), in.size()) << "one result per input";
  std::uint64_t ok = 0, worker_lost = 0, other = 0, wrong = 0, never_ran = 0, reruns = 0;
  std::string first_other;
  for (std::uint64_t i = 0; i < kTasks; ++i) {
    const auto& r = out[static_cast<std::size_t>(i)];
    const auto runs = g_runs[i].load();
    if (runs > 1) reruns += runs - 1;
    if (r.ok()) {
      ++ok;
      if (r.value() != chaos_expected(i)) ++wrong;
      if (runs == 0) ++never_ran;
      continue;
    }
    try {
      std::rethrow_exception(r.error());
    } catch (const taskfarm::WorkerLost& e) {
      ++worker_lost;
      EXPECT_EQ(e.signal(), SIGKILL) << "input " << i << ": " << e.what();
      EXPECT_EQ(e.index(), i) << e.what();
      EXPECT_EQ(e.task(), "pool_test.chaos_spin");
    } catch (...) {
      if (other++ == 0) first_other = "input " + std::to_string(i) + ": " + describe(r);
    }
  }
  report(taskfarm::to_string(GetParam()).data(), 0, kills, st, ok, worker_lost, reruns);

  EXPECT_EQ(other, 0u) << "every failure is WorkerLost; first other: " << first_other;
  EXPECT_EQ(ok + worker_lost, kTasks);
  EXPECT_EQ(wrong, 0u);
  // Run counters are shared only with workers of this process's image.
  if (st.fork_image == taskfarm::ForkImage::pool_creation) EXPECT_EQ(never_ran, 0u);
  EXPECT_EQ(st.done, kTasks) << "more is a duplicate completion, fewer a loss";
  EXPECT_EQ(st.retried, 0u) << "max_retries = 0 retries nothing";
  EXPECT_EQ(st.failed, worker_lost);
  EXPECT_LE(worker_lost, kills) << "a kill costs at most the one task its worker was running";
  EXPECT_GE(worker_lost, 1u) << "some killed worker was running a task";
  EXPECT_GE(kills, kMinKills) << "the killer must actually have struck";
  if (GetParam() != taskfarm::Transport::mqueue) {
    // Without retries only a task whose result died unwritten with its worker
    // runs again, at most one per kill. (mqueue: see the case above.)
    EXPECT_LE(reruns, kills);
  }
}

// The pids of the pool's workers now (0 for a slot being restarted).
std::vector<pid_t> worker_pids(const Pool& pool) {
  std::vector<pid_t> out;
  for (const auto& w : pool.stats().workers) out.push_back(static_cast<pid_t>(w.pid));
  return out;
}

TEST_P(PoolChaos, WorkerKilledBeforeItIsReadyIsReplaced) {
  // Its initializer takes 300 ms: the kill comes while it runs, before the
  // worker said hello. A kill from outside is not a reason to give up the pool.
  auto o = options(1);
  o.initializer = &chaos_slow_init;
  Pool pool(o);
  pid_t first = 0;
  for (int i = 0; i < 10'000 && first <= 0; ++i) {
    first = worker_pids(pool).at(0);
    if (first <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GT(first, 0) << "the worker's pid never showed";
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  HangGuard guard("map after a kill before ready");
  EXPECT_EQ(pool.map(square, iota(10)), (std::vector<int>{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}));
  EXPECT_EQ(pool.stats().restarts, 1u);
  EXPECT_NE(worker_pids(pool).at(0), first);
}

TEST_P(PoolChaos, WorkersKilledBeforeReadyOverAndOverEndThePool) {
  // Something that kills every start (here, the test; in life, say, the OOM
  // killer and a hungry initializer) must not make the pool fork forever: after
  // 50 replacements in a row that never became ready (each a little later than
  // the one before), the pool gives up.
  auto o = options(1);
  o.initializer = &chaos_slow_init;
  Pool pool(o);
  std::vector<pid_t> killed;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (killed.size() < 51 && std::chrono::steady_clock::now() < deadline) {
    const pid_t pid = worker_pids(pool).at(0);
    if (pid > 0 && std::find(killed.begin(), killed.end(), pid) == killed.end()) {
      ASSERT_EQ(::kill(pid, SIGKILL), 0);
      killed.push_back(pid);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  ASSERT_EQ(killed.size(), 51u) << "the pool stopped replacing its worker too early";
  HangGuard guard("map in a pool that gave up");
  try {
    (void)pool.map(square, iota(3));
    FAIL() << "the pool kept going";
  } catch (const taskfarm::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("killed by SIGKILL before it was ready (51 starts in a row failed"), std::string::npos)
        << what;
  }
  EXPECT_EQ(pool.stats().restarts, 50u);
}

TEST_P(PoolChaos, WorkerCrashingAtEveryStartEndsThePoolAfterAFewTries) {
  // A crash while starting (here, in the initializer) may be transient, so the
  // pool backs off and tries again; when every start crashes, it gives up after
  // a few and fails its work with the cause, instead of forking forever.
  auto o = options(1);
  o.initializer = &chaos_crash_init;
  Pool pool(o);
  HangGuard guard("map in a pool whose workers crash");
  try {
    (void)pool.map(square, iota(3));
    FAIL() << "the pool ran tasks";
  } catch (const taskfarm::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("killed by SIGSEGV before it was ready (6 starts in a row failed"), std::string::npos) << what;
  }
  EXPECT_EQ(pool.stats().restarts, 5u);
}

TEST_P(PoolChaos, AWorkerThatNeverBecomesReadyIsKilledAtStartTimeout) {
  // A start that hangs (a stuck initializer, a deadlock inherited through
  // fork) is noticed at start_timeout: the worker is killed and started
  // again, and when every start hangs the work fails with that cause (the
  // HangGuard ends the test if the 30 s starts were waited for instead).
  auto o = options(1);
  o.initializer = &chaos_hang_init;
  o.start_timeout = std::chrono::milliseconds(150);
  Pool pool(o);
  HangGuard guard("map in a pool whose workers never become ready", std::chrono::seconds(20));
  try {
    (void)pool.map(square, iota(3));
    FAIL() << "the pool ran tasks";
  } catch (const taskfarm::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("was not ready within start_timeout (150 ms)"), std::string::npos) << what;
    EXPECT_NE(what.find("starts in a row failed"), std::string::npos) << what;
  }
  EXPECT_EQ(pool.stats().restarts, 5u);
}

}  // namespace
}  // namespace pool_test
