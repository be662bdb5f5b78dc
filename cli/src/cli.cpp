// The command line of the taskfarm program (CLI11).

#include "taskfarm/cli/cli.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "builtin_tasks.hpp"
#include "taskfarm/cli/json_task.hpp"
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
  taskfarm validate jobs.json                      check a job file without running it
  taskfarm tasks                                   list the tasks a job file can call

Exit codes: 0 all tasks succeeded, 1 some task failed, 2 invalid job file or
command line (nothing ran). Job file format: docs/JOBFILES.md.)";

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

}  // namespace

void print_tasks(std::ostream& out) {
  struct Row {
    std::string name, arg, result, json, note;
  };
  std::vector<Row> rows;
  for (const auto& info : detail::Registry::instance().list()) {
    if (auto a = find_json_adapter(info->name)) {
      rows.push_back({info->name, a->arg_shape, a->result_shape, "yes", a->description});
    } else {
      auto [arg, result] = split_signature(info->signature);
      rows.push_back({info->name, arg, result, "no", "C++ only (" + info->where + ")"});
    }
  }
  Row head{"TASK", "ARGUMENT", "RESULT", "JSON", "DESCRIPTION"};
  std::size_t w[4] = {head.name.size(), head.arg.size(), head.result.size(), head.json.size()};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.name.size());
    w[1] = std::max(w[1], r.arg.size());
    w[2] = std::max(w[2], r.result.size());
    w[3] = std::max(w[3], r.json.size());
  }
  auto pad = [](const std::string& s, std::size_t width) { return s + std::string(width - s.size() + 2, ' '); };
  auto line = [&](const Row& r) {
    out << pad(r.name, w[0]) << pad(r.arg, w[1]) << pad(r.result, w[2]) << pad(r.json, w[3]) << r.note << "\n";
  };
  line(head);
  for (const auto& r : rows) line(r);
}

int main(int argc, char** argv) {
  link_builtin_tasks();
  CLI::App app{"taskfarm: run tasks on a pool of worker processes", "taskfarm"};
  app.footer(kExamples);
  app.require_subcommand(1);

  std::string run_file;
  std::size_t workers = 0;
  std::string transport;
  std::string output;
  auto* run = app.add_subcommand("run", "Run the jobs of a job file");
  run->add_option("file", run_file, "The job file (JSON)")->required();
  auto* workers_opt = run->add_option("-w,--workers", workers, "Number of worker processes (0 = one per CPU)");
  auto* transport_opt = run->add_option("-t,--transport", transport, "Transport: pipe, socket, mqueue or shm");
  auto* output_opt = run->add_option("-o,--output", output, "Results file (JSON Lines), - for standard output");

  std::string validate_file;
  auto* validate = app.add_subcommand("validate", "Check a job file without running it");
  validate->add_option("file", validate_file, "The job file (JSON)")->required();

  auto* tasks = app.add_subcommand("tasks", "List the registered tasks");
  auto* version = app.add_subcommand("version", "Print the version");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  try {
    if (run->parsed()) {
      RunOverrides ov;
      if (workers_opt->count() != 0) {
        if (workers > kMaxWorkers) {
          std::cerr << "taskfarm: --workers: at most " << kMaxWorkers << " allowed, found " << workers << "\n";
          return kExitUsage;
        }
        ov.workers = workers;
      }
      if (transport_opt->count() != 0) {
        const auto t = parse_transport(transport);
        if (!t) {
          std::cerr << "taskfarm: --transport: expected pipe, socket, mqueue or shm, found \"" << transport
                    << "\"\n";
          return kExitUsage;
        }
        ov.transport = *t;
      }
      if (output_opt->count() != 0) ov.output = output;
      return run_job_file(run_file, ov, std::cerr);
    }
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
