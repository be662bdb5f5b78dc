// The Pool API beyond plain map: lazy imap/imap_unordered over unbounded and
// failing inputs, chunksize edge cases, completion callbacks, as_completed and
// wait(), max_tasks_per_child with one worker, many user threads on one pool,
// and stats() after a known workload.
//
// Tasks that must stay unfinished are gated on files (pool_test.gated), so
// "not done yet" is a fact rather than a guess about timing. Time is measured
// only to check that a call with a timeout returns: against a task that cannot
// finish before the test releases it, with a margin of seconds.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <future>
#include <latch>
#include <map>
#include <memory>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <typeinfo>
#include <vector>

#include "pool_support.hpp"

namespace pool_test {
namespace {

using namespace std::chrono_literals;
using taskfarm::Future;
using taskfarm::MapOptions;
using taskfarm::Pool;
using taskfarm::ReturnWhen;
using Clock = std::chrono::steady_clock;

// Releases the gated tasks of `dir` when it goes out of scope, so that a failed
// assertion does not leave a worker blocked (and the pool's destructor waiting).
class Release {
 public:
  explicit Release(const TempDir& dir) : dir_(dir) {}
  ~Release() { (void)touch(dir_.path() / "release"); }
  Release(const Release&) = delete;
  Release& operator=(const Release&) = delete;

 private:
  const TempDir& dir_;
};

std::vector<int> squares_of(const std::vector<int>& in) {
  std::vector<int> out(in.size());
  std::transform(in.begin(), in.end(), out.begin(), [](int x) { return x * x; });
  return out;
}

std::vector<int> sorted(std::vector<int> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// The default look-ahead of imap, as documented in MapOptions.
std::size_t default_lookahead(std::size_t workers, std::size_t chunk) {
  return std::max<std::size_t>(64, 4 * workers * chunk);
}

// ===========================================================================
// imap / imap_unordered
// ===========================================================================

class PoolApiImap : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolApiImap);

// An unbounded input of which the consumer reads 5 results: only a bounded
// prefix of it is ever pulled (what is pulled and not consumed stays within the
// look-ahead), and only what was pulled is submitted.
TEST_P(PoolApiImap, UnboundedInputIsNotDrainedWhenTheConsumerStopsEarly) {
  struct Case {
    const char* name;
    bool ordered;
    MapOptions opts;
  };
  const Case cases[] = {
      {"imap default", true, {}},
      {"imap chunk 4 lookahead 16", true, {4, 16}},
      {"imap chunk 1 lookahead 1", true, {1, 1}},
      {"imap_unordered default", false, {}},
      {"imap_unordered chunk 4 lookahead 16", false, {4, 16}},
      {"imap_unordered chunk 1 lookahead 1", false, {1, 1}},
  };
  constexpr std::size_t kWorkers = 2;
  constexpr std::size_t kConsumed = 5;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Pool pool(options(kWorkers));
    std::atomic<std::size_t> pulled{0};
    std::atomic<int> highest{-1};
    auto input = std::views::iota(0) | std::views::transform([&](int x) {
                   pulled.fetch_add(1);
                   int h = highest.load();
                   while (x > h && !highest.compare_exchange_weak(h, x)) {
                   }
                   return x;
                 });
    std::vector<int> got;
    {
      HangGuard guard(std::string(c.name) + " over an unbounded input");
      auto results =
          c.ordered ? pool.imap(square, input, c.opts) : pool.imap_unordered(square, input, c.opts);
      for (int v : results) {
        got.push_back(v);
        if (got.size() == kConsumed) break;
      }
    }  // the result range is gone: what was submitted and not started is cancelled
    ASSERT_EQ(got.size(), kConsumed);
    const std::size_t chunk = c.opts.chunksize ? c.opts.chunksize : 1;
    const std::size_t lookahead =
        c.opts.lookahead ? c.opts.lookahead : default_lookahead(kWorkers, chunk);
    const std::size_t n = pulled.load();
    EXPECT_GE(n, kConsumed);
    EXPECT_LE(n, lookahead + kConsumed) << "inputs pulled: " << n << ", look-ahead " << lookahead;
    EXPECT_EQ(static_cast<std::size_t>(highest.load() + 1), n) << "each input pulled once, in order";
    if (c.ordered) {
      EXPECT_EQ(got, (std::vector<int>{0, 1, 4, 9, 16}));
    } else {
      std::set<int> distinct(got.begin(), got.end());
      EXPECT_EQ(distinct.size(), kConsumed) << "no result twice";
      for (int v : got) {
        bool is_square_of_pulled = false;
        for (std::size_t k = 0; k < n; ++k)
          if (static_cast<long long>(k) * static_cast<long long>(k) == v) is_square_of_pulled = true;
        EXPECT_TRUE(is_square_of_pulled) << v << " is not the square of a pulled input";
      }
    }
    // The pool is usable after an abandoned lazy map, and nothing else is pulled.
    EXPECT_EQ(pool.map(square, std::vector{6, 7}), (std::vector{36, 49}));
    pool.shutdown();
    EXPECT_EQ(pulled.load(), n) << "the input was touched after the consumer stopped";
    const auto st = pool.stats();
    EXPECT_EQ(st.submitted, n + 2) << "only pulled inputs (and the 2 of the map) were submitted";
    EXPECT_EQ(st.done, st.submitted);
  }
}

// An input range of the ints 0..n-1 whose iterator throws std::runtime_error
// when it is advanced past `fail_after` (dereferencing never throws): the
// other way an input can break midway.
class IncrementThrows {
 public:
  IncrementThrows(int n, int fail_after) : n_(n), fail_after_(fail_after) {}
  class iterator {
   public:
    using value_type = int;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(int cur, int n, int fail_after) : cur_(cur), n_(n), fail_after_(fail_after) {}
    int operator*() const { return cur_; }
    iterator& operator++() {
      if (cur_ == fail_after_) throw std::runtime_error("cannot advance past " + std::to_string(cur_));
      ++cur_;
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.cur_ >= it.n_; }

