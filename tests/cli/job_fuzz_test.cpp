// Seeded mutation fuzzing of job files: the shipped files under configs/ with
// bytes flipped, cut short, random JSON tokens inserted, and values replaced by
// values of other types (or keys removed, renamed, added). Validation must
// either accept the file (parse_job_text returns a JobFile, check_inputs an
// InputCheck) or refuse it with the documented JobError and a message that
// says something -- never crash, throw anything else, or hang.
//
// TASKFARM_FUZZ_ITERATIONS=<n> sets the number of mutated files per test.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/fuzz.hpp"
#include "taskfarm/cli/job.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using taskfarm::cli::JobError;
using taskfarm::test::fuzz_iterations;
using taskfarm::test::Rng;

struct Sample {
  fs::path file;
  std::string text;
};

// The job files shipped in configs/ (not the schema).
std::vector<Sample> shipped_job_files() {
  std::vector<Sample> out;
  const fs::path root = fs::path(TASKFARM_SOURCE_DIR) / "configs";
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().extension() != ".json" || e.path().filename() == "jobfile.schema.json") continue;
    if (e.path().string().find("/out/") != std::string::npos) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    out.push_back({e.path(), ss.str()});
  }
  std::sort(out.begin(), out.end(), [](const Sample& a, const Sample& b) { return a.file < b.file; });
  return out;
}

// Aborts the program, naming the input, if one validation takes longer than
// `patience`: a hang is a failure with a name, not a ctest timeout.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds patience) : patience_(patience) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void arm(const std::string& input) {
    std::lock_guard lock(mu_);
    input_ = input;
    ++epoch_;
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    while (!done_) {
      const auto seen = epoch_;
      if (!cv_.wait_for(lock, patience_, [&] { return done_ || epoch_ != seen; })) {
        std::fprintf(stderr, "HANG: validating this job file took over %lld s:\n%s\n",
                     static_cast<long long>(patience_.count()), input_.c_str());
        std::fflush(stderr);
        std::abort();
      }
    }
  }
  std::chrono::seconds patience_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::uint64_t epoch_ = 0;
  std::string input_;
  std::thread thread_;
};

// ---- mutations ------------------------------------------------------------------

const char* const kTokens[] = {
    "{", "}", "[", "]", ",", ":", "\"", "\\", "null", "true", "false", "0", "-0", "-1", "1e999",
    "-1e999", "0.5", "18446744073709551616", "9223372036854775807", "-9223372036854775808",
    "\"\"", "\"{}\"", "\"{#}\"", "\"{}+1\"", "\"{= {}+1 =}\"", "\"{=\"", "\"=}\"", "\"{x}\"", "\"{\"", "\"}\"", "\"\\u0000\"",
    "\"\\ud800\"", "\"1s\"", "\"-5s\"", "\"99999999999h\"", "\"pipe\"", "\"shm\"", "\"fork\"",
    "\"spawn\"", "{\"range\":{\"stop\":3}}", "{\"list\":[]}", "[1,\"a\",null]", "\"exec\"",
    "\"echo\"", "\"count_primes\"", "/*", "\xff", "\xc3\x28", " ", "\n"};

std::string insert_token(Rng& rng, std::string s) {
  const char* tok = kTokens[rng.below(sizeof kTokens / sizeof kTokens[0])];
  s.insert(rng.below(s.size() + 1), tok);
  return s;
}

std::string flip_bytes(Rng& rng, std::string s) {
  if (s.empty()) return s;
  for (std::size_t n = 1 + rng.below(4); n > 0; --n) {
    char& c = s[rng.below(s.size())];
    switch (rng.below(3)) {
      case 0: c = static_cast<char>(c ^ (1 << rng.below(8))); break;
      case 1: c = static_cast<char>(rng.next()); break;
      default: c = "{}[],:\"\\0123456789-.eE"[rng.below(22)]; break;
    }
  }
  return s;
}

std::string truncate(Rng& rng, std::string s) {
  s.resize(rng.below(s.size() + 1));
  return s;
}

