// End to end: the real taskfarm program on job files in a temporary directory.

#include <set>
#include <string>
#include <vector>

#include "program_support.hpp"

namespace {

using namespace taskfarm::test;

TEST_F(Program, RunsAJobAndWritesOneLinePerInput) {
  const fs::path job = write("job.json", R"({
    "pool": {"workers": 2},
    "jobs": [{"name": "sq", "task": "echo", "inputs": {"range": {"start": 0, "stop": 40, "step": 2}},
              "args": {"n": "{}", "twice": "{= {}*2 =}", "tag": "n{#}"}, "chunksize": 3}],
    "output": {"results": "out/results.jsonl"}})");
  const Outcome o = run({"run", job.string()});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto lines = parse_lines(slurp(dir_ / "out" / "results.jsonl"));
  ASSERT_EQ(lines.size(), 20u);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const json& l = lines[i];
    EXPECT_EQ(l["job"], "sq");
    EXPECT_EQ(l["index"], i);  // input order
    EXPECT_EQ(l["input"], 2 * i);
    EXPECT_EQ(l["status"], "ok");
    EXPECT_EQ(l["value"], json({{"n", 2 * i}, {"twice", 4 * i}, {"tag", std::string("n").append(std::to_string(i))}}));
    EXPECT_GE(l["attempts"].get<int>(), 1);
    EXPECT_TRUE(l["worker"].is_number_integer());
    EXPECT_TRUE(l["seconds"].is_number());
    EXPECT_FALSE(l.contains("error"));
  }
  EXPECT_NE(o.err.find("20 tasks, 20 ok"), std::string::npos) << o.err;
  // Only the results are left: no temporary file next to them.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "out"), fs::directory_iterator{}), 1);
}

TEST_F(Program, ExampleEchoJobToStandardOutput) {
  const Outcome o = run({"run", std::string(TASKFARM_SOURCE_DIR) + "/configs/examples/echo.json", "--output", "-"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto lines = parse_lines(o.out);
  const json inputs = json::parse(slurp(std::string(TASKFARM_SOURCE_DIR) + "/configs/examples/echo.json"))
                          ["jobs"][0]["inputs"]["list"];
  ASSERT_EQ(lines.size(), inputs.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["index"], i);
    EXPECT_EQ(lines[i]["status"], "ok");
    EXPECT_EQ(lines[i]["value"]["item"], inputs[i]);
    EXPECT_EQ(lines[i]["value"]["next"], i + 1);
  }
  EXPECT_EQ(lines[1]["value"]["pair"], "1-1");  // text, not a subtraction
  EXPECT_EQ(lines[3]["value"]["pair"], "three-3");
}

// The issue's example: "{}-{#}" is text; arithmetic only inside {= =}.
TEST_F(Program, TemplatesKeepTextAsText) {
  const fs::path job = write("job.json", R"({"jobs": [{"task": "exec", "inputs": {"list": [1, 2]},
      "args": ["echo", "{}-{#}", "{}+200000", "{= {}+200000 =}", "n{= {#}*2 =}"]}]})");
  const Outcome o = run({"run", job.string(), "-o", "-"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto lines = parse_lines(o.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["value"]["stdout"], "1-0 1+200000 200001 n0\n");
  EXPECT_EQ(lines[1]["value"]["stdout"], "2-1 2+200000 200002 n2\n");

  const fs::path bad = write("bad.json", R"({"jobs": [{"task": "echo", "inputs": {"list": [1]},
      "args": {"hi": "{= {}+1"}}]})");
  const Outcome v = run({"validate", bad.string()});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find("jobs[0].args.hi: template \"{= {}+1\": '{=' at offset 0 is not closed: end the "
                       "expression with '=}'"), std::string::npos) << v.err;
}

TEST_F(Program, CompletionOrderStillReportsEveryIndexOnce) {
  const fs::path job = write("job.json", R"({
    "pool": {"workers": 2, "transport": "socket"},
    "jobs": [{"task": "sleep_ms", "inputs": {"list": [30, 0, 20, 0, 10, 0, 0, 5]}, "chunksize": 1}],
    "output": {"order": "completion"}})");
  const Outcome o = run({"run", job.string()});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto lines = parse_lines(o.out);
  ASSERT_EQ(lines.size(), 8u);
  std::set<std::size_t> seen;
  for (const auto& l : lines) {
    seen.insert(l["index"].get<std::size_t>());
    EXPECT_EQ(l["value"], l["input"]);
  }
  EXPECT_EQ(seen.size(), 8u);
}

