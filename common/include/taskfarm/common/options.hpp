#pragma once
// Pool and map settings shared by every layer (the CLI fills them from job files).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace taskfarm {

template <class Signature>
class Task;

// How the master and a worker talk. See DESIGN.md, Transports.
enum class Transport { pipe, socket, mqueue, shm };
// How workers come to life: fork (inherit the master's state as of Pool
// construction) or spawn (re-execute /proc/self/exe; only statically registered
// tasks exist; safe from any program state).
enum class Start { fork, spawn };

[[nodiscard]] std::string_view to_string(Transport t) noexcept;
[[nodiscard]] std::string_view to_string(Start s) noexcept;
[[nodiscard]] std::optional<Transport> parse_transport(std::string_view s) noexcept;
[[nodiscard]] std::optional<Start> parse_start(std::string_view s) noexcept;

struct PoolOptions {
  std::size_t workers = 0;                      // 0 = one per online CPU
  Transport transport = Transport::pipe;
  Start start = Start::fork;
  std::size_t max_tasks_per_child = 0;          // 0 = unlimited
  std::chrono::milliseconds task_timeout{0};    // 0 = none
  unsigned max_retries = 0;                     // re-runs of a task whose worker died or timed out
  const Task<void()>* initializer = nullptr;    // run once in each worker before its first task
  // A worker (its initializer included) or a fork server that is not ready this
  // long after it was asked for is killed; a worker's start then counts as failed.
  std::chrono::milliseconds start_timeout{60'000};
  std::size_t ring_bytes = std::size_t{1} << 20;          // shm: bytes per ring direction
  std::size_t max_message_bytes = std::size_t{256} << 20; // largest frame payload either way
  // Bytes of resident memory (RSS) a worker may hold after a task, 0 = no limit
  // (last, so that positional initialisers written before it still compile).
  // A worker above it once a task ended reports that task's result and is
  // replaced (as loky does against leaking tasks); the items it had been sent
  // but not started go to other workers uncharged. It is checked between tasks
  // only: a task that needs too much is not stopped. Counted apart in
  // PoolStats::replaced_for_memory. Validation: 0, or at least
  // kMinMemoryPerChild (1 MiB; a smaller value is taken to be a unit mistake).
  // A limit below a fresh worker's RSS replaces the worker after every task,
  // as max_tasks_per_child = 1 would.
  std::size_t max_memory_per_child = 0;
};

struct MapOptions {
  // Inputs per message to a worker. 0 = automatic: map as Python,
  // ceil(n / (4 * workers)); imap/imap_unordered 1, as Python.
  std::size_t chunksize = 0;
  // imap/imap_unordered: at most this many inputs pulled and not yet consumed
  // (0 = max(64, 4 * workers * chunksize)).
  std::size_t lookahead = 0;
};

// Limits enforced by validation (ConfigError outside them).
inline constexpr std::size_t kMaxWorkers = 1024;
inline constexpr std::size_t kMinRingBytes = 4096;
inline constexpr std::size_t kMaxRingBytes = std::size_t{1} << 30;
inline constexpr std::size_t kMinMessageBytes = 1024;
inline constexpr std::size_t kMaxMessageBytes = std::size_t{1} << 40;
inline constexpr std::size_t kMinMemoryPerChild = std::size_t{1} << 20;

}  // namespace taskfarm