   private:
    int cur_ = 0, n_ = 0, fail_after_ = -1;
  };
  [[nodiscard]] iterator begin() const { return {0, n_, fail_after_}; }
  [[nodiscard]] std::default_sentinel_t end() const { return {}; }

 private:
  int n_, fail_after_;
};
static_assert(std::ranges::input_range<IncrementThrows>);

// Runs imap or imap_unordered over `input`, which breaks after its first
// `good` elements with std::runtime_error(`message`): the results of those
// come first (in order for imap), then the input's own exception, unchanged
// (neither wrapped nor sliced), from the iterator.
template <class Input>
void expect_results_then_input_error(Pool& pool, Input& input, bool ordered, MapOptions opts, int good,
                                     const std::string& message) {
  std::vector<int> got;
  bool threw = false;
  HangGuard guard("imap over a throwing input");
  try {
    auto results = ordered ? pool.imap(jitter, input, opts) : pool.imap_unordered(jitter, input, opts);
    for (int v : results) got.push_back(v);
  } catch (const std::runtime_error& e) {
    threw = true;
    EXPECT_TRUE(typeid(e) == typeid(std::runtime_error))
        << "rethrown as " << taskfarm::demangle(typeid(e).name()) << ": " << e.what();
    EXPECT_EQ(std::string(e.what()), message);
  }
  EXPECT_TRUE(threw) << "the input's exception did not reach the caller";
  if (ordered)
    EXPECT_EQ(got, iota(good)) << "every result before the broken input, in order, before the exception";
  else
    EXPECT_EQ(sorted(got), iota(good)) << "every result before the broken input, before the exception";
}

TEST_P(PoolApiImap, ExceptionFromTheInputRangeComesAfterTheResultsBeforeIt) {
  const MapOptions cases[] = {{0, 0}, {1, 0}, {7, 0}, {64, 0}, {1, 8}, {4, 16}, {100, 0}};
  for (bool ordered : {true, false}) {
    Pool pool(options(2));
    for (const auto& opts : cases) {
      SCOPED_TRACE(std::string(ordered ? "imap" : "imap_unordered") + " chunksize " +
                   std::to_string(opts.chunksize) + " lookahead " + std::to_string(opts.lookahead));
      // Element 50 of 100 throws when dereferenced.
      auto deref_throws = std::views::iota(0, 100) | std::views::transform([](int x) {
                            if (x == 50) throw std::runtime_error("input 50 is broken");
                            return x;
                          });
      expect_results_then_input_error(pool, deref_throws, ordered, opts, 50, "input 50 is broken");
      // The iterator throws when advanced past element 49.
      IncrementThrows increment_throws(100, 49);
      expect_results_then_input_error(pool, increment_throws, ordered, opts, 50, "cannot advance past 49");
      // The very first element throws: no results, just the exception.
      auto first_throws = std::views::iota(0, 100) | std::views::transform([](int x) {
                            if (x == 0) throw std::runtime_error("input 0 is broken");
                            return x;
                          });
      expect_results_then_input_error(pool, first_throws, ordered, opts, 0, "input 0 is broken");
      EXPECT_EQ(pool.map(square, std::vector{3}), std::vector{9}) << "the pool stays usable";
    }
    pool.shutdown();
    const auto st = pool.stats();
    EXPECT_EQ(st.done, st.submitted);
    EXPECT_EQ(st.failed, 0u) << "only the inputs before the broken one were submitted, and all ran";
  }
}

// ===========================================================================
// map / try_map / starmap over a throwing input
// ===========================================================================

class PoolApiMap : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolApiMap);

TEST_P(PoolApiMap, ExceptionFromTheInputRangePropagatesAndThePoolStaysUsable) {
  Pool pool(options(2));
  auto broken = std::views::iota(0, 100) | std::views::transform([](int x) {
                  if (x == 50) throw std::runtime_error("input 50 is broken");
                  return x;
                });
  for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{100}}) {
    SCOPED_TRACE("chunksize " + std::to_string(chunk));
    try {
      (void)pool.map(square, broken, MapOptions{chunk});
      ADD_FAILURE() << "map over a throwing input returned";
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(typeid(e) == typeid(std::runtime_error)) << taskfarm::demangle(typeid(e).name());
      EXPECT_STREQ(e.what(), "input 50 is broken");
    }
    // The input's failure is not a task failure: try_map does not turn it into a Result.
    EXPECT_THROW((void)pool.try_map(square, broken, MapOptions{chunk}), std::runtime_error);
    const auto pairs = broken | std::views::transform([](int x) { return std::tuple{x, 1}; });
    EXPECT_THROW((void)pool.starmap(add, pairs, MapOptions{chunk}), std::runtime_error);
    try {
      (void)pool.map(square, IncrementThrows(100, 49), MapOptions{chunk});
      ADD_FAILURE() << "map over an input whose iterator throws returned";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "cannot advance past 49");
    }
    // A following map works.
    EXPECT_EQ(pool.map(square, iota(100), MapOptions{chunk}), squares_of(iota(100)));
  }
  pool.shutdown();
  const auto st = pool.stats();
  EXPECT_EQ(st.submitted, 300u) << "nothing of the failed calls reached the workers";
  EXPECT_EQ(st.done, 300u);
  EXPECT_EQ(st.failed, 0u);
}

// ===========================================================================
// chunksize edge cases
// ===========================================================================

class PoolApiChunksize : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolApiChunksize);

