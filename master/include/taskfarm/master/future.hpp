#pragma once
// Future<R>: the pending outcome of one submitted task.

#include <chrono>
#include <future>
#include <memory>
#include <type_traits>

#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/serialize.hpp"
#include "taskfarm/master/detail/batch.hpp"

namespace taskfarm {

template <class R>
class Future {
 public:
  Future() = default;

  // Waits, then returns the value or rethrows the failure (RemoteError,
  // WorkerLost, TaskTimeout, Cancelled, SerializationError). May be called again.
  R get() const {
    check();
    batch_->wait();
    const auto& o = batch_->outcome(0);
    if (!o.ok) std::rethrow_exception(o.error);
    if constexpr (!std::is_void_v<R>) return decode<R>(o.value);
  }
  void wait() const {
    check();
    batch_->wait();
  }
  // ready or timeout; never blocks past the deadline.
  template <class Rep, class Period>
  std::future_status wait_for(const std::chrono::duration<Rep, Period>& d) const {
    check();
    const auto deadline = detail::Batch::Clock::now() +
                          std::chrono::ceil<detail::Batch::Clock::duration>(d);
    return batch_->wait_until(deadline) ? std::future_status::ready : std::future_status::timeout;
  }
  [[nodiscard]] bool ready() const noexcept { return batch_ && batch_->is_done(0); }
  // Cancels the task if it has not started; true on success (get() then throws
  // Cancelled). A running or finished task is not affected.
  bool cancel() { return batch_ && batch_->cancel(0); }
  [[nodiscard]] bool valid() const noexcept { return batch_ != nullptr; }

  explicit Future(std::shared_ptr<detail::Batch> b) : batch_(std::move(b)) {}
  [[nodiscard]] const std::shared_ptr<detail::Batch>& batch() const noexcept { return batch_; }

 private:
  void check() const {
    if (!batch_) throw Error("taskfarm::Future has no shared state (default-constructed)");
  }
  std::shared_ptr<detail::Batch> batch_;
};

}  // namespace taskfarm
