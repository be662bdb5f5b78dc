#include "taskfarm/cli/job.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <cctype>
#include <cstdlib>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "json_path.hpp"
#include "suggest.hpp"
#include "taskfarm/cli/duration.hpp"
#include "taskfarm/cli/size.hpp"
#include "taskfarm/common/registry.hpp"

namespace taskfarm::cli {

namespace {

using json = nlohmann::json;

std::string join(const std::vector<std::string>& names) { return join_names(names); }

// " (did you mean "x"?)" when one of `known` is close to `word`.
std::string suggestion(std::string_view word, const std::vector<std::string>& known) {
  const std::string pick = nearest_name(word, known);
  return pick.empty() ? "" : " (did you mean \"" + pick + "\"?)";
}

const json& expect_object(const json& j, const std::string& path) {
  if (!j.is_object()) throw JobError(path, "expected an object, found " + describe_json(j));
  return j;
}

void check_keys(const json& obj, const std::string& path, const std::vector<std::string>& known) {
  for (const auto& [k, v] : obj.items()) {
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw JobError(path_key(path, k),
                     "unknown key" + suggestion(k, known) + "; expected one of: " + join(known));
  }
}

const json* field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::string expect_string(const json& j, const std::string& path) {
  if (!j.is_string()) throw JobError(path, "expected a string, found " + describe_json(j));
  return j.get<std::string>();
}

std::int64_t expect_int(const json& j, const std::string& path) {
  if (!j.is_number_integer() ||
      (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)))
    throw JobError(path, "expected an integer, found " + describe_json(j));
  return j.get<std::int64_t>();
}

std::uint64_t expect_count(const json& j, const std::string& path, std::uint64_t max, bool positive) {
  const char* what = positive ? "expected a positive integer" : "expected a non-negative integer";
  if (!j.is_number_integer()) throw JobError(path, std::string(what) + ", found " + describe_json(j));
  if (!j.is_number_unsigned() && j.get<std::int64_t>() < 0)
    throw JobError(path, std::string(what) + ", found " + j.dump());
  const auto v = j.get<std::uint64_t>();
  if (positive && v == 0) throw JobError(path, std::string(what) + ", found 0");
  if (v > max) throw JobError(path, "at most " + std::to_string(max) + " allowed, found " + j.dump());
  return v;
}

std::chrono::milliseconds expect_duration(const json& j, const std::string& path) {
  if (j.is_number_integer()) {
    if (!j.is_number_unsigned() && j.get<std::int64_t>() < 0)
      throw JobError(path, "a duration must not be negative, found " + j.dump());
    try {
      return parse_duration(std::to_string(j.get<std::uint64_t>()) + "ms");
    } catch (const std::invalid_argument& e) {  // more than 366 days
      throw JobError(path, e.what());
    }
  }
  if (!j.is_string())
    throw JobError(path, "expected a duration such as \"30s\" or an integer of milliseconds, found " +
                             describe_json(j));
  try {
    return parse_duration(j.get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw JobError(path, e.what());
  }
}

std::uint64_t expect_size(const json& j, const std::string& path) {
  if (j.is_number_integer()) {
    if (!j.is_number_unsigned() && j.get<std::int64_t>() < 0)
      throw JobError(path, "a size must not be negative, found " + j.dump());
    return j.get<std::uint64_t>();
  }
  if (!j.is_string())
    throw JobError(path, "expected a size such as \"512MiB\" or an integer of bytes, found " + describe_json(j));
  try {
    return parse_size(j.get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw JobError(path, e.what());
  }
}

const std::vector<std::string>& keys(const char* level) { return job_file_keys().at(level); }

// Every transport name; whether this build runs it is the Pool's to say (its
// ConfigError is reported like a job file error, before anything runs).
const std::vector<std::string>& transport_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (auto t : {Transport::pipe, Transport::socket, Transport::mqueue, Transport::shm})
      out.emplace_back(to_string(t));
    return out;
  }();
  return names;
}

PoolOptions parse_pool(const json& j, const std::string& path) {
  expect_object(j, path);
  check_keys(j, path, keys("pool"));
  PoolOptions o;
  if (auto* v = field(j, "workers")) o.workers = expect_count(*v, path_key(path, "workers"), kMaxWorkers, false);
  if (auto* v = field(j, "transport")) {
    const std::string p = path_key(path, "transport");
    const std::string name = expect_string(*v, p);
    const auto t = parse_transport(name);
    if (!t)
      throw JobError(p, "unknown transport \"" + name + "\"" + suggestion(name, transport_names()) +
                            "; expected one of: " + join(transport_names()));
    o.transport = *t;
  }
  if (auto* v = field(j, "start")) {
    const std::string p = path_key(path, "start");
    const std::string name = expect_string(*v, p);
    const auto s = parse_start(name);
    if (!s) throw JobError(p, "expected \"fork\" or \"spawn\", found \"" + name + "\"");
    o.start = *s;
  }
  if (auto* v = field(j, "task_timeout")) o.task_timeout = expect_duration(*v, path_key(path, "task_timeout"));
  if (auto* v = field(j, "max_retries"))
    o.max_retries = static_cast<unsigned>(expect_count(*v, path_key(path, "max_retries"), 1000, false));
  if (auto* v = field(j, "max_tasks_per_child"))
    o.max_tasks_per_child = expect_count(*v, path_key(path, "max_tasks_per_child"), UINT32_MAX, false);
  if (auto* v = field(j, "max_memory_per_child")) {
    const std::string p = path_key(path, "max_memory_per_child");
    const auto bytes = expect_size(*v, p);
    if (bytes != 0 && bytes < kMinMemoryPerChild)
      throw JobError(p, "expected 0 (no limit) or at least 1MiB, found " + v->dump() +
                            (v->is_number() ? " bytes (an integer counts bytes: write \"" + v->dump() + "MiB\"?)" : ""));
    o.max_memory_per_child = static_cast<std::size_t>(bytes);
  }
  return o;
}

bool expect_bool(const json& j, const std::string& path) {
  if (!j.is_boolean()) throw JobError(path, "expected true or false, found " + describe_json(j));
  return j.get<bool>();
}

void parse_range(const json& j, const std::string& path, InputSpec& in) {
  expect_object(j, path);
  check_keys(j, path, keys("range"));
  const json* stop_j = field(j, "stop");
  if (!stop_j) throw JobError(path, "missing \"stop\" (the range is [start, stop) by step)");
  in.start = field(j, "start") ? expect_int(j["start"], path_key(path, "start")) : 0;
  in.stop = expect_int(*stop_j, path_key(path, "stop"));
  in.step = field(j, "step")
                ? static_cast<std::int64_t>(expect_count(j["step"], path_key(path, "step"), INT64_MAX, true))
                : 1;
  if (in.stop <= in.start)
    throw JobError(path, "the range is empty: stop (" + std::to_string(in.stop) + ") must be greater than start (" +
                             std::to_string(in.start) + ")");
}

// A path in a job file: relative to the job file's directory.
std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
  return (base / p).lexically_normal();
}

