// Pool::submit and Future: get, wait_for, ready, cancel.
//
// Tasks that must stay running are gated on files: pool_test.gated creates
// <dir>/started-<tag> and returns only once the test creates <dir>/release, so
// "running" and "not yet finished" are facts, not guesses about timing.

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "pool_support.hpp"

namespace pool_test {
namespace {

using namespace std::chrono_literals;
using taskfarm::Future;
using taskfarm::Pool;

class PoolFuture : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolFuture);

TEST_P(PoolFuture, GetWaitForAndReady) {
  TempDir dir;
  Pool pool(options(1));
  Future<int> f = pool.submit(gated, dir.str(), 7);
  ASSERT_TRUE(f.valid());
  EXPECT_EQ(f.wait_for(10ms), std::future_status::timeout) << "it cannot finish before release";
  EXPECT_FALSE(f.ready());
  ASSERT_TRUE(wait_for_file(dir.path() / "started-7"));
  EXPECT_FALSE(f.ready());
  ASSERT_TRUE(touch(dir.path() / "release"));
  EXPECT_EQ(f.get(), 7);
  EXPECT_TRUE(f.ready());
  EXPECT_EQ(f.wait_for(0ms), std::future_status::ready);
  EXPECT_EQ(f.get(), 7) << "get() may be called again";
  const Future<int> copy = f;
  EXPECT_EQ(copy.get(), 7) << "copies share the outcome";
}

TEST_P(PoolFuture, FailuresComeOutOfGet) {
  Pool pool(options(1));
  Future<int> f = pool.submit(throw_if_odd, 3);
  try {
    (void)f.get();
    FAIL() << "no exception";
  } catch (const taskfarm::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "std::invalid_argument");
    EXPECT_EQ(e.message(), "odd: 3");
    EXPECT_EQ(e.task(), "pool_test.throw_if_odd");
    EXPECT_EQ(e.index(), 0u);
  }
  EXPECT_TRUE(f.ready());
  EXPECT_THROW((void)f.get(), taskfarm::RemoteError) << "and again";
  EXPECT_EQ(pool.submit(throw_if_odd, 4).get(), 4);
}

TEST_P(PoolFuture, DefaultConstructedFutureHasNoState) {
  Future<int> f;
  EXPECT_FALSE(f.valid());
  EXPECT_FALSE(f.ready());
  EXPECT_FALSE(f.cancel());
  EXPECT_THROW((void)f.get(), taskfarm::Error);
  EXPECT_THROW((void)f.wait_for(1ms), taskfarm::Error);
}

TEST_P(PoolFuture, CancelStopsAQueuedTaskButNotARunningOne) {
  TempDir dir;
  Pool pool(options(1));
  Future<int> running = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  // The only worker is busy. Whatever the dispatcher may already have handed to
  // it, the last of these are certainly still queued in the master.
  std::vector<Future<int>> queued;
  for (int k = 0; k < 16; ++k) queued.push_back(pool.submit(square, k));

  EXPECT_FALSE(running.cancel()) << "a running task cannot be cancelled";
  Future<int>& last = queued.back();
  EXPECT_TRUE(last.cancel());
  EXPECT_FALSE(last.cancel()) << "cancelled once";
  EXPECT_TRUE(last.ready());
  EXPECT_THROW((void)last.get(), taskfarm::Cancelled);
  EXPECT_TRUE(queued[14].cancel());

  ASSERT_TRUE(touch(dir.path() / "release"));
  EXPECT_EQ(running.get(), 1);
  for (int k = 0; k < 14; ++k) EXPECT_EQ(queued[static_cast<std::size_t>(k)].get(), k * k) << k;
  EXPECT_THROW((void)queued[14].get(), taskfarm::Cancelled);
  EXPECT_FALSE(queued[0].cancel()) << "a finished task cannot be cancelled";
  EXPECT_EQ(queued[0].get(), 0);

  // The dispatcher counts a cancelled task when it comes across it in its
  // queue, which may be after get() returned; once the pool is shut down the
  // counts are final.
  pool.shutdown();
  const auto st = pool.stats();
  EXPECT_EQ(st.submitted, 17u);
  EXPECT_EQ(st.done, 17u) << "cancelled tasks count as done";
  EXPECT_EQ(st.failed, 2u) << "and as failed";
}