TEST_F(Program, EveryTransportGivesTheSameResults) {
  for (const char* transport : {"pipe", "socket", "mqueue", "shm"}) {
    const fs::path job = write("job.json", R"({"pool": {"workers": 2},
      "jobs": [{"task": "count_primes", "inputs": {"range": {"stop": 10}},
                "args": {"lo": "{= {}*1000 =}", "hi": "{= ({}+1)*1000 =}"}, "chunksize": 2}]})");
    const Outcome o = run({"run", job.string(), "--transport", transport});
    ASSERT_EQ(o.exit_code, 0) << transport << ": " << o.err;
    const auto lines = parse_lines(o.out);
    ASSERT_EQ(lines.size(), 10u) << transport;
    const long expected[] = {168, 135, 127, 120, 119, 114, 117, 107, 110, 112};  // primes per thousand
    for (std::size_t i = 0; i < 10; ++i) EXPECT_EQ(lines[i]["value"].get<long>(), expected[i]) << transport << " #" << i;
  }
}

TEST_F(Program, FailingTasksExitOneAndCarryTheirError) {
  const fs::path job = write("job.json", R"({
    "jobs": [{"name": "mixed", "task": "fail", "inputs": {"list": ["first problem", "second problem"]}},
             {"name": "fine", "task": "echo", "inputs": {"list": [1]}}],
    "output": {"results": "r.jsonl"}})");
  const Outcome o = run({"run", job.string(), "--workers", "1"});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  const auto lines = parse_lines(slurp(dir_ / "r.jsonl"));
  ASSERT_EQ(lines.size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(lines[i]["job"], "mixed");
    EXPECT_EQ(lines[i]["status"], "failed");
    EXPECT_EQ(lines[i]["error"]["type"], "std::runtime_error");
    EXPECT_EQ(lines[i]["error"]["message"], lines[i]["input"]);
    EXPECT_FALSE(lines[i].contains("value"));
  }
  EXPECT_EQ(lines[2]["job"], "fine");
  EXPECT_EQ(lines[2]["status"], "ok");
  EXPECT_NE(o.err.find("2 failed"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("first problem"), std::string::npos) << o.err;
}

TEST_F(Program, AKilledWorkerIsReportedAsLost) {
  const fs::path job = write("job.json", R"({
    "pool": {"workers": 1, "max_retries": 0},
    "jobs": [{"task": "crash", "inputs": {"list": [null]}}, {"task": "echo", "inputs": {"list": ["after"]}}]})");
  const Outcome o = run({"run", job.string()});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  const auto lines = parse_lines(o.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["status"], "lost");
  EXPECT_EQ(lines[0]["error"]["type"], "taskfarm::WorkerLost");
  EXPECT_NE(lines[0]["error"]["message"].get<std::string>().find("SIGKILL"), std::string::npos);
  EXPECT_EQ(lines[1]["status"], "ok");  // the replacement worker ran the next job
  EXPECT_EQ(lines[1]["value"], "after");
}

TEST_F(Program, ATaskPastItsTimeoutIsReportedAsTimeout) {
  const fs::path job = write("job.json", R"({
    "pool": {"workers": 1, "task_timeout": "200ms"},
    "jobs": [{"task": "sleep_ms", "inputs": {"list": [60000, 1]}, "chunksize": 1}]})");
  const Outcome o = run({"run", job.string()});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  const auto lines = parse_lines(o.out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["status"], "timeout");
  EXPECT_EQ(lines[0]["error"]["type"], "taskfarm::TaskTimeout");
  EXPECT_EQ(lines[1]["status"], "ok");
}