void parse_lines(const json& j, const std::string& path, const std::filesystem::path& base, InputSpec& in) {
  if (j.is_string()) {
    in.file_text = j.get<std::string>();
  } else if (j.is_object()) {
    check_keys(j, path, keys("lines"));
    const json* file = field(j, "file");
    if (!file) throw JobError(path, "missing \"file\" (the file whose lines are the inputs)");
    in.file_text = expect_string(*file, path_key(path, "file"));
    if (auto* v = field(j, "json")) in.json_lines = expect_bool(*v, path_key(path, "json"));
    if (auto* v = field(j, "skip_empty")) in.skip_empty = expect_bool(*v, path_key(path, "skip_empty"));
  } else {
    throw JobError(path, "expected a file name or an object {\"file\": ..., \"json\": ..., \"skip_empty\": ...}, "
                         "found " + describe_json(j));
  }
  if (in.file_text.empty()) throw JobError(path, "expected a file name, found \"\"");
  in.file = in.file_text == "-" ? std::filesystem::path("-") : resolve(base, in.file_text);
}

void parse_glob(const json& j, const std::string& path, const std::filesystem::path& base, InputSpec& in) {
  if (j.is_string()) {
    in.pattern = j.get<std::string>();
  } else if (j.is_object()) {
    check_keys(j, path, keys("glob"));
    const json* pattern = field(j, "pattern");
    if (!pattern) throw JobError(path, "missing \"pattern\" (such as \"data/*.csv\")");
    in.pattern = expect_string(*pattern, path_key(path, "pattern"));
    if (auto* v = field(j, "absolute")) in.absolute = expect_bool(*v, path_key(path, "absolute"));
  } else {
    throw JobError(path, "expected a pattern such as \"data/*.csv\" or an object {\"pattern\": ..., \"absolute\": ...}, "
                         "found " + describe_json(j));
  }
  if (in.pattern.empty()) throw JobError(path, "expected a pattern, found \"\"");
  in.base_dir = base;
}

