// `taskfarm exec` (see exec_command.hpp).

#include "exec_command.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "suggest.hpp"
#include "taskfarm/cli/cli.hpp"
#include "taskfarm/cli/duration.hpp"
#include "taskfarm/cli/exec.hpp"

namespace taskfarm::cli {

namespace {

using json = nlohmann::json;

constexpr const char* kExecExamples = R"(
  taskfarm exec [OPTIONS] COMMAND [ARG...] ::: A B C [::: X Y]
  taskfarm exec [OPTIONS] COMMAND [ARG...] :::: FILE
  producer | taskfarm exec [OPTIONS] COMMAND [ARG...]

Inputs, after the command:
  ::: A B C          the words A, B and C (several ::: groups: every combination)
  :::: FILE          the lines of FILE (- for standard input)
  (neither)          the lines of standard input, read as they come

Placeholders in COMMAND and ARGs: {} the input, {1} {2} ... the input of each
group, {#} the index (from 0); with none, the inputs are the last arguments.
A COMMAND given as one word with spaces or shell syntax ('gzip -9 {} && ls')
runs with /bin/sh, its inputs passed as "$1", "$2" ..., never pasted into it.

Examples:
  taskfarm exec -j4 gzip -9 ::: *.log                  compress in 4 processes
  taskfarm exec convert {} {}.png ::: a.jpg b.jpg      placeholders in arguments
  taskfarm exec -k echo {1}-{2} ::: a b ::: 1 2        a-1 a-2 b-1 b-2, in input order
  find . -name '*.csv' | taskfarm exec --bar wc -l     lines of standard input, with a progress bar
  taskfarm exec --joblog j.tsv --retries 2 ./sim :::: seeds.txt
  taskfarm exec --resume --joblog j.tsv ./sim :::: seeds.txt   run what is left

Each command's output is printed whole when it ends (never mixed with
another's), in completion order, or in input order with -k. Exit codes: 0 all
succeeded, 1 some failed, 2 bad command line (nothing ran), 130 interrupted.)";

[[noreturn]] void bad(const std::string& option, const std::string& what) {
  throw std::invalid_argument(option + ": " + what);
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::uint64_t parse_count(const std::string& s, const std::string& option, std::uint64_t max) {
  std::uint64_t n = 0;
  if (const std::string problem = count_problem(s, max, n); !problem.empty()) bad(option, problem);
  return n;
}

// -j N (0: one per CPU) or N% of the CPUs.
std::size_t parse_jobs(const std::string& s) {
  if (s.size() >= 2 && s.back() == '%') {
    const std::string digits = s.substr(0, s.size() - 1);
    if (!all_digits(digits)) bad("-j/--jobs", "expected a number of processes or a percentage of the CPUs (such as 50%), found \"" + s + "\"");
    const auto pct = parse_count(digits, "-j/--jobs", 100000);
    const auto cpus = std::max<std::size_t>(1, std::thread::hardware_concurrency());
    return std::clamp<std::size_t>(static_cast<std::size_t>((cpus * pct + 99) / 100), 1, kMaxWorkers);
  }
  if (!all_digits(s))
    bad("-j/--jobs", "expected a number of processes (0 = one per CPU) or a percentage of the CPUs (such as 50%), "
                     "found \"" + s + "\"");
  return static_cast<std::size_t>(parse_count(s, "-j/--jobs", kMaxWorkers));
}

// GNU parallel's --halt: now|soon[,fail=N|N%], never, and its old 0, 1, 2.
OnError parse_halt(const std::string& s) {
  OnError e;
  const auto fail_usage = [&] {
    bad("--halt", "expected never, soon or now, optionally with ,fail=N or ,fail=N% (such as soon,fail=3 or "
                  "now,fail=10%), found \"" + s + "\"");
  };
  if (s == "never" || s == "0") return e;
  if (s == "1" || s == "2") {  // GNU parallel's old numbers: halt after the first failure
    e.halt = s == "1" ? Halt::soon : Halt::now;
    return e;
  }
  const auto comma = s.find(',');
  const std::string when = s.substr(0, comma);
  if (when == "soon")
    e.halt = Halt::soon;
  else if (when == "now")
    e.halt = Halt::now;
  else
    fail_usage();
  if (comma == std::string::npos) return e;
  const std::string rest = s.substr(comma + 1);
  if (rest.rfind("success=", 0) == 0)
    bad("--halt", "halting on success is not supported; only fail=N or fail=N% (found \"" + s + "\")");
  if (rest.rfind("fail=", 0) != 0) fail_usage();
  std::string n = rest.substr(5);
  if (!n.empty() && n.back() == '%') {
    n.pop_back();
    char* end = nullptr;
    const double pct = all_digits(n.substr(0, n.find('.'))) ? std::strtod(n.c_str(), &end) : -1;
    if (pct <= 0 || pct > 100 || end != n.c_str() + n.size()) fail_usage();
    e.fail_percent = pct;
  } else {
    if (!all_digits(n)) fail_usage();
    e.fail_count = parse_count(n, "--halt", UINT64_MAX);
    if (e.fail_count == 0) bad("--halt", "fail=0 would halt before anything failed; use fail=1 or more");
  }
  return e;
}

// A placeholder of a word: its body ("", "#", "2", "= ... =") when word[i]
// opens one, else nullopt.
// The path part suffix of a placeholder body ("/.", "//", "/", "."), or "".
std::string_view path_suffix(std::string_view body) {
  for (std::string_view suffix : {"/.", "//", "/", "."})
    if (body.size() >= suffix.size() && body.substr(body.size() - suffix.size()) == suffix) return suffix;
  return {};
}

// A placeholder of a word: its body ("", "#", "2", "1/.", "= ... =") when
// word[i] opens one, else nullopt.
std::optional<std::string> placeholder_at(const std::string& w, std::size_t i) {
  if (w[i] != '{' || (i + 1 < w.size() && w[i + 1] == '{')) return std::nullopt;
  if (w.compare(i, 2, "{=") == 0) {
    const auto end = w.find("=}", i + 2);
    if (end == std::string::npos) return std::nullopt;
    return w.substr(i + 1, end + 1 - (i + 1));
  }
  const auto close = w.find('}', i);
  if (close == std::string::npos) return std::nullopt;
  std::string body = w.substr(i + 1, close - i - 1);
  if (body == "#") return body;
  const std::string_view ref = std::string_view(body).substr(0, body.size() - path_suffix(body).size());
  if (ref.empty() || all_digits(std::string(ref))) return body;
  return std::nullopt;
}

bool has_placeholder(const std::vector<std::string>& words) {
  for (const auto& w : words)
    for (std::size_t i = 0; i < w.size(); ++i)
      if (placeholder_at(w, i)) return true;
  return false;
}

// Rewrites the placeholders of `w` with `rewrite(body)` and makes every other
// brace literal for the template ({{ and }} stay as they are).
template <class Rewrite>
std::string rewrite_word(const std::string& w, Rewrite rewrite) {
  std::string out;
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (auto body = placeholder_at(w, i)) {
      out += rewrite(*body);
      i += body->size() + 1;
      continue;
    }
    if ((w[i] == '{' || w[i] == '}') && i + 1 < w.size() && w[i + 1] == w[i]) {
      out.append(2, w[i]);
      ++i;
      continue;
    }
    if (w[i] == '{' || w[i] == '}') {
      out.append(2, w[i]);
      continue;
    }
    out += w[i];
  }
  return out;
}

std::size_t group_number(const std::string& body, std::size_t groups) {
  std::size_t n = 0;
  std::from_chars(body.data(), body.data() + body.size(), n);
  if (n == 0 || n > groups)
    throw std::invalid_argument("{" + body + "}: there " +
                                (groups == 1 ? std::string("is 1 input source") : "are " + std::to_string(groups) + " input sources") +
                                " ({1}" + (groups > 1 ? " to {" + std::to_string(groups) + "}" : std::string()) + ")");
  return n;
}

bool looks_like_shell(const std::string& word) {
  return word.find_first_of(" \t\n;|&<>()$`'\"*?[]~=") != std::string::npos;
}

std::string joined(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) {
    if (!s.empty()) s += ' ';
    s += w;
  }
  return s;
}

InputSpec group_spec(const ExecInputs::Group& g, std::size_t number, std::size_t groups) {
  InputSpec spec;
  const std::string label = groups > 1 ? " (input source " + std::to_string(number) + ")" : std::string();
  if (g.kind == ExecInputs::Kind::values) {
    spec.kind = InputKind::list;
    spec.path = ":::" + label;
    json list = json::array();
    for (const auto& v : g.values) list.push_back(v);
    spec.list = std::make_shared<const json>(std::move(list));
    return spec;
  }
  spec.kind = InputKind::lines;
  const std::string& name = g.values.front();
  spec.path = "::::" + label;
  spec.file_text = name == "-" ? std::string("standard input") : name;
  spec.file = name == "-" ? std::filesystem::path("-") : std::filesystem::absolute(name);
  spec.skip_empty = false;  // an empty line is an empty argument, as in GNU parallel
  return spec;
}

}  // namespace