// Values of every JSON type, extremes included.
ordered_json random_value(Rng& rng) {
  // Strings the args templates and durations must cope with.
  static const char* const kStrings[] = {
      "{}/0", "{}*{}", "{}+9223372036854775807", "{#}-99999999999999999999", "{{}}", "{", "}",
      "{= {}/0 =}", "{= {}*{} =}", "{= {}+9223372036854775807 =}", "{= {#}-99999999999999999999 =}",
      "{= {}%0 =}", "{= =}", "{= ({} =}", "x{= -{} =}y", "{= {= =} =}", "{=",
      "{}{}{}", "{#}", "{x}{y}", "{0}", "{-1}", "{}%0", "1.5s", "0.0001s", "366d", "1e3ms",
      "data/*.txt", "data/../data/words.txt", "no/such/file", "*"};
  if (rng.chance(4)) return kStrings[rng.below(sizeof kStrings / sizeof kStrings[0])];
  if (rng.chance(12)) {
    // Inputs at the edges of what a range or a product can describe.
    switch (rng.below(4)) {
      case 0:
        return ordered_json::object({{"range", {{"start", std::numeric_limits<std::int64_t>::min()},
                                                {"stop", std::numeric_limits<std::int64_t>::max()},
                                                {"step", 1}}}});
      case 1:
        return ordered_json::object({{"range", {{"start", 0}, {"stop", std::numeric_limits<std::uint64_t>::max()},
                                                {"step", std::numeric_limits<std::uint64_t>::max()}}}});
      case 2:
        return ordered_json::object({{"product", {{"a", ordered_json::array()}, {"b", {1, 2}}}}});
      default:
        return ordered_json::object({{"product", {{"a", {{"range", {{"stop", 100000000}}}}},
                                                  {"b", {{"range", {{"stop", 100000000}}}}}}}});
    }
  }
  switch (rng.below(24)) {
    case 0: return nullptr;
    case 1: return true;
    case 2: return false;
    case 3: return 0;
    case 4: return -1;
    case 5: return 1;
    case 6: return std::numeric_limits<std::int64_t>::min();
    case 7: return std::numeric_limits<std::uint64_t>::max();
    case 8: return 0.5;
    case 9: return -1e308;
    case 10: return 1e308;
    case 11: return "";
    case 12: return "x";
    case 13: return "{}";
    case 14: return "{= {nope}+{} =}";
    case 15: return "0.001ms";
    case 16: return "-3s";
    case 17: return "shm";
    case 18: return std::string(2000, 'a');
    case 19: return ordered_json::array();
    case 20: return ordered_json::array({1, "two", nullptr, ordered_json::object()});
    case 21: return ordered_json::object();
    case 22: return ordered_json::object({{"range", {{"start", 5}, {"stop", -5}, {"step", 0}}}});
    default: return ordered_json::object({{"unknown_key", 1}});
  }
}

// Every node of the document, as JSON pointers.
void collect(const ordered_json& j, const ordered_json::json_pointer& at,
             std::vector<ordered_json::json_pointer>& out) {
  out.push_back(at);
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) collect(v, at / k, out);
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) collect(j[i], at / i, out);
  }
}

const char* const kKeys[] = {"pool", "jobs", "output", "workers", "transport", "start",
                             "task_timeout", "max_retries", "max_tasks_per_child", "max_memory_per_child", "name", "task",
                             "inputs", "args", "chunksize", "on_error", "halt", "fail", "list",
                             "range", "lines", "glob", "product", "file", "json", "stop",
                             "step", "results", "joblog", "order", "bogus"};

