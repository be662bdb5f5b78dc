#pragma once
// Result<R>: the outcome of one input of try_map: a value or the failure.

#include <exception>
#include <optional>
#include <utility>

namespace taskfarm {

template <class R>
class Result {
 public:
  static Result success(R v) { return Result(std::move(v), nullptr); }
  static Result failure(std::exception_ptr e) { return Result(std::nullopt, std::move(e)); }

  [[nodiscard]] bool ok() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return ok(); }
  // The value; rethrows the failure when there is none.
  const R& value() const& {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  R& value() & {
    if (error_) std::rethrow_exception(error_);
    return *value_;
  }
  R&& value() && {
    if (error_) std::rethrow_exception(error_);
    return std::move(*value_);
  }
  // nullptr when ok().
  [[nodiscard]] std::exception_ptr error() const noexcept { return error_; }

 private:
  Result(std::optional<R> v, std::exception_ptr e) : value_(std::move(v)), error_(std::move(e)) {}
  std::optional<R> value_;
  std::exception_ptr error_;
};

template <>
class Result<void> {
 public:
  static Result success() { return Result(nullptr); }
  static Result failure(std::exception_ptr e) { return Result(std::move(e)); }
  [[nodiscard]] bool ok() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return ok(); }
  void value() const {
    if (error_) std::rethrow_exception(error_);
  }
  [[nodiscard]] std::exception_ptr error() const noexcept { return error_; }

 private:
  explicit Result(std::exception_ptr e) : error_(std::move(e)) {}
  std::exception_ptr error_;
};

}  // namespace taskfarm