ExecInputs split_exec_words(const std::vector<std::string>& words) {
  ExecInputs in;
  std::size_t i = 0;
  if (!words.empty() && words[0] == "--") {
    i = 1;  // "--" ends our options: what follows is the command, even if it starts with '-'
  } else if (!words.empty() && words[0].size() > 1 && words[0][0] == '-' && words[0] != ":::" && words[0] != "::::") {
    throw std::invalid_argument("unknown option " + words[0] +
                                " (options go before the command; taskfarm exec --help lists them)");
  }
  for (; i < words.size() && words[i] != ":::" && words[i] != "::::"; ++i) in.command.push_back(words[i]);
  if (in.command.empty())
    throw std::invalid_argument("no command given: write the command before ::: or :::: (taskfarm exec echo {} ::: a b)");
  while (i < words.size()) {
    ExecInputs::Group g;
    g.kind = words[i] == ":::" ? ExecInputs::Kind::values : ExecInputs::Kind::file;
    const std::string sep = words[i++];
    std::vector<std::string> values;
    for (; i < words.size() && words[i] != ":::" && words[i] != "::::"; ++i) values.push_back(words[i]);
    if (values.empty())
      throw std::invalid_argument(sep == ":::" ? "::: is followed by no input (write the inputs after it: ::: a b c)"
                                               : ":::: is followed by no file (write a file name after it, - for "
                                                 "standard input)");
    if (g.kind == ExecInputs::Kind::values) {
      g.values = std::move(values);
      in.groups.push_back(std::move(g));
    } else {
      for (auto& f : values) {  // each file is an input source of its own
        ExecInputs::Group one;
        one.kind = ExecInputs::Kind::file;
        one.values.push_back(std::move(f));
        in.groups.push_back(std::move(one));
      }
    }
  }
  std::size_t stdin_files = 0;
  for (const auto& g : in.groups)
    if (g.kind == ExecInputs::Kind::file && g.values.front() == "-") ++stdin_files;
  if (stdin_files > 1) throw std::invalid_argument(":::: - (standard input) can be given only once");
  return in;
}