// map with chunksize 1 / = size / > size is covered by PoolMap.ResultsComeInInputOrder,
// and map over an empty input with the automatic chunksize by PoolMap.EmptyInputGivesEmptyResult.
TEST_P(PoolApiChunksize, EdgeChunksizesGiveCompleteResults) {
  Pool pool(options(3));
  constexpr int kN = 37;  // not a multiple of anything used below
  const auto in = iota(kN);
  const auto want = squares_of(in);
  const std::size_t n = in.size();
  for (std::size_t chunk : {std::size_t{1}, n, n + 1, 10 * n, std::size_t{1} << 20}) {
    SCOPED_TRACE("chunksize " + std::to_string(chunk));
    HangGuard guard("chunksize " + std::to_string(chunk));
    const MapOptions opts{chunk};

    const auto r = pool.try_map(square, in, opts);
    ASSERT_EQ(r.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_TRUE(r[i].ok()) << i << ": " << describe(r[i]);
      EXPECT_EQ(r[i].value(), want[i]) << i;
    }
    std::vector<std::tuple<int, int>> pairs;
    for (int x : in) pairs.emplace_back(x, 1000);
    std::vector<int> sums;
    for (int x : in) sums.push_back(x + 1000);
    EXPECT_EQ(pool.starmap(add, pairs, opts), sums);

    std::vector<int> ordered;
    for (int v : pool.imap(jitter, in, opts)) ordered.push_back(v);
    EXPECT_EQ(ordered, in) << "imap";
    std::vector<int> unordered;
    for (int v : pool.imap_unordered(jitter, in, opts)) unordered.push_back(v);
    EXPECT_EQ(sorted(unordered), in) << "imap_unordered: the same multiset";

    // A chunk larger than an explicit look-ahead.
    const MapOptions small_lookahead{chunk, 4};
    ordered.clear();
    for (int v : pool.imap(square, in, small_lookahead)) ordered.push_back(v);
    EXPECT_EQ(ordered, want) << "imap, look-ahead 4";
    unordered.clear();
    for (int v : pool.imap_unordered(square, in, small_lookahead)) unordered.push_back(v);
    EXPECT_EQ(sorted(unordered), want) << "imap_unordered, look-ahead 4";
  }
}

TEST_P(PoolApiChunksize, EmptyInputWithEveryChunksize) {
  Pool pool(options(2));
  const std::vector<int> none;
  for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{1000}}) {
    SCOPED_TRACE("chunksize " + std::to_string(chunk));
    HangGuard guard("empty input, chunksize " + std::to_string(chunk));
    const MapOptions opts{chunk};
    EXPECT_TRUE(pool.map(square, none, opts).empty());
    EXPECT_TRUE(pool.try_map(square, none, opts).empty());
    EXPECT_TRUE(pool.starmap(add, std::vector<std::tuple<int, int>>{}, opts).empty());
    std::size_t yielded = 0;
    for (int v : pool.imap(square, none, opts)) {
      (void)v;
      ++yielded;
    }
    for (int v : pool.imap_unordered(square, none, opts)) {
      (void)v;
      ++yielded;
    }
    for (int v : pool.imap(square, std::views::iota(0, 0), opts)) {
      (void)v;
      ++yielded;
    }
    EXPECT_EQ(yielded, 0u);
  }
  EXPECT_EQ(pool.map(square, std::vector{5}), std::vector{25}) << "the pool is not disturbed";
  pool.shutdown();
  EXPECT_EQ(pool.stats().submitted, 1u);
}

// ===========================================================================
// completion callbacks
// ===========================================================================

class PoolApiCallbacks : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolApiCallbacks);

// 1000 futures, half of which fail: add_done_callback and then() are each
// called exactly once per future, whether added while the task may still run
// or after it has finished; then() calls exactly one of on_value / on_error,
// the right one.
TEST_P(PoolApiCallbacks, EveryCallbackRunsExactlyOnce) {
  constexpr std::size_t kN = 1000;
  // early: added right after submit (racing the task); late: added once done.
  std::vector<std::atomic<int>> early_done(kN), early_value(kN), early_error(kN);
  std::vector<std::atomic<int>> late_done(kN), late_value(kN), late_error(kN);
  std::vector<std::atomic<int>> wrong(kN);  // a callback saw the wrong value or error
  auto check_value = [&](std::size_t i, int v) {
    if (i % 2 != 0 || v != static_cast<int>(i)) wrong[i].fetch_add(1);
  };
  auto check_error = [&](std::size_t i, const std::exception_ptr& e) {
    try {
      std::rethrow_exception(e);
    } catch (const taskfarm::RemoteError& re) {
      if (i % 2 == 0 || re.message() != "odd: " + std::to_string(i)) wrong[i].fetch_add(1);
    } catch (...) {
      wrong[i].fetch_add(1);
    }
  };

  Pool pool(options(3));
  std::vector<Future<int>> fs;
  fs.reserve(kN);
  {
    HangGuard guard("1000 futures with callbacks");
    for (std::size_t i = 0; i < kN; ++i) {
      auto f = pool.submit(throw_if_odd, static_cast<int>(i));
      f.add_done_callback([&, i](const Future<int>& done) {
        if (!done.ready()) wrong[i].fetch_add(1);  // called before it finished
        early_done[i].fetch_add(1);
      });
      f.then([&, i](int v) { early_value[i].fetch_add(1);
        check_value(i, v); },
             [&, i](std::exception_ptr e) { early_error[i].fetch_add(1);
        check_error(i, e); });
      fs.push_back(std::move(f));
    }
    for (auto& f : fs) f.wait();
  }
  const auto me = std::this_thread::get_id();
  for (std::size_t i = 0; i < kN; ++i) {
    std::thread::id ran_on;
    fs[i].add_done_callback([&, i](const Future<int>&) {
      ran_on = std::this_thread::get_id();
      late_done[i].fetch_add(1);
    });
    EXPECT_EQ(late_done[i].load(), 1) << "a callback on a finished future runs at once: " << i;
    EXPECT_EQ(ran_on, me) << "a callback on a finished future runs on the adding thread: " << i;
    fs[i].then([&, i](int v) { late_value[i].fetch_add(1);
      check_value(i, v); },
               [&, i](std::exception_ptr e) { late_error[i].fetch_add(1);
      check_error(i, e); });
    EXPECT_EQ(late_value[i].load() + late_error[i].load(), 1) << i;
  }
  // After shutdown every queued callback has run (the callback thread is drained).
  {
    HangGuard guard("shutdown with callbacks");
    pool.shutdown();
  }
  std::size_t bad = 0;
  for (std::size_t i = 0; i < kN; ++i) {
    const bool odd = i % 2 != 0;
    const bool ok = early_done[i] == 1 && late_done[i] == 1 && early_value[i] == (odd ? 0 : 1) &&
                    early_error[i] == (odd ? 1 : 0) && late_value[i] == (odd ? 0 : 1) &&
                    late_error[i] == (odd ? 1 : 0) && wrong[i] == 0;
    if (!ok && bad++ < 10)
      ADD_FAILURE() << "future " << i << ": done " << early_done[i].load() << "/" << late_done[i].load()
                    << ", value " << early_value[i].load() << "/" << late_value[i].load() << ", error "
                    << early_error[i].load() << "/" << late_error[i].load() << ", wrong " << wrong[i].load();
  }
  EXPECT_EQ(bad, 0u) << "futures whose callbacks did not run exactly once, correctly";
}

