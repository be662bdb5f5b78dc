#pragma once
// Future<R>: the pending outcome of one submitted task, plus as_completed() and
// wait() over several futures (concurrent.futures style).

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/serialize.hpp"
#include "taskfarm/master/detail/batch.hpp"
#include "taskfarm/master/detail/callbacks.hpp"

namespace taskfarm {

namespace detail {
// then()'s on_value: takes the value, or nothing for a task returning void
// (std::function<void(R)> with R = void is ill-formed, even unused).
template <class R>
struct ValueCallbackOf {
  using type = std::function<void(R)>;
};
template <>
struct ValueCallbackOf<void> {
  using type = std::function<void()>;
};

// True when `e` is a taskfarm::Cancelled: the task never ran to an outcome of
// its own (cancel(), shutdown(cancel_pending), terminate()).
inline bool is_cancellation(const std::exception_ptr& e) noexcept {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace detail

// R may be void (a Task<void(...)>): get() then returns nothing and then()'s
// on_value takes no argument.
template <class R>
class Future {
 public:
  Future() = default;
  Future(std::shared_ptr<detail::Batch> b, std::shared_ptr<detail::CallbackQueue> callbacks)
      : batch_(std::move(b)), callbacks_(std::move(callbacks)) {}

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
  // Python's cancelled(): finished with Cancelled (by cancel(), a shutdown that
  // cancelled pending work, or terminate()). Does not wait.
  [[nodiscard]] bool cancelled() const noexcept {
    return ready() && detail::is_cancellation(batch_->outcome(0).error);
  }
  [[nodiscard]] bool valid() const noexcept { return batch_ != nullptr; }
  // The failure, or nullptr when it succeeded. Waits.
  [[nodiscard]] std::exception_ptr exception() const {
    wait();
    return batch_->outcome(0).ok ? nullptr : batch_->outcome(0).error;
  }

  // Calls fn(future) exactly once, when the task has finished (value, failure or
  // cancellation): on the pool's callback thread if it has not finished yet; at
  // once, on this thread, if it already has (as Python does). Either way an
  // exception from fn is reported on stderr, the same way (detail::
  // report_callback_failure), never thrown to the caller. A callback may block,
  // call get() or submit more work.
  void add_done_callback(std::function<void(const Future&)> fn) const {
    check();
    if (ready()) {
      try {
        fn(*this);
      } catch (...) {
        detail::report_callback_failure(std::current_exception());
      }
      return;
    }
    auto self = *this;
    auto shared_fn = std::make_shared<std::function<void(const Future&)>>(std::move(fn));
    batch_->add_listener([self, shared_fn](std::size_t) {
      self.callbacks_->post([self, shared_fn] { (*shared_fn)(self); });
    });
  }

  // Python's callback / error_callback: on success on_value(value), on failure
  // on_error(exception); exactly one of them, exactly once, where and when
  // add_done_callback would run it (an exception from either is reported, not thrown).
  using ValueCallback = typename detail::ValueCallbackOf<R>::type;
  const Future& then(ValueCallback on_value,
                     std::function<void(std::exception_ptr)> on_error = {}) const {
    add_done_callback([on_value = std::move(on_value), on_error = std::move(on_error)](const Future& f) {
      const auto& o = f.batch_->outcome(0);
      std::exception_ptr failure = o.ok ? nullptr : o.error;
      if (!failure) {
        try {
          if constexpr (std::is_void_v<R>) {
            if (on_value) on_value();
          } else {
            R v = decode<R>(o.value);
            if (on_value) on_value(std::move(v));
          }
          return;
        } catch (const SerializationError&) {
          failure = std::current_exception();  // the value could not be decoded
        }
      }
      if (on_error) on_error(failure);
    });
    return *this;
  }

  [[nodiscard]] const std::shared_ptr<detail::Batch>& batch() const noexcept { return batch_; }

 private:
  void check() const {
    if (!batch_) throw Error("taskfarm::Future has no shared state (default-constructed)");
  }
  std::shared_ptr<detail::Batch> batch_;
  std::shared_ptr<detail::CallbackQueue> callbacks_;
};

namespace detail {
// Indices of finished futures, in the order they finished.
class CompletionQueue {
 public:
  using Clock = std::chrono::steady_clock;
  void push(std::size_t i) {
    std::lock_guard lock(mu_);
    done_.push_back(i);
    cv_.notify_all();
  }
  // nullopt when the deadline passed first.
  std::optional<std::size_t> pop(std::optional<Clock::time_point> deadline) {
    std::unique_lock lock(mu_);
    auto have = [this] { return !done_.empty(); };
    if (deadline) {
      if (!cv_.wait_until(lock, *deadline, have)) return std::nullopt;
    } else {
      cv_.wait(lock, have);
    }
    const std::size_t i = done_.front();
    done_.pop_front();
    return i;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::size_t> done_;
};

// Keeps the first of each distinct future (by shared state), as Python does.
template <class R>
std::vector<Future<R>> distinct(const std::vector<Future<R>>& fs) {
  std::vector<Future<R>> out;
  std::unordered_set<const void*> seen;
  for (const auto& f : fs) {
    if (!f.valid()) throw Error("as_completed/wait: a future has no shared state");
    if (seen.insert(f.batch().get()).second) out.push_back(f);
  }
  return out;
}
}  // namespace detail

// Yields each distinct future once, as it finishes (finished ones first). With a
// timeout, iterating past the deadline throws taskfarm::Error.
//
// A yielded future is moved out of the AsCompleted into the iterator and
// dropped when the iterator moves on, so the loop keeps no reference to what
// it has passed: once the caller drops its own copies, a result is freed as
// the loop goes on, not at its end (CPython's bpo-27144). A reference from
// operator* is valid until the next ++.
template <class R>
class AsCompleted {
 public:
  using Clock = std::chrono::steady_clock;
  AsCompleted(const std::vector<Future<R>>& fs, std::optional<Clock::time_point> deadline)
      : fs_(detail::distinct(fs)), q_(std::make_shared<detail::CompletionQueue>()), deadline_(deadline) {
    for (std::size_t i = 0; i < fs_.size(); ++i)
      fs_[i].batch()->add_listener([q = q_, i](std::size_t) { q->push(i); });
  }

  class iterator {
   public:
    using value_type = Future<R>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(AsCompleted* owner) : owner_(owner) { advance(); }
    const Future<R>& operator*() const { return current_; }
    const Future<R>* operator->() const { return &current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return it.owner_ == nullptr; }

   private:
    void advance() {
      current_ = Future<R>();  // the one yielded last: no longer ours to keep
      if (owner_->yielded_ == owner_->fs_.size()) {
        owner_ = nullptr;
        return;
      }
      const auto i = owner_->q_->pop(owner_->deadline_);
      if (!i)
        throw Error("as_completed: " + std::to_string(owner_->fs_.size() - owner_->yielded_) + " of " +
                    std::to_string(owner_->fs_.size()) + " futures unfinished at the deadline");
      ++owner_->yielded_;
      current_ = std::move(owner_->fs_[*i]);  // each index comes out of q_ once
    }
    AsCompleted* owner_ = nullptr;
    Future<R> current_;
  };

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  std::vector<Future<R>> fs_;  // emptied one by one as the futures are yielded
  std::shared_ptr<detail::CompletionQueue> q_;
  std::optional<Clock::time_point> deadline_;
  std::size_t yielded_ = 0;
};

template <class R>
AsCompleted<R> as_completed(const std::vector<Future<R>>& futures) {
  return AsCompleted<R>(futures, std::nullopt);
}
template <class R, class Rep, class Period>
AsCompleted<R> as_completed(const std::vector<Future<R>>& futures,
                            std::chrono::duration<Rep, Period> timeout) {
  return AsCompleted<R>(futures, std::chrono::steady_clock::now() +
                                     std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
}

enum class ReturnWhen { first_completed, first_exception, all_completed };

template <class R>
struct WaitResult {
  std::vector<Future<R>> done;
  std::vector<Future<R>> not_done;
};

// concurrent.futures.wait: returns when the condition holds or the timeout
// passes (never later), splitting the distinct futures into done / not done.
// first_exception, as in Python, returns when a future finishes with a failure
// or when all are done: a cancelled future (Cancelled) is done, not a failure.
template <class R>
WaitResult<R> wait(const std::vector<Future<R>>& futures, ReturnWhen when = ReturnWhen::all_completed,
                   std::optional<std::chrono::steady_clock::duration> timeout = std::nullopt) {
  auto fs = detail::distinct(futures);
  auto q = std::make_shared<detail::CompletionQueue>();
  for (std::size_t i = 0; i < fs.size(); ++i)
    fs[i].batch()->add_listener([q, i](std::size_t) { q->push(i); });
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (timeout) deadline = std::chrono::steady_clock::now() + *timeout;
  std::size_t finished = 0;
  while (finished < fs.size()) {
    const auto i = q->pop(deadline);
    if (!i) break;
    ++finished;
    if (when == ReturnWhen::first_completed) break;
    if (when == ReturnWhen::first_exception) {
      const auto& o = fs[*i].batch()->outcome(0);
      if (!o.ok && !detail::is_cancellation(o.error)) break;
    }
  }
  WaitResult<R> r;
  for (auto& f : fs) (f.ready() ? r.done : r.not_done).push_back(std::move(f));
  return r;
}

}  // namespace taskfarm
