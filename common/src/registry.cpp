#include "taskfarm/common/registry.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include "taskfarm/common/errors.hpp"

namespace taskfarm::detail {

struct Registry::Impl {
  struct Entry {
    std::uint64_t token;
    std::shared_ptr<const TaskInfo> info;
  };
  mutable std::mutex mu;
  std::map<std::string, Entry, std::less<>> tasks;
  std::vector<std::string> conflicts;
  std::uint64_t next_token = 1;
};

Registry& Registry::instance() {
  static Registry r;
  return r;
}

Registry::Impl& Registry::impl() const {
  // Function-local static: safe whatever order static initialisers run in.
  static Impl i;
  return i;
}

std::uint64_t Registry::add(TaskInfo info) noexcept {
  try {
    auto& i = impl();
    std::lock_guard lock(i.mu);
    auto it = i.tasks.find(info.name);
    if (it != i.tasks.end()) {
      const auto& first = *it->second.info;
      i.conflicts.push_back("task name \"" + info.name + "\" is registered twice: first at " +
                            first.where + " as " + first.signature + ", again at " + info.where +
                            " as " + info.signature + "; task names must be unique");
      return 0;
    }
    const auto token = i.next_token++;
    auto name = info.name;
    i.tasks.emplace(std::move(name), Impl::Entry{token, std::make_shared<TaskInfo>(std::move(info))});
    return token;
  } catch (...) {
    return 0;  // out of memory during static initialisation: the task is simply absent
  }
}

void Registry::remove(std::uint64_t token) noexcept {
  if (token == 0) return;
  auto& i = impl();
  std::lock_guard lock(i.mu);
  for (auto it = i.tasks.begin(); it != i.tasks.end(); ++it) {
    if (it->second.token == token) {
      i.tasks.erase(it);
      return;
    }
  }
}

std::shared_ptr<const TaskInfo> Registry::find(std::string_view name) const {
  auto& i = impl();
  std::lock_guard lock(i.mu);
  auto it = i.tasks.find(name);
  return it == i.tasks.end() ? nullptr : it->second.info;
}

std::vector<std::shared_ptr<const TaskInfo>> Registry::list() const {
  auto& i = impl();
  std::lock_guard lock(i.mu);
  std::vector<std::shared_ptr<const TaskInfo>> out;
  out.reserve(i.tasks.size());
  for (const auto& [name, e] : i.tasks) out.push_back(e.info);
  return out;
}

void Registry::check() const {
  auto& i = impl();
  std::lock_guard lock(i.mu);
  if (i.conflicts.empty()) return;
  std::string msg = i.conflicts.front();
  for (std::size_t k = 1; k < i.conflicts.size(); ++k) msg += "\n" + i.conflicts[k];
  throw ConfigError(msg);
}

}  // namespace taskfarm::detail
