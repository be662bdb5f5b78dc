#pragma once
// Job files: parsing and validation. The format is documented in
// docs/JOBFILES.md and described by configs/jobfile.schema.json (a test keeps
// the two in step through job_file_keys()). Everything here runs before any
// worker starts.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/cli/inputs.hpp"
#include "taskfarm/cli/job_error.hpp"
#include "taskfarm/cli/json_task.hpp"
#include "taskfarm/cli/template.hpp"
#include "taskfarm/common/options.hpp"

namespace taskfarm::cli {

// Validation expands (through the template) and encodes this many items of
// each job, plus every item of a list; a later item that does not fit fails
// alone when the run reaches it (error type "taskfarm.input").
inline constexpr std::size_t kCheckedPrefix = 1000;

enum class ResultOrder { input, completion };

// What a job does when its tasks fail ("on_error").
enum class Halt { never, soon, now };  // "continue", "soon", "now"

struct OnError {
  Halt halt = Halt::never;
  std::uint64_t fail_count = 1;  // halt after this many failures ...
  double fail_percent = 0;       // ... or, when > 0, this percentage of the job's inputs
};

struct JobSpec {
  std::string path;  // "jobs[0]", for messages
  std::string name;
  std::string task;
  std::shared_ptr<const JsonAdapter> adapter;  // never null after validation
  InputSpec inputs;
  std::optional<Template> args;   // nullopt: the item is the argument
  std::size_t chunksize = 0;      // 0 = automatic (1: inputs are streamed)
  OnError on_error;
  unsigned retries = 0;           // re-runs of an input whose task failed (job "retries")
  std::filesystem::path base_dir;  // the job file's directory (absolute)
};

struct OutputSpec {
  std::optional<std::filesystem::path> results;  // nullopt: standard output
  std::optional<std::filesystem::path> joblog;   // nullopt: none
  ResultOrder order = ResultOrder::input;
};

struct JobFile {
  PoolOptions pool;
  std::vector<JobSpec> jobs;
  OutputSpec output;
  std::filesystem::path base_dir;
};

// The keys the parser accepts in each kind of object of a job file: "" (the
// top level), "pool", "job", "inputs", "range", "lines", "glob", "axis",
// "on_error", "output". Any other key is an error.
[[nodiscard]] const std::map<std::string, std::vector<std::string>>& job_file_keys();

// Checks the shape of a parsed document (opens no file). Relative paths resolve
// against `base_dir`. `ordered`, when given, is the same document with its keys
// in file order: the axes of a product then vary in the order written (without
// it, in alphabetical order). Throws JobError naming the JSON path of the first
// problem.
[[nodiscard]] JobFile parse_job(const nlohmann::json& doc, const std::filesystem::path& base_dir,
                                const nlohmann::ordered_json* ordered = nullptr);
// Same, from JSON text; malformed JSON is a JobError with its line and column.
[[nodiscard]] JobFile parse_job_text(std::string_view text, const std::filesystem::path& base_dir);
// Same, from a file (relative paths resolve against the file's directory).
// An unreadable file is a JobError too.
[[nodiscard]] JobFile load_job_file(const std::filesystem::path& file);

// What validation learned about a job's inputs.
struct InputCheck {
  std::optional<std::uint64_t> total;  // the number of inputs, when known without reading them all
  std::uint64_t checked = 0;           // items expanded and encoded
  bool streamed = false;               // a stream (InputSpec::streamed()): not read, checked as it is read
};

// Opens the job's inputs and expands and encodes the first kCheckedPrefix
// items (every item of a list, and the last item of a range or product).
// Throws JobError: a file that cannot be read, no inputs at all, an item that
// does not become a valid argument. A streamed input (InputSpec::streamed())
// is not opened, since it can be read only once: `streamed` says so.
[[nodiscard]] InputCheck check_inputs(const JobSpec& job);

// Item `index` of `job` through the job's template (the item itself without
// one). Throws JobError naming the template string that failed.
[[nodiscard]] nlohmann::json expand_argument(const JobSpec& job, const nlohmann::json& item, std::uint64_t index);

// Prepares (JsonTaskInfo::prepare) and encodes an expanded argument, appending
// it to `out`. `where` says where the item came from (InputCursor::where()).
// Throws JobError naming the path of the item or of the template.
void encode_argument(const JobSpec& job, nlohmann::json arg, const nlohmann::json& item, std::uint64_t index,
                     const std::string& where, std::vector<std::byte>& out);

}  // namespace taskfarm::cli