// A callback added before the task finished runs on the pool's callback thread,
// not on the thread that added it.
TEST_P(PoolApiCallbacks, CallbackOfAPendingFutureRunsOnTheCallbackThread) {
  TempDir dir;
  Pool pool(options(1));
  Release release(dir);  // destroyed before the pool, whose destructor waits for the task
  auto f = pool.submit(gated, dir.str(), 1);
  std::promise<std::thread::id> ran_on;
  f.add_done_callback([&](const Future<int>& done) {
    ran_on.set_value(std::this_thread::get_id());
    EXPECT_EQ(done.get(), 1);
  });
  ASSERT_TRUE(touch(dir.path() / "release"));
  auto got = ran_on.get_future();
  ASSERT_EQ(got.wait_for(30s), std::future_status::ready) << "the callback never ran";
  EXPECT_NE(got.get(), std::this_thread::get_id());
}

// Captures what this process writes to stderr (fd 2) between construction and
// take(); gives it back even when an assertion ends the test early.
class StderrCapture {
 public:
  StderrCapture() { ::testing::internal::CaptureStderr(); }
  ~StderrCapture() {
    if (!taken_) (void)::testing::internal::GetCapturedStderr();
  }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;
  std::string take() {
    taken_ = true;
    return ::testing::internal::GetCapturedStderr();
  }

 private:
  bool taken_ = false;
};

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// A callback that throws is reported on stderr and otherwise ignored, the same
// way whether it was added before the task finished (it runs on the callback
// thread) or after (it runs at once on the adding thread): the exception never
// reaches the caller of add_done_callback / then.
TEST_P(PoolApiCallbacks, AThrowingCallbackIsReportedTheSameWayBeforeAndAfterCompletion) {
  TempDir dir;
  Pool pool(options(1));  // created before the capture: its workers keep the real stderr
  Release release(dir);   // destroyed before the pool, whose destructor waits for the task
  auto gate = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  // Queued behind the only worker's gated task: certainly not finished yet.
  auto pending_value = pool.submit(square, 3);
  auto pending_error = pool.submit(throw_if_odd, 5);
  auto finished_value = pool.submit(square, 4);
  auto finished_error = pool.submit(throw_if_odd, 7);

  StderrCapture capture;
  EXPECT_NO_THROW(pending_value.add_done_callback(
      [](const Future<int>&) { throw std::runtime_error("pending add_done_callback"); }));
  EXPECT_NO_THROW(
      pending_value.then([](int) { throw std::runtime_error("pending on_value"); }));
  EXPECT_NO_THROW(pending_error.then(
      [](int) {}, [](std::exception_ptr) { throw std::runtime_error("pending on_error"); }));
  EXPECT_NO_THROW(pending_error.add_done_callback([](const Future<int>&) { throw 42; }));
  // A future's callbacks run one at a time, in the order they were added: when
  // the last one runs, those before it have run and been reported.
  std::promise<void> value_drained, error_drained;
  pending_value.add_done_callback([&](const Future<int>&) { value_drained.set_value(); });
  pending_error.add_done_callback([&](const Future<int>&) { error_drained.set_value(); });
  EXPECT_FALSE(pending_value.ready()) << "the only worker is held by the gate";
  EXPECT_FALSE(pending_error.ready());
  ASSERT_TRUE(touch(dir.path() / "release"));
  ASSERT_EQ(value_drained.get_future().wait_for(30s), std::future_status::ready);
  ASSERT_EQ(error_drained.get_future().wait_for(30s), std::future_status::ready);

  finished_value.wait();
  finished_error.wait();
  EXPECT_NO_THROW(finished_value.add_done_callback(
      [](const Future<int>&) { throw std::runtime_error("finished add_done_callback"); }));
  EXPECT_NO_THROW(
      finished_value.then([](int) { throw std::runtime_error("finished on_value"); }));
  EXPECT_NO_THROW(finished_error.then(
      [](int) {}, [](std::exception_ptr) { throw std::runtime_error("finished on_error"); }));
  EXPECT_NO_THROW(finished_error.add_done_callback([](const Future<int>&) { throw 42; }));
  const std::string err = capture.take();

  for (const char* what : {"pending add_done_callback", "pending on_value", "pending on_error",
                           "finished add_done_callback", "finished on_value", "finished on_error"})
    EXPECT_EQ(occurrences(err, std::string("taskfarm: a completion callback threw: ") + what + "\n"), 1u)
        << what << " in:\n" << err;
  EXPECT_EQ(occurrences(err, "taskfarm: a completion callback threw a non-standard exception\n"), 2u)
      << err;
  // The pool and its callback thread are unharmed.
  EXPECT_EQ(pool.submit(square, 5).get(), 25);
  std::promise<int> after;
  pool.submit(square, 6).then([&](int v) { after.set_value(v); });
  EXPECT_EQ(after.get_future().get(), 36);
}

