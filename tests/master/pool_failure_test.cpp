// Failures: task exceptions, workers that die, task timeouts. Each failure is
// charged to the input that caused it and to nothing else, and the pool stays
// usable afterwards.

#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "pool_support.hpp"

namespace pool_test {
namespace {

using namespace std::chrono_literals;
using taskfarm::MapOptions;
using taskfarm::Pool;

class PoolFailure : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolFailure);

TEST_P(PoolFailure, TryMapGivesOneResultPerInputWithRemoteErrors) {
  Pool pool(options(2));
  const auto r = pool.try_map(throw_if_odd, iota(10));
  ASSERT_EQ(r.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    const auto& res = r[static_cast<std::size_t>(i)];
    SCOPED_TRACE("input " + std::to_string(i));
    if (i % 2 == 0) {
      ASSERT_TRUE(res.ok());
      EXPECT_EQ(res.value(), i);
      EXPECT_EQ(res.error(), nullptr);
      continue;
    }
    ASSERT_FALSE(res.ok());
    EXPECT_THROW((void)res.value(), taskfarm::RemoteError) << "value() rethrows";
    try {
      std::rethrow_exception(res.error());
    } catch (const taskfarm::RemoteError& e) {
      EXPECT_EQ(e.type_name(), "std::invalid_argument");
      EXPECT_EQ(e.message(), "odd: " + std::to_string(i));
      EXPECT_EQ(e.task(), "pool_test.throw_if_odd");
      EXPECT_EQ(e.index(), static_cast<std::uint64_t>(i));
      EXPECT_EQ(std::string(e.what()), "task \"pool_test.throw_if_odd\" #" + std::to_string(i) +
                                           " raised std::invalid_argument: odd: " + std::to_string(i));
    }
  }
}

TEST_P(PoolFailure, NonStandardExceptionsAreReportedByType) {
  Pool pool(options(1));
  const auto r = pool.try_map(throw_int, std::vector{0});
  ASSERT_EQ(r.size(), 1u);
  try {
    std::rethrow_exception(r[0].error());
  } catch (const taskfarm::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "int");
    EXPECT_EQ(e.message(), "");
    EXPECT_EQ(e.index(), 0u);
  }
}

TEST_P(PoolFailure, MapThrowsTheFailureOfTheLowestIndex) {
  // Input 2 fails slowly (after 100 ms), input 7 at once: map reports input 2.
  Pool pool(options(2));
  const std::vector<int> in{0, 1, -100, 3, 4, 5, 6, -1, 8};
  for (std::size_t chunk : {0u, 1u}) {
    SCOPED_TRACE("chunksize " + std::to_string(chunk));
    try {
      (void)pool.map(fail_negative, in, MapOptions{chunk});
      FAIL() << "no exception";
    } catch (const taskfarm::RemoteError& e) {
      EXPECT_EQ(e.index(), 2u);
      EXPECT_EQ(e.message(), "negative -100");
      EXPECT_EQ(e.type_name(), "std::runtime_error");
    }
  }
  EXPECT_EQ(pool.map(fail_negative, std::vector{1, 2}), (std::vector{1, 2}));
}

TEST_P(PoolFailure, WorkerKilledMidTaskIsWorkerLostForThatInputOnly) {
  auto o = options(2);
  o.max_retries = 0;
  Pool pool(o);
  const auto r = pool.try_map(die_on_3, iota(10));
  ASSERT_EQ(r.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    SCOPED_TRACE("input " + std::to_string(i));
    const auto& res = r[static_cast<std::size_t>(i)];
    if (i != 3) {
      EXPECT_TRUE(res.ok()) << describe(res);
      if (res.ok()) {
        EXPECT_EQ(res.value(), 10 * i);
      }
      EXPECT_EQ(g_runs[i].load(), 1u) << "ran exactly once";
      continue;
    }
    ASSERT_FALSE(res.ok());
    try {
      std::rethrow_exception(res.error());
    } catch (const taskfarm::WorkerLost& e) {
      EXPECT_EQ(e.signal(), SIGKILL);
      EXPECT_EQ(e.exit_code(), -1);
      EXPECT_EQ(e.task(), "pool_test.die_on_3");
      EXPECT_EQ(e.index(), 3u);
      EXPECT_GE(e.worker(), 0);
      EXPECT_LT(e.worker(), 2);
      EXPECT_GT(e.pid(), 0);
      EXPECT_EQ(std::string(e.what()),
                "worker " + std::to_string(e.worker()) + " (pid " + std::to_string(e.pid()) +
                    ") was killed by SIGKILL while running task \"pool_test.die_on_3\" #3");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "expected WorkerLost, got " << e.what();
    }
    EXPECT_EQ(g_runs[3].load(), 1u) << "no retry with max_retries = 0";
  }
  // The pool replaced the worker and goes on.
  EXPECT_EQ(pool.map(square, iota(50)), [] {
    std::vector<int> v;
    for (int i = 0; i < 50; ++i) v.push_back(i * i);
    return v;
  }());
  EXPECT_GE(pool.stats().restarts, 1u);
  EXPECT_THROW((void)pool.map(die_on_3, std::vector{3}), taskfarm::WorkerLost);
  EXPECT_EQ(pool.map(square, std::vector{7}), std::vector{49});
}

