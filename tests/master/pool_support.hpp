#pragma once
// Tasks and helpers shared by the Pool suites.
//
// Tasks are defined at namespace scope, so they are registered before any pool
// starts its workers. Workers started with Start::fork (the default) are forked
// from this process and see its state as of the Pool's construction: the shared
// run counters below. Spawned workers (pool_spawn_test.cpp) share nothing;
// arguments carry everything else (temporary paths).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

#include "support/test_support.hpp"
#include "taskfarm/taskfarm.hpp"

namespace taskfarm {
// Test names and failure messages say "pipe" rather than "4-byte object <00-00 00-00>".
inline void PrintTo(Transport t, std::ostream* os) { *os << to_string(t); }
}  // namespace taskfarm

namespace pool_test {

// Per-input execution counters in MAP_SHARED memory, mapped at static
// initialisation (before any pool forks), so every worker increments the same
// counters: a side channel that shows how often each input really ran.
inline constexpr std::size_t kRunSlots = 1 << 17;
std::atomic<std::uint32_t>* map_run_counters();
inline std::atomic<std::uint32_t>* const g_runs = map_run_counters();
void reset_runs();

// Set by good_init in each worker; read by read_init.
inline int g_initialized = 0;

// Files as signals between the test and its tasks.
bool touch(const std::filesystem::path& p);
bool wait_for_file(const std::filesystem::path& p,
                   std::chrono::milliseconds patience = std::chrono::seconds(30));

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Deterministic content for payload checks.
std::string text_pattern(std::size_t n, unsigned seed);

// ---- tasks ----------------------------------------------------------------

int square_impl(int x);
inline const taskfarm::Task<int(int)> square{"pool_test.square", &square_impl};

// Counts its own execution in g_runs[x] and returns x.
std::uint64_t count_run_impl(std::uint64_t x);
inline const taskfarm::Task<std::uint64_t(std::uint64_t)> count_run{"pool_test.count_run",
                                                                    &count_run_impl};

// Sleeps a pseudo-random 0..299 us (so completions interleave), returns x.
int jitter_impl(int x);
inline const taskfarm::Task<int(int)> jitter{"pool_test.jitter", &jitter_impl};

// Throws std::invalid_argument("odd: <x>") for odd x, else returns x.
int throw_if_odd_impl(int x);
inline const taskfarm::Task<int(int)> throw_if_odd{"pool_test.throw_if_odd", &throw_if_odd_impl};

// Throws an int (not a std::exception).
int throw_int_impl(int x);
inline const taskfarm::Task<int(int)> throw_int{"pool_test.throw_int", &throw_int_impl};

// For x < 0: sleeps -x ms, then throws std::runtime_error("negative <x>"). Else returns x.
int fail_negative_impl(int x);
inline const taskfarm::Task<int(int)> fail_negative{"pool_test.fail_negative", &fail_negative_impl};

// Returns the input with every byte complemented.
std::string complement_impl(std::string s);
inline const taskfarm::Task<std::string(std::string)> complement{"pool_test.complement",
                                                                 &complement_impl};
// Returns the input reversed.
std::vector<char> reverse_impl(std::vector<char> v);
inline const taskfarm::Task<std::vector<char>(std::vector<char>)> reverse{"pool_test.reverse",
                                                                         &reverse_impl};
// Returns text_pattern(n, 7).
std::string make_text_impl(std::uint64_t n);
inline const taskfarm::Task<std::string(std::uint64_t)> make_text{"pool_test.make_text",
                                                                  &make_text_impl};

// Creates <dir>/started-<tag>, waits for <dir>/release (at most 60 s), returns tag.
int gated_impl(std::string dir, int tag);
inline const taskfarm::Task<int(std::string, int)> gated{"pool_test.gated", &gated_impl};

// Sleeps ms milliseconds, returns ms.
int sleep_ms_impl(int ms);
inline const taskfarm::Task<int(int)> sleep_ms{"pool_test.sleep_ms", &sleep_ms_impl};

// Counts its run in g_runs[x]; raises SIGKILL on itself for x == 3; returns 10 * x.
// The other inputs take 100 us, long enough that a worker reports each result
// as soon as it has it (it holds back results of tasks under 20 us to write
// several at once; see die_on_3_quick).
int die_on_3_impl(int x);
inline const taskfarm::Task<int(int)> die_on_3{"pool_test.die_on_3", &die_on_3_impl};
// The same without the 100 us: results of the inputs before 3 may be held back.
int die_on_3_quick_impl(int x);
inline const taskfarm::Task<int(int)> die_on_3_quick{"pool_test.die_on_3_quick",
                                                     &die_on_3_quick_impl};

// Counts its run in g_runs[x]; for x == 3 raises SIGKILL on itself the first
// time only (a marker file in dir remembers); returns 10 * x. Others take 100 us.
int die_once_on_3_impl(std::pair<std::string, int> dir_and_x);
inline const taskfarm::Task<int(std::pair<std::string, int>)> die_once_on_3{
    "pool_test.die_once_on_3", &die_once_on_3_impl};

// Tasks returning nothing (Future<void>).
// Creates the file `path` (throws std::runtime_error if it cannot).
void touch_file_impl(std::string path);
inline const taskfarm::Task<void(std::string)> touch_file{"pool_test.touch_file", &touch_file_impl};
// Throws std::invalid_argument("odd: <x>") for odd x.
void void_throw_if_odd_impl(int x);
inline const taskfarm::Task<void(int)> void_throw_if_odd{"pool_test.void_throw_if_odd",
                                                         &void_throw_if_odd_impl};
// Does nothing: no arguments, no result.
void noop_impl();
inline const taskfarm::Task<void()> noop{"pool_test.noop", &noop_impl};

void bad_init_impl();
inline const taskfarm::Task<void()> bad_init{"pool_test.bad_init", &bad_init_impl};
void good_init_impl();
inline const taskfarm::Task<void()> good_init{"pool_test.good_init", &good_init_impl};
int read_init_impl(int);
inline const taskfarm::Task<int(int)> read_init{"pool_test.read_init", &read_init_impl};

int add_impl(int a, int b);
inline const taskfarm::Task<int(int, int)> add{"pool_test.add", &add_impl};

// The worker's process id.
long worker_pid_impl(int);
inline const taskfarm::Task<long(int)> worker_pid{"pool_test.worker_pid", &worker_pid_impl};

// "ok", or the failure's type and message: for assertion messages.
template <class R>
std::string describe(const taskfarm::Result<R>& r) {
  if (r.ok()) return "ok";
  try {
    std::rethrow_exception(r.error());
  } catch (const std::exception& e) {
    return taskfarm::demangle(typeid(e).name()) + ": " + e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

// Prints what each thread of this process and of its descendants is doing
// (HangGuard calls it before it ends a hung test).
void dump_process_tree();

// Watchdog for calls that must return: if it is not destroyed within
// `patience`, it prints what hung and what every thread of every process of the
// test was doing, then aborts the test program, so a hang is a failure with a
// name rather than a ctest timeout.

class HangGuard {
 public:
  HangGuard(std::string what, std::chrono::seconds patience = std::chrono::seconds(30));
  ~HangGuard();
  HangGuard(const HangGuard&) = delete;
  HangGuard& operator=(const HangGuard&) = delete;

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::thread thread_;
};

// ---- fixture --------------------------------------------------------------

class PoolTest : public taskfarm::test::LeakCheck,
                 public ::testing::WithParamInterface<taskfarm::Transport> {
 protected:
  void SetUp() override {
    LeakCheck::SetUp();
    reset_runs();
  }
  [[nodiscard]] taskfarm::PoolOptions options(std::size_t workers) const {
    taskfarm::PoolOptions o;
    o.workers = workers;
    o.transport = GetParam();
    return o;
  }
};

struct TransportName {
  std::string operator()(const ::testing::TestParamInfo<taskfarm::Transport>& info) const {
    return std::string(taskfarm::to_string(info.param));
  }
};

#define POOL_TEST_TRANSPORTS(Suite)                                                       \
  INSTANTIATE_TEST_SUITE_P(Transports, Suite,                                             \
                           ::testing::Values(taskfarm::Transport::pipe,                   \
                                             taskfarm::Transport::socket,                 \
                                             taskfarm::Transport::mqueue,                 \
                                             taskfarm::Transport::shm),                   \
                           ::pool_test::TransportName())

std::vector<int> iota(int n);

}  // namespace pool_test