json exec_template(const ExecInputs& in, bool shell) {
  const std::size_t groups = std::max<std::size_t>(1, in.groups.size());
  const bool any = has_placeholder(in.command);
  // A placeholder as the job file's template writes it: {} and {1} ... (one
  // source: {1} is {}), with its path suffix.
  auto normalized = [&](const std::string& body) -> std::string {
    const std::string_view suffix = path_suffix(body);
    const std::string ref = body.substr(0, body.size() - suffix.size());
    if (ref.empty() && groups > 1 && !suffix.empty())
      throw std::invalid_argument("{" + body + "}: with several input sources, name one: {1" + std::string(suffix) +
                                  "}, {2" + std::string(suffix) + "}, ...");
    if (ref.empty() || groups == 1) {
      if (!ref.empty()) (void)group_number(ref, groups);
      return "{" + std::string(suffix) + "}";
    }
    return "{" + std::to_string(group_number(ref, groups)) + std::string(suffix) + "}";
  };
  auto all_groups = [&](const char* sep) {
    std::string all;
    for (std::size_t g = 1; g <= groups; ++g) all += (g > 1 ? sep : "") + ("{" + std::to_string(g) + "}");
    return all;
  };
  json argv = json::array();
  if (!shell) {
    for (const auto& w : in.command) {
      if (groups > 1 && w == "{}") {  // all inputs, as separate arguments
        for (std::size_t g = 1; g <= groups; ++g) argv.push_back("{" + std::to_string(g) + "}");
        continue;
      }
      argv.push_back(rewrite_word(w, [&](const std::string& body) -> std::string {
        if (body == "#" || body.front() == '=') return "{" + body + "}";
        if (body.empty() && groups > 1) return all_groups(" ");
        return normalized(body);
      }));
    }
    if (!any) {
      if (groups == 1)
        argv.push_back("{}");
      else
        for (std::size_t g = 1; g <= groups; ++g) argv.push_back("{" + std::to_string(g) + "}");
    }
    return json{{"argv", argv}};
  }
  // A shell script: the inputs are its positional parameters, $1 ... $G for
  // the sources, then one more for each path part ({.}, {2/}, ...) it uses.
  std::vector<std::string> positional;
  for (std::size_t g = 1; g <= groups; ++g) positional.push_back(groups == 1 ? "{}" : "{" + std::to_string(g) + "}");
  auto param = [](std::size_t n) {
    return n < 10 ? "\"$" + std::to_string(n) + "\"" : "\"${{" + std::to_string(n) + "}}\"";
  };
  std::string script = rewrite_word(joined(in.command), [&](const std::string& body) -> std::string {
    if (body == "#" || body.front() == '=') return "{" + body + "}";  // digits: safe to paste
    if (body.empty()) return groups == 1 ? param(1) : "\"$@\"";
    const std::string ref = normalized(body);
    const auto at = std::find(positional.begin(), positional.end(), ref);
    if (at != positional.end()) return param(static_cast<std::size_t>(at - positional.begin()) + 1);
    positional.push_back(ref);
    return param(positional.size());
  });
  if (!any) script += " \"$@\"";
  if (positional.size() > groups && script.find("\"$@\"") != std::string::npos)
    throw std::invalid_argument("a shell command cannot use both {} (all inputs, \"$@\") and path parts such as "
                                "{1.}: name each input instead ({1} {2} ...)");
  argv.push_back(script);
  for (const auto& p : positional) argv.push_back(p);
  return json{{"argv", argv}, {"shell", true}};
}

