// Results/joblog files: whole lines only, torn tails repaired on append, and
// what --resume reads back from a joblog.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "taskfarm/cli/outputs.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using taskfarm::cli::JoblogEntry;
using taskfarm::cli::check_outputs;
using taskfarm::cli::LineFile;
using taskfarm::cli::OutputTarget;
using taskfarm::cli::ResumeLog;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

class Outputs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("taskfarm-outputs-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(Outputs, LineFileTruncatesOrAppendsAndCreatesDirectories) {
  const fs::path p = dir_ / "a" / "b" / "r.jsonl";
  {
    LineFile f = LineFile::open(p, false);
    EXPECT_TRUE(f.empty_at_open());
    f.add("one");
    f.add("two");
    EXPECT_EQ(slurp(p), "");  // queued, not yet written
    f.flush();
  }
  EXPECT_EQ(slurp(p), "one\ntwo\n");
  {
    LineFile f = LineFile::open(p, true);
    EXPECT_FALSE(f.empty_at_open());
    f.add("three");
    f.flush();
  }
  EXPECT_EQ(slurp(p), "one\ntwo\nthree\n");
  {
    LineFile f = LineFile::open(p, false);
    f.flush();
  }
  EXPECT_EQ(slurp(p), "");
  EXPECT_THROW((void)LineFile::open(dir_, false), std::system_error);
}

TEST_F(Outputs, ATornLastLineIsCutWhenAppending) {
  const fs::path p = dir_ / "r.jsonl";
  std::ofstream(p) << "{\"a\":1}\n{\"b\":2}\n{\"c\":";
  {
    LineFile f = LineFile::open(p, true);
    f.add("{\"d\":4}");
    f.flush();
  }
  EXPECT_EQ(slurp(p), "{\"a\":1}\n{\"b\":2}\n{\"d\":4}\n");
  std::ofstream(p) << "no newline at all";
  { (void)LineFile::open(p, true); }
  EXPECT_EQ(slurp(p), "");
}

TEST_F(Outputs, LongLinesAndManyLinesGoOutWhole) {
  const fs::path p = dir_ / "r.jsonl";
  {
    LineFile f = LineFile::open(p, false);
    f.add(std::string(300000, 'x'));
    for (int i = 0; i < 50000; ++i) f.add("line " + std::to_string(i));
    f.flush();
  }
  std::ifstream in(p);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_EQ(line.size(), 300000u);
  int n = 0;
  while (std::getline(in, line)) EXPECT_EQ(line, "line " + std::to_string(n++));
  EXPECT_EQ(n, 50000);
}

TEST_F(Outputs, JoblogLinesEscapeTheirText) {
  JoblogEntry e;
  e.seq = 3;
  e.start = 1700000000.25;
  e.runtime = 0.5;
  e.send = 10;
  e.receive = 20;
  e.exitval = 2;
  e.signal = 0;
  e.command = "echo 'a\tb'\nx\\y";
  e.job = "j";
  e.index = 2;
  e.status = "failed";
  e.input_hash = 0xabc;
  EXPECT_EQ(taskfarm::cli::format_joblog(e),
            "3\t:\t1700000000.250\t0.500\t10\t20\t2\t0\techo 'a\\tb'\\nx\\\\y\tj\t2\tfailed\t0000000000000abc");
}

TEST_F(Outputs, InputHashDependsOnTaskAndArgument) {
  const auto h = taskfarm::cli::input_hash("echo", json{{"a", 1}});
  EXPECT_EQ(h, taskfarm::cli::input_hash("echo", json{{"a", 1}}));
  EXPECT_NE(h, taskfarm::cli::input_hash("echo", json{{"a", 2}}));
  EXPECT_NE(h, taskfarm::cli::input_hash("exec", json{{"a", 1}}));
}