TEST_F(Program, SpawnedWorkersFindTheBuiltInTasks) {
  const fs::path job = write("job.json", R"({
    "pool": {"workers": 2, "start": "spawn"},
    "jobs": [{"task": "count_primes", "inputs": {"range": {"stop": 10}},
              "args": {"lo": "{= {}*1000 =}", "hi": "{= {}*1000+1000 =}"}}]})");
  const Outcome o = run({"run", job.string()});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto lines = parse_lines(o.out);
  ASSERT_EQ(lines.size(), 10u);
  long total = 0;
  for (const auto& l : lines) total += l["value"].get<long>();
  EXPECT_EQ(total, 1229);  // primes below 10000
  EXPECT_NE(o.err.find("primes found: 1229"), std::string::npos) << o.err;
}

TEST_F(Program, InvalidJobFileRunsNothingAndNamesThePath) {
  const fs::path job = write("job.json", R"({
    "pool": {"workers": 2},
    "jobs": [{"task": "count_primes", "inputs": {"range": {"start": 0, "stop": 100, "step": -5}}}],
    "output": {"results": "out/results.jsonl"}})");
  for (const char* cmd : {"run", "validate"}) {
    const Outcome o = run({cmd, job.string()});
    EXPECT_EQ(o.exit_code, 2) << cmd;
    EXPECT_NE(o.err.find("jobs[0].inputs.range.step: expected a positive integer, found -5"), std::string::npos)
        << o.err;
    EXPECT_TRUE(o.out.empty()) << o.out;
  }
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "results.jsonl"));
}

TEST_F(Program, OutputOverrideAndUnusableOutputs) {
  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"list": [7]}}],
                                            "output": {"results": "from-file.jsonl"}})");
  const Outcome o = run({"run", job.string(), "-o", (dir_ / "cli.jsonl").string()});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_FALSE(fs::exists(dir_ / "from-file.jsonl"));
  const auto lines = parse_lines(slurp(dir_ / "cli.jsonl"));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["value"], 7);

  fs::create_directory(dir_ / "a-directory");
  const Outcome d = run({"run", job.string(), "-o", (dir_ / "a-directory").string()});
  EXPECT_EQ(d.exit_code, 2);
  EXPECT_NE(d.err.find("--output: \"" + (dir_ / "a-directory").string() + "\": is a directory"), std::string::npos)
      << d.err;
  const Outcome j = run({"run", job.string(), "--joblog", (dir_ / "a-directory").string()});
  EXPECT_EQ(j.exit_code, 2);
  EXPECT_NE(j.err.find("joblog"), std::string::npos) << j.err;
  const Outcome same = run({"run", job.string(), "-o", (dir_ / "x").string(), "--joblog", (dir_ / "x").string()});
  EXPECT_EQ(same.exit_code, 2);
  EXPECT_NE(same.err.find("different files"), std::string::npos) << same.err;
}