// Changes one node of the parsed document: another value, another type, a key
// removed, renamed or added, an element dropped or duplicated.
std::string mutate_structure(Rng& rng, const std::string& text) {
  ordered_json doc = ordered_json::parse(text);
  std::vector<ordered_json::json_pointer> nodes;
  collect(doc, ordered_json::json_pointer(), nodes);
  for (std::size_t n = 1 + rng.below(3); n > 0; --n) {
    nodes.clear();
    collect(doc, ordered_json::json_pointer(), nodes);
    const auto& at = nodes[rng.below(nodes.size())];
    ordered_json& node = doc[at];
    switch (rng.below(6)) {
      case 0:
      case 1:
        node = random_value(rng);
        break;
      case 2:  // remove a member or an element
        if (node.is_object() && !node.empty()) {
          auto it = node.begin();
          std::advance(it, static_cast<std::ptrdiff_t>(rng.below(node.size())));
          node.erase(it.key());
        } else if (node.is_array() && !node.empty()) {
          node.erase(rng.below(node.size()));
        }
        break;
      case 3:  // add or overwrite a member under a known (or unknown) key
        if (node.is_object()) node[kKeys[rng.below(sizeof kKeys / sizeof kKeys[0])]] = random_value(rng);
        break;
      case 4:  // rename a member to another known key
        if (node.is_object() && !node.empty()) {
          auto it = node.begin();
          std::advance(it, static_cast<std::ptrdiff_t>(rng.below(node.size())));
          const std::string old = it.key();
          ordered_json v = *it;
          node.erase(old);
          node[kKeys[rng.below(sizeof kKeys / sizeof kKeys[0])]] = std::move(v);
        }
        break;
      default:  // duplicate an element, or wrap the node in an array
        if (node.is_array() && !node.empty()) {
          node.push_back(node[rng.below(node.size())]);
        } else {
          node = ordered_json::array({node});
        }
        break;
    }
  }
  return doc.dump(rng.chance(2) ? -1 : 2);
}

// ---- the check ---------------------------------------------------------------------

struct Tally {
  std::size_t accepted = 0, refused = 0;
};

// Validates `text` as a job file in `base`: accepted, or refused with a
// JobError that has a message. Anything else fails the test.
void validate(const std::string& text, const fs::path& base, bool with_inputs, Tally& tally,
              const std::string& what) {
  try {
    const auto file = taskfarm::cli::parse_job_text(text, base);
    if (with_inputs)
      for (const auto& job : file.jobs) (void)taskfarm::cli::check_inputs(job);
    ++tally.accepted;
  } catch (const JobError& e) {
    ++tally.refused;
    ASSERT_NE(std::string(e.what()), "") << what << "\n" << text;
    ASSERT_NE(e.problem(), "") << what << ": " << e.what() << "\n" << text;
  } catch (const std::exception& e) {
    FAIL() << what << ": threw " << typeid(e).name() << " instead of JobError: " << e.what()
           << "\n--- input ---\n"
           << text;
  } catch (...) {
    FAIL() << what << ": threw a non-std exception\n--- input ---\n" << text;
  }
}

class JobFuzz : public ::testing::Test {
 protected:
  void SetUp() override {
    samples_ = shipped_job_files();
    ASSERT_GE(samples_.size(), 8u) << "configs/ should hold the demo and the examples";
    for (const auto& s : samples_) {
      Tally t;
      validate(s.text, s.file.parent_path(), true, t, s.file.string());
      ASSERT_EQ(t.accepted, 1u) << s.file << " is valid as shipped";
    }
  }

  // `mutate` turns a sample's text into a mutated one.
  template <class Mutate>
  void run(std::uint64_t seed, std::size_t dflt, Mutate mutate) {
    Rng rng(seed);
    const std::size_t iters = fuzz_iterations(dflt);
    Watchdog dog(std::chrono::seconds(30));
    Tally tally;
    for (std::size_t it = 0; it < iters; ++it) {
      const Sample& s = samples_[rng.below(samples_.size())];
      const std::string text = mutate(rng, s.text);
      dog.arm(text);
      const std::string what = "iteration " + std::to_string(it) + " (seed " + std::to_string(seed) +
                               ", from " + s.file.filename().string() + ")";
      validate(text, s.file.parent_path(), rng.chance(2), tally, what);
      if (HasFatalFailure()) return;
    }
    std::printf("[job-fuzz] %s: %zu mutated files, %zu accepted, %zu refused\n",
                ::testing::UnitTest::GetInstance()->current_test_info()->name(), iters,
                tally.accepted, tally.refused);
    EXPECT_GT(tally.refused, 0u);
  }

