#pragma once
// The exceptions users see. Everything taskfarm throws at its API edge derives
// from taskfarm::Error.

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace taskfarm {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A task threw. Carries what the worker saw: the exception's dynamic type name
// (demangled), its message, the task name and the input index.
class RemoteError : public Error {
 public:
  RemoteError(std::string type_name, std::string message, std::string task, std::uint64_t index);
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  [[nodiscard]] const std::string& task() const noexcept { return task_; }
  [[nodiscard]] std::uint64_t index() const noexcept { return index_; }

 private:
  std::string type_name_, message_, task_;
  std::uint64_t index_;
};

// The worker running the task died (signal, exit, or a corrupt stream that forced
// the master to kill it) and no retry was left.
class WorkerLost : public Error {
 public:
  struct Details {
    int worker = -1;        // worker slot
    long pid = 0;           // its process id
    int signal = 0;         // terminating signal, 0 if it exited
    int exit_code = -1;     // exit status when it exited, -1 when signalled
    std::string task;       // task name
    std::uint64_t index = 0;  // input index
    std::string cause;      // free text when neither signal nor exit code says it all
  };
  explicit WorkerLost(Details d);
  [[nodiscard]] int signal() const noexcept { return d_.signal; }
  [[nodiscard]] int exit_code() const noexcept { return d_.exit_code; }
  [[nodiscard]] int worker() const noexcept { return d_.worker; }
  [[nodiscard]] long pid() const noexcept { return d_.pid; }
  [[nodiscard]] const std::string& task() const noexcept { return d_.task; }
  [[nodiscard]] std::uint64_t index() const noexcept { return d_.index; }

  // "killed by SIGKILL", "exited with code 3", ...
  [[nodiscard]] static std::string describe_status(int signal, int exit_code);

 private:
  Details d_;
};

// The task ran past PoolOptions::task_timeout; its worker was killed.
class TaskTimeout : public Error {
 public:
  TaskTimeout(std::string task, std::uint64_t index, std::chrono::milliseconds timeout);
  [[nodiscard]] const std::string& task() const noexcept { return task_; }
  [[nodiscard]] std::uint64_t index() const noexcept { return index_; }
  [[nodiscard]] std::chrono::milliseconds timeout() const noexcept { return timeout_; }

 private:
  std::string task_;
  std::uint64_t index_;
  std::chrono::milliseconds timeout_;
};

// The task was cancelled before it started (Future::cancel, shutdown with
// cancel_pending, terminate).
class Cancelled : public Error {
 public:
  using Error::Error;
};

// Work was submitted to a pool that is closed or shut down.
class PoolClosed : public Error {
 public:
  using Error::Error;
};

// Invalid options, unknown task, duplicate task name, bad job file field.
class ConfigError : public Error {
 public:
  using Error::Error;
};

// An argument or a result could not be encoded or decoded.
class SerializationError : public Error {
 public:
  using Error::Error;
};

// Demangles a type name as reported by typeid(...).name().
[[nodiscard]] std::string demangle(const char* mangled);

}  // namespace taskfarm