TEST_F(Program, MalformedJsonNamesLineAndColumn) {
  const fs::path job = write("job.json", "{\n  \"jobs\": [\n    {\"task\": \"echo\" \"inputs\": {}}\n  ]\n}\n");
  const Outcome o = run({"run", job.string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("line 3, column"), std::string::npos) << o.err;
}

TEST_F(Program, HelpVersionAndUnknownCommands) {
  // Alone: the usage on stderr, exit 2 (an incomplete command line).
  const Outcome alone = run({});
  EXPECT_EQ(alone.exit_code, 2);
  EXPECT_TRUE(alone.out.empty()) << alone.out;
  EXPECT_NE(alone.err.find("Usage: taskfarm"), std::string::npos) << alone.err;
  EXPECT_NE(alone.err.find("validate"), std::string::npos) << alone.err;

  const Outcome help = run({"help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("Usage: taskfarm"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("Examples:"), std::string::npos) << help.out;

  const Outcome help_run = run({"help", "run"});
  EXPECT_EQ(help_run.exit_code, 0) << help_run.err;
  EXPECT_EQ(help_run.out, run({"run", "--help"}).out);
  EXPECT_NE(help_run.out.find("--workers"), std::string::npos) << help_run.out;
  EXPECT_NE(help_run.out.find("taskfarm run"), std::string::npos) << help_run.out;

  const Outcome help_nosuch = run({"help", "nosuch"});
  EXPECT_EQ(help_nosuch.exit_code, 2);
  EXPECT_TRUE(help_nosuch.out.empty()) << help_nosuch.out;
  EXPECT_NE(help_nosuch.err.find("taskfarm: help: there is no command \"nosuch\""), std::string::npos)
      << help_nosuch.err;
  const Outcome help_typo = run({"help", "tsks"});
  EXPECT_NE(help_typo.err.find("did you mean \"tasks\"?"), std::string::npos) << help_typo.err;

  const std::string version = run({"version"}).out;
  EXPECT_EQ(version.rfind("taskfarm ", 0), 0u) << version;
  for (const char* flag : {"--version", "-V"}) {
    const Outcome v = run({flag});
    EXPECT_EQ(v.exit_code, 0) << flag << ": " << v.err;
    EXPECT_EQ(v.out, version) << flag;
  }

  const Outcome typo = run({"rnu"});
  EXPECT_EQ(typo.exit_code, 2);
  EXPECT_EQ(typo.err, "taskfarm: unknown command \"rnu\"; did you mean \"run\"?\n");
  EXPECT_TRUE(typo.out.empty());
  EXPECT_EQ(run({"valdiate"}).err, "taskfarm: unknown command \"valdiate\"; did you mean \"validate\"?\n");
  const Outcome far = run({"frobnicate"});
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_NE(far.err.find("taskfarm: unknown command \"frobnicate\"; the commands are "), std::string::npos)
      << far.err;
  EXPECT_NE(far.err.find("run, "), std::string::npos) << far.err;
}

TEST_F(Program, ParserMessagesCarryTheProgramAndCommand) {
  const Outcome missing = run({"run"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_EQ(missing.err.rfind("taskfarm: run: ", 0), 0u) << missing.err;
  EXPECT_NE(missing.err.find("file is required"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("taskfarm run --help"), std::string::npos) << missing.err;

  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"list": [1]}}]})");
  const Outcome extra = run({"run", job.string(), "--frobnicate"});
  EXPECT_EQ(extra.exit_code, 2);
  EXPECT_EQ(extra.err.rfind("taskfarm: run: ", 0), 0u) << extra.err;
  const Outcome no_value = run({"run", job.string(), "--workers"});
  EXPECT_EQ(no_value.exit_code, 2);
  EXPECT_EQ(no_value.err.rfind("taskfarm: run: --workers", 0), 0u) << no_value.err;
  const Outcome top = run({"--frobnicate"});
  EXPECT_EQ(top.exit_code, 2);
  EXPECT_EQ(top.err.rfind("taskfarm: ", 0), 0u) << top.err;
  EXPECT_EQ(top.err, "taskfarm: unknown option \"--frobnicate\"; options go after the command (taskfarm --help "
                     "lists the commands)\n");
}

TEST_F(Program, CountsAreWholeNumbersAndJobsIsWorkers) {
  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"list": [1]}}]})");
  const struct {
    std::vector<std::string> args;
    std::string says;
  } bad[] = {
      {{"-w", "-1"}, "taskfarm: run: --workers: must be at least 0, found -1\n"},
      {{"--workers=-1"}, "taskfarm: run: --workers: must be at least 0, found -1\n"},
      {{"-j", "-3"}, "taskfarm: run: --jobs: must be at least 0, found -3\n"},
      {{"--retries", "-1"}, "taskfarm: run: --retries: must be at least 0, found -1\n"},
      {{"--workers", "many"}, "taskfarm: run: --workers: expected a whole number, found \"many\"\n"},
      {{"--workers", "1.5"}, "taskfarm: run: --workers: expected a whole number, found \"1.5\"\n"},
      {{"--workers", "18446744073709551616"}, "taskfarm: run: --workers: at most 1024 allowed, found 18446744073709551616\n"},
      {{"-j", "2000"}, "taskfarm: run: --jobs: at most 1024 allowed, found 2000\n"},
      {{"-j", "2", "-w", "2"}, "taskfarm: run: --jobs: the same as --workers; give one of them\n"},
  };
  for (const auto& b : bad) {
    std::vector<std::string> args{"run", job.string()};
    args.insert(args.end(), b.args.begin(), b.args.end());
    const Outcome o = run(args);
    EXPECT_EQ(o.exit_code, 2) << b.args[0];
    EXPECT_EQ(o.err, b.says) << b.args[0];
  }
  const Outcome j = run({"run", job.string(), "-j", "3", "-o", "-"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_NE(j.err.find("3 workers"), std::string::npos) << j.err;
  const Outcome jobs = run({"run", job.string(), "--jobs", "2", "-o", "-"});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_NE(jobs.err.find("2 workers"), std::string::npos) << jobs.err;
}

TEST_F(Program, CommandLineMistakesExitTwo) {
  EXPECT_EQ(run({}).exit_code, 2);
  EXPECT_EQ(run({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(run({"run"}).exit_code, 2);
  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"list": [1]}}]})");
  const Outcome t = run({"run", job.string(), "--transport", "smoke-signals"});
  EXPECT_EQ(t.exit_code, 2);
  EXPECT_NE(t.err.find("--transport"), std::string::npos) << t.err;
  EXPECT_EQ(run({"run", job.string(), "--workers", "many"}).exit_code, 2);
  EXPECT_EQ(run({"run", (dir_ / "missing.json").string()}).exit_code, 2);
  const struct {
    std::vector<std::string> args;
    const char* says;
  } bad[] = {
      {{"--workers", "5000"}, "--workers: at most 1024"},
      {{"--start", "vfork"}, "--start: expected fork or spawn"},
      {{"--timeout", "soon"}, "--timeout: expected a duration"},
      {{"--retries", "-1"}, "--retries"},
      {{"--retries", "5000"}, "--retries: at most 1000"},
      {{"--max-memory-per-child", "512"}, "--max-memory-per-child: expected 0 (no limit) or at least 1MiB"},
      {{"--max-memory-per-child", "lots"}, "--max-memory-per-child: expected a size"},
      {{"--max-memory-per-child", "1TB"}, "unknown unit \"TB\""},
      {{"--progress", "sometimes"}, "--progress: expected auto, always or never"},
      {{"--resume", "--resume-failed"}, "excludes"},
      {{"--resume"}, "--resume needs a joblog"},
      {{"--joblog", "-"}, "--joblog: expected a file name"},
      {{"--frobnicate"}, "frobnicate"},
  };
  for (const auto& b : bad) {
    std::vector<std::string> args{"run", job.string()};
    args.insert(args.end(), b.args.begin(), b.args.end());
    const Outcome o = run(args);
    EXPECT_EQ(o.exit_code, 2) << b.args[0];
    EXPECT_NE(o.err.find(b.says), std::string::npos) << b.args[0] << ": " << o.err;
    EXPECT_TRUE(o.out.empty()) << o.out;  // nothing ran
  }
}