  std::vector<Sample> samples_;
};

TEST_F(JobFuzz, ByteFlips) {
  run(0x464c495000000001ull, 10000, [](Rng& rng, const std::string& s) { return flip_bytes(rng, s); });
}

TEST_F(JobFuzz, Truncations) {
  run(0x5452554e43000002ull, 3000, [](Rng& rng, const std::string& s) { return truncate(rng, s); });
}

TEST_F(JobFuzz, InsertedTokens) {
  run(0x544f4b454e000003ull, 10000, [](Rng& rng, const std::string& s) {
    std::string t = s;
    for (std::size_t n = 1 + rng.below(3); n > 0; --n) t = insert_token(rng, std::move(t));
    return t;
  });
}

TEST_F(JobFuzz, ValuesOfOtherTypesAndChangedKeys) {
  // Still well-formed JSON, so these reach deep into validation.
  run(0x5459504553000004ull, 10000,
      [](Rng& rng, const std::string& s) { return mutate_structure(rng, s); });
}

TEST_F(JobFuzz, EverythingCombined) {
  run(0x414c4c0000000005ull, 6000, [](Rng& rng, const std::string& s) {
    std::string t = mutate_structure(rng, s);
    switch (rng.below(3)) {
      case 0: return flip_bytes(rng, t);
      case 1: return insert_token(rng, t);
      default: return rng.chance(4) ? truncate(rng, t) : t;
    }
  });
}

// Found by the fuzzing above: a number JSON cannot hold ("1e999" overflows a
// double) is an out_of_range error in nlohmann::json, not a parse_error. In a
// job file, or in a JSON Lines input file, it must be a JobError like any other
// invalid JSON.
TEST(JobFileNumbers, AnOverflowingNumberIsInvalidJson) {
  for (const char* text : {R"({"jobs": [{"task": "echo", "inputs": {"list": [1e999]}}]})",
                           R"({"pool": {"workers": -1e400}, "jobs": []})"}) {
    try {
      (void)taskfarm::cli::parse_job_text(text, "/jobs");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const JobError& e) {
      EXPECT_NE(std::string(e.what()).find("invalid JSON at line 1, column "), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("number overflow"), std::string::npos) << e.what();
    }
  }
}

// Found by the fuzzing above: a duration given as an integer of milliseconds
// beyond the limit of 366 days escaped as std::invalid_argument.
TEST(JobFileNumbers, AnIntegerDurationPastTheLimitIsAJobError) {
  for (const char* v : {"18446744073709551615", "31622400001"}) {
    const std::string text = std::string(R"({"pool": {"task_timeout": )") + v +
                             R"(}, "jobs": [{"task": "echo", "inputs": {"list": [1]}}]})";
    try {
      (void)taskfarm::cli::parse_job_text(text, "/jobs");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const JobError& e) {
      EXPECT_EQ(e.path(), "pool.task_timeout") << e.what();
      EXPECT_NE(std::string(e.what()).find("at most 366 days"), std::string::npos) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a JobError: " << e.what();
    }
  }
  // The limit itself is fine.
  EXPECT_NO_THROW((void)taskfarm::cli::parse_job_text(
      R"({"pool": {"task_timeout": 31622400000}, "jobs": [{"task": "echo", "inputs": {"list": [1]}}]})",
      "/jobs"));
}

TEST(JobFileNumbers, AnOverflowingNumberInAJsonLinesInputIsABadInput) {
  char tmpl[] = "/tmp/taskfarm-job-fuzz-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path dir = tmpl;
  std::ofstream(dir / "items.jsonl") << "{\"x\": 1}\n{\"x\": 1e999}\n";
  const auto file = taskfarm::cli::parse_job_text(
      R"({"jobs": [{"task": "echo", "inputs": {"lines": {"file": "items.jsonl", "json": true}}}]})", dir);
  ASSERT_EQ(file.jobs.size(), 1u);
  try {
    (void)taskfarm::cli::check_inputs(file.jobs[0]);
    ADD_FAILURE() << "the bad line was accepted";
  } catch (const JobError& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("number overflow"), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not a JobError: " << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
