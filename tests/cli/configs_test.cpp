// Every job file shipped in configs/ runs (in a copy of configs/, so the
// source tree stays clean), and the custom runner example runs its own task.

#include <algorithm>
#include <string>
#include <vector>

#include "program_support.hpp"

namespace {

using namespace taskfarm::test;

class Configs : public Program {};

TEST_F(Configs, EveryShippedJobFileRuns) {
  const fs::path src = fs::path(TASKFARM_SOURCE_DIR) / "configs";
  fs::copy(src, dir_ / "configs", fs::copy_options::recursive);
  fs::remove_all(dir_ / "configs" / "out");
  fs::remove_all(dir_ / "configs" / "examples" / "out");
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(dir_ / "configs"))
    if (e.path().extension() == ".json" && e.path().filename() != "jobfile.schema.json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 8u);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The demo is 2 CPU-seconds of sieving, minutes under a sanitizer: it is only
  // validated there (the release suite runs it).
  constexpr bool kRunDemo = false;
#else
  constexpr bool kRunDemo = true;
#endif
  for (const auto& f : files) {
    const Outcome v = run({"validate", f.string()});
    EXPECT_EQ(v.exit_code, 0) << f << ": " << v.err;
    if (!kRunDemo && f.filename() == "demo.json") continue;
    const Outcome o = run({"run", f.string()});
    const bool halts = f.filename() == "halt_and_retries.json";
    EXPECT_EQ(o.exit_code, halts ? 1 : 0) << f << ": " << o.err;
    EXPECT_NE(o.err.find("; results in "), std::string::npos) << f << ": " << o.err;
  }
  const fs::path out = dir_ / "configs" / "examples" / "out";
  // demo: 80 blocks of 50 million, the primes below 4e9.
  if (kRunDemo) {
    const auto demo = parse_lines(slurp(dir_ / "configs" / "out" / "demo-results.jsonl"));
    ASSERT_EQ(demo.size(), 80u);
    long long primes = 0;
    for (const auto& l : demo) primes += l["value"].get<long long>();
    EXPECT_EQ(primes, 189961812LL);
  }
  // range: the primes below 2 million.
  long long below2m = 0;
  for (const auto& l : parse_lines(slurp(out / "range.jsonl"))) below2m += l["value"].get<long long>();
  EXPECT_EQ(below2m, 148933);
  // lines: empty lines are not inputs; JSON Lines feed the template.
  const auto lines = parse_lines(slurp(out / "lines.jsonl"));
  ASSERT_EQ(lines.size(), 10u);
  EXPECT_EQ(lines[0]["value"], json({{"word", "apple"}, {"line", 0}, {"tag", "w0-apple"}}));
  EXPECT_EQ(lines[5]["input"], "fig");
  EXPECT_EQ(lines[9]["value"]["stdout"], "x=8 y=15 sum 23\n");
  // glob: one task per file, paths relative to the job file.
  const auto glob = parse_lines(slurp(out / "glob.jsonl"));
  std::vector<std::string> files_seen;
  for (const auto& l : glob) files_seen.push_back(l["input"]);
  std::sort(files_seen.begin(), files_seen.end());
  EXPECT_EQ(files_seen, (std::vector<std::string>{"data/a.txt", "data/b.txt", "data/c.txt", "data/words.txt"}));
  // product: 3 x 3, first axis slowest.
  const auto product = parse_lines(slurp(out / "product.jsonl"));
  ASSERT_EQ(product.size(), 9u);
  EXPECT_EQ(product[1]["input"], json({{"start", 0}, {"width", 2000}}));
  EXPECT_EQ(product[3]["input"], json({{"start", 1000000}, {"width", 1000}}));
  // exec sweep
  const auto sweep = parse_lines(slurp(out / "exec_sweep.jsonl"));
  ASSERT_EQ(sweep.size(), 12u);
  EXPECT_EQ(sweep[0]["value"]["stdout"], "size=64 seed=1\n");
  EXPECT_EQ(sweep[11]["value"]["stdout"], "512\n");
  // halt and retries: every flaky task needed a second attempt; strict halted.
  const auto hr = parse_lines(slurp(out / "halt_and_retries.jsonl"));
  int flaky = 0, strict = 0, strict_failed = 0;
  for (const auto& l : hr) {
    if (l["job"] == "flaky") {
      ++flaky;
      EXPECT_EQ(l["status"], "ok");
      EXPECT_EQ(l["attempts"], 2);
      EXPECT_EQ(l["value"]["stdout"], "recovered\n");
    } else if (l["job"] == "strict") {
      ++strict;
      if (l["status"] == "failed") ++strict_failed;
    }
  }
  EXPECT_EQ(flaky, 4);
  EXPECT_EQ(strict_failed, 2);
  EXPECT_LT(strict, 200);
}

TEST_F(Configs, ACustomRunnerRunsItsOwnTask) {
  const Outcome t = run({"tasks"}, CUSTOM_RUNNER_EXE);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("word_stats"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("exec"), std::string::npos) << t.out;  // the built-in tasks are there too

  const fs::path job = write("job.json", R"({"pool": {"workers": 2, "start": "spawn"},
    "jobs": [{"task": "word_stats", "inputs": {"list": ["one two three", "Hello, World"]},
              "args": {"text": "{}", "lower": true}}],
    "output": {"results": "r.jsonl", "joblog": "j.tsv"}})");
  const Outcome o = run({"run", job.string()}, CUSTOM_RUNNER_EXE);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  const auto lines = parse_lines(slurp(dir_ / "r.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["value"], json({{"words", 3}, {"letters", 11}, {"longest", "three"}}));
  EXPECT_EQ(lines[1]["value"], json({{"words", 2}, {"letters", 10}, {"longest", "hello"}}));
  EXPECT_NE(o.err.find("words in all: 5"), std::string::npos) << o.err;

  // Its validation speaks of its own task.
  const fs::path bad = write("bad.json", R"({"jobs": [{"task": "word_stats", "inputs": {"list": [{"text": 5}]}}]})");
  const Outcome b = run({"validate", bad.string()}, CUSTOM_RUNNER_EXE);
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.err.find("jobs[0].inputs.list[0]: input #0 is not a valid argument: task \"word_stats\" takes {\"text\": string"),
            std::string::npos)
      << b.err;

  // The example's own job file.
  const Outcome e = run({"run", (fs::path(TASKFARM_SOURCE_DIR) / "examples" / "custom_runner.json").string()},
                        CUSTOM_RUNNER_EXE);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(parse_lines(e.out).size(), 9u);
}

}  // namespace