TEST_F(Program, OverridesTakePrecedence) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 1, "task_timeout": "1h", "max_retries": 0},
    "jobs": [{"task": "sleep_ms", "inputs": {"list": [60000, 1]}, "chunksize": 1},
             {"name": "crash", "task": "crash", "inputs": {"list": [null]}}]})");
  // --timeout ends the long task; --retries re-runs the crashing one; --workers 2
  // is visible in the summary; --transport and --start are used.
  const Outcome o = run({"run", job.string(), "--timeout", "300ms", "--retries", "2", "--workers", "2",
                         "--transport", "socket", "--start", "spawn"});
  EXPECT_EQ(o.exit_code, 1) << o.err;
  const auto lines = parse_lines(o.out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["status"], "timeout");
  EXPECT_EQ(lines[1]["status"], "ok");
  EXPECT_EQ(lines[2]["status"], "lost");
  EXPECT_EQ(lines[2]["attempts"], 3);  // the first run and two retries
  EXPECT_NE(o.err.find("2 workers"), std::string::npos) << o.err;
}

TEST_F(Program, MaxMemoryPerChildFromTheFileOrTheCommandLine) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 1, "max_memory_per_child": "512MiB"},
    "jobs": [{"task": "echo", "inputs": {"list": [1, 2, 3, 4]}, "chunksize": 1}]})");
  const Outcome v = run({"validate", job.string()});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("max memory per child 512 MiB"), std::string::npos) << v.out;
  // Far above what an echo worker holds: nobody is replaced, and nothing is said.
  const Outcome roomy = run({"run", job.string()});
  ASSERT_EQ(roomy.exit_code, 0) << roomy.err;
  EXPECT_EQ(parse_lines(roomy.out).size(), 4u);
  EXPECT_EQ(roomy.err.find("max_memory_per_child"), std::string::npos) << roomy.err;
  // 1 MiB is below any worker's RSS: the override makes every worker retire
  // after each task, and every result is still there.
  const Outcome tight = run({"run", job.string(), "--max-memory-per-child", "1MiB"});
  ASSERT_EQ(tight.exit_code, 0) << tight.err;
  const auto lines = parse_lines(tight.out);
  ASSERT_EQ(lines.size(), 4u);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["status"], "ok");
    EXPECT_EQ(lines[i]["value"], static_cast<int>(i) + 1);
  }
  EXPECT_NE(tight.err.find("replaced for holding more than max_memory_per_child (1 MiB)"), std::string::npos)
      << tight.err;
}

