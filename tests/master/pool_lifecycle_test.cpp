// Pool lifecycle: option validation, close/join/shutdown/terminate, submitting
// after shutdown, initializers.

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <thread>

#include "pool_support.hpp"

namespace pool_test {
namespace {

using namespace std::chrono_literals;
using taskfarm::ConfigError;
using taskfarm::Pool;
using taskfarm::PoolClosed;
using taskfarm::PoolOptions;

class PoolLifecycle : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolLifecycle);

// Expects `o` to be refused with a ConfigError whose message contains `needle`.
void expect_refused(const PoolOptions& o, const std::string& needle) {
  try {
    Pool pool(o);
    ADD_FAILURE() << "accepted options that should be refused (" << needle << ")";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

class PoolOptionsValidation : public taskfarm::test::LeakCheck {};

TEST_F(PoolOptionsValidation, InvalidOptionsThrowConfigError) {
  PoolOptions o;
  o.workers = taskfarm::kMaxWorkers + 1;
  expect_refused(o, "workers");

  o = {};
  o.workers = 1;
  o.task_timeout = -1ms;
  expect_refused(o, "task_timeout");

  o = {};
  o.workers = 1;
  o.ring_bytes = taskfarm::kMinRingBytes - 1;
  expect_refused(o, "ring_bytes");
  o.ring_bytes = taskfarm::kMaxRingBytes + 1;
  expect_refused(o, "ring_bytes");

  o = {};
  o.workers = 1;
  o.max_message_bytes = taskfarm::kMinMessageBytes - 1;
  expect_refused(o, "max_message_bytes");
  o.max_message_bytes = taskfarm::kMaxMessageBytes + 1;
  expect_refused(o, "max_message_bytes");

  o = {};
  o.workers = 1;
  o.max_retries = 1'000'000;
  expect_refused(o, "max_retries");
}

TEST_F(PoolOptionsValidation, EveryTransportWorks) {
  for (auto t : {taskfarm::Transport::pipe, taskfarm::Transport::socket,
                 taskfarm::Transport::mqueue, taskfarm::Transport::shm}) {
    SCOPED_TRACE(std::string(taskfarm::to_string(t)));
    PoolOptions o;
    o.workers = 1;
    o.transport = t;
    Pool pool(o);
    EXPECT_EQ(pool.map(square, std::vector{1, 2, 3}), (std::vector{1, 4, 9}));
  }
}

TEST_F(PoolOptionsValidation, UnknownTransportValueIsRefused) {
  PoolOptions o;
  o.workers = 1;
  o.transport = static_cast<taskfarm::Transport>(42);
  expect_refused(o, "transport");
}

TEST_F(PoolOptionsValidation, ZeroWorkersMeansOnePerCore) {
  PoolOptions o;
  o.workers = 0;
  Pool pool(o);
  EXPECT_GE(pool.size(), 1u);
  EXPECT_EQ(pool.options().workers, pool.size());
  EXPECT_EQ(pool.map(square, std::vector{1, 2}), (std::vector{1, 4}));
}

TEST_P(PoolLifecycle, PoolsStartWhileAnotherThreadAllocates) {
  // Issue 12's reproduction: a thread that allocates and frees blocks of many
  // sizes while pools are created one after another. A fork server forked from
  // this (now multi-threaded) process could inherit the allocator's lock held
  // (ASan's is not reset in a fork child) and hang every worker it forks; the
  // pools' servers must come from the clean root server instead.
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    std::vector<void*> blocks(64, nullptr);
    std::size_t k = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      auto& b = blocks[k % blocks.size()];
      std::free(b);
      b = std::malloc(16 + (k * 7919) % 65536);
      ++k;
    }
    for (void* b : blocks) std::free(b);
  });
  const int pools = taskfarm::test::full_or_sanitized(100, 20);
  {
    HangGuard guard("pools created while another thread allocates", std::chrono::seconds(240));
    for (int i = 0; i < pools; ++i) {
      Pool pool(options(2));
      EXPECT_EQ(pool.stats().fork_image, taskfarm::ForkImage::program_start)
          << "a pool made while the program has threads must not fork its server from it";
      ASSERT_EQ(pool.map(square, std::vector<int>{1, 2, 3, 4}), (std::vector<int>{1, 4, 9, 16})) << "pool " << i;
    }
  }
  stop.store(true);
  churn.join();
}

TEST_P(PoolLifecycle, APoolMadeWhileSingleThreadedForksItsServerFromTheMaster) {
  Pool pool(options(1));
  EXPECT_EQ(pool.stats().fork_image, taskfarm::ForkImage::pool_creation);
  EXPECT_GT(pool.stats().fork_server_pid, 0);
  EXPECT_EQ(pool.map(square, std::vector<int>{3}), std::vector<int>{9});
}

TEST_P(PoolLifecycle, SubmitAfterShutdownThrowsPoolClosed) {
  Pool pool(options(2));
  EXPECT_EQ(pool.map(square, std::vector{2}), std::vector{4});
  pool.shutdown();
  EXPECT_THROW((void)pool.submit(square, 1), PoolClosed);
  EXPECT_THROW((void)pool.map(square, std::vector{1}), PoolClosed);
  EXPECT_THROW((void)pool.map(square, std::vector<int>{}), PoolClosed);
  EXPECT_THROW((void)pool.try_map(square, std::vector{1}), PoolClosed);
  pool.shutdown();  // idempotent
  pool.join();      // nothing left to wait for
}