// A callback may submit to the same pool and wait for the result there, and
// chains of such callbacks make progress.
TEST_P(PoolApiCallbacks, CallbackSubmittingToTheSamePoolDoesNotDeadlock) {
  HangGuard guard("callbacks that submit to their own pool");
  Pool pool(options(2));

  // add_done_callback: submits, then blocks on get() on the callback thread.
  std::promise<int> inner_result;
  auto outer = pool.submit(square, 6);
  outer.add_done_callback([&](const Future<int>& f) {
    try {
      inner_result.set_value(pool.submit(add, f.get(), 1).get());
    } catch (...) {
      inner_result.set_exception(std::current_exception());
    }
  });
  EXPECT_EQ(inner_result.get_future().get(), 37);

  // then(): submits and hands the inner future out, not waiting.
  std::promise<Future<int>> handed_out;
  pool.submit(square, 5).then([&](int v) { handed_out.set_value(pool.submit(add, v, 2)); },
                              [&](std::exception_ptr e) { handed_out.set_exception(e); });
  EXPECT_EQ(handed_out.get_future().get().get(), 27);

  // on_error submits too.
  std::promise<int> after_error;
  pool.submit(throw_if_odd, 3)
      .then([&](int) { after_error.set_value(-1); },
            [&](std::exception_ptr) {
              try {
                after_error.set_value(pool.submit(square, 9).get());
              } catch (...) {
                after_error.set_exception(std::current_exception());
              }
            });
  EXPECT_EQ(after_error.get_future().get(), 81);

  // A chain: each callback submits the next step and puts its callback on it.
  constexpr int kSteps = 50;
  std::promise<int> end;
  std::function<void(const Future<int>&)> step = [&](const Future<int>& f) {
    try {
      const int v = f.get();
      if (v == kSteps)
        end.set_value(v);
      else
        pool.submit(add, v, 1).add_done_callback(step);
    } catch (...) {
      end.set_exception(std::current_exception());
    }
  };
  pool.submit(add, 0, 1).add_done_callback(step);
  EXPECT_EQ(end.get_future().get(), kSteps);

  // Many at once: 200 callbacks, each submitting a follow-up and waiting for it.
  // (They must have run before shutdown: a pool that is shut down takes no work,
  // from callbacks neither.)
  std::vector<std::atomic<int>> follow(200);
  std::latch all_ran(200);
  std::vector<Future<int>> fs;
  for (int i = 0; i < 200; ++i) {
    fs.push_back(pool.submit(square, i));
    fs.back().add_done_callback([&, i](const Future<int>& f) {
      try {
        follow[static_cast<std::size_t>(i)].store(pool.submit(add, f.get(), 1).get() == i * i + 1 ? 1 : -1);
      } catch (...) {
        follow[static_cast<std::size_t>(i)].store(-2);
      }
      all_ran.count_down();
    });
  }
  all_ran.wait();
  pool.shutdown();
  for (int i = 0; i < 200; ++i) EXPECT_EQ(follow[static_cast<std::size_t>(i)].load(), 1) << i;
}

// ===========================================================================
// as_completed / wait
// ===========================================================================

class PoolApiWait : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolApiWait);

TEST_P(PoolApiWait, AsCompletedYieldsEachFutureExactlyOnce) {
  Pool pool(options(3));
  constexpr int kN = 300;
  std::vector<Future<int>> fs;
  for (int i = 0; i < kN; ++i) fs.push_back(pool.submit(jitter, i));
  (void)fs[0].get();  // some have finished before as_completed starts
  std::map<const void*, int> index;
  for (int i = 0; i < kN; ++i) index[fs[static_cast<std::size_t>(i)].batch().get()] = i;
  // Copies of the same future count once.
  auto with_copies = fs;
  with_copies.push_back(fs[0]);
  with_copies.push_back(fs[17]);
  with_copies.push_back(fs[299]);

  std::vector<int> times(kN, 0);
  std::size_t yielded = 0;
  {
    HangGuard guard("as_completed");
    for (const auto& f : taskfarm::as_completed(with_copies)) {
      ASSERT_TRUE(f.ready()) << "yielded before it finished";
      const auto it = index.find(f.batch().get());
      ASSERT_NE(it, index.end()) << "yielded a future that was not passed in";
      ++times[static_cast<std::size_t>(it->second)];
      EXPECT_EQ(f.get(), it->second);
      ++yielded;
    }
  }
  EXPECT_EQ(yielded, static_cast<std::size_t>(kN));
  for (int i = 0; i < kN; ++i) EXPECT_EQ(times[static_cast<std::size_t>(i)], 1) << i;

  // Failures are yielded like successes.
  std::vector<Future<int>> mixed;
  for (int i = 0; i < 40; ++i) mixed.push_back(pool.submit(throw_if_odd, i));
  std::set<int> seen;
  int failures = 0;
  for (const auto& f : taskfarm::as_completed(mixed)) {
    try {
      EXPECT_TRUE(seen.insert(f.get()).second);
    } catch (const taskfarm::RemoteError&) {
      ++failures;
    }
  }
  EXPECT_EQ(seen.size(), 20u);
  EXPECT_EQ(failures, 20);
}

