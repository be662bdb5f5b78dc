// Job file validation: what a valid file becomes, and that each problem is
// reported with the JSON path where it is.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "taskfarm/cli/job.hpp"
#include "taskfarm/common/serialize.hpp"

namespace {

using nlohmann::json;
using taskfarm::cli::JobError;
using taskfarm::cli::JobFile;
using taskfarm::cli::parse_job_text;

JobFile parse(const std::string& text) { return parse_job_text(text, "/jobs"); }

// The error of parsing `text` and checking its inputs, or "no error".
std::string job_error(const std::string& text, const std::filesystem::path& base = "/jobs") {
  try {
    const JobFile f = parse_job_text(text, base);
    for (const auto& job : f.jobs) (void)taskfarm::cli::check_inputs(job);
  } catch (const JobError& e) {
    return e.what();
  }
  return "no error";
}

// Every item of a job, expanded: what the run would send.
std::vector<json> arguments(const taskfarm::cli::JobSpec& job) {
  std::vector<json> out;
  auto cursor = job.inputs.open();
  json item;
  std::string problem;
  for (std::uint64_t i = 0; cursor->next(item, problem) == taskfarm::cli::InputCursor::Next::item; ++i)
    out.push_back(taskfarm::cli::expand_argument(job, item, i));
  return out;
}

// A job file with one job built from `job_fields` (JSON object members).
std::string one_job(const std::string& job_fields, const std::string& top = "") {
  return "{" + top + (top.empty() ? "" : ",") + R"("jobs": [{)" + job_fields + "}]}";
}

#define EXPECT_ERROR_AT(text, path, words)                                           \
  do {                                                                               \
    const std::string err_ = job_error(text);                                         \
    EXPECT_EQ(err_.rfind(std::string(path) + ": ", 0), 0u) << "error was: " << err_; \
    EXPECT_NE(err_.find(words), std::string::npos) << "error was: " << err_;         \
  } while (0)

TEST(JobFile, ValidFileBecomesSettings) {
  const JobFile f = parse(R"({
    "pool": {"workers": 3, "transport": "socket", "start": "spawn", "task_timeout": "1.5s",
             "max_retries": 2, "max_tasks_per_child": 10},
    "jobs": [{"name": "p", "task": "count_primes",
              "inputs": {"range": {"start": 10, "stop": 35, "step": 10}},
              "args": {"lo": "{}", "hi": "{= {}+10 =}"}, "chunksize": 4},
             {"task": "echo", "inputs": {"list": [1, "a"]}}],
    "output": {"results": "out/r.jsonl", "order": "completion"}})");
  EXPECT_EQ(f.pool.workers, 3u);
  EXPECT_EQ(f.pool.transport, taskfarm::Transport::socket);
  EXPECT_EQ(f.pool.start, taskfarm::Start::spawn);
  EXPECT_EQ(f.pool.task_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(f.pool.max_retries, 2u);
  EXPECT_EQ(f.pool.max_tasks_per_child, 10u);
  ASSERT_EQ(f.jobs.size(), 2u);
  EXPECT_EQ(f.jobs[0].name, "p");
  EXPECT_EQ(f.jobs[0].inputs.kind, taskfarm::cli::InputKind::range);
  EXPECT_EQ(f.jobs[0].inputs.size(), 3u);
  EXPECT_EQ(arguments(f.jobs[0]), (std::vector<json>{{{"lo", 10}, {"hi", 20}}, {{"lo", 20}, {"hi", 30}},
                                                      {{"lo", 30}, {"hi", 40}}}));
  EXPECT_EQ(f.jobs[0].chunksize, 4u);
  EXPECT_EQ(f.jobs[1].name, "echo");  // defaults to the task's name
  EXPECT_EQ(f.jobs[1].chunksize, 0u);
  ASSERT_TRUE(f.output.results.has_value());
  EXPECT_EQ(f.output.results->string(), "/jobs/out/r.jsonl");  // relative to the job file
  EXPECT_EQ(f.output.order, taskfarm::cli::ResultOrder::completion);
}

TEST(JobFile, MaxMemoryPerChildIsBytesOrASizeWithAUnit) {
  const std::string job = R"("task": "echo", "inputs": {"list": [1]})";
  const std::pair<const char*, std::size_t> cases[] = {
      {R"("512MiB")", std::size_t{512} << 20},
      {R"("1.5GiB")", std::size_t{3} << 29},
      {R"("2GB")", 2'000'000'000},
      {R"("1500KB")", 1'500'000},
      {R"("4096KiB")", std::size_t{4} << 20},
      {R"("1048576B")", std::size_t{1} << 20},
      {"268435456", std::size_t{256} << 20},
      {"0", 0},
      {R"("0MiB")", 0},
  };
  for (const auto& [value, bytes] : cases) {
    const JobFile f = parse(one_job(job, std::string(R"("pool": {"max_memory_per_child": )") + value + "}"));
    EXPECT_EQ(f.pool.max_memory_per_child, bytes) << value;
  }
  EXPECT_EQ(parse(one_job(job)).pool.max_memory_per_child, 0u) << "no limit unless asked";
}

TEST(JobFile, DurationsMayBeIntegerMilliseconds) {
  const JobFile f = parse(one_job(R"("task": "echo", "inputs": {"list": [1]})", R"("pool": {"task_timeout": 250})"));
  EXPECT_EQ(f.pool.task_timeout, std::chrono::milliseconds(250));
}

TEST(JobFile, EncodesEachInputThroughTheTemplate) {
  const JobFile f = parse(one_job(R"("task": "count_primes", "inputs": {"range": {"stop": 3}},
                                     "args": {"lo": "{= {}*100 =}", "hi": "{= {}*100+100 =}"})"));
  std::vector<std::byte> bytes;
  taskfarm::cli::encode_argument(f.jobs[0], taskfarm::cli::expand_argument(f.jobs[0], 2, 2), 2, 2, "", bytes);
  // The arguments travel as two int64s (lo, hi) in cereal's binary form.
  const auto args = taskfarm::decode_args<std::tuple<std::int64_t, std::int64_t>>(bytes);
  EXPECT_EQ(std::get<0>(args), 200);
  EXPECT_EQ(std::get<1>(args), 300);
}

TEST(JobFile, ProductAxesVaryInTheOrderWritten) {
  const JobFile f = parse(one_job(R"("task": "echo", "inputs": {"product": {"z": [1, 2], "a": {"range": {"stop": 2}}}})"));
  EXPECT_EQ(arguments(f.jobs[0]), (std::vector<json>{{{"z", 1}, {"a", 0}}, {{"z", 1}, {"a", 1}},
                                                      {{"z", 2}, {"a", 0}}, {{"z", 2}, {"a", 1}}}));
}

TEST(JobFile, OnErrorAndJoblog) {
  const JobFile f = parse(R"({"jobs": [
      {"name": "a", "task": "echo", "inputs": {"list": [1]}, "on_error": {"halt": "soon", "fail": 3}},
      {"name": "b", "task": "echo", "inputs": {"list": [1]}, "on_error": {"halt": "now", "fail": "12.5%"}},
      {"name": "c", "task": "echo", "inputs": {"list": [1]}, "on_error": {"halt": "now"}},
      {"name": "d", "task": "echo", "inputs": {"list": [1]}}],
    "output": {"joblog": "logs/j.tsv"}})");
  EXPECT_EQ(f.jobs[0].on_error.halt, taskfarm::cli::Halt::soon);
  EXPECT_EQ(f.jobs[0].on_error.fail_count, 3u);
  EXPECT_EQ(f.jobs[1].on_error.halt, taskfarm::cli::Halt::now);
  EXPECT_DOUBLE_EQ(f.jobs[1].on_error.fail_percent, 12.5);
  EXPECT_EQ(f.jobs[2].on_error.fail_count, 1u);  // default: the first failure
  EXPECT_EQ(f.jobs[3].on_error.halt, taskfarm::cli::Halt::never);
  ASSERT_TRUE(f.output.joblog.has_value());
  EXPECT_EQ(f.output.joblog->string(), "/jobs/logs/j.tsv");
}

TEST(JobFile, MalformedJsonGivesLineAndColumn) {
  const std::string err = job_error("{\n  \"jobs\": [\n    {\"task\": \"echo\",, }\n  ]\n}\n");
  EXPECT_NE(err.find("invalid JSON at line 3, column 21"), std::string::npos) << err;
}

TEST(JobFile, TopLevelProblems) {
  EXPECT_NE(job_error("[1]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(job_error("{}").find("missing \"jobs\""), std::string::npos);
  EXPECT_ERROR_AT(R"({"jobs": []})", "jobs", "at least one job");
  EXPECT_ERROR_AT(R"({"jobs": {}})", "jobs", "expected an array");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"list": [1]})", R"("poll": {})"), "poll",
                  "did you mean \"pool\"");
}

