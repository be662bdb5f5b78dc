// End to end: the real taskfarm program on job files in a temporary directory.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/test_support.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> parse_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    out.push_back(json::parse(line));  // throws (fails the test) on a partial line
  }
  return out;
}

class Program : public taskfarm::test::LeakCheck {
 protected:
  void SetUp() override {
    LeakCheck::SetUp();
    std::string tmpl = (fs::temp_directory_path() / "taskfarm-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    LeakCheck::TearDown();
  }

  fs::path write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p;
  }

  // Starts taskfarm with `args`, stdout and stderr going to files in the
  // directory; returns its pid (0 on failure).
  pid_t start(const std::vector<std::string>& args) {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    std::vector<std::string> all{TASKFARM_EXE};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, TASKFARM_EXE, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
      ADD_FAILURE() << "cannot start " << TASKFARM_EXE;
      return 0;
    }
    return pid;
  }

  // Runs taskfarm with `args` to the end; stdout and stderr are captured.
  Outcome run(const std::vector<std::string>& args) {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    Outcome o;
    const pid_t pid = start(args);
    if (pid == 0) return o;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    o.out = slurp(out);
    o.err = slurp(err);
    fs::remove(out);
    fs::remove(err);
    return o;
  }

  fs::path dir_;
};

TEST_F(Program, RunsAJobAndWritesOneLinePerInput) {
  const fs::path job = write("job.json", R"({
    "pool": {"workers": 2},
    "jobs": [{"name": "sq", "task": "echo", "inputs": {"range": {"start": 0, "stop": 40, "step": 2}},
              "args": {"n": "{}", "twice": "{}*2", "tag": "n{#}"}, "chunksize": 3}],
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
                "args": {"lo": "{}*1000", "hi": "({}+1)*1000"}, "chunksize": 2}]})");
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
              "args": {"lo": "{}*1000", "hi": "{}*1000+1000"}}]})");
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
  EXPECT_NE(d.err.find("--output"), std::string::npos) << d.err;
}

TEST_F(Program, AnInterruptedRunLeavesNoResultsFile) {
  const fs::path job = write("job.json", R"({"pool": {"workers": 1},
    "jobs": [{"task": "sleep_ms", "inputs": {"list": [60000, 60000]}, "chunksize": 1}],
    "output": {"results": "out/r.jsonl"}})");
  const pid_t pid = start({"run", job.string()});
  ASSERT_NE(pid, 0);
  // Wait (bounded) until the run has created its temporary results file.
  bool started = false;
  for (int i = 0; i < 1000 && !started; ++i) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "out", ec))
      started = started || e.path().filename().string().find(".tmp-") != std::string::npos;
    if (!started) ::usleep(10'000);
  }
  EXPECT_TRUE(started);
  ::kill(pid, SIGINT);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << status;
  EXPECT_TRUE(fs::is_empty(dir_ / "out"));  // neither results nor the temporary file
}

TEST_F(Program, MalformedJsonNamesLineAndColumn) {
  const fs::path job = write("job.json", "{\n  \"jobs\": [\n    {\"task\": \"echo\" \"inputs\": {}}\n  ]\n}\n");
  const Outcome o = run({"run", job.string()});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("line 3, column"), std::string::npos) << o.err;
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
  EXPECT_NE(t.out.find("cli.stdout_to_stderr"), std::string::npos);  // listed, as not JSON-callable

  const Outcome ver = run({"version"});
  EXPECT_EQ(ver.exit_code, 0);
  EXPECT_EQ(ver.out.rfind("taskfarm ", 0), 0u);

  const Outcome h = run({"--help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("Examples:"), std::string::npos);
}

}  // namespace
