#pragma once
// Names of the kernel objects taskfarm creates in /dev/shm, and the removal of
// those a crash left behind.
//
//   /taskfarm-<pid>-<start time>-<16 hex digits>-<tag>
//
// <pid> and <start time> identify the creating process: its process id and the
// time it started (field 22 of /proc/<pid>/stat, in clock ticks since boot), so
// a process that later gets the same pid is not mistaken for the creator (the
// scheme Boost.Interprocess uses). The random part makes names unguessable.
// Names of older builds have no start time: "/taskfarm-<pid>-<16 hex>-<tag>".
//
// A name lives only until the worker has attached (SharedRegion objects not
// even that long), so only a SIGKILL of every process of a pool in that window
// can leave one behind. The next pool removes it (sweep_stale_names).

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace taskfarm::ipc {

// The start time of process `pid` (field 22 of /proc/<pid>/stat, clock ticks
// since boot); nullopt when there is no such process or its record cannot be read.
[[nodiscard]] std::optional<std::uint64_t> process_start_time(pid_t pid) noexcept;

// Removes (shm_unlink) the /dev/shm objects named "taskfarm-<pid>-..." that
// belong to this user and whose creator is gone: no process `pid` exists, or it
// exists with another start time (the pid was reused). An object whose creator
// lives with the recorded start time is never touched; a name without a start
// time (older format) is removed only when its pid is dead. Names of other
// users and names that do not parse are left alone. Assumes that every process
// sharing this /dev/shm shares this pid namespace (a creator in another one
// would look dead). Returns how many objects it removed. Never throws; errors
// (no /dev/shm, an unreadable entry) only mean less is removed.
std::size_t sweep_stale_names() noexcept;

// sweep_stale_names() the first time it is called in this process (a forked
// child is a process of its own and sweeps again); 0 without doing anything
// afterwards. Thread-safe. Called by every Pool's constructor.
std::size_t sweep_stale_names_once() noexcept;

}  // namespace taskfarm::ipc