TEST(JobFile, PoolProblems) {
  const std::string job = R"("task": "echo", "inputs": {"list": [1]})";
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"workers": -1})"), "pool.workers", "expected a non-negative integer, found -1");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"workers": "2"})"), "pool.workers", "found a string \"2\"");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"workers": 100000})"), "pool.workers", "at most 1024");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"transport": "carrier-pigeon"})"), "pool.transport", "unknown transport");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"transport": "sokcet"})"), "pool.transport", "did you mean \"socket\"");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"start": "vfork"})"), "pool.start", "\"fork\" or \"spawn\"");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"task_timeout": "soon"})"), "pool.task_timeout", "expected a duration");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"task_timeout": -5})"), "pool.task_timeout", "must not be negative");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"max_retries": 1.5})"), "pool.max_retries", "non-negative integer");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"retries": 1})"), "pool.retries", "unknown key");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"max_memory_per_child": "lots"})"), "pool.max_memory_per_child",
                  "expected a size such as \"512MiB\"");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"max_memory_per_child": "512"})"), "pool.max_memory_per_child",
                  "a unit is required");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"max_memory_per_child": "2TB"})"), "pool.max_memory_per_child",
                  "unknown unit \"TB\"");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"max_memory_per_child": -1})"), "pool.max_memory_per_child",
                  "must not be negative");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"max_memory_per_child": 1.5})"), "pool.max_memory_per_child",
                  "an integer of bytes, found");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"max_memory_per_child": true})"), "pool.max_memory_per_child",
                  "expected a size");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"max_memory_per_child": 512})"), "pool.max_memory_per_child",
                  "at least 1MiB, found 512 bytes (an integer counts bytes: write \"512MiB\"?)");
  EXPECT_ERROR_AT(one_job(job, R"("pool": {"max_memory_per_child": "100KiB"})"), "pool.max_memory_per_child",
                  "at least 1MiB, found \"100KiB\"");
  EXPECT_ERROR_AT(one_job(job, R"("pool": 4)"), "pool", "expected an object");
}