TEST_P(PoolApiWait, AsCompletedWithATimeoutThrowsAtTheDeadline) {
  TempDir dir;
  Pool pool(options(2));
  Release release(dir);  // destroyed before the pool, whose destructor waits for the task
  std::vector<Future<int>> fs{pool.submit(gated, dir.str(), 1)};
  fs.push_back(pool.submit(sleep_ms, 5));
  std::vector<int> got;
  const auto start = Clock::now();
  try {
    for (const auto& f : taskfarm::as_completed(fs, 100ms)) got.push_back(f.get());
    ADD_FAILURE() << "as_completed finished although a task cannot finish";
  } catch (const taskfarm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("1 of 2"), std::string::npos) << e.what();
  }
  const auto elapsed = Clock::now() - start;
  EXPECT_EQ(got, std::vector{5}) << "the finished one comes before the deadline error";
  EXPECT_GE(elapsed, 100ms);
  EXPECT_LT(elapsed, 3s) << "as_completed blocked well past its deadline";
  EXPECT_FALSE(fs[0].ready());
}

// The tasks here take >= 5 ms (sleep_ms, fail_negative) or never finish until
// released (gated), so the pool sends each worker one task at a time: nothing
// gets queued behind the blocked worker's gated task.
TEST_P(PoolApiWait, WaitFirstCompleted) {
  TempDir dir;
  Pool pool(options(2));
  Release release(dir);  // destroyed before the pool, whose destructor waits for the task
  auto blocked = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  auto quick = pool.submit(sleep_ms, 5);
  const auto start = Clock::now();
  taskfarm::WaitResult<int> r;
  {
    HangGuard guard("wait(first_completed)");
    r = taskfarm::wait(std::vector{blocked, quick}, ReturnWhen::first_completed);
  }
  EXPECT_LT(Clock::now() - start, 3s);
  ASSERT_EQ(r.done.size(), 1u);
  ASSERT_EQ(r.not_done.size(), 1u);
  EXPECT_EQ(r.done[0].batch(), quick.batch());
  EXPECT_EQ(r.not_done[0].batch(), blocked.batch());
  EXPECT_EQ(r.done[0].get(), 5);

  // With a timeout and nothing finishing: returns at the deadline, nothing done.
  const auto t0 = Clock::now();
  r = taskfarm::wait(std::vector{blocked}, ReturnWhen::first_completed, 100ms);
  const auto waited = Clock::now() - t0;
  EXPECT_TRUE(r.done.empty());
  EXPECT_EQ(r.not_done.size(), 1u);
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 3s);

  // Already finished: returns at once with it.
  r = taskfarm::wait(std::vector{quick, blocked}, ReturnWhen::first_completed, 10s);
  EXPECT_EQ(r.done.size(), 1u);
  EXPECT_EQ(r.not_done.size(), 1u);
}

TEST_P(PoolApiWait, WaitFirstException) {
  TempDir dir;
  Pool pool(options(2));
  Release release(dir);  // destroyed before the pool, whose destructor waits for the task
  auto blocked = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  // Successes come first and do not end the wait; the failure does.
  std::vector<Future<int>> fs{blocked};
  for (int k = 0; k < 3; ++k) fs.push_back(pool.submit(sleep_ms, 5));
  auto failing = pool.submit(fail_negative, -5);
  fs.push_back(failing);
  taskfarm::WaitResult<int> r;
  const auto start = Clock::now();
  {
    HangGuard guard("wait(first_exception)");
    r = taskfarm::wait(fs, ReturnWhen::first_exception, 20s);
  }
  EXPECT_LT(Clock::now() - start, 3s);
  ASSERT_EQ(r.not_done.size(), 1u);
  EXPECT_EQ(r.not_done[0].batch(), blocked.batch());
  ASSERT_EQ(r.done.size(), 4u) << "the 3 successes before it and the failure";
  bool has_failure = false;
  for (auto& f : r.done) has_failure = has_failure || f.batch() == failing.batch();
  EXPECT_TRUE(has_failure);
  EXPECT_THROW((void)failing.get(), taskfarm::RemoteError);

  // Without any failure, first_exception waits for all.
  std::vector<Future<int>> fine;
  for (int k = 0; k < 5; ++k) fine.push_back(pool.submit(sleep_ms, 5));
  r = taskfarm::wait(fine, ReturnWhen::first_exception, 20s);
  EXPECT_EQ(r.done.size(), 5u);
  EXPECT_TRUE(r.not_done.empty());
  // ... and with a task that cannot finish, until the timeout.
  fine.push_back(blocked);
  const auto t0 = Clock::now();
  r = taskfarm::wait(fine, ReturnWhen::first_exception, 100ms);
  const auto waited = Clock::now() - t0;
  EXPECT_EQ(r.done.size(), 5u);
  EXPECT_EQ(r.not_done.size(), 1u);
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 3s);
}

