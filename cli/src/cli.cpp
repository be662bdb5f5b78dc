// The command line of the taskfarm program (CLI11).

#include "taskfarm/cli/cli.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "builtin_tasks.hpp"
#include "exec_command.hpp"
#include "suggest.hpp"
#include "taskfarm/cli/duration.hpp"
#include "taskfarm/cli/json_task.hpp"
#include "taskfarm/cli/size.hpp"
#include "taskfarm/common/registry.hpp"

#ifndef TASKFARM_VERSION
#define TASKFARM_VERSION "unknown"
#endif

namespace taskfarm::cli {

namespace {

constexpr const char* kExamples = R"(
Examples:
  taskfarm run configs/demo.json                   run a job file
  taskfarm run jobs.json --workers 8 -o out.jsonl  override workers, write results to a file
  taskfarm run jobs.json -o - | jq .value          results as JSON Lines on standard output
  taskfarm run jobs.json --resume                  run only what an interrupted run left
  taskfarm validate jobs.json                      check a job file without running it
  taskfarm tasks                                   list the tasks a job file can call
  taskfarm help run                                the options of one command

Exit codes: 0 all tasks succeeded, 1 some task failed (or a job halted),
2 invalid job file or command line (nothing ran), 130 interrupted (Ctrl-C).
Job file format: docs/JOBFILES.md; schema: configs/jobfile.schema.json.)";

constexpr const char* kRunExamples = R"(
Examples:
  taskfarm run jobs.json                           run every job of the file, in order
  taskfarm run jobs.json -w 8 -t shm               8 workers talking over shared memory (-j 8 works too)
  taskfarm run jobs.json -o - --progress never     results on standard output, no progress line
  taskfarm run jobs.json --joblog log.tsv          keep a joblog (GNU parallel's columns plus ours)
  taskfarm run jobs.json --resume                  run the inputs the joblog does not show as run
  taskfarm run jobs.json --resume-failed           ... and those that failed
  taskfarm run jobs.json --dry-run                 print what would run (job, index, command)
  taskfarm run jobs.json --max-memory-per-child 2GiB   replace workers that grow past 2 GiB

Ctrl-C once: nothing new starts, running tasks finish, outputs are written
(exit 130). Twice: the workers are killed. Outputs never hold half a line.
Exit codes: 0 all succeeded, 1 some failed or a job halted, 2 invalid job file
or command line (nothing ran), 130 interrupted.)";

constexpr const char* kValidateExamples = R"(
Examples:
  taskfarm validate jobs.json      every error names its JSON path, what was found and what was expected

Checks the whole shape of the file, that every task exists, that input files
can be read, and expands and encodes the first 1000 inputs of each job (every
item of a list); a stream (lines from -, a pipe, a FIFO) is not read: its
lines are checked as the run reads them. Checks that the outputs can be
written. Exit codes: 0 valid, 2 not.)";

constexpr const char* kTasksExamples = R"(
Examples:
  taskfarm tasks                   the tasks of this program, their argument and result shapes

A task is JSON-callable (usable from a job file) when it is defined with
taskfarm::cli::JsonTask; see examples/custom_runner.cpp for a runner of your own.)";

// "int (int)" -> {"int", "int"}; anything unexpected stays whole.
std::pair<std::string, std::string> split_signature(const std::string& sig) {
  const auto open = sig.find('(');
  const auto close = sig.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return {sig, ""};
  std::string result = sig.substr(0, open);
  while (!result.empty() && result.back() == ' ') result.pop_back();
  std::string args = sig.substr(open + 1, close - open - 1);
  if (args.empty()) args = "()";
  return {args, result};
}


// Tasks named "taskfarm.*" belong to the library and its programs (the CLI's
// worker initializer, the benchmarks' probes): `taskfarm tasks` does not list them.
bool is_internal_task(const std::string& name) { return name.rfind("taskfarm.", 0) == 0; }

}  // namespace