TEST_P(PoolFailure, WorkerKilledMidTaskWithChunksizeOne) {
  auto o = options(2);
  o.max_retries = 0;
  Pool pool(o);
  const auto r = pool.try_map(die_on_3, iota(10), MapOptions{1});
  ASSERT_EQ(r.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    const auto& res = r[static_cast<std::size_t>(i)];
    EXPECT_EQ(res.ok(), i != 3) << "input " << i << ": " << describe(res);
    EXPECT_EQ(g_runs[i].load(), 1u) << "input " << i;
  }
  EXPECT_THROW(std::rethrow_exception(r[3].error()), taskfarm::WorkerLost);
}

TEST_P(PoolFailure, RetryAfterWorkerDeathSucceeds) {
  TempDir dir;
  auto o = options(2);
  o.max_retries = 1;
  Pool pool(o);
  std::vector<std::pair<std::string, int>> in;
  for (int i = 0; i < 10; ++i) in.emplace_back(dir.str(), i);
  const auto out = pool.map(die_once_on_3, in);
  std::vector<int> want;
  for (int i = 0; i < 10; ++i) want.push_back(10 * i);
  EXPECT_EQ(out, want);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "died-once")) << "the worker did die once";
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(g_runs[i].load(), i == 3 ? 2u : 1u) << "input " << i << " runs";
  const auto st = pool.stats();
  EXPECT_EQ(st.retried, 1u);
  EXPECT_GE(st.restarts, 1u);
  EXPECT_EQ(st.failed, 0u);
}

TEST_P(PoolFailure, RetriesAreBoundedByMaxRetries) {
  auto o = options(2);
  o.max_retries = 2;
  Pool pool(o);
  const auto r = pool.try_map(die_on_3, std::vector{3}, MapOptions{1});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_THROW(std::rethrow_exception(r[0].error()), taskfarm::WorkerLost);
  EXPECT_EQ(g_runs[3].load(), 3u) << "one run plus two retries";
  EXPECT_EQ(pool.stats().retried, 2u);
}

