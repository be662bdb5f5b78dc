#include "taskfarm/master/detail/callbacks.hpp"

#include <cstdio>
#include <exception>

namespace taskfarm::detail {

CallbackQueue::CallbackQueue() : s_(std::make_shared<State>()), thread_([s = s_] { run(s); }) {}

CallbackQueue::~CallbackQueue() { stop(); }

void CallbackQueue::post(std::function<void()> fn) {
  {
    std::lock_guard lock(s_->mu);
    if (!s_->stopping) {
      s_->queue.push_back(std::move(fn));
      s_->cv.notify_one();
      return;
    }
  }
  invoke(fn);
}

void CallbackQueue::stop() {
  {
    std::lock_guard lock(s_->mu);
    s_->stopping = true;
    s_->cv.notify_one();
  }
  if (!thread_.joinable()) return;
  if (on_callback_thread())
    thread_.detach();  // it drains and ends by itself; State outlives us
  else
    thread_.join();
}

void report_callback_failure(std::exception_ptr e) noexcept {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    std::fprintf(stderr, "taskfarm: a completion callback threw: %s\n", x.what());
  } catch (...) {
    std::fprintf(stderr, "taskfarm: a completion callback threw a non-standard exception\n");
  }
}

void CallbackQueue::invoke(std::function<void()>& fn) noexcept {
  try {
    fn();
  } catch (...) {
    report_callback_failure(std::current_exception());
  }
}

void CallbackQueue::run(std::shared_ptr<State> s) {
  std::unique_lock lock(s->mu);
  for (;;) {
    s->cv.wait(lock, [&] { return s->stopping || !s->queue.empty(); });
    if (s->queue.empty()) return;  // stopping and drained
    auto fn = std::move(s->queue.front());
    s->queue.pop_front();
    lock.unlock();
    invoke(fn);
    fn = nullptr;  // release captures (futures, pools) outside the lock
    lock.lock();
  }
}

}  // namespace taskfarm::detail
