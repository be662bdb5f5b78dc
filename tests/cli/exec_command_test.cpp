// `taskfarm exec`: the command line split into a command and inputs, the
// argument template it becomes, and the program run end to end.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "exec_command.hpp"
#include "taskfarm/cli/exec.hpp"
#include "program_support.hpp"

namespace taskfarm::test {
namespace {

using cli::ExecInputs;
using cli::exec_template;
using cli::split_exec_words;

TEST(ExecWords, SplitAtTripleAndQuadrupleColons) {
  const auto in = split_exec_words({"echo", "-n", "{}", ":::", "a", "b", ":::", "x", "::::", "f1", "f2"});
  EXPECT_EQ(in.command, (std::vector<std::string>{"echo", "-n", "{}"}));
  ASSERT_EQ(in.groups.size(), 4u);  // each file after :::: is an input source of its own
  EXPECT_EQ(in.groups[0].values, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(in.groups[1].values, (std::vector<std::string>{"x"}));
  EXPECT_EQ(in.groups[2].kind, ExecInputs::Kind::file);
  EXPECT_EQ(in.groups[3].values, (std::vector<std::string>{"f2"}));
  EXPECT_TRUE(split_exec_words({"wc", "-l"}).groups.empty());  // standard input
}

TEST(ExecWords, MistakesAreNamed) {
  auto message = [](const std::vector<std::string>& words) {
    try {
      (void)split_exec_words(words);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message({":::", "a"}).find("no command given"), std::string::npos);
  EXPECT_NE(message({"echo", ":::"}).find("::: is followed by no input"), std::string::npos);
  EXPECT_NE(message({"echo", "::::"}).find(":::: is followed by no file"), std::string::npos);
  EXPECT_NE(message({"echo", "::::", "-", "-"}).find("only once"), std::string::npos);
}

TEST(ExecTemplate, InputsAreAppendedWhenTheCommandHasNoPlaceholder) {
  EXPECT_EQ(exec_template(split_exec_words({"gzip", "-9", ":::", "a"}), false),
            (json{{"argv", {"gzip", "-9", "{}"}}}));
  EXPECT_EQ(exec_template(split_exec_words({"cmp", ":::", "a", ":::", "b"}), false),
            (json{{"argv", {"cmp", "{1}", "{2}"}}}));
}

TEST(ExecTemplate, PlaceholdersOfSeveralGroupsAndLiteralBraces) {
  EXPECT_EQ(exec_template(split_exec_words({"echo", "{2}-{1}", "{}", "x{}y", ":::", "a", ":::", "b"}), false),
            (json{{"argv", {"echo", "{2}-{1}", "{1}", "{2}", "x{1} {2}y"}}}));
  // One input source: {1} is {}; braces that are no placeholder are text.
  EXPECT_EQ(exec_template(split_exec_words({"awk", "{print $1}", "{1}.{#}", ":::", "f"}), false),
            (json{{"argv", {"awk", "{{print $1}}", "{}.{#}"}}}));
  EXPECT_THROW((void)exec_template(split_exec_words({"echo", "{3}", ":::", "a", ":::", "b"}), false),
               std::invalid_argument);
}

TEST(ExecTemplate, PathPartsBecomeTemplatePlaceholdersOrPositionalParameters) {
  EXPECT_EQ(exec_template(split_exec_words({"mv", "{}", "{.}.bak", "{1/}", ":::", "a"}), false),
            (json{{"argv", {"mv", "{}", "{.}.bak", "{/}"}}}));
  EXPECT_EQ(exec_template(split_exec_words({"cp", "{1}", "{2//}/{1/.}", ":::", "a", ":::", "b"}), false),
            (json{{"argv", {"cp", "{1}", "{2//}/{1/.}"}}}));
  EXPECT_EQ(exec_template(split_exec_words({"gzip < {} > {.}.gz; echo {.}", ":::", "a"}), true),
            (json{{"argv", {"gzip < \"$1\" > \"$2\".gz; echo \"$2\"", "{}", "{.}"}}, {"shell", true}}));
}

TEST(ExecTemplate, AShellScriptGetsItsInputsAsPositionalParameters) {
  EXPECT_EQ(exec_template(split_exec_words({"gzip -9 {} && echo {#}", ":::", "a"}), true),
            (json{{"argv", {"gzip -9 \"$1\" && echo {#}", "{}"}}, {"shell", true}}));
  EXPECT_EQ(exec_template(split_exec_words({"cat ${HOME} | wc", ":::", "a", ":::", "b"}), true),
            (json{{"argv", {"cat ${{HOME}} | wc \"$@\"", "{1}", "{2}"}}, {"shell", true}}));
}

class ExecProgram : public Program {
 protected:
  // Runs `taskfarm exec ARGS` with standard input from `input` (a file).
  Outcome exec_with_input(const std::vector<std::string>& args, const std::string& input) {
    const fs::path in = write("stdin.txt", input);
    std::string cmd = "exec '" + std::string(TASKFARM_EXE) + "' exec";
    for (const auto& a : args) cmd += " " + cli::shell_quote({a});
    cmd += " < '" + in.string() + "'";
    return run({"-c", cmd}, "/bin/sh");
  }
  Outcome exec(std::vector<std::string> args) {
    args.insert(args.begin(), "exec");
    return run(args);
  }
};

TEST_F(ExecProgram, InputsFromTheCommandLineInInputOrderWithK) {
  const auto o = exec({"-j2", "-k", "echo", "{}-{#}", ":::", "a", "b", "c"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "a-0\nb-1\nc-2\n");
  EXPECT_EQ(o.err, "");  // nothing went wrong: no summary, as GNU parallel
}

TEST_F(ExecProgram, SeveralGroupsAreEveryCombinationAndTheInputIsAppended) {
  const auto o = exec({"-k", "echo", "x", ":::", "a", "b", ":::", "1", "2"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "x a 1\nx a 2\nx b 1\nx b 2\n");
  const auto p = exec({"-k", "echo", "{2}{1}", ":::", "a", "b", ":::", "1"});
  EXPECT_EQ(p.out, "1a\n1b\n");
}

TEST_F(ExecProgram, LinesOfAFileAndOfStandardInput) {
  const fs::path f = write("inputs.txt", "one\ntwo\n\nthree\n");
  const auto o = exec({"-k", "echo", "<{}>", "::::", f.string()});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "<one>\n<two>\n<>\n<three>\n");  // an empty line is an empty argument
  std::string many;
  for (int i = 1; i <= 1500; ++i) many += std::to_string(i) + "\n";
  const auto s = exec_with_input({"-k", "-j2", "echo"}, many);
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(s.out, many);  // every line once, in order
  const auto t = exec_with_input({"-k", "echo", "{}", "::::", "-"}, "x\ny\n");
  EXPECT_EQ(t.out, "x\ny\n");
}

TEST_F(ExecProgram, EachCommandsOutputIsPrintedWholeNeverInterleaved) {
  std::vector<std::string> args{"-j4", "sh", "-c", "echo begin $0; sleep 0.05; echo middle $0; echo end $0; echo err $0 >&2"};
  args.push_back(":::");
  for (int i = 0; i < 12; ++i) args.push_back("in" + std::to_string(i));
  const auto o = exec(args);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  std::istringstream lines(o.out);
  std::string a, b, c;
  std::set<std::string> seen;
  while (std::getline(lines, a)) {
    ASSERT_TRUE(std::getline(lines, b) && std::getline(lines, c)) << o.out;
    const std::string who = a.substr(6);
    EXPECT_EQ(a, "begin " + who);
    EXPECT_EQ(b, "middle " + who) << o.out;
    EXPECT_EQ(c, "end " + who) << o.out;
    seen.insert(who);
  }
  EXPECT_EQ(seen.size(), 12u);
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 12);
}

TEST_F(ExecProgram, PathPartsAsInGnuParallel) {
  const auto o = exec({"-k", "echo", "{.}", "{/}", "{//}", "{/.}", ":::", "dir/sub/file.tar.gz", "plain", ".hidden"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "dir/sub/file.tar file.tar.gz dir/sub file.tar\nplain plain . plain\n.hidden .hidden . .hidden\n");
  const auto s = exec({"-k", "echo {1/.} {2} {1//}", ":::", "a/b.txt", ":::", "x y"});
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_EQ(s.out, "b x y a\n");
  const auto bad = exec({"echo", "{.}", ":::", "a", ":::", "b"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("name one: {1.}"), std::string::npos) << bad.err;
}

TEST_F(ExecProgram, TagPrefixesEveryLineWithItsInput) {
  const auto o = exec({"-k", "--tag", "printf", "%s\\n%s\\n", "{}", "second", ":::", "a b", "c"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "a b\ta b\na b\tsecond\nc\tc\nc\tsecond\n");
}

TEST_F(ExecProgram, AShellCommandNeverPastesItsInputIntoTheScript) {
  const auto o = exec({"-k", "echo {} | tr a-z A-Z", ":::", "abc", "it's; rm -rf nothing", "$(echo no)"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "ABC\nIT'S; RM -RF NOTHING\n$(ECHO NO)\n");
}

TEST_F(ExecProgram, FailuresExitWithOneAndAreSummarized) {
  const auto o = exec({"-k", "sh", "-c", "echo out $0; exit $0", ":::", "0", "3", "0"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.out, "out 0\nout 3\nout 0\n");
  EXPECT_NE(o.err.find("exited with code 3"), std::string::npos) << o.err;
}

TEST_F(ExecProgram, RetriesRunAFailedCommandAgain) {
  // Fails the first time for each input (it leaves a mark), succeeds the second.
  const std::string mark = (dir_ / "mark.").string();
  const std::string script = "if [ -e '" + mark + "'{} ]; then echo ok {}; else touch '" + mark + "'{}; exit 5; fi";
  const fs::path results = dir_ / "r.jsonl";
  const auto o = exec({"-k", "--retries", "1", "--results", results.string(), "--shell", script, ":::", "a", "b"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "ok a\nok b\n");
  for (const auto& r : parse_lines(slurp(results))) {
    EXPECT_EQ(r["status"], "ok");
    EXPECT_EQ(r["attempts"], 2);
  }
  // Without re-runs left, the failure stands.
  const auto p = exec({"--retries", "0", "--shell", "exit 4", ":::", "a"});
  EXPECT_EQ(p.exit_code, 1);
}

TEST_F(ExecProgram, HaltNowStopsAtTheFirstFailure) {
  std::vector<std::string> args{"-j1", "--halt", "now,fail=1", "sh", "-c", "echo $0; test $0 != 2", ":::"};
  for (int i = 0; i < 50; ++i) args.push_back(std::to_string(i));
  const auto o = exec(args);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(o.out.find("\n40\n"), std::string::npos) << "it went on after the failure";
  EXPECT_NE(o.err.find("halted (now)"), std::string::npos) << o.err;
}

TEST_F(ExecProgram, TimeoutKillsTheCommand) {
  const fs::path results = dir_ / "r.jsonl";
  const auto o = exec({"--timeout", "300ms", "--results", results.string(), "sleep", ":::", "20"});
  EXPECT_EQ(o.exit_code, 1);
  const auto lines = parse_lines(slurp(results));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["status"], "timeout");
}

TEST_F(ExecProgram, DryRunPrintsTheCommandsOnly) {
  const auto o = exec({"-n", "-k", "gzip", "-9", ":::", "a b", "c"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.out, "gzip -9 'a b'\ngzip -9 c\n");
}

TEST_F(ExecProgram, JoblogAndResumeFailed) {
  const fs::path log = dir_ / "j.tsv";
  const std::string flag = (dir_ / "fixed").string();
  const std::string script = "test {} != b || test -e '" + flag + "'";
  auto o = exec({"--joblog", log.string(), "--shell", script, ":::", "a", "b", "c"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_EQ(joblog_rows(log).size(), 3u);
  o = exec({"--joblog", log.string(), "--resume", "--shell", script, ":::", "a", "b", "c"});
  EXPECT_EQ(o.exit_code, 1) << "a failure skipped by --resume still counts";
  EXPECT_EQ(joblog_rows(log).size(), 3u);  // nothing ran again
  write("fixed", "");
  o = exec({"--joblog", log.string(), "--resume-failed", "--shell", script, ":::", "a", "b", "c"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  const auto rows = joblog_rows(log);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows.back()[kIndex], "1");
  EXPECT_EQ(rows.back()[kStatus], "ok");
}

TEST_F(ExecProgram, BadCommandLinesExitWith2AndSayWhy) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases{
      {{":::", "a"}, "no command given"},
      {{"--bogus", "echo", ":::", "a"}, "unknown option --bogus"},
      {{"echo", ":::"}, "::: is followed by no input"},
      {{"--halt", "later", "echo", ":::", "a"}, "--halt: expected never, soon or now"},
      {{"--halt", "now,success=1", "echo", ":::", "a"}, "halting on success is not supported"},
      {{"-j", "-1", "echo", ":::", "a"}, "-j/--jobs"},
      {{"-j", "lots", "echo", ":::", "a"}, "-j/--jobs: expected a number of processes"},
      {{"--retries", "x", "echo", ":::", "a"}, "--retries: expected a whole number"},
      {{"--timeout", "soon", "echo", ":::", "a"}, "--timeout"},
      {{"--results", "-", "echo", ":::", "a"}, "--results: standard output carries"},
      {{"--resume", "echo", ":::", "a"}, "needs a joblog"},
      {{"echo", "{2}", ":::", "a"}, "{2}: there is 1 input source"},
      {{"-t", "carrier-pigeon", "echo", ":::", "a"}, "-t/--transport"},
  };
  for (const auto& c : cases) {
    const auto o = exec(c.args);
    EXPECT_EQ(o.exit_code, 2) << c.says << "\n" << o.err;
    EXPECT_NE(o.err.find(c.says), std::string::npos) << "expected \"" << c.says << "\" in:\n" << o.err;
    EXPECT_EQ(o.out, "");
  }
}

}  // namespace
}  // namespace taskfarm::test
