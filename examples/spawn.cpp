// Start::spawn: workers re-execute this program (/proc/self/exe) instead of
// being forked, and enter the worker loop from taskfarm::init(). Choose spawn
// when the master holds state a worker must not inherit (threads, locks, big
// heaps, open connections), or when tasks must start from a clean process.
// Only tasks registered statically (at namespace scope) exist in a spawned worker.

#include <taskfarm/taskfarm.hpp>
#include <unistd.h>

#include <cstdio>
#include <vector>

namespace {
inline const taskfarm::Task<long(int)> whoami{"example.whoami", [](int) { return static_cast<long>(::getpid()); }};
}

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);  // in a spawned worker this never returns

  taskfarm::Pool pool({.workers = 2, .start = taskfarm::Start::spawn});
  const auto pids = pool.map(whoami, std::vector<int>(8, 0));
  bool ok = true;
  for (long pid : pids) ok = ok && pid != static_cast<long>(::getpid());
  std::printf("8 tasks ran in spawned workers (master pid %ld, first worker pid %ld): %s\n",
              static_cast<long>(::getpid()), pids.front(), ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