TEST(JobFile, JobProblems) {
  EXPECT_ERROR_AT(one_job(R"("inputs": {"list": [1]})"), "jobs[0]", "missing \"task\"");
  EXPECT_ERROR_AT(one_job(R"("task": "no_such_task", "inputs": {"list": [1]})"), "jobs[0].task", "no task named");
  EXPECT_ERROR_AT(one_job(R"("task": "taskfarm.cli.stdout_to_stderr", "inputs": {"list": [1]})"), "jobs[0].task",
                  "not JSON-callable");
  EXPECT_ERROR_AT(one_job(R"("task": "echo")"), "jobs[0]", "missing \"inputs\"");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"list": [1]}, "chunk": 2)"), "jobs[0].chunk",
                  "did you mean \"chunksize\"");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"list": [1]}, "chunksize": -2)"), "jobs[0].chunksize",
                  "non-negative integer");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "name": "", "inputs": {"list": [1]})"), "jobs[0].name", "non-empty");
  EXPECT_ERROR_AT(R"({"jobs": [{"task": "echo", "inputs": {"list": [1]}}, {"task": "echo", "inputs": {"list": [2]}}]})",
                  "jobs[1]", "already used by jobs[0]");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"list": [1]}, "args": {"x": "{"})"), "jobs[0].args.x",
                  "not closed");
}

