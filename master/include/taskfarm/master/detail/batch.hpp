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
#include <cstring>
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

// Bytes with room for small values inline: most results are a few bytes, and a
// heap allocation per result would cost more than the task.
class SmallBytes {
 public:
  SmallBytes() noexcept = default;
  SmallBytes(const SmallBytes& o) { assign(o.begin(), o.end()); }
  SmallBytes& operator=(const SmallBytes& o) {
    if (this != &o) assign(o.begin(), o.end());
    return *this;
  }
  SmallBytes(SmallBytes&& o) noexcept { *this = std::move(o); }
  SmallBytes& operator=(SmallBytes&& o) noexcept {
    size_ = o.size_;
    heap_ = std::move(o.heap_);
    if (!heap_) std::memcpy(inline_, o.inline_, size_);
    o.size_ = 0;
    return *this;
  }

  void assign(const std::byte* first, const std::byte* last) {
    const auto n = static_cast<std::size_t>(last - first);
    if (n > kInline) {
      heap_ = std::make_unique_for_overwrite<std::byte[]>(n);
    } else {
      heap_.reset();
    }
    if (n) std::memcpy(heap_ ? heap_.get() : inline_, first, n);
    size_ = n;
  }
  [[nodiscard]] const std::byte* data() const noexcept { return heap_ ? heap_.get() : inline_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] const std::byte* begin() const noexcept { return data(); }
  [[nodiscard]] const std::byte* end() const noexcept { return data() + size_; }
  operator std::span<const std::byte>() const noexcept { return {data(), size_}; }

 private:
  static constexpr std::size_t kInline = 24;
  std::size_t size_ = 0;
  std::unique_ptr<std::byte[]> heap_;
  std::byte inline_[kInline];
};

struct Outcome {
  bool ok = false;
  SmallBytes value;              // encoded result when ok
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
  // `observable`: listeners may be added (futures, imap windows); completion then
  // takes a lock per item, which plain map batches skip.
  Batch(std::string task, std::vector<std::byte> arena, std::vector<std::size_t> offsets,
        bool observable = false);

  [[nodiscard]] const std::string& task() const noexcept { return task_; }
  // Index of item i in the caller's whole input (imap submits its input in
  // windows, each a batch starting at index_base). Set before submission.
  std::uint64_t index_base = 0;
  [[nodiscard]] std::uint64_t global_index(std::size_t i) const noexcept { return index_base + i; }
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

  // Listeners (observable batches only): called once for every item, on the
  // completing thread, right after its outcome is published -- or at once, on
  // the adding thread, for items already done. They must be quick and must not
  // block: they run on the dispatcher. Returns false if the batch is not observable.
  using Listener = std::function<void(std::size_t)>;
  bool add_listener(Listener listener);
  [[nodiscard]] bool observable() const noexcept { return observable_; }

 private:
  std::string task_;
  std::vector<std::byte> arena_;
  std::vector<std::size_t> offsets_;
  std::unique_ptr<std::atomic<std::uint8_t>[]> state_;
  std::vector<Outcome> outcomes_;
  std::atomic<std::size_t> remaining_;
  bool observable_;
  std::vector<Listener> listeners_;  // guarded by mu_
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
  std::shared_ptr<Batch> build(std::string task, bool observable = false) {
    return std::make_shared<Batch>(std::move(task), std::move(arena_), std::move(offsets_),
                                   observable);
  }

 private:
  std::vector<std::byte> arena_;
  std::vector<std::size_t> offsets_;
};

}  // namespace taskfarm::detail
