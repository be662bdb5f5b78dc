// Pool::map / try_map / starmap: results in input order, each input run exactly
// once, payloads of every size intact, empty inputs, several callers at once.

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <thread>
#include <tuple>

#include "pool_support.hpp"

namespace pool_test {
namespace {

using taskfarm::MapOptions;
using taskfarm::Pool;

class PoolMap : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolMap);

TEST_P(PoolMap, ResultsComeInInputOrder) {
  Pool pool(options(3));
  const auto in = iota(1000);
  std::vector<int> want(in.size());
  std::transform(in.begin(), in.end(), want.begin(), [](int x) { return x * x; });
  EXPECT_EQ(pool.map(square, in), want);
  for (std::size_t chunk : {1u, 7u, 1000u, 5000u}) {
    SCOPED_TRACE("chunksize " + std::to_string(chunk));
    EXPECT_EQ(pool.map(square, in, MapOptions{chunk}), want);
  }
}

TEST_P(PoolMap, OrderHoldsWhenCompletionsInterleave) {
  // Tasks of varying length finish out of order across 3 workers.
  Pool pool(options(3));
  const auto in = iota(300);
  EXPECT_EQ(pool.map(jitter, in, MapOptions{1}), in);
  EXPECT_EQ(pool.map(jitter, in, MapOptions{4}), in);
}

TEST_P(PoolMap, AcceptsAnyInputRange) {
  Pool pool(options(2));
  EXPECT_EQ(pool.map(square, std::views::iota(0, 5)), (std::vector<int>{0, 1, 4, 9, 16}));
  const std::set<int> s{3, 1, 2};
  EXPECT_EQ(pool.map(square, s), (std::vector<int>{1, 4, 9}));
  // Converted to the task's argument type on the way.
  const std::vector<short> shorts{2, 3};
  EXPECT_EQ(pool.map(square, shorts), (std::vector<int>{4, 9}));
}

TEST_P(PoolMap, HundredThousandTinyTasksEachRunExactlyOnce) {
  constexpr std::uint64_t kCount = 100'000;
  Pool pool(options(2));
  std::vector<std::uint64_t> in(kCount);
  std::iota(in.begin(), in.end(), std::uint64_t{0});
  const auto out = pool.map(count_run, in);
  EXPECT_EQ(out, in) << "every input's own result, in input order";
  std::size_t wrong = 0;
  for (std::uint64_t i = 0; i < kCount; ++i)
    if (g_runs[i].load() != 1) ++wrong;
  EXPECT_EQ(wrong, 0u) << "inputs not run exactly once (first: run "
                       << [&] {
                            for (std::uint64_t i = 0; i < kCount; ++i)
                              if (g_runs[i].load() != 1)
                                return std::to_string(i) + " x" + std::to_string(g_runs[i].load());
                            return std::string("-");
                          }();
  const auto st = pool.stats();
  EXPECT_EQ(st.submitted, kCount);
  EXPECT_EQ(st.done, kCount);
  EXPECT_EQ(st.failed, 0u);
  EXPECT_EQ(st.retried, 0u);
  std::uint64_t per_worker = 0;
  for (const auto& w : st.workers) per_worker += w.tasks;
  EXPECT_EQ(per_worker, kCount);
}

TEST_P(PoolMap, HundredThousandTinyTasksWithChunksizeOne) {
  constexpr std::uint64_t kCount = 100'000;
  Pool pool(options(2));
  std::vector<std::uint64_t> in(kCount);
  std::iota(in.begin(), in.end(), std::uint64_t{0});
  EXPECT_EQ(pool.map(count_run, in, MapOptions{1}), in);
  std::uint64_t total = 0;
  bool all_once = true;
  for (std::uint64_t i = 0; i < kCount; ++i) {
    total += g_runs[i].load();
    all_once = all_once && g_runs[i].load() == 1;
  }
  EXPECT_TRUE(all_once);
  EXPECT_EQ(total, kCount);
}

TEST_P(PoolMap, EmptyInputGivesEmptyResult) {
  Pool pool(options(2));
  EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
  EXPECT_TRUE(pool.try_map(square, std::vector<int>{}).empty());
  EXPECT_TRUE(pool.starmap(add, std::vector<std::tuple<int, int>>{}).empty());
  // The pool is not disturbed by it.
  EXPECT_EQ(pool.map(square, std::vector{5}), std::vector{25});
}

TEST_P(PoolMap, StringPayloadsFromZeroTo64MiBAreIntact) {
  Pool pool(options(2));
  const std::vector<std::size_t> sizes = {0,     1,         63,        64,       65535, 65536,
                                          65537, 1u << 20, 16u << 20, taskfarm::test::kLargestPayload};
  std::vector<std::string> in;
  for (std::size_t k = 0; k < sizes.size(); ++k)
    in.push_back(text_pattern(sizes[k], static_cast<unsigned>(k)));
  const auto out = pool.map(complement, in);
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t k = 0; k < in.size(); ++k) {
    SCOPED_TRACE("payload of " + std::to_string(sizes[k]) + " bytes");
    EXPECT_EQ(out[k].size(), sizes[k]);
    EXPECT_TRUE(out[k] == complement_impl(in[k])) << "content differs";
  }
}