CLI::App* add_exec_command(CLI::App& app, ExecArgs& a) {
  auto* cmd = app.add_subcommand("exec", "Run a command once per input, like GNU parallel (no job file)");
  a.app = cmd;
  cmd->prefix_command();  // the command and its inputs are not options of ours
  cmd->footer(kExecExamples);
  cmd->add_option("-j,--jobs", a.jobs, "Processes running commands at once (0 = one per CPU, default; or N% of the CPUs)");
  cmd->add_option("--joblog", a.joblog, "Joblog file (TSV, GNU parallel's columns plus ours), needed by --resume");
  auto* resume = cmd->add_flag("--resume", a.resume, "Run only the inputs the joblog does not show as run");
  auto* resume_failed =
      cmd->add_flag("--resume-failed", a.resume_failed, "Like --resume, and run again those that failed");
  resume->excludes(resume_failed);
  cmd->add_option("--retries", a.retries, "Re-runs of a command that failed (non-zero exit, signal, timeout)");
  cmd->add_option("--timeout", a.timeout, "Kill a command (and its process group) after this long: 30s, 500ms, 2m");
  cmd->add_option("--halt", a.halt, "Stop after failures: now|soon[,fail=N|N%] (default: never)");
  cmd->add_flag("-k,--keep-order", a.keep_order, "Print outputs in input order (default: as commands end)");
  cmd->add_flag("--bar", a.bar, "Progress bar on standard error");
  cmd->add_flag("--eta", a.eta, "Progress line with the estimated time left on standard error");
  cmd->add_flag("-n,--dry-run", a.dry_run, "Print the commands that would run; run nothing");
  cmd->add_option("--results", a.results, "Also write each command's result as JSON Lines to FILE");
  cmd->add_flag("--tag", a.tag, "Prefix each output line with its input and a tab");
  cmd->add_option("-t,--transport", a.transport, "Transport: pipe, socket, mqueue or shm");
  cmd->add_flag("--shell", a.shell, "Run COMMAND and ARGs as one /bin/sh script (inputs as \"$1\" ...)");
  return cmd;
}

