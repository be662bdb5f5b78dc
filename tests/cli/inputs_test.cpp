// Input generators: what each kind yields, in which order, and that they stream.

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "taskfarm/cli/inputs.hpp"
#include "taskfarm/cli/job_error.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using taskfarm::cli::InputCursor;
using taskfarm::cli::InputKind;
using taskfarm::cli::InputSpec;

std::vector<json> all(const InputSpec& spec, std::vector<std::string>* problems = nullptr) {
  std::vector<json> out;
  auto c = spec.open();
  json item;
  std::string problem;
  for (;;) {
    const auto n = c->next(item, problem);
    if (n == InputCursor::Next::end) break;
    if (n == InputCursor::Next::bad) {
      if (problems) problems->push_back(problem);
      continue;
    }
    out.push_back(item);
  }
  return out;
}

class Inputs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("taskfarm-inputs-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(Inputs, RangeCoversTheWholeInt64Span) {
  InputSpec r;
  r.kind = InputKind::range;
  r.start = INT64_MIN;
  r.stop = INT64_MAX;
  r.step = INT64_MAX;
  EXPECT_EQ(r.size(), 3u);
  EXPECT_EQ(all(r), (std::vector<json>{INT64_MIN, -1, INT64_MAX - 1}));
  r.start = -3;
  r.stop = 4;
  r.step = 3;
  EXPECT_EQ(all(r), (std::vector<json>{-3, 0, 3}));
}

TEST_F(Inputs, LinesAreStrippedAndEmptyOnesSkipped) {
  std::ofstream(dir_ / "w.txt") << "a\r\nb\n\n  \nc";
  InputSpec l;
  l.kind = InputKind::lines;
  l.file = dir_ / "w.txt";
  l.file_text = "w.txt";
  EXPECT_FALSE(l.size().has_value());  // unknown without reading
  EXPECT_EQ(all(l), (std::vector<json>{"a", "b", "  ", "c"}));
  EXPECT_EQ(l.count(), 4u);
  l.skip_empty = false;
  EXPECT_EQ(all(l), (std::vector<json>{"a", "b", "", "  ", "c"}));
}

