// The built-in `exec` task: a job file's way to run commands (see exec.hpp and
// docs/JOBFILES.md, "The exec task").

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "builtin_tasks.hpp"
#include "taskfarm/cli/duration.hpp"
#include "taskfarm/cli/exec.hpp"
#include "taskfarm/cli/json_task.hpp"

namespace taskfarm::cli {

namespace {

// A word of a command line: strings as they are, numbers and booleans as JSON
// writes them (a template's "{size}" keeps the item's type: 64, not "64").
std::string word(const json& j, const std::string& where) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number() || j.is_boolean()) return j.dump();
  throw std::invalid_argument(where + ": expected a string (or a number), found " + describe_json(j));
}

const char* const kKeys[] = {"argv", "shell", "cwd", "env", "stdin", "timeout", "output_limit"};

// The three spellings of an argument, as one object: an array is argv, a
// string a shell command.
json normalized(const json& j) {
  if (j.is_array()) return json{{"argv", j}};
  if (j.is_string()) return json{{"argv", j}, {"shell", true}};
  return j;
}

}  // namespace

void from_json(const json& in, ExecRequest& r) {
  const json j = normalized(in);
  if (!j.is_object())
    throw std::invalid_argument("expected an object {\"argv\": [...], ...}, an array (argv) or a string (a shell "
                                "command), found " + describe_json(j));
  for (const auto& [k, v] : j.items()) {
    if (std::find(std::begin(kKeys), std::end(kKeys), k) == std::end(kKeys))
      throw std::invalid_argument("unknown field \"" + k +
                                  "\"; expected argv, shell, cwd, env, stdin, timeout, output_limit");
  }
  r = ExecRequest{};
  if (auto it = j.find("shell"); it != j.end()) {
    if (!it->is_boolean()) throw std::invalid_argument("shell: expected true or false, found " + describe_json(*it));
    r.shell = it->get<bool>();
  }
  const auto argv = j.find("argv");
  if (argv == j.end()) throw std::invalid_argument("missing \"argv\" (the program and its arguments)");
  if (argv->is_string()) {
    if (!r.shell)
      throw std::invalid_argument("argv: a string is a shell command and needs \"shell\": true (or give argv as "
                                  "an array of words)");
    r.argv.push_back(argv->get<std::string>());
  } else if (argv->is_array()) {
    for (std::size_t i = 0; i < argv->size(); ++i) r.argv.push_back(word((*argv)[i], "argv[" + std::to_string(i) + "]"));
  } else {
    throw std::invalid_argument("argv: expected an array of strings, found " + describe_json(*argv));
  }
  if (r.argv.empty() || r.argv[0].empty())
    throw std::invalid_argument(r.shell ? "argv: the shell command is empty" : "argv: the program name is empty");
  if (auto it = j.find("cwd"); it != j.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty())
      throw std::invalid_argument("cwd: expected a directory name, found " + describe_json(*it));
    r.cwd = it->get<std::string>();
  }
  if (auto it = j.find("env"); it != j.end()) {
    if (!it->is_object()) throw std::invalid_argument("env: expected an object {\"NAME\": \"value\"}, found " + describe_json(*it));
    for (const auto& [k, v] : it->items()) {
      if (k.empty() || k.find('=') != std::string::npos)
        throw std::invalid_argument("env: \"" + k + "\" is not a variable name");
      if (v.is_null())
        r.env.emplace_back(k, std::nullopt);
      else
        r.env.emplace_back(k, word(v, "env." + k));
    }
  }
  if (auto it = j.find("stdin"); it != j.end()) {
    if (!it->is_string()) throw std::invalid_argument("stdin: expected a string, found " + describe_json(*it));
    r.stdin_data = it->get<std::string>();
  }
  if (auto it = j.find("timeout"); it != j.end()) {
    if (it->is_number_integer() && !it->is_number_unsigned() && it->get<std::int64_t>() < 0)
      throw std::invalid_argument("timeout: a duration must not be negative, found " + it->dump());
    if (it->is_number_integer())
      r.timeout = parse_duration(std::to_string(it->get<std::uint64_t>()) + "ms");
    else if (it->is_string())
      try {
        r.timeout = parse_duration(it->get<std::string>());
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("timeout: ") + e.what());
      }
    else
      throw std::invalid_argument("timeout: expected a duration such as \"10s\", found " + describe_json(*it));
  }
  if (auto it = j.find("output_limit"); it != j.end()) {
    if (!it->is_number_integer() || (!it->is_number_unsigned() && it->get<std::int64_t>() < 0) ||
        it->get<std::uint64_t>() > kMaxOutputLimit)
      throw std::invalid_argument("output_limit: expected an integer 0 ... " + std::to_string(kMaxOutputLimit) +
                                  " (bytes), found " + describe_json(*it));
    r.output_limit = static_cast<std::size_t>(it->get<std::uint64_t>());
  }
}

