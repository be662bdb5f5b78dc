#pragma once
// The taskfarm program as a library: a user's own runner links its tasks and
// the CLI, and its main() is
//
//   int main(int argc, char** argv) {
//     taskfarm::init(argc, argv);
//     return taskfarm::cli::main(argc, argv);
//   }

#include <cstddef>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

#include "taskfarm/common/options.hpp"

namespace taskfarm::cli {

inline constexpr int kExitOk = 0;           // every task succeeded
inline constexpr int kExitTasksFailed = 1;  // some task failed (or the run itself broke)
inline constexpr int kExitUsage = 2;        // invalid job file or command line; nothing ran

// Parses the command line, runs the command, returns the process exit code.
// Never throws.
int main(int argc, char** argv);

// Command-line settings that take precedence over the job file.
struct RunOverrides {
  std::optional<std::size_t> workers;
  std::optional<Transport> transport;
  std::optional<std::string> output;  // "-" = standard output; relative to the working directory
};

// `taskfarm run`: validates the whole file (nothing starts on an error), runs
// its jobs one after another on one pool, writes the results and a summary
// (to `log`). Returns an exit code as above. Never throws.
int run_job_file(const std::filesystem::path& file, const RunOverrides& overrides, std::ostream& log);

// `taskfarm validate`: the checks of run, without running. Prints what would
// run to `out`, problems to `log`. Returns kExitOk or kExitUsage.
int validate_job_file(const std::filesystem::path& file, std::ostream& out, std::ostream& log);

// `taskfarm tasks`: every registered task, its argument and result shapes and
// whether a job file can call it.
void print_tasks(std::ostream& out);

}  // namespace taskfarm::cli
