#pragma once
// The tasks every `taskfarm` program has (see builtin_tasks.cpp).

#include <cstdint>

#include "taskfarm/common/task.hpp"

namespace taskfarm::cli {

// Does nothing; calling it makes the linker keep builtin_tasks.o (and with it
// the static registration of the built-in tasks) in every program that uses the
// CLI library, static or shared.
void link_builtin_tasks() noexcept;
// The same for exec_task.cpp (called by link_builtin_tasks).
void link_exec_task() noexcept;

// Worker initializer that points the worker's standard output at its standard
// error, so that a task printing to stdout cannot corrupt results written there.
[[nodiscard]] const Task<void()>& stdout_to_stderr_initializer() noexcept;

// The number of primes p with lo <= p < hi (segmented sieve of Eratosthenes).
[[nodiscard]] std::int64_t count_primes_in(std::int64_t lo, std::int64_t hi);

}  // namespace taskfarm::cli