void parse_list(const json& j, const std::string& path, InputSpec& in) {
  if (!j.is_array()) throw JobError(path, "expected an array, found " + describe_json(j));
  if (j.empty()) throw JobError(path, "expected a non-empty array");
  in.list = std::make_shared<const json>(j);
}

// One input spec: an object with exactly one of the keys of `level` ("inputs",
// or "axis" inside a product).
InputSpec parse_inputs(const json& j, const std::string& path, const std::filesystem::path& base,
                       const nlohmann::ordered_json* ordered, const char* level) {
  expect_object(j, path);
  const auto& known = keys(level);
  check_keys(j, path, known);
  if (j.size() != 1)
    throw JobError(path, "expected exactly one of " + join(known) + ", found " +
                             (j.empty() ? std::string("none") : std::to_string(j.size())));
  InputSpec in;
  const auto first = j.begin();
  const std::string kind = first.key();
  const json& value = first.value();
  in.path = path_key(path, kind);
  if (kind == "list") {
    in.kind = InputKind::list;
    parse_list(value, in.path, in);
  } else if (kind == "range") {
    in.kind = InputKind::range;
    parse_range(value, in.path, in);
  } else if (kind == "lines") {
    in.kind = InputKind::lines;
    parse_lines(value, in.path, base, in);
  } else if (kind == "glob") {
    in.kind = InputKind::glob;
    parse_glob(value, in.path, base, in);
  } else {  // product
    in.kind = InputKind::product;
    expect_object(value, in.path);
    if (value.empty()) throw JobError(in.path, "expected at least one axis, such as {\"size\": [64, 128]}");
    std::vector<std::string> order;
    const nlohmann::ordered_json* ord = nullptr;
    if (ordered && ordered->is_object()) {
      auto it = ordered->find("product");
      if (it != ordered->end() && it->is_object()) ord = &*it;
    }
    if (ord) {
      for (const auto& [name, v] : ord->items()) order.push_back(name);
    } else {
      for (const auto& [name, v] : value.items()) order.push_back(name);
    }
    for (const auto& name : order) {
      const json& axis = value.at(name);
      const std::string apath = path_key(in.path, name);
      if (axis.is_array()) {  // the short form of {"list": [...]}
        InputSpec a;
        a.kind = InputKind::list;
        a.path = apath;
        parse_list(axis, apath, a);
        in.axes.emplace_back(name, std::move(a));
      } else if (axis.is_object()) {
        in.axes.emplace_back(name, parse_inputs(axis, apath, base, nullptr, "axis"));
      } else {
        throw JobError(apath, "expected the axis values: an array, or an object with one of " +
                                  join(keys("axis")) + ", found " + describe_json(axis));
      }
    }
  }
  return in;
}

OnError parse_on_error(const json& j, const std::string& path) {
  expect_object(j, path);
  check_keys(j, path, keys("on_error"));
  OnError o;
  if (auto* v = field(j, "halt")) {
    const std::string p = path_key(path, "halt");
    const std::string s = expect_string(*v, p);
    if (s == "continue")
      o.halt = Halt::never;
    else if (s == "soon")
      o.halt = Halt::soon;
    else if (s == "now")
      o.halt = Halt::now;
    else
      throw JobError(p, "expected \"continue\", \"soon\" or \"now\", found \"" + s + "\"");
  }
  if (auto* v = field(j, "fail")) {
    const std::string p = path_key(path, "fail");
    if (o.halt == Halt::never)
      throw JobError(p, "\"fail\" says when to halt, so it needs \"halt\": \"soon\" or \"now\"");
    if (v->is_number_integer()) {
      o.fail_count = expect_count(*v, p, UINT64_MAX, true);
    } else if (v->is_string()) {
      const std::string s = v->get<std::string>();
      char* end = nullptr;
      const double pct = s.size() >= 2 && s.back() == '%' && std::isdigit(static_cast<unsigned char>(s[0]))
                             ? std::strtod(s.c_str(), &end)
                             : -1;
      if (pct <= 0 || pct > 100 || end != s.c_str() + s.size() - 1)
        throw JobError(p, "expected a number of failures (such as 3) or a percentage of the inputs (such as "
                          "\"10%\", more than 0 and at most 100), found \"" + s + "\"");
      o.fail_percent = pct;
    } else {
      throw JobError(p, "expected a number of failures (such as 3) or a percentage (such as \"10%\"), found " +
                            describe_json(*v));
    }
  }
  return o;
}