void to_json(json& j, const ExecResult& r) {
  j = json{{"exit_code", r.exit_code ? json(*r.exit_code) : json(nullptr)},
           {"signal", r.signal != 0 ? json(signal_name(r.signal)) : json(nullptr)},
           {"timed_out", r.timed_out},
           {"stdout", r.stdout_text},
           {"stderr", r.stderr_text},
           {"stdout_bytes", r.stdout_bytes},
           {"stderr_bytes", r.stderr_bytes},
           {"stdin_bytes", r.stdin_bytes},
           {"seconds", r.seconds}};
  if (!r.spawn_error.empty()) j["spawn_error"] = r.spawn_error;
}

namespace {

int signal_number(const json& name) {
  if (!name.is_string()) return 0;
  for (int sig = 1; sig < NSIG; ++sig)
    if (signal_name(sig) == name.get_ref<const std::string&>()) return sig;
  return 0;
}

// The last non-empty line of a command's stderr, short, for error messages.
std::string stderr_tail(const json& v) {
  const auto it = v.find("stderr");
  if (it == v.end() || !it->is_string()) return {};
  std::string s = it->get<std::string>();
  if (const auto m = s.find("\n[taskfarm: output truncated"); m != std::string::npos) s.erase(m);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (const auto nl = s.rfind('\n'); nl != std::string::npos) s.erase(0, nl + 1);
  constexpr std::size_t kMax = 200;
  if (s.size() > kMax) s = s.substr(0, kMax - 3) + "...";
  return s.empty() ? s : ": " + s;
}

std::optional<JsonVerdict> exec_verdict(const json& v) {
  if (!v.is_object()) return std::nullopt;
  if (auto it = v.find("spawn_error"); it != v.end() && it->is_string())
    return JsonVerdict{"failed", "exec.spawn", it->get<std::string>()};
  if (v.value("timed_out", false)) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.3f", v.value("seconds", 0.0));
    return JsonVerdict{"timeout", "exec.timeout",
                       std::string("timed out after ") + secs + " s; its process group was killed" + stderr_tail(v)};
  }
  if (auto it = v.find("signal"); it != v.end() && it->is_string())
    return JsonVerdict{"failed", "exec.signal", "killed by " + it->get<std::string>() + stderr_tail(v)};
  const auto code = v.find("exit_code");
  if (code == v.end() || !code->is_number_integer())
    return JsonVerdict{"failed", "exec.unknown", "the command's exit status is unknown (is SIGCHLD ignored?)"};
  if (code->get<int>() != 0)
    return JsonVerdict{"failed", "exec.exit", "exited with code " + code->dump() + stderr_tail(v)};
  return std::nullopt;
}

std::string exec_command(const json& arg) {
  try {
    ExecRequest r;
    from_json(arg, r);
    if (!r.shell) return shell_quote(r.argv);
    std::vector<std::string> words{"sh", "-c", r.argv[0], "sh"};
    words.insert(words.end(), r.argv.begin() + 1, r.argv.end());
    return shell_quote(words);
  } catch (const std::exception&) {
    return "exec " + arg.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}

const JsonTask<ExecResult(ExecRequest)> exec_task{
    "exec", [](ExecRequest r) { return run_command(r); },
    {.arg_shape = R"({"argv": [string, ...], "shell"?: boolean, "cwd"?: string, "env"?: {string: string|null}, )"
                  R"("stdin"?: string, "timeout"?: duration, "output_limit"?: integer} | [string, ...] | string)",
     .result_shape = R"({"exit_code", "signal", "timed_out", "stdout", "stderr", "stdout_bytes", "stderr_bytes", )"
                     R"("stdin_bytes", "seconds"[, "spawn_error"]})",
     .description = "runs a command (no shell unless \"shell\": true); fails on a non-zero exit, a signal or "
                    "its timeout",
     .summarize = {},
     .prepare =
         [](json& arg, const std::filesystem::path& job_dir) {
           arg = normalized(arg);
           if (!arg.is_object()) return;  // encoding reports it
           std::filesystem::path cwd = job_dir;
           if (auto it = arg.find("cwd"); it != arg.end()) {
             if (!it->is_string()) return;
             cwd = job_dir / it->get<std::string>();
           }
           arg["cwd"] = cwd.lexically_normal().string();
         },
     .verdict = exec_verdict,
     .command = exec_command,
     .facts =
         [](const json& v, JoblogFacts& f) {
           if (!v.is_object()) return;
           const auto code = v.find("exit_code");
           f.exitval = code != v.end() && code->is_number_integer() ? code->get<std::int64_t>() : -1;
           if (auto s = v.find("signal"); s != v.end()) f.signal = signal_number(*s);
           f.receive = v.value("stdout_bytes", std::uint64_t{0});
         },
     .send =
         [](const json& arg) -> std::uint64_t {
           // The bytes given to its stdin: the request's, whether or not the
           // command read them all (0 without one).
           if (!arg.is_object()) return 0;
           const auto it = arg.find("stdin");
           return it != arg.end() && it->is_string() ? it->get_ref<const std::string&>().size() : 0;
         }}};

}  // namespace

void link_exec_task() noexcept {}

}  // namespace taskfarm::cli
