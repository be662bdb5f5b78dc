#pragma once
// The process-wide table of tasks by name. Tasks register during static
// initialisation, so a forked or a spawned worker (same binary) finds them.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace taskfarm::detail {

// Runs one task: decodes `args`, calls the function, appends the encoded result to
// `result`. Throws whatever the task throws, or SerializationError.
using Invoker = std::function<void(std::span<const std::byte> args, std::vector<std::byte>& result)>;

struct TaskInfo {
  std::string name;
  std::string signature;  // e.g. "int (int)"
  std::string where;      // "file.cpp:12", where the Task object was defined
  Invoker invoke;
};

class Registry {
 public:
  static Registry& instance();

  // Adds a task. A name that is already taken is recorded as a conflict (reported
  // by check()) and the first registration stays in force. Returns a token for
  // remove(), 0 when the name was taken.
  std::uint64_t add(TaskInfo info) noexcept;
  // Removes the registration made with `token` (a Task going out of scope).
  void remove(std::uint64_t token) noexcept;

  // The task registered under `name`, or nullptr. The pointer stays valid until
  // that task is removed.
  [[nodiscard]] std::shared_ptr<const TaskInfo> find(std::string_view name) const;
  // All tasks, sorted by name.
  [[nodiscard]] std::vector<std::shared_ptr<const TaskInfo>> list() const;
  // Throws ConfigError naming both definitions of every duplicated name.
  void check() const;

 private:
  Registry() = default;
  struct Impl;
  Impl& impl() const;
};

}  // namespace taskfarm::detail