int run_exec_command(const ExecArgs& a, const std::vector<std::string>& argv, std::ostream& log) {
  JobFile jf;
  RunOptions ro;
  try {
    const ExecInputs in = split_exec_words(a.app->remaining());
    const bool shell = a.shell || (in.command.size() == 1 && looks_like_shell(in.command.front()));
    json tmpl = exec_template(in, shell);
    tmpl["output_limit"] = kMaxOutputLimit;
    if (!a.timeout.empty() && a.timeout != "0") {
      try {
        tmpl["timeout"] = parse_duration(a.timeout).count();
      } catch (const std::invalid_argument& e) {
        bad("--timeout", e.what());
      }
    }
    const auto cwd = std::filesystem::current_path();
    jf.base_dir = cwd;
    if (!a.jobs.empty()) jf.pool.workers = parse_jobs(a.jobs);
    if (!a.transport.empty()) {
      const auto t = parse_transport(a.transport);
      if (!t) bad("-t/--transport", "expected pipe, socket, mqueue or shm, found \"" + a.transport + "\"");
      jf.pool.transport = *t;
    }
    JobSpec job;
    job.path = "exec";
    job.name = "exec";
    job.task = "exec";
    job.adapter = find_json_adapter("exec");
    if (!job.adapter) throw std::logic_error("the exec task is not linked in");
    job.base_dir = cwd;
    job.chunksize = 1;
    if (in.groups.empty()) {
      ExecInputs::Group g;
      g.kind = ExecInputs::Kind::file;
      g.values = {"-"};
      job.inputs = group_spec(g, 1, 1);
      job.inputs.path = "standard input";
      if (::isatty(STDIN_FILENO) == 1 && !a.dry_run)
        log << "taskfarm exec: reading inputs from the terminal, one per line (Ctrl-D ends them); give them "
               "after ::: or :::: instead\n";
    } else if (in.groups.size() == 1) {
      job.inputs = group_spec(in.groups.front(), 1, 1);
    } else {
      job.inputs.kind = InputKind::product;
      job.inputs.path = "inputs";
      for (std::size_t g = 0; g < in.groups.size(); ++g)
        job.inputs.axes.emplace_back(std::to_string(g + 1), group_spec(in.groups[g], g + 1, in.groups.size()));
    }
    try {
      job.args = Template::compile(tmpl, "COMMAND");
    } catch (const JobError& e) {
      throw std::invalid_argument(e.what());
    }
    if (!a.halt.empty()) job.on_error = parse_halt(a.halt);
    if (!a.retries.empty()) job.retries = static_cast<unsigned>(parse_count(a.retries, "--retries", 1000));
    jf.jobs.push_back(std::move(job));
    if (!a.results.empty()) {
      if (a.results == "-")
        bad("--results", "standard output carries the commands' output; give a file name (results.jsonl)");
      jf.output.results = std::filesystem::absolute(a.results).lexically_normal();
    }
    if (!a.joblog.empty()) {
      if (a.joblog == "-") bad("--joblog", "expected a file name");
      jf.output.joblog = std::filesystem::absolute(a.joblog).lexically_normal();
      ro.joblog = a.joblog;
    }
    jf.output.order = a.keep_order ? ResultOrder::input : ResultOrder::completion;
  } catch (const std::invalid_argument& e) {
    log << "taskfarm exec: " << e.what() << "\n";
    return kExitUsage;
  }
  ro.job = &jf;
  ro.no_results = !jf.output.results;
  ro.command_output = true;
  ro.tag = a.tag;
  ro.dry_run = a.dry_run;
  ro.progress = a.bar || a.eta ? ProgressMode::always : ProgressMode::never;
  ro.progress_bar = a.bar;
  if (a.resume) ro.resume = Resume::unfinished;
  if (a.resume_failed) ro.resume = Resume::failed;
  ro.command_line = argv;
  return run_job_file("exec", ro, log);
}

}  // namespace taskfarm::cli
