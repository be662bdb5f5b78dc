#pragma once
// Job files: parsing, validation and encoding of the inputs. The format is
// documented in docs/JOBFILES.md. Everything here runs before any worker starts.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/cli/job_error.hpp"
#include "taskfarm/cli/json_task.hpp"
#include "taskfarm/cli/template.hpp"
#include "taskfarm/common/options.hpp"
#include "taskfarm/master/detail/batch.hpp"

namespace taskfarm::cli {

// The most inputs one job may have (they are materialized before the run).
inline constexpr std::size_t kMaxInputsPerJob = 10'000'000;

enum class ResultOrder { input, completion };

struct JobSpec {
  std::string path;                             // "jobs[0]", for messages
  std::string name;
  std::string task;
  std::shared_ptr<const JsonAdapter> adapter;   // never null after validation
  std::vector<nlohmann::json> inputs;           // the items, in input order
  bool inputs_are_list = false;                 // list (else range): for messages
  std::optional<Template> args;                 // nullopt: the item is the argument
  std::size_t chunksize = 0;                    // 0 = automatic
};

struct OutputSpec {
  std::optional<std::filesystem::path> results;  // nullopt: standard output
  ResultOrder order = ResultOrder::input;
};

struct JobFile {
  PoolOptions pool;
  std::vector<JobSpec> jobs;
  OutputSpec output;
};

// Checks a parsed document. Relative paths resolve against `base_dir`. Throws
// JobError naming the JSON path of the first problem.
[[nodiscard]] JobFile parse_job(const nlohmann::json& doc, const std::filesystem::path& base_dir);
// Same, from JSON text; malformed JSON is a JobError with its line and column.
[[nodiscard]] JobFile parse_job_text(std::string_view text, const std::filesystem::path& base_dir);
// Same, from a file (relative paths resolve against the file's directory).
// An unreadable file is a JobError too.
[[nodiscard]] JobFile load_job_file(const std::filesystem::path& file);

// Expands every input of `job` through its template and encodes it as the
// task's argument. Throws JobError naming the input that does not fit.
[[nodiscard]] taskfarm::detail::BatchBuilder encode_job(const JobSpec& job);

}  // namespace taskfarm::cli
