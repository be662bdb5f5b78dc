#include "taskfarm/master/detail/batch.hpp"

#include "taskfarm/common/errors.hpp"

namespace taskfarm::detail {

Batch::Batch(std::string task, std::vector<std::byte> arena, std::vector<std::size_t> offsets,
             bool observable)
    : task_(std::move(task)),
      arena_(std::move(arena)),
      offsets_(std::move(offsets)),
      state_(std::make_unique<std::atomic<std::uint8_t>[]>(offsets_.size() - 1)),
      outcomes_(offsets_.size() - 1),
      remaining_(offsets_.size() - 1),
      observable_(observable) {}

bool Batch::claim(std::size_t i) noexcept {
  std::uint8_t expected = queued;
  return state_[i].compare_exchange_strong(expected, running, std::memory_order_acq_rel);
}

void Batch::complete(std::size_t i, Outcome&& o) {
  outcomes_[i] = std::move(o);
  if (observable_) {
    // Under mu_, so that add_listener() sees every item either as done (and
    // calls the listener itself) or as not done (and gets called here): once.
    // Once the last item is done no listener can be called again: they are
    // dropped, which also breaks the cycle of a future's callback that holds
    // the future (and so this batch). They are destroyed outside the lock, as
    // their captures may own futures and batches.
    std::vector<Listener> finished;
    {
      std::lock_guard lock(mu_);
      state_[i].store(done, std::memory_order_release);
      for (auto& l : listeners_) l(i);
      if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        finished.swap(listeners_);
        cv_.notify_all();
      }
    }
    return;  // `finished` may hold the last owner of this batch: nothing after it
  }
  state_[i].store(done, std::memory_order_release);  // pairs with is_done()'s acquire
  if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    std::lock_guard lock(mu_);  // a waiter between its check and its sleep holds mu_
    cv_.notify_all();
  }
}

bool Batch::cancel(std::size_t i, const char* why) {
  if (!claim(i)) return false;
  Outcome o;
  o.error = std::make_exception_ptr(Cancelled(std::string("task \"") + task_ + "\" #" +
                                              std::to_string(global_index(i)) + " was " + why));
  complete(i, std::move(o));
  return true;
}

void Batch::wait() const {
  if (all_done()) return;
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return all_done(); });
}

bool Batch::wait_until(Clock::time_point deadline) const {
  if (all_done()) return true;
  std::unique_lock lock(mu_);
  return cv_.wait_until(lock, deadline, [this] { return all_done(); });
}

}  // namespace taskfarm::detail

namespace taskfarm::detail {

bool Batch::add_listener(Listener listener) {
  if (!observable_) return false;
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < size(); ++i)
    if (is_done(i)) listener(i);
  if (!all_done()) listeners_.push_back(std::move(listener));  // else never called again
  return true;
}

}  // namespace taskfarm::detail
