#pragma once
// The taskfarm program as a library: a user's own runner links its tasks and
// the CLI, and its main() is
//
//   int main(int argc, char** argv) {
//     taskfarm::init(argc, argv);
//     return taskfarm::cli::main(argc, argv);
//   }
//
// (examples/custom_runner.cpp is a complete one).

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "taskfarm/common/options.hpp"

namespace taskfarm::cli {

struct JobFile;

inline constexpr int kExitOk = 0;           // every task succeeded
inline constexpr int kExitTasksFailed = 1;  // some task failed, a job halted, or the run itself broke
inline constexpr int kExitUsage = 2;        // invalid job file or command line; nothing ran
inline constexpr int kExitInterrupted = 130;  // Ctrl-C (128 + the signal: 143 for SIGTERM, 129 for SIGHUP)

// Parses the command line, runs the command, returns the process exit code.
// Never throws.
int main(int argc, char** argv);

// Adds a command that is a program of its own (`taskfarm bench` is one: the
// taskfarm program registers taskfarm::bench::main when the benchmarks are
// built). main() hands it everything after its name, with argv[0] set to
// "<program> <name>", and returns what it returns; `--help` lists it. Call
// before main(); a second command of the same name replaces the first.
using CommandEntry = int (*)(int argc, char** argv);
void add_command(std::string name, std::string description, CommandEntry entry);

enum class Resume { none, unfinished, failed };  // --resume, --resume-failed
enum class ProgressMode { automatic, always, never };

// Command-line settings; those set take precedence over the job file.
struct RunOptions {
  std::optional<std::size_t> workers;
  std::optional<Transport> transport;
  std::optional<Start> start;
  std::optional<std::chrono::milliseconds> timeout;  // pool.task_timeout
  std::optional<unsigned> retries;                   // pool.max_retries
  std::optional<std::size_t> max_memory_per_child;   // pool.max_memory_per_child, bytes (0 = none)
  std::optional<std::string> output;  // "-" = standard output; relative to the working directory
  std::optional<std::string> joblog;  // relative to the working directory
  Resume resume = Resume::none;
  bool dry_run = false;                // print what would run, run nothing, write nothing
  ProgressMode progress = ProgressMode::automatic;  // automatic: when stderr is a terminal
  bool progress_bar = false;           // draw the progress as a bar (taskfarm exec --bar)

  // For `taskfarm exec` (and programs that build a job in memory): run this
  // job file instead of loading `file` (which then only names the run in
  // messages). Its outputs are used as they are; results nullopt means none
  // when `no_results` is set.
  const JobFile* job = nullptr;
  bool no_results = false;      // write no results file (and not to standard output)
  // Print each exec command's standard output and error whole when it ends
  // (never interleaved with another's), in the results' order; with `tag`,
  // each line prefixed with the input and a tab.
  bool command_output = false;
  bool tag = false;
  // The command line as typed (argv[0] first, set by main()), for the hint
  // that resumes this very run; empty: "taskfarm run FILE" is assumed.
  std::vector<std::string> command_line;
};

// `taskfarm run`: validates the file (nothing starts on an error), runs its
// jobs one after another on one pool, writes the results, the joblog and a
// summary (to `log`). Returns an exit code as above. Never throws.
int run_job_file(const std::filesystem::path& file, const RunOptions& options, std::ostream& log);

// `taskfarm validate`: the checks of run, without running. Prints what would
// run to `out`, problems to `log`. Returns kExitOk or kExitUsage.
int validate_job_file(const std::filesystem::path& file, std::ostream& out, std::ostream& log);

// `taskfarm tasks`: every registered task, its argument and result shapes and
// whether a job file can call it.
void print_tasks(std::ostream& out);

}  // namespace taskfarm::cli