TEST_P(PoolLifecycle, CloseThenJoinFinishesSubmittedWork) {
  Pool pool(options(2));
  std::vector<taskfarm::Future<int>> fs;
  for (int i = 0; i < 10; ++i) fs.push_back(pool.submit(sleep_ms, 2));
  pool.close();
  EXPECT_THROW((void)pool.submit(square, 1), PoolClosed);
  pool.join();
  for (auto& f : fs) {
    EXPECT_TRUE(f.ready());
    EXPECT_EQ(f.get(), 2);
  }
  EXPECT_TRUE(taskfarm::test::wait_no_children().empty()) << "join() waits for the workers";
}

TEST_P(PoolLifecycle, JoinWithoutCloseThrows) {
  Pool pool(options(1));
  EXPECT_THROW(pool.join(), taskfarm::Error);
  EXPECT_EQ(pool.map(square, std::vector{3}), std::vector{9}) << "the pool is unaffected";
  pool.close();
  pool.join();
}

TEST_P(PoolLifecycle, ShutdownWithCancelPendingCancelsWhatHasNotStarted) {
  TempDir dir;
  Pool pool(options(1));
  auto running = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  std::vector<taskfarm::Future<int>> queued;
  for (int k = 0; k < 16; ++k) queued.push_back(pool.submit(square, k));
  pool.shutdown(/*wait=*/false, /*cancel_pending=*/true);
  ASSERT_TRUE(touch(dir.path() / "release"));
  pool.join();
  EXPECT_EQ(running.get(), 1) << "the running task finishes";
  std::size_t cancelled = 0;
  for (int k = 0; k < 16; ++k) {
    auto& f = queued[static_cast<std::size_t>(k)];
    ASSERT_TRUE(f.ready()) << k;
    try {
      EXPECT_EQ(f.get(), k * k);
    } catch (const taskfarm::Cancelled&) {
      ++cancelled;
    }
  }
  EXPECT_GE(cancelled, 1u);
  EXPECT_THROW((void)queued.back().get(), taskfarm::Cancelled) << "the last was surely queued";
}

TEST_P(PoolLifecycle, TerminateKillsRunningTasks) {
  TempDir dir;
  Pool pool(options(1));
  auto running = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  std::vector<taskfarm::Future<int>> queued;
  for (int k = 0; k < 8; ++k) queued.push_back(pool.submit(square, k));
  pool.terminate();  // never released: only killing the worker ends it
  EXPECT_THROW((void)running.get(), taskfarm::Cancelled);
  for (auto& f : queued) EXPECT_THROW((void)f.get(), taskfarm::Cancelled);
  EXPECT_THROW((void)pool.submit(square, 1), PoolClosed);
  EXPECT_TRUE(taskfarm::test::wait_no_children().empty());
  pool.terminate();  // idempotent
}

TEST_P(PoolLifecycle, MaxTasksPerChildReplacesWorkers) {
  auto o = options(2);
  o.max_tasks_per_child = 5;
  Pool pool(o);
  const auto pids = pool.map(worker_pid, iota(60), taskfarm::MapOptions{1});
  ASSERT_EQ(pids.size(), 60u);
  std::map<long, int> per_process;
  for (long pid : pids) ++per_process[pid];
  for (const auto& [pid, n] : per_process) EXPECT_LE(n, 5) << "process " << pid;
  EXPECT_GE(per_process.size(), 12u);
  EXPECT_GE(pool.stats().restarts, 10u);
  std::vector<int> want;
  for (int i = 0; i < 100; ++i) want.push_back(i * i);
  EXPECT_EQ(pool.map(square, iota(100)), want) << "with chunks larger than the allowance";
}

TEST_P(PoolLifecycle, InitializerRunsInEveryWorkerBeforeItsTasks) {
  ASSERT_EQ(g_initialized, 0) << "the test process itself never ran it";
  auto o = options(2);
  o.initializer = &good_init;
  Pool pool(o);
  const auto got = pool.map(read_init, iota(100), taskfarm::MapOptions{1});
  for (int v : got) EXPECT_EQ(v, 42);
  EXPECT_EQ(g_initialized, 0);
}

TEST_P(PoolLifecycle, ThrowingInitializerFailsTasksWithItsError) {
  auto o = options(2);
  o.initializer = &bad_init;
  Pool pool(o);
  try {
    (void)pool.map(square, std::vector{1, 2, 3});
    FAIL() << "tasks ran although the initializer threw";
  } catch (const taskfarm::Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("initializer"), std::string::npos) << what;
    EXPECT_NE(what.find("pool_test.bad_init"), std::string::npos) << what;
    EXPECT_NE(what.find("init boom"), std::string::npos) << what;
  }
  // Later work fails the same way, at once; nothing hangs.
  const auto r = pool.try_map(square, std::vector{4});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_FALSE(r[0].ok());
  EXPECT_THROW((void)pool.submit(square, 5).get(), taskfarm::Error);
}

}  // namespace
}  // namespace pool_test