// One worker, busy with a task that has not reported back yet: the next
// submitted future has not started, so it can still be cancelled.
TEST_P(PoolFuture, CancelTheTaskRightBehindARunningOne) {
  TempDir dir;
  Pool pool(options(1));
  Future<int> running = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  Future<int> second = pool.submit(square, 5);
  EXPECT_TRUE(second.cancel());
  ASSERT_TRUE(touch(dir.path() / "release"));
  EXPECT_EQ(running.get(), 1);
  EXPECT_THROW((void)second.get(), taskfarm::Cancelled);
}

TEST_P(PoolFuture, CancelRacingTheDispatcherEndsEveryFutureExactlyOnce) {
  // Whatever cancel() answers, the future ends the matching way: Cancelled
  // exactly when cancel() returned true, its value otherwise.
  Pool pool(options(2));
  std::vector<Future<std::uint64_t>> fs;
  for (std::uint64_t i = 0; i < 2000; ++i) fs.push_back(pool.submit(count_run, i));
  std::vector<bool> cancelled(fs.size());
  for (std::size_t i = 0; i < fs.size(); i += 3) cancelled[i] = fs[i].cancel();
  for (std::size_t i = 0; i < fs.size(); ++i) {
    if (cancelled[i]) {
      EXPECT_THROW((void)fs[i].get(), taskfarm::Cancelled) << i;
      EXPECT_EQ(g_runs[i].load(), 0u) << "cancelled task " << i << " ran";
    } else {
      EXPECT_EQ(fs[i].get(), i);
      EXPECT_EQ(g_runs[i].load(), 1u) << i;
    }
  }
}

TEST_P(PoolFuture, ShutdownWithOnlyACancelledFutureLeftDoesNotHang) {
  // One worker runs a gated task; a second future waits in the master's queue
  // and is cancelled; the pool is shut down; then the running task finishes.
  // The dispatcher then has nothing left but a cancelled entry to skip: it must
  // notice that the work is done and stop the worker, not sleep forever.
  TempDir dir;
  Pool pool(options(1));
  auto running = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  auto queued = pool.submit(square, 2);
  ASSERT_TRUE(queued.cancel());
  pool.shutdown(/*wait=*/false);
  ASSERT_TRUE(touch(dir.path() / "release"));
  {
    HangGuard guard("Pool::join() after a cancelled future");
    pool.join();
  }
  EXPECT_EQ(running.get(), 1);
  EXPECT_THROW((void)queued.get(), taskfarm::Cancelled);
}

TEST_P(PoolFuture, PoolShutsDownRightAfterQueuedWorkIsCancelled) {
  // What an abandoned lazy map leaves behind: some work running, the rest
  // cancelled by its consumer, then the pool goes away. Nothing may hang.
  for (int round = 0; round < 30; ++round) {
    Pool pool(options(2));
    std::vector<Future<int>> fs;
    for (int i = 0; i < 300; ++i) fs.push_back(pool.submit(jitter, i));
    (void)fs[0].get();
    for (auto it = fs.rbegin(); it != fs.rend(); ++it) it->cancel();
    pool.shutdown();
    for (auto& f : fs) EXPECT_TRUE(f.ready());
  }
}

TEST_P(PoolFuture, CancelledBatchItemsDoNotHoldUpShutdown) {
  // The same through run_batch with chunks, as imap submits its windows.
  for (int round = 0; round < 30; ++round) {
    Pool pool(options(2));
    taskfarm::detail::BatchBuilder b;
    for (int i = 0; i < 512; ++i) {
      taskfarm::encode_into(b.arena(), i);
      b.end_item();
    }
    auto batch = pool.run_batch(jitter.name(), std::move(b), taskfarm::MapOptions{16}, true);
    while (!batch->is_done(0)) std::this_thread::yield();
    for (std::size_t i = 0; i < batch->size(); ++i) batch->cancel(i, "abandoned by the test");
  }  // ~Pool
}

TEST_P(PoolFuture, DestructorFinishesWorkInFlight) {
  std::vector<Future<int>> fs;
  {
    Pool pool(options(2));
    for (int i = 0; i < 20; ++i) fs.push_back(pool.submit(sleep_ms, 5));
    for (int i = 0; i < 20; ++i) fs.push_back(pool.submit(square, i));
  }  // graceful: every submitted task finishes before the workers stop
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(fs[static_cast<std::size_t>(i)].ready());
    EXPECT_EQ(fs[static_cast<std::size_t>(i)].get(), 5);
    EXPECT_EQ(fs[static_cast<std::size_t>(20 + i)].get(), i * i);
  }
}

}  // namespace
}  // namespace pool_test