JobSpec parse_one_job(const json& j, std::size_t index, const std::filesystem::path& base,
                      const nlohmann::ordered_json* ordered) {
  JobSpec job;
  job.path = path_index("jobs", index);
  job.base_dir = base;
  const std::string& path = job.path;
  expect_object(j, path);
  check_keys(j, path, keys("job"));

  const json* task = field(j, "task");
  if (!task) throw JobError(path, "missing \"task\" (the name of a registered task; `taskfarm tasks` lists them)");
  job.task = expect_string(*task, path_key(path, "task"));
  job.adapter = find_json_adapter(job.task);
  if (!job.adapter) {
    if (detail::Registry::instance().find(job.task))
      throw JobError(path_key(path, "task"),
                     "task \"" + job.task + "\" is registered but not JSON-callable (its argument and result "
                     "do not convert to JSON; define it with taskfarm::cli::JsonTask)");
    std::vector<std::string> names;
    for (const auto& a : json_adapters()) names.push_back(a->name);
    throw JobError(path_key(path, "task"), "no task named \"" + job.task + "\"" + suggestion(job.task, names) +
                                               "; JSON-callable tasks: " + join(names));
  }
  if (auto* v = field(j, "name")) {
    job.name = expect_string(*v, path_key(path, "name"));
    if (job.name.empty()) throw JobError(path_key(path, "name"), "expected a non-empty string");
  } else {
    job.name = job.task;
  }
  if (auto* v = field(j, "description")) (void)expect_string(*v, path_key(path, "description"));

  const json* inputs = field(j, "inputs");
  if (!inputs) throw JobError(path, "missing \"inputs\" (an object with one of " + join(keys("inputs")) + ")");
  const nlohmann::ordered_json* ord_inputs = nullptr;
  if (ordered && ordered->is_object()) {
    auto it = ordered->find("inputs");
    if (it != ordered->end()) ord_inputs = &*it;
  }
  job.inputs = parse_inputs(*inputs, path_key(path, "inputs"), base, ord_inputs, "inputs");

  if (auto* v = field(j, "args")) job.args = Template::compile(*v, path_key(path, "args"));
  if (auto* v = field(j, "chunksize"))
    job.chunksize = expect_count(*v, path_key(path, "chunksize"), 1'000'000, false);
  if (auto* v = field(j, "on_error")) job.on_error = parse_on_error(*v, path_key(path, "on_error"));
  if (auto* v = field(j, "retries"))
    job.retries = static_cast<unsigned>(expect_count(*v, path_key(path, "retries"), 1000, false));
  return job;
}

std::optional<std::filesystem::path> parse_output_path(const json& v, const std::string& p,
                                                       const std::filesystem::path& base, bool dash_ok) {
  const std::string s = expect_string(v, p);
  if (s.empty())
    throw JobError(p, std::string("expected a file path") + (dash_ok ? " (or \"-\" for standard output)" : "") +
                          ", found \"\"");
  if (s == "-") {
    if (!dash_ok) throw JobError(p, "expected a file path, found \"-\"");
    return std::nullopt;
  }
  return resolve(base, s);
}

OutputSpec parse_output(const json& j, const std::string& path, const std::filesystem::path& base_dir) {
  expect_object(j, path);
  check_keys(j, path, keys("output"));
  OutputSpec o;
  if (auto* v = field(j, "results")) o.results = parse_output_path(*v, path_key(path, "results"), base_dir, true);
  if (auto* v = field(j, "joblog")) o.joblog = parse_output_path(*v, path_key(path, "joblog"), base_dir, false);
  if (auto* v = field(j, "order")) {
    const std::string p = path_key(path, "order");
    const std::string s = expect_string(*v, p);
    if (s == "input")
      o.order = ResultOrder::input;
    else if (s == "completion")
      o.order = ResultOrder::completion;
    else
      throw JobError(p, "expected \"input\" or \"completion\", found \"" + s + "\"");
  }
  if (o.results && o.joblog && *o.results == *o.joblog)
    throw JobError(path_key(path, "joblog"), "the joblog and the results must be different files");
  return o;
}

