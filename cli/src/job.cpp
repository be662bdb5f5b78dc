#include "taskfarm/cli/job.hpp"

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "json_path.hpp"
#include "taskfarm/cli/duration.hpp"
#include "taskfarm/common/registry.hpp"

namespace taskfarm::cli {

namespace {

using json = nlohmann::json;

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// " (did you mean "x"?)" when one of `known` is close to `word`: at most two
// edits away, or one a prefix of the other ("chunk" for "chunksize").
std::string suggestion(std::string_view word, const std::vector<std::string>& known) {
  std::size_t best = 3;
  std::string pick;
  for (const auto& k : known) {
    const std::string_view a = word.size() < k.size() ? word : std::string_view(k);
    const std::string_view b = word.size() < k.size() ? std::string_view(k) : word;
    const bool prefix = a.size() >= 3 && b.substr(0, a.size()) == a;
    const std::size_t d = prefix ? 1 : edit_distance(word, k);
    if (d < best) {
      best = d;
      pick = k;
    }
  }
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
    return parse_duration(std::to_string(j.get<std::uint64_t>()) + "ms");
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
  check_keys(j, path, {"workers", "transport", "start", "task_timeout", "max_retries", "max_tasks_per_child"});
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
  return o;
}

void parse_range(const json& j, const std::string& path, std::vector<json>& out) {
  expect_object(j, path);
  check_keys(j, path, {"start", "stop", "step"});
  const json* stop_j = field(j, "stop");
  if (!stop_j) throw JobError(path, "missing \"stop\" (the range is [start, stop) by step)");
  const std::int64_t start = field(j, "start") ? expect_int(j["start"], path_key(path, "start")) : 0;
  const std::int64_t stop = expect_int(*stop_j, path_key(path, "stop"));
  const std::int64_t step = field(j, "step")
                                ? static_cast<std::int64_t>(expect_count(j["step"], path_key(path, "step"),
                                                                         INT64_MAX, true))
                                : 1;
  if (stop <= start)
    throw JobError(path, "the range is empty: stop (" + std::to_string(stop) + ") must be greater than start (" +
                             std::to_string(start) + ")");
  // stop > start, so the unsigned difference is exact even across the int64 range.
  const std::uint64_t span = static_cast<std::uint64_t>(stop) - static_cast<std::uint64_t>(start);
  const std::uint64_t ustep = static_cast<std::uint64_t>(step);
  const std::uint64_t count = (span - 1) / ustep + 1;
  if (count > kMaxInputsPerJob)
    throw JobError(path, "the range has " + std::to_string(count) + " items; at most " +
                             std::to_string(kMaxInputsPerJob) + " per job");
  out.reserve(static_cast<std::size_t>(count));
  for (std::uint64_t i = 0; i < count; ++i)
    out.emplace_back(static_cast<std::int64_t>(static_cast<std::uint64_t>(start) + i * ustep));
}

JobSpec parse_one_job(const json& j, std::size_t index) {
  JobSpec job;
  job.path = path_index("jobs", index);
  const std::string& path = job.path;
  expect_object(j, path);
  check_keys(j, path, {"name", "task", "inputs", "args", "chunksize", "description"});

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
  if (!inputs) throw JobError(path, "missing \"inputs\" (an object with \"list\" or \"range\")");
  const std::string ipath = path_key(path, "inputs");
  expect_object(*inputs, ipath);
  check_keys(*inputs, ipath, {"list", "range"});
  if (inputs->size() != 1) throw JobError(ipath, "expected exactly one of \"list\" or \"range\"");
  if (auto* list = field(*inputs, "list")) {
    const std::string lpath = path_key(ipath, "list");
    if (!list->is_array()) throw JobError(lpath, "expected an array, found " + describe_json(*list));
    if (list->empty()) throw JobError(lpath, "expected a non-empty array");
    if (list->size() > kMaxInputsPerJob)
      throw JobError(lpath, "at most " + std::to_string(kMaxInputsPerJob) + " items per job");
    job.inputs.assign(list->begin(), list->end());
    job.inputs_are_list = true;
  } else {
    parse_range((*inputs)["range"], path_key(ipath, "range"), job.inputs);
  }

  if (auto* v = field(j, "args")) job.args = Template::compile(*v, path_key(path, "args"));
  if (auto* v = field(j, "chunksize"))
    job.chunksize = expect_count(*v, path_key(path, "chunksize"), kMaxInputsPerJob, false);
  return job;
}

OutputSpec parse_output(const json& j, const std::string& path, const std::filesystem::path& base_dir) {
  expect_object(j, path);
  check_keys(j, path, {"results", "order"});
  OutputSpec o;
  if (auto* v = field(j, "results")) {
    const std::string p = path_key(path, "results");
    const std::string s = expect_string(*v, p);
    if (s.empty()) throw JobError(p, "expected a file path (or \"-\" for standard output), found \"\"");
    if (s != "-") o.results = base_dir / s;
  }
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
  return o;
}

}  // namespace

JobFile parse_job(const json& doc, const std::filesystem::path& base_dir) {
  if (!doc.is_object()) throw JobError("", "a job file must be a JSON object, found " + describe_json(doc));
  check_keys(doc, "", {"pool", "jobs", "output", "description"});
  JobFile f;
  if (auto* v = field(doc, "description")) (void)expect_string(*v, "description");
  if (auto* v = field(doc, "pool")) f.pool = parse_pool(*v, "pool");
  const json* jobs = field(doc, "jobs");
  if (!jobs) throw JobError("", "missing \"jobs\" (an array of jobs)");
  if (!jobs->is_array()) throw JobError("jobs", "expected an array, found " + describe_json(*jobs));
  if (jobs->empty()) throw JobError("jobs", "expected at least one job");
  for (std::size_t i = 0; i < jobs->size(); ++i) {
    f.jobs.push_back(parse_one_job((*jobs)[i], i));
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
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // e.byte is the 1-based offset of the character where parsing stopped.
    const std::size_t stop = std::min<std::size_t>(e.byte == 0 ? 0 : e.byte - 1, text.size());
    std::size_t line = 1, column = 1;
    for (std::size_t i = 0; i < stop; ++i) {
      if (text[i] == '\n') {
        ++line;
        column = 1;
      } else {
        ++column;
      }
    }
    std::string detail = e.what();
    if (auto p = detail.find(": "); p != std::string::npos) detail.erase(0, p + 2);
    throw JobError("", "invalid JSON at line " + std::to_string(line) + ", column " + std::to_string(column) +
                           ": " + detail);
  }
  return parse_job(doc, base_dir);
}

JobFile load_job_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw JobError("", "cannot open the job file: " + std::error_code(errno, std::generic_category()).message());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw JobError("", "cannot read the job file");
  auto base = file.parent_path();
  if (base.empty()) base = ".";
  return parse_job_text(text.str(), base);
}

taskfarm::detail::BatchBuilder encode_job(const JobSpec& job) {
  taskfarm::detail::BatchBuilder b;
  for (std::size_t i = 0; i < job.inputs.size(); ++i) {
    const json& item = job.inputs[i];
    json arg = job.args ? job.args->expand(item, i) : item;
    try {
      job.adapter->encode(arg, b.arena());
    } catch (const std::exception& e) {
      std::string where;
      std::string what = "input #" + std::to_string(i);
      if (job.args) {
        where = job.path + ".args";
        what += " (" + describe_json(item) + ") gives the argument " + describe_json(arg) + ", but";
      } else {
        where = job.inputs_are_list ? path_index(job.path + ".inputs.list", i) : job.path + ".inputs.range";
        what += " is not a valid argument:";
      }
      throw JobError(where, what + " task \"" + job.task + "\" takes " + job.adapter->arg_shape + ": " + e.what());
    }
    b.end_item();
  }
  return b;
}

}  // namespace taskfarm::cli
