#pragma once
// CallbackQueue: the thread on which a pool runs user completion callbacks.
//
// Callbacks never run on the dispatcher: a callback may block, call get() on
// another future or submit more work without stalling the pool.

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace taskfarm::detail {

// What becomes of an exception a completion callback throws, wherever the
// callback runs (the callback thread, or the adding thread when the future had
// already finished): as concurrent.futures does, it is reported on stderr
// ("taskfarm: a completion callback threw: ...") and otherwise ignored.
void report_callback_failure(std::exception_ptr e) noexcept;

class CallbackQueue {
 public:
  CallbackQueue();
  ~CallbackQueue();  // runs what is queued, then stops
  CallbackQueue(const CallbackQueue&) = delete;
  CallbackQueue& operator=(const CallbackQueue&) = delete;

  // Queues `fn`. After stop(), runs it on the calling thread instead.
  void post(std::function<void()> fn);
  // Runs everything queued, then ends the thread. Idempotent. Called from a
  // callback, it lets the thread finish on its own.
  void stop();
  [[nodiscard]] bool on_callback_thread() const noexcept {
    return std::this_thread::get_id() == thread_.get_id();
  }

 private:
  // Shared with the thread, so that the queue may even be destroyed by one of
  // its own callbacks.
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> queue;
    bool stopping = false;
  };
  static void run(std::shared_ptr<State> s);
  static void invoke(std::function<void()>& fn) noexcept;

  std::shared_ptr<State> s_;
  std::thread thread_;
};

}  // namespace taskfarm::detail
