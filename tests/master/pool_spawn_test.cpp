// Start::spawn: workers are this test program executed again (main() calls
// taskfarm::init, main.cpp). They know only the statically registered tasks and
// share nothing with this process but their link, so these tests check results
// only (the shared run counters of pool_support.hpp are not inherited by exec).

#include <gtest/gtest.h>
#include <signal.h>

#include "pool_support.hpp"

namespace pool_test {
namespace {

using namespace std::chrono_literals;
using taskfarm::MapOptions;
using taskfarm::Pool;

class PoolSpawn : public PoolTest {
 protected:
  [[nodiscard]] taskfarm::PoolOptions spawn_options(std::size_t workers) const {
    auto o = options(workers);
    o.start = taskfarm::Start::spawn;
    return o;
  }
};
POOL_TEST_TRANSPORTS(PoolSpawn);

TEST_P(PoolSpawn, MapAndFailuresWork) {
  Pool pool(spawn_options(2));
  const auto in = iota(2000);
  std::vector<int> want;
  for (int x : in) want.push_back(x * x);
  EXPECT_EQ(pool.map(square, in), want);
  const auto r = pool.try_map(throw_if_odd, iota(4));
  ASSERT_EQ(r.size(), 4u);
  EXPECT_TRUE(r[0].ok());
  EXPECT_THROW((void)r[1].value(), taskfarm::RemoteError);
  const auto pids = pool.map(worker_pid, iota(50), MapOptions{1});
  for (long pid : pids) EXPECT_NE(pid, static_cast<long>(::getpid()));
}

TEST_P(PoolSpawn, WorkerKilledMidTaskIsWorkerLost) {
  auto o = spawn_options(2);
  o.max_retries = 0;
  Pool pool(o);
  const auto r = pool.try_map(die_on_3, iota(10));
  ASSERT_EQ(r.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(r[static_cast<std::size_t>(i)].ok(), i != 3) << i;
  try {
    std::rethrow_exception(r[3].error());
  } catch (const taskfarm::WorkerLost& e) {
    EXPECT_EQ(e.signal(), SIGKILL);
    EXPECT_EQ(e.index(), 3u);
    EXPECT_NE(std::string(e.what()).find("SIGKILL"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.map(square, std::vector{6}), std::vector{36}) << "a spawned replacement works";
}

TEST_P(PoolSpawn, TaskTimeout) {
  auto o = spawn_options(1);
  o.task_timeout = 200ms;
  Pool pool(o);
  EXPECT_THROW((void)pool.submit(sleep_ms, 10'000).get(), taskfarm::TaskTimeout);
  EXPECT_EQ(pool.map(square, std::vector{3}), std::vector{9});
}

TEST_P(PoolSpawn, Initializers) {
  auto o = spawn_options(2);
  o.initializer = &good_init;
  {
    Pool pool(o);
    for (int v : pool.map(read_init, iota(20), MapOptions{1})) EXPECT_EQ(v, 42);
  }
  o.initializer = &bad_init;
  Pool broken(o);
  try {
    (void)broken.map(square, std::vector{1});
    FAIL() << "tasks ran although the initializer threw";
  } catch (const taskfarm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("init boom"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pool_test
