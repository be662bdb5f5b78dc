#pragma once
// JSON-callable tasks: tasks a job file can run by name.
//
//   struct Span { long lo = 0, hi = 0; template <class A> void serialize(A& a) { a(lo, hi); } };
//   NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Span, lo, hi)
//   inline const taskfarm::cli::JsonTask<long(Span)> width{
//       "width", [](Span s) { return s.hi - s.lo; },
//       {.arg_shape = R"({"lo": integer, "hi": integer})", .description = "hi - lo"}};
//
// A JsonTask is an ordinary taskfarm::Task (workers find it by name, the pool
// API takes it) that also records, in a table of the CLI keyed by task name, how
// to turn a job file's JSON argument into the task's encoded argument and the
// encoded result back into JSON. The argument type needs nlohmann's from_json
// and cereal's serialize; the result type needs to_json and serialize. Tasks that
// take or return nlohmann::json itself travel as JSON text (json_cereal.hpp).

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <source_location>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "taskfarm/cli/json_cereal.hpp"
#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/serialize.hpp"
#include "taskfarm/common/task.hpp"

namespace taskfarm::cli {

using json = nlohmann::json;

// A task's own verdict on a value it returned: the task ran to the end, but the
// value says it failed (exec: the command exited with a non-zero code). The
// result line then gets this status and error, and keeps the value.
struct JsonVerdict {
  std::string status = "failed";  // "failed" or "timeout"
  std::string type;               // e.g. "exec.exit"
  std::string message;            // e.g. "exited with code 3"
};

// What a joblog line says about one finished task, in GNU parallel's columns.
// The defaults (no hook): Exitval 0 when it succeeded and 1 when not, Signal 0,
// Send and Receive the sizes of the encoded argument and result.
struct JoblogFacts {
  std::int64_t exitval = 0;
  int signal = 0;
  std::optional<std::uint64_t> send;     // bytes sent to the task
  std::optional<std::uint64_t> receive;  // bytes received from it
};

// What the CLI knows about one JSON-callable task.
struct JsonAdapter {
  std::string name;
  std::string arg_shape;     // e.g. "integer", "{\"lo\": integer, \"hi\": integer}"
  std::string result_shape;
  std::string description;   // one line for `taskfarm tasks`; may be empty
  std::string where;         // "file.cpp:12"
  // Appends the encoded argument for `arg` to `out`. Throws std::exception with
  // a message that says what was expected (the caller adds the JSON path).
  std::function<void(const json& arg, std::vector<std::byte>& out)> encode;
  // Decodes one encoded result. Throws SerializationError.
  std::function<json(std::span<const std::byte> result)> decode;
  // Optional: one line for the run summary from the values of a job's
  // successful tasks (e.g. "primes found: 455052511"); empty function = none.
  std::function<std::string(std::span<const json> values)> summarize;
  // Optional hooks; an empty function means "none" (see JsonTaskInfo).
  std::function<void(json& arg, const std::filesystem::path& job_dir)> prepare;
  std::function<std::optional<JsonVerdict>(const json& value)> verdict;
  std::function<std::string(const json& arg)> command;
  std::function<void(const json& value, JoblogFacts& facts)> facts;
  std::function<std::uint64_t(const json& arg)> send;
};

// Adds an adapter to the table. A name already present keeps its first adapter
// (the duplicate Task itself is reported by taskfarm::init). Returns a token for
// unregister_json_adapter, 0 when the name was taken.
std::uint64_t register_json_adapter(JsonAdapter adapter) noexcept;
void unregister_json_adapter(std::uint64_t token) noexcept;
// The adapter of task `name`, or nullptr when no JSON-callable task has that name.
[[nodiscard]] std::shared_ptr<const JsonAdapter> find_json_adapter(std::string_view name);
// Every adapter, sorted by name.
[[nodiscard]] std::vector<std::shared_ptr<const JsonAdapter>> json_adapters();

// A JSON value in a short form for messages: its type and, when short, its text.
[[nodiscard]] std::string describe_json(const json& j);

// JsonShape<T>::describe(): how `taskfarm tasks` shows a type. Specialize it for
// your own types, or pass JsonTaskInfo::arg_shape / result_shape.
template <class T, class = void>
struct JsonShape {
  static std::string describe() { return demangle(typeid(T).name()); }
};
template <>
struct JsonShape<bool> {
  static std::string describe() { return "boolean"; }
};
template <class T>
struct JsonShape<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>>> {
  static std::string describe() { return "integer"; }
};
template <class T>
struct JsonShape<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static std::string describe() { return "number"; }
};
template <>
struct JsonShape<std::string> {
  static std::string describe() { return "string"; }
};
template <>
struct JsonShape<json> {
  static std::string describe() { return "any JSON"; }
};
template <>
struct JsonShape<void> {
  static std::string describe() { return "null"; }
};
template <class T>
struct JsonShape<std::vector<T>> {
  static std::string describe() { return std::string("[").append(JsonShape<T>::describe()).append(", ...]"); }
};
template <class T>
struct JsonShape<std::optional<T>> {
  static std::string describe() { return JsonShape<T>::describe() + " or null"; }
};
template <class T>
struct JsonShape<std::map<std::string, T>> {
  static std::string describe() { return std::string("{string: ").append(JsonShape<T>::describe()).append("}"); }
};
template <class A, class B>
struct JsonShape<std::pair<A, B>> {
  static std::string describe() {
    return std::string("[").append(JsonShape<A>::describe()).append(", ").append(JsonShape<B>::describe()).append("]");
  }
};

