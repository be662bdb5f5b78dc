#include <algorithm>
#include <map>
#include <mutex>

#include "builtin_tasks.hpp"
#include "taskfarm/cli/json_task.hpp"

namespace taskfarm::cli {

namespace {

struct Table {
  std::mutex mu;
  std::uint64_t next_token = 1;
  // name -> (token, adapter); the first registration of a name wins.
  std::map<std::string, std::pair<std::uint64_t, std::shared_ptr<const JsonAdapter>>, std::less<>> by_name;
};

// Constructed on first use, so JsonTasks may register during static
// initialisation in any order; never destroyed, so they may unregister during
// static destruction in any order.
Table& table() {
  static Table* t = new Table;
  return *t;
}

}  // namespace

std::uint64_t register_json_adapter(JsonAdapter adapter) noexcept {
  try {
    Table& t = table();
    std::lock_guard lock(t.mu);
    if (t.by_name.count(adapter.name) != 0) return 0;
    const std::uint64_t token = t.next_token++;
    std::string name = adapter.name;
    t.by_name.emplace(std::move(name),
                      std::pair{token, std::make_shared<const JsonAdapter>(std::move(adapter))});
    return token;
  } catch (...) {
    return 0;  // out of memory during static initialisation: the task is simply not JSON-callable
  }
}

void unregister_json_adapter(std::uint64_t token) noexcept {
  if (token == 0) return;
  Table& t = table();
  std::lock_guard lock(t.mu);
  for (auto it = t.by_name.begin(); it != t.by_name.end(); ++it) {
    if (it->second.first == token) {
      t.by_name.erase(it);
      return;
    }
  }
}

std::shared_ptr<const JsonAdapter> find_json_adapter(std::string_view name) {
  link_builtin_tasks();
  Table& t = table();
  std::lock_guard lock(t.mu);
  auto it = t.by_name.find(name);
  return it == t.by_name.end() ? nullptr : it->second.second;
}

std::vector<std::shared_ptr<const JsonAdapter>> json_adapters() {
  link_builtin_tasks();
  Table& t = table();
  std::lock_guard lock(t.mu);
  std::vector<std::shared_ptr<const JsonAdapter>> out;
  for (const auto& [name, entry] : t.by_name) out.push_back(entry.second);
  return out;
}

std::string describe_json(const json& j) {
  const char* kind = "";
  switch (j.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return j.get<bool>() ? "true" : "false";
    case json::value_t::string: kind = "a string"; break;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: kind = "an integer"; break;
    case json::value_t::number_float: kind = "a number"; break;
    case json::value_t::array: kind = "an array"; break;
    case json::value_t::object: kind = "an object"; break;
    default: kind = "a value"; break;
  }
  std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (j.is_number()) return text;
  constexpr std::size_t kShown = 60;
  if (text.size() > kShown) text = text.substr(0, kShown - 3) + "...";
  return std::string(kind) + " " + text;
}

}  // namespace taskfarm::cli
