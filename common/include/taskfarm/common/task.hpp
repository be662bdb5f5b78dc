#pragma once
// Task<R(Args...)>: a process-wide unique name bound to a typed function.
//
//   inline const taskfarm::Task<int(int)> square{"square", [](int x) { return x * x; }};
//
// Defined at namespace scope, a task registers itself during static
// initialisation, so a forked or spawned worker of the same binary finds it by
// name. Arguments and results travel through cereal (serialize.hpp): any std
// type cereal knows, and user types with a serialize() member or function.

#include <concepts>
#include <cstdint>
#include <functional>
#include <source_location>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/registry.hpp"
#include "taskfarm/common/serialize.hpp"

namespace taskfarm {

template <class Signature>
class Task;

template <class R, class... Args>
class Task<R(Args...)> {
 public:
  using result_type = R;
  using args_tuple = std::tuple<std::remove_cvref_t<Args>...>;
  static constexpr std::size_t arity = sizeof...(Args);

  // Registers `fn` under `name`. A second task with the same name is reported by
  // taskfarm::init() and by Pool's constructor (ConfigError naming both places).
  template <class F>
    requires std::is_invocable_r_v<R, F&, Args...>
  Task(std::string name, F fn, std::source_location where = std::source_location::current())
      : name_(std::move(name)), fn_(std::move(fn)) {
    detail::TaskInfo info;
    info.name = name_;
    info.signature = demangle(typeid(R(Args...)).name());
    info.where = std::string(where.file_name()) + ":" + std::to_string(where.line());
    info.invoke = [f = fn_](std::span<const std::byte> in, std::vector<std::byte>& out) {
      auto args = decode_args<args_tuple>(in);
      if constexpr (std::is_void_v<R>) {
        std::apply(f, std::move(args));
      } else {
        encode_into(out, std::apply(f, std::move(args)));
      }
    };
    token_ = detail::Registry::instance().add(std::move(info));
  }

  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { detail::Registry::instance().remove(token_); }

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

  // Runs the task here, in this process.
  template <class... A>
  R operator()(A&&... a) const {
    return fn_(std::forward<A>(a)...);
  }

 private:
  std::string name_;
  std::function<R(Args...)> fn_;
  std::uint64_t token_ = 0;
};

}  // namespace taskfarm
