#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace taskfarm {

struct WorkerStats {
  int slot = 0;
  long pid = 0;               // current process, 0 while (re)starting
  std::uint64_t tasks = 0;    // items completed by this slot, all incarnations
  std::uint64_t busy_ns = 0;  // time spent inside tasks, as measured by the workers
  std::uint64_t restarts = 0; // replacements of this slot
  std::uint64_t replaced_for_memory = 0;  // of which after max_memory_per_child
};

// What a worker started with Start::fork inherits (README, "fork or spawn?"):
// the master's memory as it was when the pool was created (the master had one
// thread then, so the pool's fork server was forked from it), or the program as
// it is right after static initialisation (the master had threads; the fork
// server was executed afresh through taskfarm::init).
enum class ForkImage { pool_creation, program_start };

struct PoolStats {
  std::uint64_t submitted = 0;  // items handed to the pool
  std::uint64_t done = 0;       // items finished (any outcome)
  std::uint64_t failed = 0;     // finished with an error (including cancelled)
  std::uint64_t retried = 0;    // re-runs after a worker died or timed out
  std::uint64_t restarts = 0;   // workers replaced, for any reason (a death, a timeout,
                                // max_tasks_per_child, max_memory_per_child)
  // Workers that retired because their RSS passed max_memory_per_child after a
  // task (each is replaced unless the pool is shutting down): not deaths, not
  // max_tasks_per_child retirements.
  std::uint64_t replaced_for_memory = 0;
  std::vector<WorkerStats> workers;
  ForkImage fork_image = ForkImage::pool_creation;  // of the fork server in use now
  long fork_server_pid = 0;                 // the fork server in use now (0 while replaced)
  std::uint64_t fork_server_restarts = 0;   // fork servers lost and replaced
  // Task duration percentiles over the recent items (worker-measured), ns.
  std::uint64_t p50_ns = 0, p90_ns = 0, p99_ns = 0;
};

}  // namespace taskfarm
