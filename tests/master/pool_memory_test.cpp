// max_memory_per_child: a worker whose resident memory is above the limit after
// a task reports that task and is replaced; stats() counts these replacements
// apart from deaths and from max_tasks_per_child retirements.
//
// The limits are relative to a fresh worker's measured RSS (the rss task), not
// absolute numbers: a forked worker starts with the test program's resident
// pages, which differ between builds (under ASan or TSan they are much larger).

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "pool_support.hpp"

namespace pool_test {
namespace {

using taskfarm::Pool;

constexpr std::size_t kLeakBytes = std::size_t{8} << 20;
// The limit sits this far above a fresh worker's RSS: three leaks fit under it.
constexpr std::size_t kHeadroom = std::size_t{3} * kLeakBytes;
// So no worker should hold more leaks than this: 3 fit, the 4th puts it over
// the limit; one more for the noise of a baseline measured in another process.
constexpr std::uint64_t kMaxLeaksPerWorker = kHeadroom / kLeakBytes + 2;

// The caller's resident memory in bytes (/proc/self/statm).
std::uint64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

std::uint64_t rss_impl(int) { return resident_bytes(); }
const taskfarm::Task<std::uint64_t(int)> rss{"pool_test.rss", &rss_impl};

// Leaks kLeakBytes of fresh pages, every one written, and counts its run in
// g_runs[x]. Returns {x * x, this process's pid, the leaks it holds now}.
// Fresh pages from mmap, not from malloc: malloc may hand out free heap memory
// the worker inherited, already resident, whose writing adds nothing to its RSS.
std::vector<std::uint64_t> leak_impl(int x) {
  static std::vector<void*> hoard;
  void* block = ::mmap(nullptr, kLeakBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (block == MAP_FAILED) throw std::runtime_error("mmap failed");
  std::memset(block, 0x5a ^ x, kLeakBytes);
  hoard.push_back(block);
  g_runs[static_cast<std::size_t>(x)].fetch_add(1, std::memory_order_relaxed);
  return {static_cast<std::uint64_t>(x) * static_cast<std::uint64_t>(x),
          static_cast<std::uint64_t>(::getpid()), hoard.size()};
}
const taskfarm::Task<std::vector<std::uint64_t>(int)> leak{"pool_test.leak", &leak_impl};

class PoolMemory : public PoolTest {
 protected:
  // RSS of a fresh worker of a pool like the one under test, after one task.
  std::uint64_t fresh_worker_rss() const {
    Pool probe(options(1));
    return probe.submit(rss, 0).get();
  }
};
POOL_TEST_TRANSPORTS(PoolMemory);

TEST_P(PoolMemory, LeakingWorkersAreReplacedAndEveryResultIsKept) {
  const std::uint64_t base = fresh_worker_rss();
  auto o = options(2);
  o.max_memory_per_child = base + kHeadroom;
  Pool pool(o);
  constexpr int kLeaks = 24;
  // Chunks of 4: a worker that retires in the middle of one hands the rest back.
  const auto results = pool.try_map(leak, iota(kLeaks), {.chunksize = 4});
  ASSERT_EQ(results.size(), static_cast<std::size_t>(kLeaks));
  std::map<std::uint64_t, std::uint64_t> leaks_per_process;
  for (int x = 0; x < kLeaks; ++x) {
    ASSERT_TRUE(results[x].ok()) << "input " << x << ": " << describe(results[x]);
    const auto& v = results[x].value();
    ASSERT_EQ(v.size(), 3u);
    EXPECT_EQ(v[0], static_cast<std::uint64_t>(x) * x) << "input " << x;
    EXPECT_LE(v[2], kMaxLeaksPerWorker) << "input " << x << ": worker " << v[1]
                                        << " went on far past the limit";
    auto& most = leaks_per_process[v[1]];
    most = std::max(most, v[2]);
    // The run counters are shared only with workers of this process's image
    // (ForkImage::pool_creation); a pool made while the program has threads
    // (the TSan runtime's, say) forks its workers from a clean program instead.
    if (pool.stats().fork_image == taskfarm::ForkImage::pool_creation)
      EXPECT_EQ(g_runs[x].load(), 1u) << "input " << x << " ran more than once (or never)";
  }
  pool.shutdown();
  const auto st = pool.stats();
  std::printf("[memory] transport=%s baseline=%llu MiB limit=%llu MiB tasks=%d processes=%zu "
              "replaced_for_memory=%llu restarts=%llu retried=%llu\n",
              taskfarm::to_string(GetParam()).data(), static_cast<unsigned long long>(base >> 20),
              static_cast<unsigned long long>(o.max_memory_per_child >> 20), kLeaks,
              leaks_per_process.size(), static_cast<unsigned long long>(st.replaced_for_memory),
              static_cast<unsigned long long>(st.restarts), static_cast<unsigned long long>(st.retried));
  ::testing::Test::RecordProperty("replaced_for_memory", std::to_string(st.replaced_for_memory));
  EXPECT_GT(st.replaced_for_memory, 0u);
  // 24 leaks, at most kMaxLeaksPerWorker per process: at least 24 / 5 processes.
  EXPECT_GE(leaks_per_process.size(), kLeaks / kMaxLeaksPerWorker);
  // Nothing died: every replacement was for memory, and nothing ran twice.
  EXPECT_EQ(st.restarts, st.replaced_for_memory);
  EXPECT_EQ(st.retried, 0u);
  EXPECT_EQ(st.failed, 0u);
  EXPECT_EQ(st.done, static_cast<std::uint64_t>(kLeaks));
  std::uint64_t per_worker = 0;
  for (const auto& w : st.workers) per_worker += w.replaced_for_memory;
  EXPECT_EQ(per_worker, st.replaced_for_memory);
}

TEST_P(PoolMemory, WithoutALimitNoWorkerIsReplaced) {
  auto o = options(2);
  ASSERT_EQ(o.max_memory_per_child, 0u) << "the default is no limit";
  Pool pool(o);
  constexpr int kLeaks = 8;
  const auto results = pool.map(leak, iota(kLeaks), {.chunksize = 1});
  ASSERT_EQ(results.size(), static_cast<std::size_t>(kLeaks));
  std::uint64_t leaks = 0;
  for (int x = 0; x < kLeaks; ++x) {
    EXPECT_EQ(results[x][0], static_cast<std::uint64_t>(x) * x);
    leaks = std::max(leaks, results[x][2]);
  }
  EXPECT_GE(leaks, static_cast<std::uint64_t>(kLeaks / 2)) << "the two workers kept their leaks";
  pool.shutdown();
  EXPECT_EQ(pool.stats().replaced_for_memory, 0u);
  EXPECT_EQ(pool.stats().restarts, 0u);
}

TEST_P(PoolMemory, DeathsAndMaxTasksRetirementsAreCountedApart) {
  const std::uint64_t base = fresh_worker_rss();
  TempDir dir;
  auto o = options(2);
  o.max_memory_per_child = base + kHeadroom;
  o.max_retries = 1;
  Pool pool(o);
  ASSERT_EQ(pool.map(leak, iota(12), {.chunksize = 1}).size(), 12u);
  // One death: input 3 kills its worker once; its retry succeeds.
  std::vector<std::pair<std::string, int>> in;
  for (int x = 0; x < 6; ++x) in.emplace_back(dir.str(), x);
  EXPECT_EQ(pool.map(die_once_on_3, in, {.chunksize = 1}), (std::vector{0, 10, 20, 30, 40, 50}));
  pool.shutdown();  // every replacement is counted by now
  const auto st = pool.stats();
  EXPECT_GT(st.replaced_for_memory, 0u);
  EXPECT_EQ(st.retried, 1u);
  EXPECT_EQ(st.restarts, st.replaced_for_memory + 1) << "the death is a restart, not a replacement for memory";

  // Retirements after max_tasks_per_child are not replacements for memory either:
  // 5 tasks, 2 per process, so 2 replacements.
  auto m = options(1);
  m.max_tasks_per_child = 2;
  m.max_memory_per_child = std::size_t{1} << 40;  // far above anything
  Pool retiring(m);
  EXPECT_EQ(retiring.map(square, iota(5), {.chunksize = 1}), (std::vector{0, 1, 4, 9, 16}));
  retiring.shutdown();
  EXPECT_EQ(retiring.stats().restarts, 2u);
  EXPECT_EQ(retiring.stats().replaced_for_memory, 0u);
}

TEST(PoolMemoryOptions, ALimitBelowOneMebibyteIsAConfigError) {
  taskfarm::PoolOptions o;
  o.workers = 1;
  o.max_memory_per_child = 512;  // meant as MiB, surely
  try {
    Pool pool(o);
    ADD_FAILURE() << "512 bytes was accepted";
  } catch (const taskfarm::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("max_memory_per_child"), std::string::npos) << e.what();
  }
  o.max_memory_per_child = taskfarm::kMinMemoryPerChild;
  Pool pool(o);
  EXPECT_EQ(pool.map(square, iota(3)), (std::vector{0, 1, 4}));
}

}  // namespace
}  // namespace pool_test
