#pragma once
// Running one external command: what the built-in `exec` task does inside a
// worker, usable on its own.
//
//   ExecRequest rq;
//   rq.argv = {"gzip", "-9", "data.bin"};
//   rq.timeout = std::chrono::seconds(10);
//   ExecResult r = run_command(rq);   // r.exit_code, r.signal, r.stdout_text, ...
//
// The command runs without a shell (unless `shell`), with every signal
// disposition reset to default and an empty signal mask, and with no
// descriptor but its standard input, output and error. It runs in a process
// group of its own, led by a small guard process (the command's parent) that
// ends the whole group — the command and everything it started — when the
// command exits (what it left running in the background is killed), when this
// call's timeout passes, or when the calling thread's process dies, even by
// SIGKILL (the guard's parent-death signal). Its output is read with poll()
// while its input is written, so neither side can block the other; each output
// is kept up to `output_limit` bytes. The guard is always reaped.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>

namespace taskfarm::cli {

inline constexpr std::size_t kDefaultOutputLimit = 64 * 1024;
inline constexpr std::size_t kMaxOutputLimit = std::size_t{1} << 30;

struct ExecRequest {
  // The program and its arguments. With `shell`, argv[0] is a shell script run
  // as `/bin/sh -c argv[0] sh argv[1] ...` (so argv[1...] are $1, $2, ... and
  // need no quoting).
  std::vector<std::string> argv;
  bool shell = false;
  std::string cwd;  // empty: the caller's working directory
  // Changes to the inherited environment: a value sets the variable, nullopt
  // removes it. PATH, if changed here, is the one the program is looked up in.
  std::vector<std::pair<std::string, std::optional<std::string>>> env;
  std::optional<std::string> stdin_data;  // nullopt: standard input is /dev/null
  std::chrono::milliseconds timeout{0};   // 0 = none
  std::size_t output_limit = kDefaultOutputLimit;  // bytes kept of stdout, and of stderr

  template <class Archive>
  void serialize(Archive& ar) {
    std::int64_t ms = timeout.count();
    std::uint64_t limit = output_limit;
    ar(argv, shell, cwd, env, stdin_data, ms, limit);
    timeout = std::chrono::milliseconds(ms);
    output_limit = static_cast<std::size_t>(limit);
  }
};

struct ExecResult {
  std::optional<int> exit_code;  // set when the command exited
  int signal = 0;                // the signal that ended it, 0 if none
  bool timed_out = false;        // killed (with its process group) at the timeout
  std::string spawn_error;       // non-empty: it could not be started (nothing ran)
  std::string stdout_text;       // the first output_limit bytes, plus a marker when cut
  std::string stderr_text;
  std::uint64_t stdout_bytes = 0;  // all it wrote, kept or not
  std::uint64_t stderr_bytes = 0;
  std::uint64_t stdin_bytes = 0;   // bytes of stdin_data it read (accepted by the pipe)
  double seconds = 0;              // from start to exit

  [[nodiscard]] bool ok() const noexcept {
    return spawn_error.empty() && !timed_out && signal == 0 && exit_code == 0;
  }

  template <class Archive>
  void serialize(Archive& ar) {
    ar(exit_code, signal, timed_out, spawn_error, stdout_text, stderr_text, stdout_bytes, stderr_bytes,
       stdin_bytes, seconds);
  }
};

// The text appended to an output cut at output_limit.
[[nodiscard]] std::string truncation_marker(std::uint64_t total_bytes);

// Runs the command to the end (or its timeout). Failures of the command itself
// (not found, non-zero exit, signal, timeout) are reported in the result, never
// thrown; std::system_error is thrown only when the system refuses a pipe or a
// process.
[[nodiscard]] ExecResult run_command(const ExecRequest& request);

// JSON forms (the exec task's argument and result; docs/JOBFILES.md). from_json
// accepts an object, an array (argv) or a string (a shell command) and throws
// std::invalid_argument saying what is wrong.
void from_json(const nlohmann::json& j, ExecRequest& request);
void to_json(nlohmann::json& j, const ExecResult& result);

// "SIGKILL" for 9; "signal 70" for numbers without a name.
[[nodiscard]] std::string signal_name(int sig);

// The command as a shell would need it typed: each word quoted when needed.
[[nodiscard]] std::string shell_quote(const std::vector<std::string>& words);

}  // namespace taskfarm::cli