// As in Python (concurrent.futures.wait, FIRST_EXCEPTION), a cancelled future
// is done but is no failure: it does not end a first_exception wait, which goes
// on until a future fails or all are done.
TEST_P(PoolApiWait, WaitFirstExceptionIsNotEndedByACancelledFuture) {
  TempDir dir;
  Pool pool(options(1));
  Release release(dir);  // destroyed before the pool, whose destructor waits for the task
  auto failed = pool.submit(fail_negative, -1);
  EXPECT_THROW((void)failed.get(), taskfarm::RemoteError);
  auto blocked = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  // Behind the only worker's gated task: cancelled one, queued the other.
  auto cancelled = pool.submit(square, 3);
  ASSERT_TRUE(cancelled.cancel());
  EXPECT_TRUE(cancelled.cancelled());
  auto queued = pool.submit(square, 4);
  EXPECT_FALSE(queued.cancelled());
  EXPECT_FALSE(failed.cancelled()) << "a failure is not a cancellation";
  const std::vector fs{blocked, cancelled, queued};
  auto batches = [](const std::vector<Future<int>>& v) {
    std::set<const void*> out;
    for (const auto& f : v) out.insert(f.batch().get());
    return out;
  };

  // With a timeout: the cancelled one is done, the others not; the wait ended
  // by its timeout (nothing else can finish), not by the cancellation.
  auto r = taskfarm::wait(fs, ReturnWhen::first_exception, 100ms);
  EXPECT_EQ(batches(r.done), batches({cancelled}));
  EXPECT_EQ(batches(r.not_done), batches({blocked, queued}));

  // A real failure among them still ends the wait at once.
  {
    HangGuard guard("wait(first_exception) with a failed future");
    r = taskfarm::wait(std::vector{blocked, cancelled, queued, failed}, ReturnWhen::first_exception);
  }
  EXPECT_EQ(batches(r.done), batches({cancelled, failed}));
  EXPECT_EQ(batches(r.not_done), batches({blocked, queued}));

  // Without a timeout the wait lasts until all are done. The gate is opened
  // only once the wait has returned (or after 300 ms, which it needs here), so
  // a wait that stopped at the cancelled future would still see the gated task
  // unfinished: the sets below tell, whatever the timing.
  std::promise<void> returned;
  std::thread opener([&dir, done = returned.get_future()] {
    (void)done.wait_for(300ms);
    (void)touch(dir.path() / "release");
  });
  {
    HangGuard guard("wait(first_exception) with a cancelled future");
    r = taskfarm::wait(fs, ReturnWhen::first_exception);
  }
  returned.set_value();
  opener.join();
  EXPECT_EQ(batches(r.done), batches(fs)) << "the wait returned before all were done";
  EXPECT_TRUE(r.not_done.empty());
  EXPECT_EQ(blocked.get(), 1);
  EXPECT_EQ(queued.get(), 16);
  EXPECT_THROW((void)cancelled.get(), taskfarm::Cancelled);
}

// as_completed keeps no future it has yielded (CPython's bpo-27144): once the
// caller has dropped its own copies, each future's shared state -- its outcome,
// the result -- is freed as soon as the loop moves past it, not at the end.
TEST_P(PoolApiWait, AsCompletedReleasesEachFutureOnceTheLoopMovesOn) {
  constexpr std::size_t kN = 16;
  std::vector<Future<std::string>> fs;
  {
    Pool pool(options(2));
    for (std::size_t i = 0; i < kN; ++i) fs.push_back(pool.submit(make_text, std::uint64_t{64} << 10));
    for (auto& f : fs) f.wait();
  }  // the pool is gone: nothing but these futures holds a batch
  std::vector<std::weak_ptr<taskfarm::detail::Batch>> weak;
  for (auto& f : fs) weak.push_back(f.batch());
  auto expired = [&] {
    return static_cast<std::size_t>(
        std::count_if(weak.begin(), weak.end(), [](const auto& w) { return w.expired(); }));
  };
  ASSERT_EQ(expired(), 0u);

  auto completed = taskfarm::as_completed(fs);
  fs.clear();  // from here on only `completed` holds the futures
  std::size_t yielded = 0;
  for (const auto& f : completed) {
    EXPECT_EQ(expired(), yielded) << "the futures yielded before this one are freed, no other";
    EXPECT_EQ(f.get(), text_pattern(std::size_t{64} << 10, 7));
    ++yielded;
  }
  EXPECT_EQ(yielded, kN);
  EXPECT_EQ(expired(), kN) << "the finished loop holds nothing, though `completed` still exists";
}

TEST_P(PoolApiWait, WaitAllCompleted) {
  TempDir dir;
  Pool pool(options(2));
  Release release(dir);  // destroyed before the pool, whose destructor waits for the task
  std::vector<Future<int>> fs;
  for (int k = 0; k < 20; ++k) fs.push_back(pool.submit(throw_if_odd, k));
  fs.push_back(fs[3]);  // a copy counts once
  taskfarm::WaitResult<int> r;
  {
    HangGuard guard("wait(all_completed)");
    r = taskfarm::wait(fs);  // the default: all_completed, no timeout
  }
  EXPECT_EQ(r.done.size(), 20u);
  EXPECT_TRUE(r.not_done.empty());
  for (auto& f : r.done) EXPECT_TRUE(f.ready());

  // A task that cannot finish: the timeout ends the wait, well before the task would.
  auto blocked = pool.submit(gated, dir.str(), 1);
  ASSERT_TRUE(wait_for_file(dir.path() / "started-1"));
  std::vector<Future<int>> with_blocked{blocked, pool.submit(sleep_ms, 5), pool.submit(sleep_ms, 5)};
  const auto start = Clock::now();
  r = taskfarm::wait(with_blocked, ReturnWhen::all_completed, 100ms);
  const auto waited = Clock::now() - start;
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 3s) << "wait() blocked well past its timeout";
  EXPECT_EQ(r.done.size() + r.not_done.size(), 3u);
  ASSERT_FALSE(r.not_done.empty());
  bool blocked_not_done = false;
  for (auto& f : r.not_done) blocked_not_done = blocked_not_done || f.batch() == blocked.batch();
  EXPECT_TRUE(blocked_not_done);
  for (auto& f : r.done) EXPECT_TRUE(f.ready());

  // Released, the same wait completes.
  ASSERT_TRUE(touch(dir.path() / "release"));
  {
    HangGuard guard("wait(all_completed) after release");
    r = taskfarm::wait(with_blocked, ReturnWhen::all_completed, 30s);
  }
  EXPECT_EQ(r.done.size(), 3u);
  EXPECT_TRUE(r.not_done.empty());
  EXPECT_EQ(blocked.get(), 1);
}

// ===========================================================================
// max_tasks_per_child, many user threads, stats
// ===========================================================================

class PoolApiPool : public PoolTest {};
POOL_TEST_TRANSPORTS(PoolApiPool);