TEST_F(Inputs, JsonLinesReportBadLinesAndGoOn) {
  std::ofstream(dir_ / "p.jsonl") << "{\"x\": 1}\n\nnot json\n[2]\n";
  InputSpec l;
  l.kind = InputKind::lines;
  l.file = dir_ / "p.jsonl";
  l.file_text = "p.jsonl";
  l.json_lines = true;
  std::vector<std::string> problems;
  EXPECT_EQ(all(l, &problems), (std::vector<json>{json{{"x", 1}}, json::array({2})}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("line 3 of \"p.jsonl\": invalid JSON"), std::string::npos) << problems[0];
}

TEST_F(Inputs, LinesStreamAMillionLines) {
  // A cursor holds one line at a time, whatever the file's length.
  {
    std::FILE* f = std::fopen((dir_ / "big.txt").c_str(), "w");
    ASSERT_NE(f, nullptr);
    for (int i = 0; i < 1'000'000; ++i) std::fprintf(f, "line %d\n", i);
    std::fclose(f);
  }
  InputSpec l;
  l.kind = InputKind::lines;
  l.file = dir_ / "big.txt";
  l.file_text = "big.txt";
  auto c = l.open();
  json item;
  std::string problem;
  std::uint64_t n = 0;
  while (c->next(item, problem) == InputCursor::Next::item) {
    if (n == 999'999) {
      EXPECT_EQ(item, "line 999999");
    }
    ++n;
  }
  EXPECT_EQ(n, 1'000'000u);
  EXPECT_EQ(c->where(), "line 1000000 of \"big.txt\"");
}

TEST_F(Inputs, GlobMatchesSortedRelativeOrAbsolute) {
  fs::create_directories(dir_ / "d");
  for (const char* n : {"b.csv", "a.csv", "c.txt"}) std::ofstream(dir_ / "d" / n) << "x";
  InputSpec g;
  g.kind = InputKind::glob;
  g.pattern = "d/*.csv";
  g.base_dir = dir_;
  EXPECT_EQ(g.size(), 2u);
  EXPECT_EQ(all(g), (std::vector<json>{"d/a.csv", "d/b.csv"}));
  g.absolute = true;
  EXPECT_EQ(all(g), (std::vector<json>{(dir_ / "d/a.csv").string(), (dir_ / "d/b.csv").string()}));
  g.absolute = false;
  g.pattern = "d/{a.csv,c.txt}";
  EXPECT_EQ(all(g), (std::vector<json>{"d/a.csv", "d/c.txt"}));
  g.pattern = (dir_ / "d" / "c.*").string();  // an absolute pattern gives absolute paths
  EXPECT_EQ(all(g), (std::vector<json>{(dir_ / "d/c.txt").string()}));
  g.pattern = "d/*.none";
  EXPECT_THROW((void)g.open(), taskfarm::cli::JobError);
}

TEST_F(Inputs, ProductIsAnOdometerLastAxisFastest) {
  InputSpec a;
  a.kind = InputKind::list;
  a.list = std::make_shared<const json>(json{"x", "y"});
  InputSpec b;
  b.kind = InputKind::range;
  b.stop = 3;
  InputSpec p;
  p.kind = InputKind::product;
  p.axes = {{"a", a}, {"b", b}};
  EXPECT_EQ(p.size(), 6u);
  const auto items = all(p);
  ASSERT_EQ(items.size(), 6u);
  const char* expect_a[] = {"x", "x", "x", "y", "y", "y"};
  for (std::size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(items[i]["a"], expect_a[i]) << i;
    EXPECT_EQ(items[i]["b"], i % 3) << i;
  }
}

TEST_F(Inputs, AProductWithALinesAxisHasNoKnownSizeButCounts) {
  std::ofstream(dir_ / "v.txt") << "1\n2\n";
  InputSpec l;
  l.kind = InputKind::lines;
  l.file = dir_ / "v.txt";
  l.file_text = "v.txt";
  InputSpec b;
  b.kind = InputKind::range;
  b.stop = 2;
  InputSpec p;
  p.kind = InputKind::product;
  p.axes = {{"v", l}, {"b", b}};
  EXPECT_FALSE(p.size().has_value());
  EXPECT_EQ(p.count(), 4u);
}

TEST_F(Inputs, AStreamIsPendingUntilAWholeLineArrivesAndAPartialLastLineCounts) {
  // A FIFO that no writer has opened yet: open() must not block, and next()
  // must say pending (a read would say end of file).
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  InputSpec l;
  l.kind = InputKind::lines;
  l.path = "inputs.lines";
  l.file = fifo;
  l.file_text = "fifo";
  EXPECT_TRUE(l.streamed());
  auto c = l.open();
  ASSERT_GE(c->poll_fd(), 0);
  json item;
  std::string problem;
  EXPECT_EQ(c->next(item, problem), InputCursor::Next::pending);
  const int w = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(w, 0);
  EXPECT_EQ(c->next(item, problem), InputCursor::Next::pending);  // a writer, no data
  ASSERT_EQ(::write(w, "a\r\n\nb", 5), 5);
  ASSERT_EQ(c->next(item, problem), InputCursor::Next::item);
  EXPECT_EQ(item, "a");
  EXPECT_EQ(c->where(), "line 1 of \"fifo\"");
  EXPECT_EQ(c->next(item, problem), InputCursor::Next::pending);  // "b" has no '\n' yet
  ::close(w);
  ASSERT_EQ(c->next_wait(item, problem), InputCursor::Next::item);  // end of input: "b" is a line
  EXPECT_EQ(item, "b");
  EXPECT_EQ(c->where(), "line 3 of \"fifo\"");
  EXPECT_EQ(c->next_wait(item, problem), InputCursor::Next::end);
}

TEST_F(Inputs, StandardInputAndDevicesAreStreamsRegularFilesAreNot) {
  InputSpec l;
  l.kind = InputKind::lines;
  l.file = "-";
  EXPECT_TRUE(l.streamed());
  l.file = "/dev/null";
  EXPECT_TRUE(l.streamed());
  l.file = dir_ / "data.txt";
  std::ofstream(l.file) << "x\n";
  EXPECT_FALSE(l.streamed());
  l.file = dir_ / "missing.txt";
  EXPECT_FALSE(l.streamed());  // opening it reports the problem
  InputSpec list;
  list.kind = InputKind::list;
  list.list = std::make_shared<const json>(json{1});
  EXPECT_FALSE(list.streamed());
}

TEST_F(Inputs, CountLinesAgreesWithTheCursor) {
  InputSpec l;
  l.kind = InputKind::lines;
  l.path = "inputs.lines";
  l.file = dir_ / "data.txt";
  l.file_text = "data.txt";
  for (const std::string& text : std::vector<std::string>{"", "a", "a\n", "a\n\nb\r\n\r\nc", "\r\n\r\r\n \n\t\n", "1\n  \n[2]\r\nnot json\n \r\n",
                                 std::string(200000, 'x') + "\n\n" + std::string(3000000, 'y')}) {
    std::ofstream(l.file, std::ios::binary | std::ios::trunc) << text;
    for (bool json_lines : {false, true}) {
      for (bool skip : {false, true}) {
        l.json_lines = json_lines;
        l.skip_empty = skip;
        std::vector<std::string> problems;
        const std::size_t items = all(l, &problems).size() + problems.size();
        EXPECT_EQ(l.count_lines(), items) << "json " << json_lines << " skip_empty " << skip << ": " << text.substr(0, 40);
      }
    }
  }
  l.file = dir_ / "missing.txt";
  EXPECT_THROW((void)l.count_lines(), taskfarm::cli::JobError);
}

}  // namespace
