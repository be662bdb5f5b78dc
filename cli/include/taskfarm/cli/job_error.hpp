#pragma once
// JobError: a problem in a job file, located by its JSON path.

#include <string>

#include "taskfarm/common/errors.hpp"

namespace taskfarm::cli {

// what() is "<path>: <problem>", e.g.
// "jobs[0].inputs.range.step: expected a positive integer, found -5".
// An empty path means the whole document.
class JobError : public ConfigError {
 public:
  JobError(std::string path, std::string problem)
      : ConfigError(path.empty() ? problem : path + ": " + problem),
        path_(std::move(path)),
        problem_(std::move(problem)) {}
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] const std::string& problem() const noexcept { return problem_; }

 private:
  std::string path_, problem_;
};

}  // namespace taskfarm::cli