TEST_F(Outputs, ResumeLogKeepsTheLastLineOfEachInput) {
  auto line = [](const std::string& job, std::uint64_t index, const std::string& status, std::uint64_t hash) {
    JoblogEntry e;
    e.seq = index + 1;
    e.job = job;
    e.index = index;
    e.status = status;
    e.input_hash = hash;
    e.command = "cmd";
    return taskfarm::cli::format_joblog(e) + "\n";
  };
  const fs::path p = dir_ / "j.tsv";
  std::ofstream(p) << taskfarm::cli::kJoblogHeader << "\n"
                   << line("a", 0, "ok", 0x100) << line("a", 1, "failed", 0x104) << line("a", 2, "ok", 0x108)
                   << line("a", 1, "ok", 0x104)          // re-run: ok now
                   << line("a", 3, "timeout", 0x10c)     // failed
                   << line("a", 4, "cancelled", 0x110)   // killed while running: not run
                   << line("b", 0, "lost", 0x200) << "garbage line\n"
                   << line("b", 1, "ok", 0x204).substr(0, 10);  // torn: ignored
  const ResumeLog log = ResumeLog::read(p);
  using P = ResumeLog::Prior;
  EXPECT_EQ(log.lookup("a", 0, 0x100), P::ok);
  EXPECT_EQ(log.lookup("a", 0, 0x999), P::none);  // the input changed
  EXPECT_EQ(log.lookup("a", 1, 0x104), P::ok);
  EXPECT_EQ(log.lookup("a", 3, 0x10c), P::failed);
  EXPECT_EQ(log.lookup("a", 4, 0x110), P::none);
  EXPECT_EQ(log.lookup("a", 5, 0x114), P::none);
  EXPECT_EQ(log.lookup("b", 0, 0x200), P::failed);
  EXPECT_EQ(log.lookup("b", 1, 0x204), P::none);
  EXPECT_EQ(log.lookup("c", 0, 0x100), P::none);
  EXPECT_EQ(log.lines(), 7u);
}

TEST_F(Outputs, AJoblogOfAnotherProgramIsRefused) {
  const fs::path p = dir_ / "gnu.tsv";
  std::ofstream(p) << "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"
                   << "1\t:\t1700000000.000\t0.001\t0\t0\t0\t0\techo a\n";
  try {
    (void)ResumeLog::read(p);
    FAIL() << "a GNU parallel joblog was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no \"Job\" column"), std::string::npos) << e.what();
  }
}

TEST_F(Outputs, CheckOutputsFindsEveryProblemWithoutTouchingAnything) {
  auto problems = [](std::optional<fs::path> r, std::optional<fs::path> j) {
    return check_outputs(OutputTarget{std::move(r), "output.results"}, OutputTarget{std::move(j), "--joblog"});
  };
  std::ofstream(dir_ / "file") << "keep\n";
  // Fine: new files in new directories, /dev/null twice, standard output.
  EXPECT_TRUE(problems(dir_ / "new/deeper/r.jsonl", dir_ / "new/j.tsv").empty());
  EXPECT_TRUE(problems(fs::path("/dev/null"), fs::path("/dev/null")).empty());
  EXPECT_TRUE(problems(std::nullopt, std::nullopt).empty());
  EXPECT_FALSE(fs::exists(dir_ / "new"));

  // A path component that is a file.
  auto p = problems(dir_ / "r.jsonl", dir_ / "file/sub/j.tsv");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].rfind("--joblog: ", 0), 0u) << p[0];
  EXPECT_NE(p[0].find("\"" + (dir_ / "file").string() + "\" is a file, not a directory"), std::string::npos) << p[0];
  // A directory as the target.
  p = problems(dir_, std::nullopt);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_NE(p[0].find("output.results: \"" + dir_.string() + "\": is a directory"), std::string::npos) << p[0];
  // The same file, by another name (and through a symlink).
  fs::create_symlink(dir_ / "file", dir_ / "link");
  for (const auto& other : {dir_ / "." / "file", dir_ / "link"}) {
    p = problems(dir_ / "file", other);
    ASSERT_EQ(p.size(), 1u) << other;
    EXPECT_NE(p[0].find("same file as the results"), std::string::npos) << p[0];
  }
  p = problems(dir_ / "not-yet", dir_ / "sub/../not-yet");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(slurp(dir_ / "file"), "keep\n");

  // A directory that is not writable (root may write anywhere: nothing to see).
  if (::geteuid() != 0) {
    fs::create_directory(dir_ / "ro");
    fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    p = problems(dir_ / "ro/sub/r.jsonl", std::nullopt);
    fs::permissions(dir_ / "ro", fs::perms::owner_all);
    ASSERT_EQ(p.size(), 1u);
    EXPECT_NE(p[0].find("is not writable"), std::string::npos) << p[0];
  }
}

TEST_F(Outputs, DeferredTruncationWaitsAndDevicesAreNeverTruncated) {
  const fs::path f = dir_ / "r.jsonl";
  std::ofstream(f) << "old\n";
  LineFile l = LineFile::open(f, false, true);
  EXPECT_EQ(slurp(f), "old\n");  // not yet
  l.truncate();
  EXPECT_EQ(slurp(f), "");
  EXPECT_TRUE(l.empty_at_open());
  l.add("new");
  l.flush();
  EXPECT_EQ(slurp(f), "new\n");
  LineFile n = LineFile::open(fs::path("/dev/null"), false, true);
  n.truncate();
  n.add("x");
  n.flush();
  LineFile a = LineFile::open(fs::path("/dev/null"), true);  // no repair of a device
  EXPECT_TRUE(a.empty_at_open());
}

}  // namespace
