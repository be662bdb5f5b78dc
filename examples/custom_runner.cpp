// A runner of your own: the taskfarm program (run, validate, tasks, with every
// option) plus your own JSON-callable tasks.
//
//   custom_runner tasks                                   lists "word_stats" beside the built-in tasks
//   custom_runner run examples/custom_runner.json -o -    runs a job file that calls it
//
// A JsonTask is an ordinary taskfarm::Task (the pool API can run it too) whose
// argument comes from JSON and whose result goes back to JSON. Its argument
// type needs nlohmann's from_json and cereal's serialize, its result to_json and
// serialize. Defined at namespace scope, it registers itself before main(), in
// the master and in every worker, forked or spawned.

#include <taskfarm/cli/cli.hpp>
#include <taskfarm/cli/json_task.hpp>
#include <taskfarm/taskfarm.hpp>

#include <cctype>
#include <cstdint>
#include <span>
#include <string>

namespace {

struct Text {
  std::string text;
  bool lower = false;  // count words case-insensitively
  template <class Archive>
  void serialize(Archive& ar) {
    ar(text, lower);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Text, text, lower)

struct Stats {
  std::int64_t words = 0;
  std::int64_t letters = 0;
  std::string longest;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(words, letters, longest);
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(Stats, words, letters, longest)

Stats word_stats(const Text& t) {
  Stats s;
  std::string word;
  auto end_word = [&] {
    if (word.empty()) return;
    ++s.words;
    if (word.size() > s.longest.size()) s.longest = word;
    word.clear();
  };
  for (const char c : t.text) {
    if (std::isalpha(static_cast<unsigned char>(c)) != 0) {
      ++s.letters;
      word += t.lower ? static_cast<char>(std::tolower(static_cast<unsigned char>(c))) : c;
    } else {
      end_word();
    }
  }
  end_word();
  return s;
}

const taskfarm::cli::JsonTask<Stats(Text)> word_stats_task{
    "word_stats", word_stats,
    {.arg_shape = R"({"text": string, "lower"?: boolean})",
     .result_shape = R"({"words": integer, "letters": integer, "longest": string})",
     .description = "counts the words and letters of a text",
     // One line of the run's summary, from the values of the tasks that succeeded.
     .summarize = [](std::span<const nlohmann::json> values) {
       std::int64_t words = 0;
       for (const auto& v : values) words += v.at("words").get<std::int64_t>();
       return "words in all: " + std::to_string(words);
     }}};

}  // namespace

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);  // first line: a spawned worker never returns from here
  return taskfarm::cli::main(argc, argv);
}
