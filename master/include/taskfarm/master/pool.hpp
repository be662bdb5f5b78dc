#pragma once
// Pool: a set of worker processes running registered tasks.
//
// The typed methods below only encode arguments and decode results; everything
// else (workers, links, scheduling) happens in detail::PoolCore behind a pointer,
// compiled once in the library.

#include <cstddef>
#include <iterator>
#include <optional>
#include <memory>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/options.hpp"
#include "taskfarm/common/serialize.hpp"
#include "taskfarm/common/task.hpp"
#include "taskfarm/master/detail/batch.hpp"
#include "taskfarm/master/future.hpp"
#include "taskfarm/master/imap.hpp"
#include "taskfarm/master/result.hpp"
#include "taskfarm/master/stats.hpp"

namespace taskfarm {

namespace detail {
class PoolCore;

template <class A, class X>
void encode_as(std::vector<std::byte>& out, X&& x) {
  if constexpr (std::is_same_v<std::remove_cvref_t<X>, A>)
    encode_into(out, x);
  else
    encode_into(out, static_cast<A>(std::forward<X>(x)));
}

template <class... A, class Tuple, std::size_t... I>
void encode_tuple_as(std::vector<std::byte>& out, Tuple&& t, std::index_sequence<I...>) {
  (encode_as<A>(out, std::get<I>(std::forward<Tuple>(t))), ...);
}
}  // namespace detail

class Pool {
 public:
  // Starts the workers. Throws ConfigError for invalid options or duplicate task
  // names, Error when the system refuses to create processes or links.
  explicit Pool(PoolOptions options = {});
  // Graceful: finishes submitted work, then stops the workers (shutdown()).
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Runs task(x) for every x in `inputs` and returns the results in input order.
  // Throws the failure of the lowest failing input index (after all finished).
  template <class R, class A, std::ranges::input_range Inputs>
  auto map(const Task<R(A)>& task, Inputs&& inputs, MapOptions opts = {}) {
    auto batch = run_batch(task.name(), encode_inputs<A>(std::forward<Inputs>(inputs)), opts);
    batch->wait();
    return collect<R>(*batch);
  }

  // Like map, but one Result per input; task failures never throw.
  template <class R, class A, std::ranges::input_range Inputs>
  std::vector<Result<R>> try_map(const Task<R(A)>& task, Inputs&& inputs, MapOptions opts = {}) {
    auto batch = run_batch(task.name(), encode_inputs<A>(std::forward<Inputs>(inputs)), opts);
    batch->wait();
    return collect_results<R>(*batch);
  }

  // map for multi-argument tasks: each input is a tuple-like of the arguments.
  template <class R, class... A, std::ranges::input_range Inputs>
  auto starmap(const Task<R(A...)>& task, Inputs&& inputs, MapOptions opts = {}) {
    detail::BatchBuilder b;
    for (auto&& t : inputs) {
      detail::encode_tuple_as<A...>(b.arena(), t, std::index_sequence_for<A...>{});
      b.end_item();
    }
    auto batch = run_batch(task.name(), std::move(b), opts);
    batch->wait();
    return collect<R>(*batch);
  }

  // Lazy map: pulls inputs as results are consumed (at most opts.lookahead
  // ahead), yields results in input order. Works on unbounded ranges. The range
  // must outlive the iteration when passed as an lvalue (it is viewed, not copied).
  template <class R, class A, std::ranges::input_range Inputs>
  ImapRange<R> imap(const Task<R(A)>& task, Inputs&& inputs, MapOptions opts = {}) {
    return make_imap<R, A>(task.name(), std::forward<Inputs>(inputs), opts, true);
  }
  // Like imap, but yields each result as soon as it is ready (completion order).
  template <class R, class A, std::ranges::input_range Inputs>
  ImapRange<R> imap_unordered(const Task<R(A)>& task, Inputs&& inputs, MapOptions opts = {}) {
    return make_imap<R, A>(task.name(), std::forward<Inputs>(inputs), opts, false);
  }

  // Runs task(args...) on a worker; the Future delivers the value or the failure.
  template <class R, class... A, class... X>
    requires(sizeof...(A) == sizeof...(X))
  Future<R> submit(const Task<R(A...)>& task, X&&... args) {
    detail::BatchBuilder b;
    (detail::encode_as<A>(b.arena(), std::forward<X>(args)), ...);
    b.end_item();
    return Future<R>(run_batch(task.name(), std::move(b), MapOptions{1}, true), callbacks());
  }