// Where item `index` is, for an error about it.
std::string item_path(const JobSpec& job, std::uint64_t index) {
  if (job.inputs.kind == InputKind::list) return path_index(job.inputs.path, static_cast<std::size_t>(index));
  return job.inputs.path;
}

}  // namespace

const std::map<std::string, std::vector<std::string>>& job_file_keys() {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"", {"description", "pool", "jobs", "output"}},
      {"pool",
       {"workers", "transport", "start", "task_timeout", "max_retries", "max_tasks_per_child",
        "max_memory_per_child"}},
      {"job", {"name", "task", "description", "inputs", "args", "chunksize", "on_error", "retries"}},
      {"inputs", {"list", "range", "lines", "glob", "product"}},
      {"axis", {"list", "range", "lines", "glob"}},
      {"range", {"start", "stop", "step"}},
      {"lines", {"file", "json", "skip_empty"}},
      {"glob", {"pattern", "absolute"}},
      {"on_error", {"halt", "fail"}},
      {"output", {"results", "joblog", "order"}},
  };
  return table;
}

JobFile parse_job(const json& doc, const std::filesystem::path& base_dir, const nlohmann::ordered_json* ordered) {
  if (!doc.is_object()) throw JobError("", "a job file must be a JSON object, found " + describe_json(doc));
  check_keys(doc, "", keys(""));
  JobFile f;
  f.base_dir = base_dir;
  if (auto* v = field(doc, "description")) (void)expect_string(*v, "description");
  if (auto* v = field(doc, "pool")) f.pool = parse_pool(*v, "pool");
  const json* jobs = field(doc, "jobs");
  if (!jobs) throw JobError("", "missing \"jobs\" (an array of jobs)");
  if (!jobs->is_array()) throw JobError("jobs", "expected an array, found " + describe_json(*jobs));
  if (jobs->empty()) throw JobError("jobs", "expected at least one job");
  const nlohmann::ordered_json* ord_jobs = nullptr;
  if (ordered && ordered->is_object()) {
    auto it = ordered->find("jobs");
    if (it != ordered->end() && it->is_array() && it->size() == jobs->size()) ord_jobs = &*it;
  }
  for (std::size_t i = 0; i < jobs->size(); ++i) {
    f.jobs.push_back(parse_one_job((*jobs)[i], i, base_dir, ord_jobs ? &(*ord_jobs)[i] : nullptr));
    for (std::size_t k = 0; k < i; ++k)
      if (f.jobs[k].name == f.jobs[i].name)
        throw JobError(f.jobs[i].path + (field((*jobs)[i], "name") ? ".name" : ""),
                       "the job name \"" + f.jobs[i].name + "\" is already used by " + f.jobs[k].path +
                           " (a job without \"name\" is named after its task; give each job its own name)");
  }
  if (auto* v = field(doc, "output")) f.output = parse_output(*v, "output", base_dir);
  return f;
}

JobFile parse_job_text(std::string_view text, const std::filesystem::path& base_dir) {
  json doc;
  // "line L, column C" of the 0-based offset `stop` in the text.
  const auto position = [text](std::size_t stop) {
    stop = std::min(stop, text.size());
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < stop; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    return "line " + std::to_string(line) + ", column " + std::to_string(column);
  };
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based offset of the character where parsing stopped.
    std::string detail = e.what();
    if (auto p = detail.find(": "); p != std::string::npos) detail.erase(0, p + 2);
    throw JobError("", "invalid JSON at " + position(e.byte == 0 ? 0 : e.byte - 1) + ": " + detail);
  } catch (const json::exception& e) {
    // Well-formed, but a value JSON cannot hold: a number too large for a
    // double ("1e999" is out_of_range.406, "number overflow parsing '1e999'").
    std::string detail = e.what();
    if (auto p = detail.find("] "); p != std::string::npos) detail.erase(0, p + 2);
    std::string at;
    if (const auto q = detail.find('\''); q != std::string::npos) {
      const auto q2 = detail.find('\'', q + 1);
      if (q2 != std::string::npos && q2 > q + 1)
        if (const auto where = text.find(detail.substr(q + 1, q2 - q - 1)); where != std::string_view::npos)
          at = " at " + position(where);
    }
    throw JobError("", "invalid JSON" + at + ": " + detail);
  }
  // The key order matters only for the axes of a product.
  if (text.find("\"product\"") != std::string_view::npos) {
    const auto ordered = nlohmann::ordered_json::parse(text.begin(), text.end());
    return parse_job(doc, base_dir, &ordered);
  }
  return parse_job(doc, base_dir);
}