TEST(JobFile, InputProblems) {
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"list": []})"), "jobs[0].inputs.list", "non-empty");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"list": 5})"), "jobs[0].inputs.list", "expected an array");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {})"), "jobs[0].inputs", "exactly one of");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"list": [1], "range": {"stop": 2}})"), "jobs[0].inputs",
                  "exactly one of");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"lists": [1]})"), "jobs[0].inputs.lists",
                  "did you mean \"list\"");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"range": {"stop": 10, "step": -5}})"),
                  "jobs[0].inputs.range.step", "expected a positive integer, found -5");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"range": {"stop": 10, "step": 0}})"),
                  "jobs[0].inputs.range.step", "expected a positive integer, found 0");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"range": {"start": 5}})"), "jobs[0].inputs.range",
                  "missing \"stop\"");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"range": {"start": 5, "stop": 5}})"), "jobs[0].inputs.range",
                  "empty");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"range": {"stop": 2.5}})"), "jobs[0].inputs.range.stop",
                  "expected an integer");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"range": {"stop": 5, "by": 1}})"), "jobs[0].inputs.range.by",
                  "unknown key");
  // lines
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"lines": 3})"), "jobs[0].inputs.lines",
                  "expected a file name or an object");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"lines": {"json": true}})"), "jobs[0].inputs.lines",
                  "missing \"file\"");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"lines": {"file": "x", "json": "yes"}})"),
                  "jobs[0].inputs.lines.json", "expected true or false, found a string \"yes\"");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"lines": {"file": "x", "format": "csv"}})"),
                  "jobs[0].inputs.lines.format", "unknown key");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"lines": "no-such-file.txt"})"), "jobs[0].inputs.lines",
                  "cannot open \"no-such-file.txt\": No such file or directory");
  // glob
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"glob": ""})"), "jobs[0].inputs.glob", "expected a pattern");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"glob": "nothing-here-*.xyz"})"), "jobs[0].inputs.glob",
                  "matches no file");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"glob": {"pattern": "*", "sort": true}})"),
                  "jobs[0].inputs.glob.sort", "unknown key");
  // product
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"product": {}})"), "jobs[0].inputs.product",
                  "at least one axis");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"product": {"a": 3}})"), "jobs[0].inputs.product.a",
                  "expected the axis values");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"product": {"a": []}})"), "jobs[0].inputs.product.a",
                  "non-empty");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"product": {"a": {"product": {"b": [1]}}}})"),
                  "jobs[0].inputs.product.a.product", "unknown key");
  EXPECT_ERROR_AT(one_job(R"("task": "echo", "inputs": {"product": {"a": {"range": {"stop": 0}}}})"),
                  "jobs[0].inputs.product.a.range", "empty");
}

TEST(JobFile, UnreadableAndEmptyInputFiles) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("taskfarm-job-test-" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub");
  std::ofstream(dir / "empty.txt") << "\n\n";
  std::ofstream(dir / "bad.jsonl") << "{\"a\": 1}\n{nope}\n";
  const std::string e1 = job_error(one_job(R"("task": "echo", "inputs": {"lines": "sub"})"), dir);
  EXPECT_NE(e1.find("jobs[0].inputs.lines: cannot read \"sub\""), std::string::npos) << e1;
  const std::string e2 = job_error(one_job(R"("task": "echo", "inputs": {"lines": "empty.txt"})"), dir);
  EXPECT_NE(e2.find("jobs[0].inputs.lines: no inputs: \"empty.txt\" has no non-empty lines"), std::string::npos) << e2;
  const std::string e3 = job_error(one_job(R"("task": "echo", "inputs": {"lines": {"file": "bad.jsonl", "json": true}})"), dir);
  EXPECT_NE(e3.find("jobs[0].inputs.lines: input #1: line 2 of \"bad.jsonl\": invalid JSON"), std::string::npos) << e3;
  EXPECT_EQ(job_error(one_job(R"("task": "echo", "inputs": {"glob": "*.txt"})"), dir), "no error");
  fs::remove_all(dir);
}

