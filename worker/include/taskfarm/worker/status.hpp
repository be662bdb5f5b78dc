#pragma once
// The record a worker keeps of the item it is running, in a page it shares with
// the master (a memfd the master creates per worker and hands over with the
// link's descriptors; see PoolCore::spawn and worker::run).
//
// Results of short tasks are coalesced in the worker before they are written,
// so the master cannot tell from the results alone which of the items it sent
// was running when the worker died or overran task_timeout. This record tells
// it exactly: the worker stores `started` (with `started_ns`) before it runs an
// item and `finished` after, with release order; the master reads them with
// acquire after the worker died, or while it waits for an overdue item.
//
//   offset 0   started     seq of the item running, or of the last one run (0: none yet)
//   offset 8   finished    seq of the last item whose run ended (0: none yet)
//   offset 16  started_ns  steady_clock (CLOCK_MONOTONIC) time the `started` item began
//
// An item is running exactly when started != finished.

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace taskfarm::worker {

struct WorkerStatus {
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> finished{0};
  std::atomic<std::int64_t> started_ns{0};
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
                  std::atomic<std::int64_t>::is_always_lock_free,
              "the record is shared between processes: its atomics must be lock-free");
static_assert(sizeof(WorkerStatus) == 24 && offsetof(WorkerStatus, finished) == 8 &&
                  offsetof(WorkerStatus, started_ns) == 16,
              "the layout documented above");

// The endpoint parameter that names which of the endpoint's descriptors is the
// status memfd (its index in Endpoint::fds).
inline constexpr const char* kStatusFdParam = "status";
inline constexpr std::size_t kStatusBytes = 4096;

}  // namespace taskfarm::worker
