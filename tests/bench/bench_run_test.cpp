// The benchmark program end to end, in quick mode with tiny sizes of work: it
// exits 0, its JSON report validates against bench/bench.schema.json and agrees
// with its CSV, its SVG charts are well-formed, and the command line's refusals
// have their exit codes. Asserts behaviour, never timing.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "json_schema.hpp"
#include "xml_check.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "taskfarm-bench-test-XXXXXX").string();
    if (!::mkdtemp(t.data())) throw std::runtime_error("mkdtemp failed");
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

struct Outcome {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `taskfarm bench` with `args`; stdout and stderr are captured in `dir`.
Outcome run_bench(const std::vector<std::string>& args, const fs::path& dir) {
  std::vector<std::string> all{TASKFARM_EXE, "bench"};  // `taskfarm bench`
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  const fs::path out = dir / "stdout.txt", err = dir / "stderr.txt";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  Outcome r;
  const int rc = ::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return r;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// Tiny sizes of work: the point is that every part runs and reports, not the numbers.
const std::vector<std::string> kTiny{
    "--quick",         "--repeats",      "2",   "--samples",       "20",   "--warmup",        "2",
    "--sizes",         "64,4K",          "--stream-small", "200", "--stream-large", "2",
    "--tasks",         "300",            "--submit-tasks", "50",  "--payload-tasks", "2",
    "--payload-bytes", "64K",            "--start-repeats", "1",  "--scaling-tasks", "2",
    "--scaling-task-ms", "0.5",          "--max-workers",  "2",   "--quiet"};

TEST(BenchProgram, QuickRunWritesAValidReportCsvAndCharts) {
  TempDir dir;
  auto args = kTiny;
  for (const std::string& a : std::vector<std::string>{"--json", (dir.path / "report.json").string(), "--csv",
                                                      (dir.path / "report.csv").string(), "--svg",
                                                      (dir.path / "svg").string()})
    args.push_back(a);
  const Outcome r = run_bench(args, dir.path);
  ASSERT_EQ(r.code, 0) << "stdout:\n" << r.out << "\nstderr:\n" << r.err;

  // The table names every part.
  for (const char* heading : {"Round-trip latency", "One-way throughput", "Pool task rate", "Pool start-up",
                              "CPU-bound scaling", "Targets", "placement:", "machine:"})
    EXPECT_NE(r.out.find(heading), std::string::npos) << heading << "\n" << r.out;

  // JSON: valid against the schema, and consistent.
  std::ifstream schema_in(TASKFARM_BENCH_SCHEMA);
  const json schema = json::parse(schema_in);
  const json report = json::parse(slurp(dir.path / "report.json"));
  EXPECT_EQ(taskfarm::test::validate(schema, report), std::vector<std::string>{});
  std::set<std::string> keys, suites;
  for (const auto& rec : report["records"]) {
    EXPECT_TRUE(keys.insert(rec["key"].get<std::string>()).second) << "duplicate key " << rec["key"];
    suites.insert(rec["suite"].get<std::string>());
    const auto& s = rec["summary"];
    EXPECT_LE(s["min"].get<double>(), s["median"].get<double>());
    EXPECT_LE(s["median"].get<double>(), s["max"].get<double>());
    EXPECT_EQ(s["n"].get<std::size_t>(), rec["runs"].size());
  }
  for (const char* suite : {"latency", "throughput", "pool", "startup", "scaling"})
    EXPECT_TRUE(suites.count(suite)) << suite;
  for (const auto& c : report["comparisons"]) {
    EXPECT_TRUE(keys.count(c["numerator"].get<std::string>())) << c["numerator"];
    EXPECT_TRUE(keys.count(c["denominator"].get<std::string>())) << c["denominator"];
  }
  EXPECT_EQ(report["transports"].size(), 4u);
  bool pinned_or_said_why = !report["machine"]["placement_ipc"].get<std::string>().empty();
  EXPECT_TRUE(pinned_or_said_why);

  // CSV: a header and one line per record.
  std::istringstream csv(slurp(dir.path / "report.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("suite,impl,subject,transport,metric,unit,", 0), 0u) << line;
  std::size_t rows = 0;
  while (std::getline(csv, line)) rows += !line.empty();
  EXPECT_EQ(rows, report["records"].size());

  // SVG: the five charts, well-formed, with their required attributes.
  for (const char* name : {"latency.svg", "throughput.svg", "pool_vs_python.svg", "startup.svg", "scaling.svg"}) {
    const fs::path p = dir.path / "svg" / name;
    ASSERT_TRUE(fs::exists(p)) << p;
    try {
      const auto root = taskfarm::test::parse_xml(slurp(p));
      EXPECT_EQ(taskfarm::test::check_svg(root), std::vector<std::string>{}) << name;
      EXPECT_FALSE(root.find_all("text").empty()) << name;
    } catch (const std::exception& e) {
      ADD_FAILURE() << name << ": " << e.what();
    }
  }
}

TEST(BenchProgram, RequireIdleRefusesABusyMachineWithExitCode3) {
  TempDir dir;
  // A negative load limit makes every machine "busy".
  const Outcome r = run_bench({"--quick", "--require-idle", "--max-load", "-1", "--quiet"}, dir.path);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.err.find("refusing to run"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST(BenchProgram, BadCommandLinesExitWith2) {
  TempDir dir;
  EXPECT_EQ(run_bench({"--transports", "carrier-pigeon"}, dir.path).code, 2);
  EXPECT_EQ(run_bench({"--sizes", "12 parsecs"}, dir.path).code, 2);
  EXPECT_EQ(run_bench({"--quick", "--full"}, dir.path).code, 2);
  const Outcome help = run_bench({"--help"}, dir.path);
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("--quick"), std::string::npos);
}

TEST(BenchProgram, WithoutPythonThePythonRatiosAreLeftOutNotFaked) {
  TempDir dir;
  auto args = kTiny;
  for (const std::string& a : std::vector<std::string>{"--suites", "pool", "--transports", "pipe", "--python",
                                                      "/nonexistent/python3", "--json", (dir.path / "r.json").string()})
    args.push_back(a);
  const Outcome r = run_bench(args, dir.path);
  ASSERT_EQ(r.code, 0) << r.err;
  const json report = json::parse(slurp(dir.path / "r.json"));
  for (const auto& rec : report["records"]) EXPECT_NE(rec["impl"], "python");
  for (const auto& c : report["comparisons"]) EXPECT_NE(c["group"], "python");
  EXPECT_NE(report["machine"]["python"].get<std::string>().find("unavailable"), std::string::npos);
}

}  // namespace
