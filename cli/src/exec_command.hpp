#pragma once
// `taskfarm exec`: one-off runs of a command over inputs, without a job file
// (GNU parallel's everyday use, typed and resumable). See docs/JOBFILES.md,
// "taskfarm exec".
//
//   taskfarm exec [options] COMMAND [ARG...] ::: A B C [::: X Y]   inputs on the command line
//   taskfarm exec [options] COMMAND [ARG...] :::: FILE              lines of a file
//   producer | taskfarm exec [options] COMMAND [ARG...]             lines of standard input
//
// The command line becomes a job in memory (task `exec`, an argument template
// built from COMMAND and ARGs) that runs through the same runner as a job file.

#include <CLI/CLI.hpp>

#include <iosfwd>
#include <string>
#include <vector>

#include "taskfarm/cli/job.hpp"

namespace taskfarm::cli {

struct ExecArgs {
  std::string jobs, transport, timeout, halt, joblog, results, retries;
  bool resume = false, resume_failed = false, keep_order = false, bar = false, eta = false, dry_run = false,
       tag = false, shell = false;
  CLI::App* app = nullptr;
};

// Adds the `exec` subcommand and its options to `app`, bound to `args`.
CLI::App* add_exec_command(CLI::App& app, ExecArgs& args);

// What the words after the options say: the command, and the input groups.
struct ExecInputs {
  enum class Kind { values, file };  // ::: values, :::: a file of lines
  struct Group {
    Kind kind = Kind::values;
    std::vector<std::string> values;  // ::: its words; :::: one file name
  };
  std::vector<std::string> command;  // COMMAND [ARG...]
  std::vector<Group> groups;         // none: lines of standard input
};

// Splits the words after the options at ::: and ::::. Throws
// std::invalid_argument saying what is wrong.
[[nodiscard]] ExecInputs split_exec_words(const std::vector<std::string>& words);

// The argument template of the exec task for `in` ("argv", "shell"):
// placeholders as in job files, {1} {2} ... for the inputs of several groups,
// the inputs appended as the last arguments when the command has none; a
// shell command gets its inputs as positional parameters ("$1"), never pasted
// into the script. Braces that are not placeholders are literal. Throws
// std::invalid_argument.
[[nodiscard]] nlohmann::json exec_template(const ExecInputs& in, bool shell);

// Builds the job (throws std::invalid_argument for a bad option value) and
// runs it. Returns the exit code.
int run_exec_command(const ExecArgs& args, const std::vector<std::string>& argv, std::ostream& log);

}  // namespace taskfarm::cli
