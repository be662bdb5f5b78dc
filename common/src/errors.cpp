#include "taskfarm/common/errors.hpp"

#include <cxxabi.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace taskfarm {

namespace {
std::string remote_what(const std::string& type, const std::string& msg, const std::string& task,
                        std::uint64_t index) {
  std::string w = "task \"" + task + "\" #" + std::to_string(index) + " raised " + type;
  if (!msg.empty()) w += ": " + msg;
  return w;
}

std::string lost_what(const WorkerLost::Details& d) {
  std::string w = "worker " + std::to_string(d.worker) + " (pid " + std::to_string(d.pid) + ") ";
  if (!d.cause.empty())
    w += d.cause;
  else
    w += WorkerLost::describe_status(d.signal, d.exit_code);
  w += " while running task \"" + d.task + "\" #" + std::to_string(d.index);
  return w;
}
}  // namespace

RemoteError::RemoteError(std::string type_name, std::string message, std::string task,
                         std::uint64_t index)
    : Error(remote_what(type_name, message, task, index)),
      type_name_(std::move(type_name)),
      message_(std::move(message)),
      task_(std::move(task)),
      index_(index) {}

WorkerLost::WorkerLost(Details d) : Error(lost_what(d)), d_(std::move(d)) {}

std::string WorkerLost::describe_status(int signal, int exit_code) {
  if (signal > 0) {
    const char* abbrev = sigabbrev_np(signal);
    return std::string("was killed by ") +
           (abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(signal));
  }
  if (exit_code >= 0) return "exited with code " + std::to_string(exit_code);
  return "was lost";
}

TaskTimeout::TaskTimeout(std::string task, std::uint64_t index, std::chrono::milliseconds timeout)
    : Error("task \"" + task + "\" #" + std::to_string(index) + " timed out after " +
            std::to_string(timeout.count()) + " ms; its worker was killed"),
      task_(std::move(task)),
      index_(index),
      timeout_(timeout) {}

std::string demangle(const char* mangled) {
  if (mangled == nullptr) return "unknown";
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(mangled, nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

}  // namespace taskfarm