TEST_F(Program, DryRunPrintsWhatWouldRunAndWritesNothing) {
  const fs::path job = write("job.json", R"({
    "jobs": [{"name": "cmds", "task": "exec", "inputs": {"list": ["a b", "c"]}, "args": ["echo", "{}", "#{#}"]},
             {"name": "nums", "task": "echo", "inputs": {"range": {"stop": 2}}, "args": {"n": "{= {}*10 =}"}}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"}})");
  const Outcome o = run({"run", job.string(), "--dry-run"});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "cmds\t0\techo 'a b' '#0'\ncmds\t1\techo c '#1'\nnums\t0\techo {\"n\":0}\nnums\t1\techo {\"n\":10}\n");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(Program, ProgressLineOnlyWhenAskedOrOnATerminal) {
  const fs::path job = write("job.json", R"({"jobs": [{"task": "sleep_ms", "inputs": {"list": [300, 300, 300]}}],
                                            "pool": {"workers": 1}})");
  const Outcome quiet = run({"run", job.string(), "--output", (dir_ / "r1").string()});  // stderr is a file: auto = off
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.err.find('\r'), std::string::npos) << quiet.err;
  EXPECT_NE(quiet.err.find("3 tasks, 3 ok"), std::string::npos) << quiet.err;  // the summary, always
  const Outcome loud = run({"run", job.string(), "--output", (dir_ / "r2").string(), "--progress", "always"});
  ASSERT_EQ(loud.exit_code, 0) << loud.err;
  EXPECT_NE(loud.err.find("\rsleep_ms: "), std::string::npos) << loud.err;
  EXPECT_NE(loud.err.find("/3 ("), std::string::npos) << loud.err;
  EXPECT_NE(loud.err.find("tasks/s"), std::string::npos) << loud.err;
  const Outcome never = run({"run", job.string(), "--output", (dir_ / "r3").string(), "--progress", "never"});
  EXPECT_EQ(never.err.find('\r'), std::string::npos) << never.err;
}

TEST_F(Program, ValidateTasksVersionHelp) {
  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"list": [1, 2]}}]})");
  const Outcome v = run({"validate", job.string()});
  EXPECT_EQ(v.exit_code, 0) << v.err;
  EXPECT_NE(v.out.find("valid: 1 job, 2 tasks"), std::string::npos) << v.out;

  const Outcome t = run({"tasks"});
  EXPECT_EQ(t.exit_code, 0);
  for (const char* name : {"count_primes", "echo", "sleep_ms", "fail"})
    EXPECT_NE(t.out.find(name), std::string::npos) << name;
  // Internal tasks and build paths are not shown.
  EXPECT_EQ(t.out.find("stdout_to_stderr"), std::string::npos) << t.out;
  EXPECT_EQ(t.out.find("taskfarm."), std::string::npos) << t.out;
  EXPECT_EQ(t.out.find(".cpp:"), std::string::npos) << t.out;

  const Outcome ver = run({"version"});
  EXPECT_EQ(ver.exit_code, 0);
  EXPECT_EQ(ver.out.rfind("taskfarm ", 0), 0u);

  for (const char* cmd : {"run", "validate", "tasks"}) {
    const Outcome h = run({cmd, "--help"});
    EXPECT_EQ(h.exit_code, 0) << cmd;
    EXPECT_NE(h.out.find("Examples:"), std::string::npos) << cmd << ": " << h.out;
  }
  const Outcome h = run({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("Examples:"), std::string::npos);
  const Outcome rh = run({"run", "--help"});
  for (const char* opt : {"--workers", "--transport", "--start", "--timeout", "--retries", "--max-memory-per-child",
                          "--output", "--joblog",
                          "--resume", "--resume-failed", "--dry-run", "--progress"})
    EXPECT_NE(rh.out.find(opt), std::string::npos) << opt;
  const Outcome tasks = run({"tasks"});
  EXPECT_NE(tasks.out.find("exec"), std::string::npos);
  EXPECT_NE(tasks.out.find("\"argv\": [string, ...]"), std::string::npos) << tasks.out;
}