void print_tasks(std::ostream& out) {
  // One block per task: shapes can be long (exec's), so they get lines of their own.
  struct Row {
    std::string name, arg, result, note;
    bool json;
  };
  std::vector<Row> rows;
  for (const auto& info : detail::Registry::instance().list()) {
    if (is_internal_task(info->name)) continue;
    if (auto a = find_json_adapter(info->name)) {
      rows.push_back({info->name, a->arg_shape, a->result_shape, a->description, true});
    } else {
      auto [arg, result] = split_signature(info->signature);
      rows.push_back({info->name, arg, result,
                      "C++ only (for the pool API); a job file cannot call it: its argument or result does not "
                      "convert to JSON",
                      false});
    }
  }
  std::stable_partition(rows.begin(), rows.end(), [](const Row& r) { return r.json; });
  for (const auto& r : rows) {
    out << r.name;
    if (!r.note.empty()) out << ": " << r.note;
    out << "\n    argument: " << r.arg << "\n    result:   " << r.result << "\n";
  }
}

namespace {

struct ExternalCommand {
  std::string name, description;
  CommandEntry entry;
};

std::vector<ExternalCommand>& external_commands() {
  static std::vector<ExternalCommand> commands;
  return commands;
}

// Runs an external command with argv[0] = "<program> <name>" and its own arguments.
int run_external(const ExternalCommand& command, int argc, char** argv) {
  std::string argv0 = std::string(argc > 0 ? argv[0] : "taskfarm") + " " + command.name;
  std::vector<char*> args{argv0.data()};
  for (int i = 2; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  try {
    return command.entry(static_cast<int>(args.size() - 1), args.data());
  } catch (const std::exception& e) {
    std::cerr << "taskfarm " << command.name << ": " << e.what() << "\n";
    return kExitTasksFailed;
  }
}

}  // namespace

void add_command(std::string name, std::string description, CommandEntry entry) {
  auto& commands = external_commands();
  std::erase_if(commands, [&](const ExternalCommand& c) { return c.name == name; });
  commands.push_back({std::move(name), std::move(description), entry});
}

int main(int argc, char** argv) {
  link_builtin_tasks();
  // An external command owns its whole command line (its own options and --help).
  if (argc >= 2) {
    for (const auto& command : external_commands())
      if (command.name == argv[1]) return run_external(command, argc, argv);
  }
  CLI::App app{"taskfarm: run tasks on a pool of worker processes", "taskfarm"};
  app.footer(kExamples);
  app.require_subcommand(1);
  app.set_version_flag("-V,--version", std::string("taskfarm ") + TASKFARM_VERSION, "Print the version and exit");
  for (const auto& command : external_commands())
    app.add_subcommand(command.name, command.description + " (see taskfarm " + command.name + " --help)");

  std::string run_file;
  std::string workers, jobs, retries;  // counts, checked below (CLI11 would wrap -1 around)
  std::string transport, start, timeout, max_memory, output, joblog, progress;
  bool resume = false, resume_failed = false, dry_run = false;
  auto* run = app.add_subcommand("run", "Run the jobs of a job file");
  run->footer(kRunExamples);
  run->add_option("file", run_file, "The job file (JSON)")->required();
  auto* workers_opt = run->add_option("-w,--workers", workers, "Number of worker processes (0 = one per CPU)");
  auto* jobs_opt = run->add_option("-j,--jobs", jobs, "Same as --workers (GNU parallel's spelling)");
  auto* transport_opt = run->add_option("-t,--transport", transport, "Transport: pipe, socket, mqueue or shm");
  auto* start_opt = run->add_option("--start", start, "How workers start: fork or spawn");
  auto* timeout_opt =
      run->add_option("--timeout", timeout, "Task timeout (pool.task_timeout), e.g. 30s, 500ms, 2m; 0 = none");
  auto* retries_opt = run->add_option("--retries", retries, "Re-runs of a task whose worker died or timed out");
  auto* max_memory_opt = run->add_option(
      "--max-memory-per-child", max_memory,
      "Replace a worker whose RSS is above this after a task (pool.max_memory_per_child): "
      "512MiB, 2GiB, 100MB, or bytes; 0 = none");
  auto* output_opt = run->add_option("-o,--output", output, "Results file (JSON Lines), - for standard output");
  auto* joblog_opt = run->add_option("--joblog", joblog, "Joblog file (TSV), needed by --resume");
  auto* resume_opt = run->add_flag("--resume", resume, "Run only the inputs the joblog does not show as run");
  auto* resume_failed_opt =
      run->add_flag("--resume-failed", resume_failed, "Like --resume, and run again those that failed");
  resume_opt->excludes(resume_failed_opt);
  run->add_flag("-n,--dry-run", dry_run, "Print what would run (job, index, command); run and write nothing");
  auto* progress_opt =
      run->add_option("--progress", progress, "Progress line on stderr: auto (on a terminal), always or never");

  std::string validate_file;
  auto* validate = app.add_subcommand("validate", "Check a job file without running it");
  validate->footer(kValidateExamples);
  validate->add_option("file", validate_file, "The job file (JSON)")->required();

  ExecArgs exec_args;
  auto* exec = add_exec_command(app, exec_args);

  auto* tasks = app.add_subcommand("tasks", "List the registered tasks with their argument and result shapes");
  tasks->footer(kTasksExamples);
  auto* version = app.add_subcommand("version", "Print the version (also taskfarm --version, -V)");
  std::string help_command;
  auto* help = app.add_subcommand("help", "Print the usage of taskfarm, or of one command");
  help->add_option("command", help_command, "The command (run, validate, tasks, ...)");

  // The commands, for `help COMMAND` and "did you mean".
  std::vector<std::string> command_names;
  for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; }))
    command_names.push_back(sub->get_name());

  // `taskfarm` alone: the usage, as git does, on stderr since nothing was asked
  // for, and the exit code of an incomplete command line.
  if (argc < 2) {
    std::cerr << app.help();
    return kExitUsage;
  }
  const std::string first = argv[1];
  if (!first.empty() && first[0] != '-' &&
      std::find(command_names.begin(), command_names.end(), first) == command_names.end()) {
    const std::string near = nearest_name(first, command_names);
    std::cerr << "taskfarm: unknown command \"" << first << "\"";
    if (!near.empty())
      std::cerr << "; did you mean \"" << near << "\"?\n";
    else
      std::cerr << "; the commands are " << join_names(command_names) << " (taskfarm help COMMAND)\n";
    return kExitUsage;
  }

  if (first.size() > 1 && first[0] == '-' && first != "-h" && first != "--help" && first != "-V" &&
      first != "--version") {
    std::cerr << "taskfarm: unknown option \"" << first << "\"; options go after the command "
              << "(taskfarm --help lists the commands)\n";
    return kExitUsage;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  } catch (const CLI::ParseError& e) {
    // CLI11's own words, in the program's voice and naming the command.
    std::string where = "taskfarm";
    for (const auto* sub : app.get_subcommands())
      if (sub->get_name() != "help") where += " " + sub->get_name();
    std::cerr << "taskfarm: " << (where == "taskfarm" ? "" : where.substr(9) + ": ") << e.what()
              << "\n(" << where << " --help lists the options)\n";
    return kExitUsage;
  }

  auto usage = [](const std::string& option, const std::string& problem) {
    std::cerr << "taskfarm: run: " << option << ": " << problem << "\n";
    return kExitUsage;
  };
  try {
    if (help->parsed()) {
      if (help_command.empty()) {
        std::cout << app.help();
        return kExitOk;
      }
      for (const auto& command : external_commands()) {
        if (command.name != help_command) continue;
        std::string argv0 = argv[0], name = command.name, flag = "--help";
        char* args[] = {argv0.data(), name.data(), flag.data(), nullptr};
        return run_external(command, 3, args);
      }
      if (std::find(command_names.begin(), command_names.end(), help_command) == command_names.end()) {
        const std::string near = nearest_name(help_command, command_names);
        std::cerr << "taskfarm: help: there is no command \"" << help_command << "\""
                  << (near.empty() ? "" : "; did you mean \"" + near + "\"?") << " (the commands are "
                  << join_names(command_names) << ")\n";
        return kExitUsage;
      }
      std::cout << app.get_subcommand(help_command)->help("taskfarm");
      return kExitOk;
    }
    if (run->parsed()) {
      RunOptions ro;
      if (workers_opt->count() != 0 && jobs_opt->count() != 0)
        return usage("--jobs", "the same as --workers; give one of them");
      if (workers_opt->count() != 0 || jobs_opt->count() != 0) {
        const bool by_jobs = jobs_opt->count() != 0;
        std::uint64_t n = 0;
        const std::string problem = count_problem(by_jobs ? jobs : workers, kMaxWorkers, n);
        if (!problem.empty()) return usage(by_jobs ? "--jobs" : "--workers", problem);
        ro.workers = static_cast<std::size_t>(n);
      }
      if (transport_opt->count() != 0) {
        const auto t = parse_transport(transport);
        if (!t) return usage("--transport", "expected pipe, socket, mqueue or shm, found \"" + transport + "\"");
        ro.transport = *t;
      }
      if (start_opt->count() != 0) {
        const auto s = parse_start(start);
        if (!s) return usage("--start", "expected fork or spawn, found \"" + start + "\"");
        ro.start = *s;
      }
      if (timeout_opt->count() != 0) {
        try {
          ro.timeout = timeout == "0" ? std::chrono::milliseconds(0) : parse_duration(timeout);
        } catch (const std::invalid_argument& e) {
          return usage("--timeout", e.what());
        }
      }
      if (retries_opt->count() != 0) {
        std::uint64_t n = 0;
        const std::string problem = count_problem(retries, 1000, n);
        if (!problem.empty()) return usage("--retries", problem);
        ro.retries = static_cast<unsigned>(n);
      }
      if (max_memory_opt->count() != 0) {
        std::uint64_t bytes = 0;
        try {
          // Digits alone are bytes, as in a job file's integer.
          const bool digits = !max_memory.empty() &&
                              std::all_of(max_memory.begin(), max_memory.end(), [](char c) { return c >= '0' && c <= '9'; });
          if (!digits)
            bytes = parse_size(max_memory);
          else if (std::from_chars(max_memory.data(), max_memory.data() + max_memory.size(), bytes).ec != std::errc())
            return usage("--max-memory-per-child", "size too large, found \"" + max_memory + "\"");
        } catch (const std::invalid_argument& e) {
          return usage("--max-memory-per-child", e.what());
        }
        if (bytes != 0 && bytes < kMinMemoryPerChild)
          return usage("--max-memory-per-child", "expected 0 (no limit) or at least 1MiB, found \"" + max_memory + "\"");
        ro.max_memory_per_child = static_cast<std::size_t>(bytes);
      }
      if (output_opt->count() != 0) {
        if (output.empty()) return usage("--output", "expected a file name or -");
        ro.output = output;
      }
      if (joblog_opt->count() != 0) {
        if (joblog.empty() || joblog == "-") return usage("--joblog", "expected a file name");
        ro.joblog = joblog;
      }
      if (resume) ro.resume = Resume::unfinished;
      if (resume_failed) ro.resume = Resume::failed;
      ro.dry_run = dry_run;
      ro.command_line.assign(argv, argv + argc);
      if (progress_opt->count() != 0) {
        if (progress == "auto")
          ro.progress = ProgressMode::automatic;
        else if (progress == "always")
          ro.progress = ProgressMode::always;
        else if (progress == "never")
          ro.progress = ProgressMode::never;
        else
          return usage("--progress", "expected auto, always or never, found \"" + progress + "\"");
      }
      return run_job_file(run_file, ro, std::cerr);
    }
    if (exec->parsed()) return run_exec_command(exec_args, std::vector<std::string>(argv, argv + argc), std::cerr);
    if (validate->parsed()) return validate_job_file(validate_file, std::cout, std::cerr);
    if (tasks->parsed()) {
      print_tasks(std::cout);
      return kExitOk;
    }
    if (version->parsed()) {
      std::cout << "taskfarm " << TASKFARM_VERSION << "\n";
      return kExitOk;
    }
  } catch (const std::exception& e) {
    std::cerr << "taskfarm: " << e.what() << "\n";
    return kExitTasksFailed;
  }
  return kExitUsage;
}

}  // namespace taskfarm::cli
