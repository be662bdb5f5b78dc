#pragma once
// The worker process: receive -> look up -> run -> reply, until told to stop or
// until the master is gone.

#include <cstdint>
#include <string>

#include "taskfarm/ipc/endpoint.hpp"

namespace taskfarm::worker {

// Settings a worker receives with its endpoint (as extra endpoint parameters, so
// that the whole description is one string that survives exec).
struct WorkerConfig {
  int slot = 0;
  std::string initializer;            // task name, empty for none
  std::uint64_t max_tasks = 0;        // 0 = unlimited
  std::uint64_t max_memory = 0;       // RSS bytes after an item that make it retire, 0 = no limit
  std::uint64_t max_frame_bytes = 0;  // 0 = default
  std::uint64_t ring_bytes = 0;       // 0 = default

  void store(ipc::Endpoint& ep) const;
  static WorkerConfig load(const ipc::Endpoint& ep);
};

// Exit codes of a worker process.
inline constexpr int kExitOk = 0;
inline constexpr int kExitAttachFailed = 90;
inline constexpr int kExitInitializerFailed = 91;
inline constexpr int kExitProtocolError = 92;

// Runs the worker loop on the link described by `endpoint`; returns the process
// exit code. Never throws.
int run(const ipc::Endpoint& endpoint, const WorkerConfig& config) noexcept;

// Environment variable that marks a spawned worker (read and removed by init()).
inline constexpr const char* kWorkerEnv = "TASKFARM_WORKER";

}  // namespace taskfarm::worker