TEST_F(Program, ARunThatCannotStartChangesNoOutput) {
  const fs::path job = write("h.json", R"({"jobs": [{"task": "echo", "inputs": {"list": [1, 2]}}],
                                          "output": {"results": "out/h.jsonl", "joblog": "out/h.tsv"}})");
  ASSERT_EQ(run({"run", job.string()}).exit_code, 0);
  const std::string results = slurp(dir_ / "out/h.jsonl"), joblog = slurp(dir_ / "out/h.tsv");
  ASSERT_FALSE(results.empty());
  write("blockfile", "not a directory\n");
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"--joblog", (dir_ / "blockfile/j.tsv").string()},
       "--joblog: \"" + (dir_ / "blockfile/j.tsv").string() + "\": \"" + (dir_ / "blockfile").string() +
           "\" is a file, not a directory"},
      {{"--joblog", (dir_ / "blockfile/deeper/j.tsv").string()}, "is a file, not a directory"},
      {{"-o", (dir_ / "blockfile/r.jsonl").string()}, "--output: "},
      {{"--joblog", (dir_ / "out/h.jsonl").string()}, "same file as the results"},
      {{"-o", (dir_ / "out/h.tsv").string()}, "same file as the results"},
      {{"--joblog", (dir_ / "out").string()}, "is a directory"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"run", job.string()};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const Outcome o = run(args);
    EXPECT_EQ(o.exit_code, 2) << c.args[1] << "\n" << o.err;
    EXPECT_NE(o.err.find(c.expected), std::string::npos) << o.err;
    EXPECT_EQ(slurp(dir_ / "out/h.jsonl"), results) << c.args[1];
    EXPECT_EQ(slurp(dir_ / "out/h.tsv"), joblog) << c.args[1];
    EXPECT_EQ(slurp(dir_ / "blockfile"), "not a directory\n");
  }
  // A read-only directory (meaningless as root, who may write anywhere).
  if (::geteuid() != 0) {
    fs::create_directory(dir_ / "ro");
    fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    const Outcome o = run({"run", job.string(), "--joblog", (dir_ / "ro/j.tsv").string()});
    fs::permissions(dir_ / "ro", fs::perms::owner_all);
    EXPECT_EQ(o.exit_code, 2) << o.err;
    EXPECT_NE(o.err.find("is not writable"), std::string::npos) << o.err;
    EXPECT_EQ(slurp(dir_ / "out/h.jsonl"), results);
  }
  // validate checks the job file's outputs the same way.
  const fs::path bad = write("bad.json", R"({"jobs": [{"task": "echo", "inputs": {"list": [1]}}],
                                            "output": {"results": "blockfile/r.jsonl"}})");
  const Outcome v = run({"validate", bad.string()});
  EXPECT_EQ(v.exit_code, 2) << v.out;
  EXPECT_NE(v.err.find("output.results: \"" + (dir_ / "blockfile/r.jsonl").string() + "\""), std::string::npos) << v.err;
}

TEST_F(Program, DevNullMayTakeBothOutputs) {
  const fs::path job = write("job.json", R"({"jobs": [{"task": "echo", "inputs": {"list": [1, 2]}}]})");
  const Outcome o = run({"run", job.string(), "-o", "/dev/null", "--joblog", "/dev/null"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "");
  const Outcome r = run({"run", job.string(), "-o", "/dev/null", "--joblog", "/dev/null", "--resume"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
