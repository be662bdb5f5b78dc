// Pool::submit and Future: get, wait_for, ready, cancel; Future<void> (tasks
// returning nothing) through the whole Future API.
//
// Tasks that must stay running are gated on files: pool_test.gated creates
// <dir>/started-<tag> and returns only once the test creates <dir>/release, so
// "running" and "not yet finished" are facts, not guesses about timing.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pool_support.hpp"

namespace pool_test {
namespace {

using namespace std::chrono_literals;
using taskfarm::Future;
using taskfarm::Pool;
using taskfarm::ReturnWhen;

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

// ===========================================================================
// Future<void>: tasks that return nothing
// ===========================================================================

// The message of a RemoteError, or what else the exception was.
std::string remote_message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const taskfarm::RemoteError& re) {
    return re.message();
  } catch (const std::exception& x) {
    return std::string("not a RemoteError: ") + x.what();
  } catch (...) {
    return "not a std::exception";
  }
}

TEST_P(PoolFuture, VoidTaskGetWaitAndFailure) {
  TempDir dir;
  Pool pool(options(2));
  const auto made = dir.path() / "made";
  Future<void> f = pool.submit(touch_file, made.string());
  ASSERT_TRUE(f.valid());
  f.get();
  EXPECT_TRUE(std::filesystem::exists(made)) << "get() returned before the task ran";
  EXPECT_TRUE(f.ready());
  EXPECT_EQ(f.wait_for(0ms), std::future_status::ready);
  f.wait();
  EXPECT_EQ(f.exception(), nullptr);
  EXPECT_FALSE(f.cancelled());
  EXPECT_FALSE(f.cancel()) << "a finished task cannot be cancelled";
  EXPECT_NO_THROW(f.get()) << "get() may be called again";

  // No arguments either.
  Future<void> none = pool.submit(noop);
  EXPECT_NO_THROW(none.get());

  // A failure comes out of get() and exception().
  Future<void> bad = pool.submit(void_throw_if_odd, 3);
  try {
    bad.get();
    FAIL() << "no exception";
  } catch (const taskfarm::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "std::invalid_argument");
    EXPECT_EQ(e.message(), "odd: 3");
    EXPECT_EQ(e.task(), "pool_test.void_throw_if_odd");
  }
  EXPECT_THROW(bad.get(), taskfarm::RemoteError) << "and again";
  EXPECT_EQ(remote_message(bad.exception()), "odd: 3");
  EXPECT_FALSE(bad.cancelled());
  EXPECT_NO_THROW(pool.submit(void_throw_if_odd, 4).get());

  Future<void> empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_THROW(empty.get(), taskfarm::Error);
}

TEST_P(PoolFuture, VoidTaskCancel) {
  TempDir dir;
  Pool pool(options(1));
  auto running = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  // Behind the only worker's gated task: still queued in the master.
  const auto never = dir.path() / "never";
  Future<void> queued = pool.submit(touch_file, never.string());
  EXPECT_TRUE(queued.cancel());
  EXPECT_TRUE(queued.ready());
  EXPECT_TRUE(queued.cancelled());
  EXPECT_THROW(queued.get(), taskfarm::Cancelled);
  EXPECT_NE(queued.exception(), nullptr);
  ASSERT_TRUE(touch(dir.path() / "release"));
  EXPECT_EQ(running.get(), 1);
  pool.shutdown();
  EXPECT_FALSE(std::filesystem::exists(never)) << "the cancelled task ran";
}

