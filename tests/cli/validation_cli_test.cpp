// Every kind of job file mistake, through the real program: exit code 2, the
// JSON path, what was found and what was expected in the message, nothing on
// standard output, no worker started and no output file created.

#include <string>
#include <vector>

#include "program_support.hpp"

namespace {

using namespace taskfarm::test;

struct Mistake {
  const char* what;
  std::string job_file;  // written as job.json next to data.txt
  std::string message;   // expected in stderr, after "taskfarm: <file>: "
};

class Validation : public Program {};

TEST_F(Validation, EveryMistakeIsReportedBeforeAnythingRuns) {
  write("data.txt", "a\nb\n");
  const std::string outputs = R"(, "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"})";
  auto file = [&](const std::string& pool, const std::string& job) {
    return "{" + pool + (pool.empty() ? "" : ", ") + R"("jobs": [)" + job + "]" + outputs + "}";
  };
  const std::string ok_job = R"({"task": "echo", "inputs": {"list": [1]}})";
  const std::vector<Mistake> mistakes = {
      {"unknown key at the top", R"({"jobz": [], "jobs": [{"task": "echo", "inputs": {"list": [1]}}]})",
       "jobz: unknown key (did you mean \"jobs\"?); expected one of: description, pool, jobs, output"},
      {"unknown key in a job", file("", R"({"task": "echo", "inputs": {"list": [1]}, "chunk": 2})"),
       "jobs[0].chunk: unknown key (did you mean \"chunksize\"?)"},
      {"unknown key in the pool", file(R"("pool": {"retries": 2})", ok_job), "pool.retries: unknown key"},
      {"unknown key in on_error", file("", R"({"task": "echo", "inputs": {"list": [1]}, "on_error": {"stop": "now"}})"),
       "jobs[0].on_error.stop: unknown key; expected one of: halt, fail"},
      {"wrong type", file(R"("pool": {"workers": "two"})", ok_job),
       "pool.workers: expected a non-negative integer, found a string \"two\""},
      {"wrong type in an input", file("", R"({"task": "echo", "inputs": {"range": {"stop": "ten"}}})"),
       "jobs[0].inputs.range.stop: expected an integer, found a string \"ten\""},
      {"missing field", file("", R"({"inputs": {"list": [1]}})"), "jobs[0]: missing \"task\""},
      {"missing inputs", file("", R"({"task": "echo"})"), "jobs[0]: missing \"inputs\""},
      {"unknown task", file("", R"({"task": "ecoh", "inputs": {"list": [1]}})"),
       "jobs[0].task: no task named \"ecoh\" (did you mean \"echo\"?)"},
      {"unknown transport", file(R"("pool": {"transport": "sokcet"})", ok_job),
       "pool.transport: unknown transport \"sokcet\" (did you mean \"socket\"?); expected one of: pipe, socket, mqueue, shm"},
      {"bad duration", file(R"("pool": {"task_timeout": "10 minutes"})", ok_job),
       "pool.task_timeout: expected a duration such as \"500ms\", \"30s\", \"2m\" or \"1h\" (unknown unit \" minutes\"; use ms, s, m or h), found \"10 minutes\""},
      {"bad duration in exec", file("", R"({"task": "exec", "inputs": {"list": [1]}, "args": {"argv": ["true"], "timeout": "-3s"}})"),
       "jobs[0].args: input #0 (1) gives the argument"},
      {"unreadable input file", file("", R"({"task": "echo", "inputs": {"lines": "missing.txt"}})"),
       "jobs[0].inputs.lines: cannot open \"missing.txt\": No such file or directory"},
      {"glob matching nothing", file("", R"({"task": "echo", "inputs": {"glob": "*.nothing"}})"),
       "jobs[0].inputs.glob: the pattern \"*.nothing\" matches no file"},
      {"an item that is no valid argument", file("", R"({"task": "sleep_ms", "inputs": {"lines": "data.txt"}})"),
       "jobs[0].inputs.lines: input #0 (line 1 of \"data.txt\") is not a valid argument: task \"sleep_ms\" takes integer (milliseconds): expected an integer, found a string \"a\""},
      {"a template that does not fit", file("", R"({"task": "echo", "inputs": {"list": [1]}, "args": "{size}"})"),
       "jobs[0].args: template \"{size}\": placeholder {size} needs an object, but input #0 is 1"},
      {"bad halt policy", file("", R"({"task": "echo", "inputs": {"list": [1]}, "on_error": {"halt": "soon", "fail": "200%"}})"),
       "jobs[0].on_error.fail: expected a number of failures (such as 3) or a percentage of the inputs"},
      {"malformed JSON", "{\n  \"jobs\": [\n    {\"task\": \"echo\",, }\n  ]\n}\n",
       "invalid JSON at line 3, column 21: syntax error while parsing object key - unexpected ','; expected string literal"},
  };
  for (const auto& m : mistakes) {
    const fs::path job = write("job.json", m.job_file);
    for (const char* cmd : {"validate", "run"}) {
      const Outcome o = run({cmd, job.string()});
      EXPECT_EQ(o.exit_code, 2) << m.what << " (" << cmd << "): " << o.err;
      const std::string expected = "taskfarm: " + job.string() + ": " + m.message;
      EXPECT_NE(o.err.find(expected), std::string::npos) << m.what << " (" << cmd << ")\nexpected: " << expected
                                                         << "\nstderr:   " << o.err;
      EXPECT_TRUE(o.out.empty()) << m.what << ": " << o.out;
      EXPECT_FALSE(fs::exists(dir_ / "out")) << m.what << ": an output was created";
    }
  }
}

TEST_F(Validation, AValidFileIsDescribed) {
  write("data.txt", "a\nb\n");
  const fs::path job = write("job.json", R"({"pool": {"workers": 3, "task_timeout": "1.5s"},
    "jobs": [{"name": "l", "task": "echo", "inputs": {"lines": "data.txt"}},
             {"name": "p", "task": "echo", "inputs": {"product": {"a": [1, 2], "b": {"range": {"stop": 3}}}},
              "on_error": {"halt": "soon", "fail": "10%"}}],
    "output": {"results": "out/r.jsonl", "joblog": "out/j.tsv"}})");
  const Outcome o = run({"validate", job.string()});
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("valid: 2 jobs, 8 tasks"), std::string::npos) << o.out;  // the lines are counted
  EXPECT_NE(o.out.find("3 workers"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("task timeout 1500 ms"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("job \"l\": task echo x 2 inputs (lines, first 2 checked)"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("job \"p\": task echo x 6 inputs (product"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("halt soon after 10.0% of the inputs failed"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("joblog: " + (dir_ / "out/j.tsv").string()), std::string::npos) << o.out;
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

}  // namespace