TEST_P(PoolMap, ByteVectorPayloadsAreIntact) {
  Pool pool(options(2));
  std::vector<std::vector<char>> in;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4096}, std::size_t{3} << 20,
                        taskfarm::test::kLargestPayload}) {
    const auto t = text_pattern(n, 3);
    in.emplace_back(t.begin(), t.end());
  }
  const auto out = pool.map(reverse, in);
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t k = 0; k < in.size(); ++k) {
    auto want = in[k];
    std::reverse(want.begin(), want.end());
    EXPECT_TRUE(out[k] == want) << "payload of " << in[k].size() << " bytes";
  }
}

TEST_P(PoolMap, LargeResultsFromSmallArguments) {
  Pool pool(options(2));
  const std::vector<std::uint64_t> sizes{0, 100, 1u << 20, taskfarm::test::kLargestPayload};
  const auto out = pool.map(make_text, sizes);
  ASSERT_EQ(out.size(), sizes.size());
  for (std::size_t k = 0; k < sizes.size(); ++k)
    EXPECT_TRUE(out[k] == text_pattern(sizes[k], 7)) << sizes[k] << " bytes";
}

TEST_P(PoolMap, StarmapAndMultiArgumentSubmit) {
  Pool pool(options(2));
  const std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {-5, 5}};
  EXPECT_EQ(pool.starmap(add, pairs), (std::vector<int>{3, 7, 0}));
  const std::vector<std::pair<int, int>> also{{10, 1}};
  EXPECT_EQ(pool.starmap(add, also), std::vector{11});
  EXPECT_EQ(pool.submit(add, 20, 22).get(), 42);
}

TEST_P(PoolMap, SeveralThreadsMapAtOnce) {
  Pool pool(options(2));
  constexpr int kThreads = 4;
  std::vector<std::vector<int>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::vector<int> in(2000);
      std::iota(in.begin(), in.end(), t * 10'000);
      got[static_cast<std::size_t>(t)] = pool.map(jitter, in, MapOptions{t % 2 ? 1u : 0u});
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    std::vector<int> want(2000);
    std::iota(want.begin(), want.end(), t * 10'000);
    EXPECT_EQ(got[static_cast<std::size_t>(t)], want) << "thread " << t;
  }
}

TEST_P(PoolMap, WorkersAreSeparateProcesses) {
  Pool pool(options(2));
  EXPECT_EQ(pool.size(), 2u);
  const auto pids = pool.map(worker_pid, iota(200), MapOptions{1});
  std::set<long> distinct(pids.begin(), pids.end());
  EXPECT_FALSE(distinct.contains(static_cast<long>(::getpid())));
  EXPECT_LE(distinct.size(), 2u);
  const auto st = pool.stats();
  ASSERT_EQ(st.workers.size(), 2u);
  for (long pid : distinct) {
    const bool known = std::any_of(st.workers.begin(), st.workers.end(),
                                   [pid](const taskfarm::WorkerStats& w) { return w.pid == pid; });
    EXPECT_TRUE(known) << "pid " << pid << " is one of the pool's workers in stats()";
  }
}

TEST_P(PoolMap, ArgumentLargerThanMaxMessageBytesFailsOnlyThatInput) {
  auto o = options(2);
  o.max_message_bytes = 64 * 1024;
  Pool pool(o);
  const std::vector<std::string> in{"a", std::string(100'000, 'x'), "b"};
  const auto r = pool.try_map(complement, in);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(r[0].ok());
  EXPECT_FALSE(r[1].ok());
  EXPECT_THROW(std::rethrow_exception(r[1].error()), taskfarm::SerializationError);
  EXPECT_TRUE(r[2].ok());
  EXPECT_EQ(r[2].value(), complement_impl("b"));
  EXPECT_EQ(pool.map(square, std::vector{3}), std::vector{9});
}

TEST_P(PoolMap, ResultLargerThanMaxMessageBytesIsASerializationError) {
  auto o = options(1);
  o.max_message_bytes = 64 * 1024;
  Pool pool(o);
  const std::vector<std::uint64_t> in{10, 200'000, 20};
  const auto r = pool.try_map(make_text, in, MapOptions{1});
  ASSERT_EQ(r.size(), 3u);
  EXPECT_TRUE(r[0].ok());
  ASSERT_FALSE(r[1].ok());
  EXPECT_THROW(std::rethrow_exception(r[1].error()), taskfarm::SerializationError) << describe(r[1]);
  EXPECT_TRUE(r[2].ok());
  EXPECT_EQ(pool.map(square, std::vector{4}), std::vector{16});
}

TEST_P(PoolMap, TaskRegisteredAfterThePoolStartedIsUnknownToItsWorkers) {
  // Forked workers have the task table of the moment the pool was created.
  Pool pool(options(1));
  const taskfarm::Task<int(int)> late{"pool_test.late", [](int x) { return x; }};
  const auto r = pool.try_map(late, std::vector{1});
  ASSERT_EQ(r.size(), 1u);
  ASSERT_FALSE(r[0].ok());
  try {
    std::rethrow_exception(r[0].error());
  } catch (const taskfarm::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("pool_test.late"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.map(square, std::vector{2}), std::vector{4}) << "the worker survives";
}

TEST_P(PoolMap, UnregisteredTaskIsAConfigErrorAtOnce) {
  Pool pool(options(1));
  taskfarm::detail::BatchBuilder b;
  taskfarm::encode_into(b.arena(), 1);
  b.end_item();
  try {
    (void)pool.run_batch("pool_test.no_such_task", std::move(b), {});
    FAIL() << "an unknown task name was accepted";
  } catch (const taskfarm::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("pool_test.no_such_task"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pool_test