TEST_P(PoolApiPool, MaxTasksPerChildThreeWithOneWorker) {
  auto o = options(1);
  o.max_tasks_per_child = 3;
  Pool pool(o);
  std::vector<long> pids;
  for (int k = 0; k < 4; ++k) pids.push_back(pool.submit(worker_pid, k).get());
  EXPECT_EQ(pids[0], pids[1]);
  EXPECT_EQ(pids[1], pids[2]);
  EXPECT_NE(pids[3], pids[0]) << "the 4th task ran in the retired worker";
  EXPECT_NE(pids[3], static_cast<long>(::getpid()));
  // And the replacement retires after its own 3.
  for (int k = 4; k < 7; ++k) pids.push_back(pool.submit(worker_pid, k).get());
  EXPECT_EQ(pids[4], pids[3]);
  EXPECT_EQ(pids[5], pids[3]);
  EXPECT_NE(pids[6], pids[3]);
  EXPECT_NE(pids[6], pids[0]);
  pool.shutdown();
  EXPECT_EQ(pool.stats().restarts, 2u);
}

TEST_P(PoolApiPool, EightThreadsShareOnePool) {
  constexpr int kThreads = 8;
  Pool pool(options(3));
  std::barrier start(kThreads);
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  {
    HangGuard guard("8 threads on one pool", std::chrono::seconds(90));
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        int& bad = failures[static_cast<std::size_t>(t)];
        std::vector<int> in(150);
        std::iota(in.begin(), in.end(), t * 1000);
        start.arrive_and_wait();
        for (int round = 0; round < 3; ++round) {
          if (pool.map(square, in, MapOptions{static_cast<std::size_t>(round)}) != squares_of(in)) ++bad;
          std::vector<Future<int>> fs;
          for (int k = 0; k < 20; ++k) fs.push_back(pool.submit(add, t, k * 100));
          for (int k = 0; k < 20; ++k)
            if (fs[static_cast<std::size_t>(k)].get() != t + k * 100) ++bad;
          std::vector<int> got;
          for (int v : pool.imap(jitter, in, MapOptions{static_cast<std::size_t>(round)})) got.push_back(v);
          if (got != in) ++bad;
          got.clear();
          for (int v : pool.imap_unordered(square, in)) got.push_back(v);
          if (sorted(got) != squares_of(in)) ++bad;
          const auto r = pool.try_map(throw_if_odd, in);
          for (std::size_t k = 0; k < r.size(); ++k)
            if (r[k].ok() != (in[k] % 2 == 0)) ++bad;
        }
      });
    for (auto& th : threads) th.join();
  }
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[static_cast<std::size_t>(t)], 0) << "thread " << t;
  {
    HangGuard guard("shutdown after 8 threads");
    pool.shutdown();
  }
  const auto st = pool.stats();
  const std::uint64_t per_thread = 3 * (150 + 20 + 150 + 150 + 150);
  EXPECT_EQ(st.submitted, kThreads * per_thread);
  EXPECT_EQ(st.done, kThreads * per_thread);
  EXPECT_EQ(st.failed, kThreads * 3 * 75u) << "the odd inputs of try_map";
}

TEST_P(PoolApiPool, StatsAfterAKnownWorkload) {
  Pool pool(options(2));
  EXPECT_EQ(pool.stats().submitted, 0u);
  EXPECT_EQ(pool.stats().done, 0u);
  // 100 map + 50 try_map (25 fail) + 10 submit + 30 imap + 20 imap_unordered +
  // 8 sleeping tasks of 2 ms.
  EXPECT_EQ(pool.map(square, iota(100)), squares_of(iota(100)));
  const auto r = pool.try_map(throw_if_odd, iota(50));
  EXPECT_EQ(std::count_if(r.begin(), r.end(), [](const auto& x) { return !x.ok(); }), 25);
  for (int k = 0; k < 10; ++k) EXPECT_EQ(pool.submit(square, k).get(), k * k);
  std::size_t n = 0;
  for (int v : pool.imap(square, iota(30))) n += static_cast<std::size_t>(v >= 0);
  for (int v : pool.imap_unordered(square, iota(20))) n += static_cast<std::size_t>(v >= 0);
  EXPECT_EQ(n, 50u);
  EXPECT_EQ(pool.map(sleep_ms, std::vector<int>(8, 2), MapOptions{1}), std::vector<int>(8, 2));

  const auto live = pool.stats();
  ASSERT_EQ(live.workers.size(), 2u);
  for (const auto& w : live.workers) {
    EXPECT_GT(w.pid, 0) << "slot " << w.slot;
    EXPECT_NE(w.pid, static_cast<long>(::getpid()));
  }
  EXPECT_NE(live.workers[0].pid, live.workers[1].pid);

  pool.shutdown();  // the counts are final once the dispatcher has stopped
  const auto st = pool.stats();
  constexpr std::uint64_t kTotal = 100 + 50 + 10 + 30 + 20 + 8;
  EXPECT_EQ(st.submitted, kTotal);
  EXPECT_EQ(st.done, kTotal);
  EXPECT_EQ(st.failed, 25u);
  EXPECT_EQ(st.retried, 0u);
  EXPECT_EQ(st.restarts, 0u);
  std::uint64_t per_worker = 0, busy = 0;
  for (const auto& w : st.workers) {
    per_worker += w.tasks;
    busy += w.busy_ns;
    EXPECT_EQ(w.restarts, 0u);
  }
  EXPECT_EQ(per_worker, kTotal) << "every item ran on some worker, failures included";
  EXPECT_GE(busy, 8u * 2'000'000u) << "the workers measured at least the 8 sleeps of 2 ms";
  EXPECT_LE(st.p50_ns, st.p90_ns);
  EXPECT_LE(st.p90_ns, st.p99_ns);
  EXPECT_GT(st.p99_ns, 0u);
}

}  // namespace
}  // namespace pool_test
