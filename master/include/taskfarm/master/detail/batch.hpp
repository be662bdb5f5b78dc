#pragma once
// Batch: inputs submitted together (a map call, or one submit) and their
// outcomes. Shared by the typed front-end (user threads) and the dispatcher.
//
// Each item moves queued -> running -> done exactly once. The dispatcher claims
// an item (queued -> running) before sending it; cancel() claims it the same way,
// so an item is either run or cancelled, never both. complete() publishes the
// outcome (running -> done, release) and wakes waiters when the last item lands.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace taskfarm::detail {

struct Outcome {
  bool ok = false;
  std::vector<std::byte> value;  // encoded result when ok
  std::exception_ptr error;      // the failure otherwise
  std::uint32_t attempts = 0;    // times the item was started
  int worker = -1;               // slot of the worker that ran it last
  std::uint64_t duration_ns = 0; // as measured by the worker
};

class Batch {
 public:
  enum State : std::uint8_t { queued = 0, running = 1, done = 2 };
  using Clock = std::chrono::steady_clock;

  // Item i's encoded arguments are arena[offsets[i], offsets[i+1]).
  Batch(std::string task, std::vector<std::byte> arena, std::vector<std::size_t> offsets);

  [[nodiscard]] const std::string& task() const noexcept { return task_; }
  [[nodiscard]] std::size_t size() const noexcept { return offsets_.size() - 1; }
  [[nodiscard]] std::span<const std::byte> input(std::size_t i) const noexcept {
    return {arena_.data() + offsets_[i], offsets_[i + 1] - offsets_[i]};
  }

  // queued -> running; false if the item was cancelled or already taken.
  bool claim(std::size_t i) noexcept;
  // Publishes the outcome of a running item. Exactly once per item.
  void complete(std::size_t i, Outcome&& o);
  // Cancels a queued item (completing it with Cancelled); false if it started.
  bool cancel(std::size_t i, const char* why = "cancelled before it started");

  [[nodiscard]] bool is_done(std::size_t i) const noexcept {
    return state_[i].load(std::memory_order_acquire) == done;
  }
  [[nodiscard]] bool all_done() const noexcept {
    return remaining_.load(std::memory_order_acquire) == 0;
  }
  void wait() const;
  [[nodiscard]] bool wait_until(Clock::time_point deadline) const;

  // Valid once is_done(i).
  [[nodiscard]] const Outcome& outcome(std::size_t i) const noexcept { return outcomes_[i]; }
  [[nodiscard]] Outcome& outcome(std::size_t i) noexcept { return outcomes_[i]; }

  // Called after each item completes, on the thread that completed it (the
  // dispatcher, or a user thread for cancel). Set before the batch is submitted.
  std::function<void(std::size_t)> on_done;

 private:
  std::string task_;
  std::vector<std::byte> arena_;
  std::vector<std::size_t> offsets_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> state_;
  std::vector<Outcome> outcomes_;
  std::atomic<std::size_t> remaining_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
};

// Encodes inputs into a Batch arena, item by item.
class BatchBuilder {
 public:
  BatchBuilder() { offsets_.push_back(0); }
  std::vector<std::byte>& arena() noexcept { return arena_; }
  void end_item() { offsets_.push_back(arena_.size()); }
  [[nodiscard]] std::size_t size() const noexcept { return offsets_.size() - 1; }
  std::shared_ptr<Batch> build(std::string task) {
    return std::make_shared<Batch>(std::move(task), std::move(arena_), std::move(offsets_));
  }

 private:
  std::vector<std::byte> arena_;
  std::vector<std::size_t> offsets_;
};

}  // namespace taskfarm::detail
