#pragma once
// ImapRange<R>: the lazy result range of Pool::imap / Pool::imap_unordered.
//
// Inputs are pulled from the caller's range only as results are consumed: at
// most `lookahead` inputs are submitted and not yet consumed, so an unbounded
// input (std::views::iota(0) | ...) runs in bounded memory, and a consumer that
// stops early leaves the rest of the input untouched (the inputs already
// submitted but not started are cancelled when the range is destroyed).
//
// Ordered mode yields results in input order; unordered mode as they finish. A
// failed task throws from the iterator when its result is reached; an exception
// thrown by the input range itself is rethrown after every result of the inputs
// pulled before it.

#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "taskfarm/common/serialize.hpp"
#include "taskfarm/master/detail/batch.hpp"
#include "taskfarm/master/future.hpp"

namespace taskfarm {

namespace detail {
// What ImapRange needs from the pool, without depending on Pool itself.
struct ImapSource {
  // Encodes up to `max` more inputs into `b`; returns false once the input is
  // exhausted. May throw (the input range's own exceptions).
  std::function<bool(BatchBuilder& b, std::size_t max)> pull;
  // Submits one window of inputs (throws PoolClosed, ConfigError).
  std::function<std::shared_ptr<Batch>(BatchBuilder b)> submit;
};
}  // namespace detail

template <class R>
class ImapRange {
 public:
  ImapRange(detail::ImapSource src, std::size_t window, std::size_t lookahead, bool ordered)
      : s_(std::make_shared<State>()) {
    s_->src = std::move(src);
    s_->window = std::max<std::size_t>(window, 1);
    s_->lookahead = std::max(lookahead, s_->window);
    s_->ordered = ordered;
  }

  class iterator {
   public:
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(std::shared_ptr<typename ImapRange::State> s) : s_(std::move(s)) { advance(); }
    R& operator*() const { return *s_->current; }
    R* operator->() const { return &*s_->current; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    friend bool operator==(const iterator& it, std::default_sentinel_t) {
      return !it.s_ || !it.s_->current;
    }

   private:
    void advance() { s_->next(); }
    std::shared_ptr<typename ImapRange::State> s_;
  };

  // Single pass: begin() may be called once.
  iterator begin() {
    if (s_->begun) throw Error("an imap result range can be iterated only once");
    s_->begun = true;
    return iterator(s_);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  struct Window {
    std::shared_ptr<detail::Batch> batch;
    std::size_t consumed = 0;  // ordered: items already yielded
  };

  struct State {
    detail::ImapSource src;
    std::size_t window = 1, lookahead = 1;
    bool ordered = true, begun = false;
    bool input_done = false;
    std::exception_ptr input_error;
    std::uint64_t next_index = 0;
    std::size_t outstanding = 0;  // submitted, not yet yielded
    std::optional<R> current;

    std::deque<Window> windows;  // ordered
    // unordered: window id -> batch; completions arrive as (id, item) pairs
    std::map<std::uint64_t, std::shared_ptr<detail::Batch>> by_id;
    std::map<std::uint64_t, std::size_t> left;  // items not yet yielded per window
    std::shared_ptr<detail::CompletionQueue> done = std::make_shared<detail::CompletionQueue>();
    std::uint64_t next_id = 0;

    ~State() {
      // Results nobody will read: do not start what has not started.
      for (auto& w : windows)
        for (std::size_t i = w.consumed; i < w.batch->size(); ++i) w.batch->cancel(i, "abandoned by its imap consumer");
      for (auto& [id, b] : by_id)
        for (std::size_t i = 0; i < b->size(); ++i) b->cancel(i, "abandoned by its imap consumer");
    }

    void fill() {
      while (!input_done && outstanding < lookahead) {
        detail::BatchBuilder b;
        bool more = true;
        try {
          more = src.pull(b, std::min(window, lookahead - outstanding));
        } catch (...) {
          input_error = std::current_exception();
          more = false;
        }
        if (!more) input_done = true;
        if (b.size() == 0) continue;
        const std::size_t n = b.size();
        auto batch = src.submit(std::move(b));
        outstanding += n;
        if (ordered) {
          windows.push_back({std::move(batch), 0});
        } else {
          // Window ids ride in the high bits so one queue serves every window.
          const std::uint64_t id = next_id++;
          by_id.emplace(id, batch);
          left.emplace(id, n);
          batch->add_listener([q = done, id](std::size_t i) { q->push(static_cast<std::size_t>((id << 32) | i)); });
        }
      }
    }

    void take(const detail::Outcome& o) {
      --outstanding;
      if (!o.ok) {
        current.reset();
        std::rethrow_exception(o.error);
      }
      if constexpr (std::is_void_v<R>)
        current.emplace();
      else
        current.emplace(decode<R>(o.value));
    }

    void next() {
      fill();
      if (ordered) {
        while (!windows.empty() && windows.front().consumed == windows.front().batch->size())
          windows.pop_front();
        if (windows.empty()) return finish();
        Window& w = windows.front();
        w.batch->wait();
        const std::size_t i = w.consumed++;
        take(w.batch->outcome(i));
        return;
      }
      if (outstanding == 0) return finish();
      const std::size_t key = *done->pop(std::nullopt);
      const std::uint64_t id = key >> 32;
      const std::size_t i = key & 0xffffffffu;
      auto b = by_id.at(id);
      if (--left.at(id) == 0) {
        by_id.erase(id);
        left.erase(id);
      }
      take(b->outcome(i));
    }

    void finish() {
      current.reset();
      if (input_error) std::rethrow_exception(std::exchange(input_error, nullptr));
    }
  };

  std::shared_ptr<State> s_;
};

}  // namespace taskfarm
