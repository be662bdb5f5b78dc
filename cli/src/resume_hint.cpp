#include "taskfarm/cli/resume_hint.hpp"

#include <string_view>

#include "taskfarm/cli/exec.hpp"

namespace taskfarm::cli {

std::string resume_command(const std::vector<std::string>& argv, bool failed, std::size_t subcommand) {
  if (argv.size() <= subcommand) return {};
  auto is_resume = [](std::string_view w) {
    for (std::string_view flag : {std::string_view("--resume"), std::string_view("--resume-failed")})
      if (w == flag || (w.size() > flag.size() && w.substr(0, flag.size()) == flag && w[flag.size()] == '='))
        return true;
    return false;
  };
  std::vector<std::string> words(argv.begin(), argv.begin() + static_cast<std::ptrdiff_t>(subcommand) + 1);
  words.emplace_back(failed ? "--resume-failed" : "--resume");
  bool options_end = false;  // past "--" or ":::": words are operands, kept as they are
  for (std::size_t i = subcommand + 1; i < argv.size(); ++i) {
    const std::string& w = argv[i];
    if (w == "--" || w == ":::" || w == "::::" || w == ":::+" || w == "::::+") options_end = true;
    if (!options_end && is_resume(w)) continue;
    words.push_back(w);
  }
  return shell_quote(words);
}

}  // namespace taskfarm::cli