// then() and add_done_callback on Future<void>, added before the task finished
// (queued behind the only worker's gated task) and after.
TEST_P(PoolFuture, VoidTaskCallbacks) {
  TempDir dir;
  Pool pool(options(1));
  auto gate = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  Future<void> good = pool.submit(touch_file, (dir.path() / "good").string());
  Future<void> bad = pool.submit(void_throw_if_odd, 5);

  std::promise<std::string> good_then, bad_then, good_done, bad_done;
  good.then([&] { good_then.set_value("value"); },
            [&](std::exception_ptr e) { good_then.set_value("error: " + remote_message(e)); });
  bad.then([&] { bad_then.set_value("value"); },
           [&](std::exception_ptr e) { bad_then.set_value("error: " + remote_message(e)); });
  good.add_done_callback([&](const Future<void>& f) {
    good_done.set_value(f.ready() && f.exception() == nullptr ? "ok" : "wrong");
  });
  bad.add_done_callback([&](const Future<void>& f) {
    bad_done.set_value(f.ready() ? remote_message(f.exception()) : "not ready");
  });
  EXPECT_FALSE(good.ready()) << "cannot have run: the only worker is held by the gate";
  EXPECT_FALSE(bad.ready());
  ASSERT_TRUE(touch(dir.path() / "release"));
  EXPECT_EQ(good_then.get_future().get(), "value");
  EXPECT_EQ(bad_then.get_future().get(), "error: odd: 5");
  EXPECT_EQ(good_done.get_future().get(), "ok");
  EXPECT_EQ(bad_done.get_future().get(), "odd: 5");
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "good"));

  // On finished futures: at once, on this thread.
  int late_value = 0, late_error = 0, late_done = 0;
  good.then([&] { ++late_value; }, [&](std::exception_ptr) { ++late_error; });
  bad.then([&] { ++late_value; }, [&](std::exception_ptr) { ++late_error; });
  good.add_done_callback([&](const Future<void>&) { ++late_done; });
  EXPECT_EQ(late_value, 1);
  EXPECT_EQ(late_error, 1);
  EXPECT_EQ(late_done, 1);
  pool.shutdown();
}

TEST_P(PoolFuture, VoidTaskAsCompletedAndWait) {
  Pool pool(options(2));
  constexpr int kN = 40;
  std::vector<Future<void>> fs;
  for (int i = 0; i < kN; ++i) fs.push_back(pool.submit(void_throw_if_odd, i));
  fs.push_back(fs[0]);  // a copy counts once

  int ok = 0;
  std::set<std::string> failures;
  std::size_t yielded = 0;
  {
    HangGuard guard("as_completed over Future<void>");
    for (const auto& f : taskfarm::as_completed(fs)) {
      ++yielded;
      EXPECT_TRUE(f.ready());
      try {
        f.get();
        ++ok;
      } catch (const taskfarm::RemoteError& e) {
        EXPECT_TRUE(failures.insert(e.message()).second) << e.message();
      }
    }
  }
  EXPECT_EQ(yielded, static_cast<std::size_t>(kN));
  EXPECT_EQ(ok, kN / 2);
  EXPECT_EQ(failures.size(), static_cast<std::size_t>(kN / 2));

  taskfarm::WaitResult<void> r;
  {
    HangGuard guard("wait over Future<void>");
    r = taskfarm::wait(fs);
  }
  EXPECT_EQ(r.done.size(), static_cast<std::size_t>(kN));
  EXPECT_TRUE(r.not_done.empty());

  // first_exception: a failure among them ends the wait (all have finished
  // here, so done holds them all); with none it waits for all.
  r = taskfarm::wait(fs, ReturnWhen::first_exception, 30s);
  EXPECT_EQ(r.done.size(), static_cast<std::size_t>(kN));
  std::vector<Future<void>> fine;
  for (int i = 0; i < 10; ++i) fine.push_back(pool.submit(void_throw_if_odd, 2 * i));
  {
    HangGuard guard("wait(first_exception) over Future<void>");
    r = taskfarm::wait(fine, ReturnWhen::first_exception);
  }
  EXPECT_EQ(r.done.size(), 10u);
  EXPECT_TRUE(r.not_done.empty());
  for (auto& f : r.done) EXPECT_EQ(f.exception(), nullptr);
  r = taskfarm::wait(fine, ReturnWhen::first_completed);
  EXPECT_EQ(r.done.size(), 10u) << "all had finished";
}

}  // namespace
}  // namespace pool_test