TEST(JobFile, ArgumentsThatDoNotFitTheTask) {
  // No template: the item itself must fit; the path names the list element.
  EXPECT_ERROR_AT(one_job(R"("task": "sleep_ms", "inputs": {"list": [1, "2"]})"), "jobs[0].inputs.list[1]",
                  "expected an integer, found a string \"2\"");
  EXPECT_ERROR_AT(one_job(R"("task": "sleep_ms", "inputs": {"range": {"stop": 2}}, "args": "{}.5")"), "jobs[0].args",
                  "input #0");
  EXPECT_ERROR_AT(one_job(R"("task": "count_primes", "inputs": {"list": [{"lo": 1}]})"), "jobs[0].inputs.list[0]",
                  "both \"lo\" and \"hi\" are required");
  EXPECT_ERROR_AT(one_job(R"("task": "count_primes", "inputs": {"range": {"stop": 2}}, "args": {"lo": "{}", "hi": "{= {}-1 =}"})"),
                  "jobs[0].args", "expected 0 <= lo <= hi");
  EXPECT_ERROR_AT(one_job(R"("task": "count_primes", "inputs": {"list": [{"a": "x"}]}, "args": {"lo": "{= {a}*2 =}", "hi": 5})"),
                  "jobs[0].args.lo", "needs integers");
  // exec's argument
  EXPECT_ERROR_AT(one_job(R"("task": "exec", "inputs": {"list": [{"argv": ["ls"], "timeout": "soon"}]})"),
                  "jobs[0].inputs.list[0]", "expected a duration");
  EXPECT_ERROR_AT(one_job(R"("task": "exec", "inputs": {"list": [{"argv": "ls -l"}]})"), "jobs[0].inputs.list[0]",
                  "needs \"shell\": true");
  EXPECT_ERROR_AT(one_job(R"("task": "exec", "inputs": {"list": [{"args": ["ls"]}]})"), "jobs[0].inputs.list[0]",
                  "unknown field \"args\"");
  EXPECT_ERROR_AT(one_job(R"("task": "exec", "inputs": {"list": [1]}, "args": {"argv": ["echo", {"n": "{}"}]})"),
                  "jobs[0].args", "argv[1]: expected a string");
  // Beyond the first checked items only the shape of the inputs is checked;
  // the last item of a range is checked too (arithmetic overflows there).
  EXPECT_ERROR_AT(one_job(R"("task": "sleep_ms", "inputs": {"range": {"start": 0, "stop": 9223372036854775807, "step": 1000000000000}},
                             "args": "{= {}*2 =}")"),
                  "jobs[0].args", "overflows");
  EXPECT_EQ(job_error(one_job(R"("task": "echo", "inputs": {"range": {"stop": 100000000000}})")), "no error");
}

TEST(JobFile, OnErrorProblems) {
  const std::string job = R"("task": "echo", "inputs": {"list": [1]}, )";
  EXPECT_ERROR_AT(one_job(job + R"("on_error": {"halt": "later"})"), "jobs[0].on_error.halt",
                  "expected \"continue\", \"soon\" or \"now\", found \"later\"");
  EXPECT_ERROR_AT(one_job(job + R"("on_error": {"fail": 2})"), "jobs[0].on_error.fail", "needs \"halt\"");
  EXPECT_ERROR_AT(one_job(job + R"("on_error": {"halt": "soon", "fail": 0})"), "jobs[0].on_error.fail",
                  "positive integer");
  EXPECT_ERROR_AT(one_job(job + R"("on_error": {"halt": "soon", "fail": "150%"})"), "jobs[0].on_error.fail",
                  "percentage");
  EXPECT_ERROR_AT(one_job(job + R"("on_error": {"halt": "soon", "fail": "ten"})"), "jobs[0].on_error.fail",
                  "found \"ten\"");
  EXPECT_ERROR_AT(one_job(job + R"("on_error": {"halt": "soon", "retry": 1})"), "jobs[0].on_error.retry",
                  "unknown key");
  EXPECT_ERROR_AT(one_job(job + R"("on_error": "halt")"), "jobs[0].on_error", "expected an object");
}

TEST(JobFile, OutputProblems) {
  const std::string job = R"("task": "echo", "inputs": {"list": [1]})";
  EXPECT_ERROR_AT(one_job(job, R"("output": {"order": "random"})"), "output.order", "\"input\" or \"completion\"");
  EXPECT_ERROR_AT(one_job(job, R"("output": {"results": 3})"), "output.results", "expected a string");
  EXPECT_ERROR_AT(one_job(job, R"("output": {"log": "x"})"), "output.log", "unknown key");
  EXPECT_ERROR_AT(one_job(job, R"("output": {"joblog": "-"})"), "output.joblog", "expected a file path");
  EXPECT_ERROR_AT(one_job(job, R"("output": {"joblog": "a", "results": "a"})"), "output.joblog", "different files");
  const JobFile f = parse(one_job(job, R"("output": {"results": "-"})"));
  EXPECT_FALSE(f.output.results.has_value());
}

}  // namespace
