#pragma once
// The command that resumes a run exactly as it was started: the command line
// as typed, with --resume (or --resume-failed) right after the subcommand.
// `taskfarm run` prints it after an interrupted or halted run; `taskfarm exec`
// can print it too (its trailing words are inputs, hence "right after the
// subcommand", never at the end).

#include <cstddef>
#include <string>
#include <vector>

namespace taskfarm::cli {

// `argv` is the command line as typed (argv[0] first); argv[subcommand] is the
// subcommand word ("run", "exec"). Every --resume and --resume-failed (also as
// --resume=...) before a "--" or ":::" word is dropped; --resume-failed when
// `failed`, else --resume, goes right after the subcommand. The words are
// shell-quoted (shell_quote), so the result can be pasted into a shell.
// Empty when argv has no word at `subcommand`.
[[nodiscard]] std::string resume_command(const std::vector<std::string>& argv, bool failed,
                                         std::size_t subcommand = 1);

}  // namespace taskfarm::cli
