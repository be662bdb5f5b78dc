#pragma once
// Pool statistics without a lock on the task path.
//
// Every counter except `submitted` has one writer, the dispatcher, which bumps it
// with a relaxed load+store (no locked instruction); readers (stats()) load
// relaxed and may see a snapshot a few items old. Task durations go into a
// log-linear histogram (4 buckets per power of two, so percentiles are within
// ~12%), which costs one increment per task instead of a sorted sample.

#include <sys/types.h>

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>

#include "taskfarm/master/stats.hpp"

namespace taskfarm::detail {

class StatsBoard {
 public:
  explicit StatsBoard(std::size_t workers)
      : n_(workers), workers_(std::make_unique<PerWorker[]>(workers)) {}

  // Any thread.
  void add_submitted(std::uint64_t n) noexcept { submitted_.fetch_add(n, std::memory_order_relaxed); }

  // Dispatcher only.
  void task_done(int slot, std::uint64_t duration_ns, bool failed) noexcept {
    bump(done_);
    if (failed) bump(failed_);
    auto& w = workers_[static_cast<std::size_t>(slot)];
    bump(w.tasks);
    bump(w.busy_ns, duration_ns);
    bump(hist_[bucket(duration_ns)]);
  }
  void ended_without_running(std::uint64_t n = 1) noexcept {  // failed or cancelled before running
    bump(done_, n);
    bump(failed_, n);
  }
  void retried() noexcept { bump(retried_); }
  // A replacement of the worker in `slot`; `for_memory`: it retired because of
  // max_memory_per_child.
  void restarted(int slot, bool for_memory = false) noexcept {
    auto& w = workers_[static_cast<std::size_t>(slot)];
    bump(restarts_);
    bump(w.restarts);
    if (for_memory) {
      bump(replaced_for_memory_);
      bump(w.replaced_for_memory);
    }
  }
  void set_fork_server(pid_t pid, ForkImage image) noexcept {
    fork_server_pid_.store(pid, std::memory_order_relaxed);
    fork_image_.store(image, std::memory_order_relaxed);
  }
  void fork_server_restarted() noexcept { bump(fork_server_restarts_); }
  void set_pid(int slot, pid_t pid) noexcept {
    workers_[static_cast<std::size_t>(slot)].pid.store(pid, std::memory_order_relaxed);
  }

  // Any thread.
  [[nodiscard]] PoolStats snapshot() const {
    PoolStats s;
    s.submitted = submitted_.load(std::memory_order_relaxed);
    s.done = done_.load(std::memory_order_relaxed);
    s.failed = failed_.load(std::memory_order_relaxed);
    s.retried = retried_.load(std::memory_order_relaxed);
    s.restarts = restarts_.load(std::memory_order_relaxed);
    s.fork_image = fork_image_.load(std::memory_order_relaxed);
    s.fork_server_pid = static_cast<long>(fork_server_pid_.load(std::memory_order_relaxed));
    s.fork_server_restarts = fork_server_restarts_.load(std::memory_order_relaxed);
    s.replaced_for_memory = replaced_for_memory_.load(std::memory_order_relaxed);
    for (std::size_t i = 0; i < n_; ++i) {
      const auto& w = workers_[i];
      s.workers.push_back({static_cast<int>(i), static_cast<long>(w.pid.load(std::memory_order_relaxed)),
                           w.tasks.load(std::memory_order_relaxed), w.busy_ns.load(std::memory_order_relaxed),
                           w.restarts.load(std::memory_order_relaxed),
                           w.replaced_for_memory.load(std::memory_order_relaxed)});
    }
    std::array<std::uint64_t, kBuckets> h;
    std::uint64_t total = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) total += h[b] = hist_[b].load(std::memory_order_relaxed);
    s.p50_ns = percentile(h, total, 0.50);
    s.p90_ns = percentile(h, total, 0.90);
    s.p99_ns = percentile(h, total, 0.99);
    return s;
  }

  static constexpr std::size_t kBuckets = 256;
  // 0..3 exact; then 4 buckets per power of two.
  static constexpr std::size_t bucket(std::uint64_t ns) noexcept {
    if (ns < 4) return static_cast<std::size_t>(ns);
    const int b = 63 - std::countl_zero(ns);  // floor(log2), >= 2
    const auto sub = static_cast<std::size_t>((ns >> (b - 2)) & 3);
    return 4 + static_cast<std::size_t>(b - 2) * 4 + sub;
  }
  // Middle of the bucket's range.
  static constexpr std::uint64_t bucket_value(std::size_t idx) noexcept {
    if (idx < 4) return idx;
    const std::size_t b = (idx - 4) / 4 + 2, sub = (idx - 4) % 4;
    const std::uint64_t width = std::uint64_t{1} << (b - 2);
    return ((4 + sub) << (b - 2)) + width / 2;
  }

 private:
  static void bump(std::atomic<std::uint64_t>& a, std::uint64_t n = 1) noexcept {
    a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static std::uint64_t percentile(const std::array<std::uint64_t, kBuckets>& h, std::uint64_t total,
                                  double p) noexcept {
    if (total == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(p * static_cast<double>(total - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      seen += h[b];
      if (seen >= rank) return bucket_value(b);
    }
    return bucket_value(kBuckets - 1);
  }

  struct PerWorker {
    std::atomic<long> pid{0};
    std::atomic<std::uint64_t> tasks{0}, busy_ns{0}, restarts{0}, replaced_for_memory{0};
  };
  std::atomic<std::uint64_t> submitted_{0}, done_{0}, failed_{0}, retried_{0}, restarts_{0},
      replaced_for_memory_{0};
  std::atomic<std::uint64_t> fork_server_restarts_{0};
  std::atomic<pid_t> fork_server_pid_{0};
  std::atomic<ForkImage> fork_image_{ForkImage::pool_creation};
  std::size_t n_;
  std::unique_ptr<PerWorker[]> workers_;
  std::array<std::atomic<std::uint64_t>, kBuckets> hist_{};
};

}  // namespace taskfarm::detail