TEST_P(PoolFailure, TaskTimeoutKillsTheWorkerAndThePoolStaysUsable) {
  auto o = options(2);
  o.task_timeout = 200ms;
  Pool pool(o);
  auto f = pool.submit(sleep_ms, 10'000);
  try {
    (void)f.get();
    FAIL() << "no timeout";
  } catch (const taskfarm::TaskTimeout& e) {
    EXPECT_EQ(e.task(), "pool_test.sleep_ms");
    EXPECT_EQ(e.index(), 0u);
    EXPECT_EQ(e.timeout(), 200ms);
  }
  EXPECT_EQ(pool.map(square, iota(20)).size(), 20u);
  EXPECT_EQ(pool.map(sleep_ms, std::vector{1, 2, 3}), (std::vector{1, 2, 3}));
  EXPECT_GE(pool.stats().restarts, 1u);
}

TEST_P(PoolFailure, ATimedOutItemsDurationRunsFromItsStartToTheKill) {
  // The outcome of a timed-out item says how long it ran (the CLI's joblog and
  // result lines use it), not 0.
  auto o = options(1);
  o.task_timeout = 200ms;
  o.max_retries = 0;
  Pool pool(o);
  taskfarm::detail::BatchBuilder b;
  taskfarm::encode_into(b.arena(), 10'000);
  b.end_item();
  auto batch = pool.run_batch(sleep_ms.name(), std::move(b), MapOptions{1}, true);
  for (int i = 0; i < 30'000 && !batch->is_done(0); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(batch->is_done(0));
  const auto& out = batch->outcome(0);
  ASSERT_FALSE(out.ok);
  EXPECT_THROW(std::rethrow_exception(out.error), taskfarm::TaskTimeout);
  EXPECT_EQ(out.attempts, 1u);
  EXPECT_GE(out.duration_ns, std::uint64_t{200'000'000}) << "it ran at least task_timeout";
  EXPECT_LT(out.duration_ns, std::uint64_t{10'000'000'000}) << "it was killed long before it would have ended";
}

TEST_P(PoolFailure, TaskTimeoutIsChargedToTheSlowInputOnly) {
  // One worker: the 1 ms inputs before and after the slow one share its link.
  auto o = options(1);
  o.task_timeout = 200ms;
  Pool pool(o);
  const auto r = pool.try_map(sleep_ms, std::vector{1, 10'000, 1, 1, 1}, MapOptions{1});
  ASSERT_EQ(r.size(), 5u);
  for (std::size_t i = 0; i < r.size(); ++i) {
    SCOPED_TRACE("input " + std::to_string(i));
    if (i == 1) {
      EXPECT_THROW(std::rethrow_exception(r[i].error()), taskfarm::TaskTimeout);
    } else {
      EXPECT_TRUE(r[i].ok()) << describe(r[i]);
    }
  }
}

TEST_P(PoolFailure, DeathInALongMapLosesAndDuplicatesNothing) {
  // A death in the middle of a long map neither loses nor duplicates the rest.
  auto o = options(2);
  o.max_retries = 0;
  Pool pool(o);
  const auto r = pool.try_map(die_on_3, iota(5000));
  std::vector<std::size_t> failed, not_once;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (!r[i].ok()) failed.push_back(i);
    if (g_runs[i].load() != 1) not_once.push_back(i);
  }
  EXPECT_EQ(failed, std::vector<std::size_t>{3});
  EXPECT_TRUE(not_once.empty()) << not_once.size() << " inputs not run exactly once, first #"
                                << (not_once.empty() ? 0 : not_once[0]) << " ran "
                                << (not_once.empty() ? 0 : g_runs[not_once[0]].load()) << " times";
  EXPECT_FALSE(r[3].ok());
}

// The same two failures in a pool that has been busy with tiny tasks for a
// while. Workers then hold back the results of tasks under 20 us to write
// several at once, and keep holding them while they start the next task. When
// that task kills the worker or times out, the master charges the failure to
// the oldest item it has no result for -- one that had finished: an innocent
// input fails with WorkerLost / TaskTimeout, and the guilty one is re-run
// uncharged on a fresh worker (input 3 below runs three times with
// max_retries = 0). A core bug, reported with these tests; they are disabled
// until it is fixed (run them with --gtest_also_run_disabled_tests).
void warm_up(Pool& pool) {
  const auto in = iota(20'000);
  ASSERT_EQ(pool.map(square, in, MapOptions{1}).size(), in.size());
}

TEST_P(PoolFailure, WorkerKilledAfterManyTinyTasksIsChargedToTheRightInput) {
  auto o = options(1);
  o.max_retries = 0;
  Pool pool(o);
  warm_up(pool);
  const auto r = pool.try_map(die_on_3_quick, iota(10), MapOptions{1});
  ASSERT_EQ(r.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    const auto& res = r[static_cast<std::size_t>(i)];
    EXPECT_EQ(res.ok(), i != 3) << "input " << i << ": " << describe(res);
    if (res.ok()) EXPECT_EQ(res.value(), 10 * i);
    // Input 3 ran once and was charged (max_retries = 0). Inputs the worker had
    // finished but whose coalesced results died with it run again, uncharged;
    // the results are still delivered once.
    if (i == 3)
      EXPECT_EQ(g_runs[i].load(), 1u);
    else
      EXPECT_GE(g_runs[i].load(), 1u) << "input " << i;
  }
  ASSERT_FALSE(r[3].ok());
  EXPECT_THROW(std::rethrow_exception(r[3].error()), taskfarm::WorkerLost);
}

TEST_P(PoolFailure, TaskTimeoutAfterManyTinyTasksIsChargedToTheRightInput) {
  auto o = options(1);
  o.task_timeout = 200ms;
  Pool pool(o);
  warm_up(pool);
  const auto r = pool.try_map(sleep_ms, std::vector{0, 10'000, 0, 0, 0}, MapOptions{1});
  ASSERT_EQ(r.size(), 5u);
  for (std::size_t i = 0; i < r.size(); ++i) {
    EXPECT_EQ(r[i].ok(), i != 1) << "input " << i << ": " << describe(r[i]);
  }
  EXPECT_THROW(std::rethrow_exception(r[1].error()), taskfarm::TaskTimeout);
}

}  // namespace
}  // namespace pool_test