// Converts a job file's JSON value to T. Numbers, booleans and strings are
// checked strictly (an integer parameter does not accept 2.5, "2" or 1e30);
// other types go through nlohmann's from_json. Throws std::invalid_argument.
template <class T>
T json_to_arg(const json& j) {
  if constexpr (std::is_same_v<T, json>) {
    return j;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) throw std::invalid_argument("expected a boolean, found " + describe_json(j));
    return j.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!j.is_number_integer())
      throw std::invalid_argument("expected an integer, found " + describe_json(j));
    if (j.is_number_unsigned()) {
      const auto v = j.get<std::uint64_t>();
      if (v > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        throw std::invalid_argument("integer " + j.dump() + " is out of range");
      return static_cast<T>(v);
    }
    const auto v = j.get<std::int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (v < 0) throw std::invalid_argument("expected a non-negative integer, found " + j.dump());
      if (static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
        throw std::invalid_argument("integer " + j.dump() + " is out of range");
    } else {
      if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          v > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
        throw std::invalid_argument("integer " + j.dump() + " is out of range");
    }
    return static_cast<T>(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!j.is_number()) throw std::invalid_argument("expected a number, found " + describe_json(j));
    return j.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) throw std::invalid_argument("expected a string, found " + describe_json(j));
    return j.get<std::string>();
  } else {
    try {
      return j.get<T>();
    } catch (const json::exception& e) {
      // "[json.exception.type_error.302] type must be number, but is string"
      std::string what = e.what();
      if (const auto p = what.find("] "); p != std::string::npos) what.erase(0, p + 2);
      throw std::invalid_argument(what + " (found " + describe_json(j) + ")");
    }
  }
}

// Optional details of a JsonTask. Empty shapes are derived from the types; every
// hook may be left empty.
struct JsonTaskInfo {
  std::string arg_shape;
  std::string result_shape;
  std::string description;
  // One line for the run summary from the values of a job's successful tasks.
  std::function<std::string(std::span<const json> values)> summarize;
  // Called on every expanded argument before it is encoded (not for the resume
  // hash), with the job file's directory: fills in defaults that depend on
  // where the job file is (exec: its working directory). May throw
  // std::invalid_argument, like encoding.
  std::function<void(json& arg, const std::filesystem::path& job_dir)> prepare;
  // The task's verdict on a value it returned (nullopt: it succeeded).
  std::function<std::optional<JsonVerdict>(const json& value)> verdict;
  // The argument as a command line, for the joblog's Command column and
  // `taskfarm run --dry-run` (default: "<task> <argument as JSON>").
  std::function<std::string(const json& arg)> command;
  // Fills the joblog columns Exitval, Signal, Send, Receive from a value.
  std::function<void(const json& value, JoblogFacts& facts)> facts;
  // The joblog's Send for an expanded argument, known before it runs (so also
  // for a task that times out or is lost); exec: the length of its stdin.
  // Default: the size of the encoded argument. A Send from `facts` wins.
  std::function<std::uint64_t(const json& arg)> send;
};

template <class Signature>
class JsonTask;

// A task of one argument (or none: it then takes null) whose argument comes from
// JSON and whose result goes back to JSON. Define it at namespace scope, like Task.
template <class R, class... Args>
  requires(sizeof...(Args) <= 1)
class JsonTask<R(Args...)> : public Task<R(Args...)> {
 public:
  template <class F>
    requires std::is_invocable_r_v<R, F&, Args...>
  JsonTask(std::string name, F fn, JsonTaskInfo info = {},
           std::source_location where = std::source_location::current())
      : Task<R(Args...)>(name, std::move(fn), where) {
    JsonAdapter a;
    a.name = std::move(name);
    a.arg_shape = !info.arg_shape.empty() ? std::move(info.arg_shape) : arg_shape();
    a.result_shape = !info.result_shape.empty() ? std::move(info.result_shape)
                                                : JsonShape<std::remove_cvref_t<R>>::describe();
    a.description = std::move(info.description);
    a.where = std::string(where.file_name()) + ":" + std::to_string(where.line());
    a.encode = [](const json& arg, std::vector<std::byte>& out) { encode_arg(arg, out); };
    a.decode = [](std::span<const std::byte> bytes) -> json {
      if constexpr (std::is_void_v<R>) {
        if (!bytes.empty()) throw SerializationError("a void task returned data");
        return nullptr;
      } else {
        return json(decode<std::remove_cvref_t<R>>(bytes));
      }
    };
    a.summarize = std::move(info.summarize);
    a.prepare = std::move(info.prepare);
    a.verdict = std::move(info.verdict);
    a.command = std::move(info.command);
    a.facts = std::move(info.facts);
    a.send = std::move(info.send);
    token_ = register_json_adapter(std::move(a));
  }

  JsonTask(const JsonTask&) = delete;
  JsonTask& operator=(const JsonTask&) = delete;
  ~JsonTask() { unregister_json_adapter(token_); }

 private:
  static std::string arg_shape() {
    if constexpr (sizeof...(Args) == 0)
      return "null";
    else
      return (JsonShape<std::remove_cvref_t<Args>>::describe(), ...);
  }
  static void encode_arg(const json& arg, std::vector<std::byte>& out) {
    if constexpr (sizeof...(Args) == 0) {
      if (!arg.is_null()) throw std::invalid_argument("this task takes no argument (null), found " +
                                                      describe_json(arg));
    } else {
      (encode_into(out, json_to_arg<std::remove_cvref_t<Args>>(arg)), ...);
    }
  }

  std::uint64_t token_ = 0;
};

}  // namespace taskfarm::cli