  // Python's close(): no new work; the workers exit once the submitted work is done.
  void close();
  // Waits for the workers to exit. Requires close() or terminate() first (Error).
  void join();
  // Stops the pool. wait: block until submitted work finished and workers exited;
  // cancel_pending: tasks not yet started end with Cancelled. Idempotent.
  void shutdown(bool wait = true, bool cancel_pending = false);
  // Kills the workers now; unfinished tasks end with Cancelled.
  void terminate();

  [[nodiscard]] PoolStats stats() const;
  [[nodiscard]] std::size_t size() const noexcept;  // number of worker slots
  [[nodiscard]] const PoolOptions& options() const noexcept;

  // Type-erased submission (what the typed methods and the CLI use): the encoded
  // inputs of one task; returns the shared batch the outcomes land in.
  std::shared_ptr<detail::Batch> run_batch(std::string task, detail::BatchBuilder inputs,
                                           MapOptions opts, bool observable = false,
                                           std::uint64_t index_base = 0);
  [[nodiscard]] std::shared_ptr<detail::CallbackQueue> callbacks() const;

 private:
  template <class A, class Inputs>
  static detail::BatchBuilder encode_inputs(Inputs&& inputs) {
    detail::BatchBuilder b;
    if constexpr (std::ranges::sized_range<Inputs>) b.arena().reserve(std::ranges::size(inputs) * 8);
    for (auto&& x : inputs) {
      detail::encode_as<A>(b.arena(), std::forward<decltype(x)>(x));
      b.end_item();
    }
    return b;
  }

  template <class R, class A, class Inputs>
  ImapRange<R> make_imap(const std::string& task, Inputs&& inputs, MapOptions opts, bool ordered) {
    auto view = std::views::all(std::forward<Inputs>(inputs));
    using View = decltype(view);
    struct Source {
      explicit Source(View v) : view(std::move(v)) {}
      View view;
      std::optional<std::ranges::iterator_t<View>> it;
    };
    auto src = std::make_shared<Source>(std::move(view));
    const std::size_t chunk = opts.chunksize ? opts.chunksize : 1;  // Python's imap default
    const std::size_t lookahead =
        opts.lookahead ? opts.lookahead : std::max<std::size_t>(64, 4 * size() * chunk);
    auto base = std::make_shared<std::uint64_t>(0);
    detail::ImapSource s;
    s.pull = [src](detail::BatchBuilder& b, std::size_t max) {
      if (!src->it) src->it.emplace(std::ranges::begin(src->view));
      auto& it = *src->it;
      for (std::size_t n = 0; n < max && it != std::ranges::end(src->view); ++n, ++it) {
        detail::encode_as<A>(b.arena(), *it);
        b.end_item();
      }
      return it != std::ranges::end(src->view);
    };
    s.submit = [this, task, chunk, base, ordered](detail::BatchBuilder b) {
      const std::size_t n = b.size();
      auto batch = run_batch(task, std::move(b), MapOptions{chunk}, !ordered, *base);
      *base += n;
      return batch;
    };
    return ImapRange<R>(std::move(s), std::max(chunk, lookahead / 4), lookahead, ordered);
  }

  template <class R>
  static auto collect(detail::Batch& batch) {
    const std::size_t n = batch.size();
    for (std::size_t i = 0; i < n; ++i)
      if (!batch.outcome(i).ok) std::rethrow_exception(batch.outcome(i).error);
    if constexpr (std::is_void_v<R>) {
      return;
    } else {
      std::vector<R> out;
      out.reserve(n);
      for (std::size_t i = 0; i < n; ++i) out.push_back(decode<R>(batch.outcome(i).value));
      return out;
    }
  }

  template <class R>
  static std::vector<Result<R>> collect_results(detail::Batch& batch) {
    std::vector<Result<R>> out;
    out.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const auto& o = batch.outcome(i);
      if (!o.ok) {
        out.push_back(Result<R>::failure(o.error));
        continue;
      }
      try {
        if constexpr (std::is_void_v<R>)
          out.push_back(Result<R>::success());
        else
          out.push_back(Result<R>::success(decode<R>(o.value)));
      } catch (...) {
        out.push_back(Result<R>::failure(std::current_exception()));
      }
    }
    return out;
  }

  std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace taskfarm