JobFile load_job_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw JobError("", "cannot open the job file: " + std::error_code(errno, std::generic_category()).message());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw JobError("", "cannot read the job file");
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) throw JobError("", "cannot read the job file: it is a directory");
  const auto base = std::filesystem::absolute(file, ec).parent_path().lexically_normal();
  return parse_job_text(text.str(), base);
}

json expand_argument(const JobSpec& job, const json& item, std::uint64_t index) {
  return job.args ? job.args->expand(item, static_cast<std::size_t>(index)) : item;
}

void encode_argument(const JobSpec& job, json arg, const json& item, std::uint64_t index, const std::string& where,
                     std::vector<std::byte>& out) {
  const std::size_t mark = out.size();
  try {
    if (job.adapter->prepare) job.adapter->prepare(arg, job.base_dir);
    job.adapter->encode(arg, out);
  } catch (const std::exception& e) {
    out.resize(mark);
    std::string what = "input #" + std::to_string(index);
    if (!where.empty() && job.inputs.kind != InputKind::list) what += " (" + where + ")";
    std::string at;
    if (job.args) {
      at = job.path + ".args";
      what += " (" + describe_json(item) + ") gives the argument " + describe_json(arg) + ", but";
    } else {
      at = item_path(job, index);
      what += " is not a valid argument:";
    }
    throw JobError(at, what + " task \"" + job.task + "\" takes " + job.adapter->arg_shape + ": " + e.what());
  }
}

InputCheck check_inputs(const JobSpec& job) {
  InputCheck c;
  // A stream can be read only once: the run reads it, validation must not.
  // Its items are checked as they are read (a bad one fails alone).
  for (const auto& [name, axis] : job.inputs.axes)
    if (axis.streamed())
      throw JobError(axis.path, "an axis of a product is read many times, so it cannot be a stream (" +
                                    json(axis.file_text).dump() + " is not a regular file): write it to a file first");
  if (job.inputs.streamed()) {
    if (job.on_error.fail_percent > 0) {
      std::string p = job.inputs.path;
      if (const auto dot = p.rfind(".inputs"); dot != std::string::npos) p.erase(dot);
      throw JobError(p + ".on_error.fail", "a percentage of the inputs needs their number, and " +
                                                json(job.inputs.file_text).dump() +
                                                " is a stream (not a regular file): give a number of failures instead");
    }
    c.streamed = true;
    return c;
  }
  c.total = job.inputs.size();
  auto cursor = job.inputs.open();
  const bool whole_list = job.inputs.kind == InputKind::list;
  std::vector<std::byte> scratch;
  json item;
  std::string problem;
  std::uint64_t index = 0;
  auto check_one = [&](const json& it, std::uint64_t i, const std::string& where) {
    scratch.clear();
    encode_argument(job, expand_argument(job, it, i), it, i, where, scratch);
    ++c.checked;
  };
  for (; whole_list || index < kCheckedPrefix; ++index) {
    const auto n = cursor->next_wait(item, problem);
    if (n == InputCursor::Next::end) break;
    if (n == InputCursor::Next::bad) throw JobError(job.inputs.path, "input #" + std::to_string(index) + ": " + problem);
    check_one(item, index, cursor->where());
  }
  if (index == 0) {
    std::string what = "no inputs";
    if (job.inputs.kind == InputKind::lines)
      what = "no inputs: " + json(job.inputs.file_text).dump() + " has no " +
             (job.inputs.skip_empty ? "non-empty " : "") + "lines";
    throw JobError(job.inputs.path, what);
  }
  // The far end of a range or a product: arithmetic in templates overflows
  // there first.
  if (c.total && *c.total > index &&
      (job.inputs.kind == InputKind::range || job.inputs.kind == InputKind::product)) {
    const std::uint64_t last = *c.total - 1;
    json last_item;
    if (job.inputs.kind == InputKind::range) {
      last_item = static_cast<std::int64_t>(static_cast<std::uint64_t>(job.inputs.start) +
                                            last * static_cast<std::uint64_t>(job.inputs.step));
    } else {
      last_item = json::object();
      for (const auto& [name, axis] : job.inputs.axes) {
        auto ac = axis.open();
        json v, lastv;
        std::string p;
        while (ac->next(v, p) == InputCursor::Next::item) lastv = std::move(v);
        last_item[name] = lastv;
      }
    }
    check_one(last_item, last, "");
  }
  return c;
}

}  // namespace taskfarm::cli
