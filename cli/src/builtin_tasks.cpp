// Built-in JSON-callable tasks. They register during static initialisation, so
// forked and spawned workers of any program linking the CLI library have them.

#include "builtin_tasks.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "taskfarm/cli/json_task.hpp"

namespace taskfarm::cli {

namespace {

// Half-open range of integers, the argument of count_primes.
struct PrimeRange {
  std::int64_t lo = 0;
  std::int64_t hi = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(lo, hi);
  }
};

// Strict: exactly {"lo": integer, "hi": integer} with 0 <= lo <= hi.
void from_json(const json& j, PrimeRange& r) {
  if (!j.is_object()) throw std::invalid_argument("expected an object {\"lo\": integer, \"hi\": integer}");
  for (const auto& [k, v] : j.items())
    if (k != "lo" && k != "hi") throw std::invalid_argument("unknown field \"" + k + "\" (expected lo and hi)");
  if (!j.contains("lo") || !j.contains("hi")) throw std::invalid_argument("both \"lo\" and \"hi\" are required");
  r.lo = json_to_arg<std::int64_t>(j["lo"]);
  r.hi = json_to_arg<std::int64_t>(j["hi"]);
  if (r.lo < 0 || r.hi < r.lo)
    throw std::invalid_argument("expected 0 <= lo <= hi, found lo = " + std::to_string(r.lo) +
                                ", hi = " + std::to_string(r.hi));
}

std::int64_t isqrt(std::int64_t n) {
  auto r = static_cast<std::int64_t>(std::sqrt(static_cast<double>(n)));
  while (r > 0 && r * r > n) --r;
  while ((r + 1) * (r + 1) <= n) ++r;
  return r;
}

// Odd primes up to `limit`, by a plain sieve (limit is at most ~3e9 ** 0.5 here).
std::vector<std::int64_t> odd_primes_upto(std::int64_t limit) {
  std::vector<std::int64_t> out;
  if (limit < 3) return out;
  std::vector<char> composite(static_cast<std::size_t>(limit) + 1, 0);
  for (std::int64_t i = 3; i * i <= limit; i += 2)
    if (!composite[static_cast<std::size_t>(i)])
      for (std::int64_t k = i * i; k <= limit; k += 2 * i) composite[static_cast<std::size_t>(k)] = 1;
  for (std::int64_t i = 3; i <= limit; i += 2)
    if (!composite[static_cast<std::size_t>(i)]) out.push_back(i);
  return out;
}

std::string sum_summary(std::span<const json> values, const char* label) {
  std::int64_t total = 0;
  for (const auto& v : values)
    if (v.is_number_integer()) total += v.get<std::int64_t>();
  return std::string(label) + ": " + std::to_string(total);
}

// echo: returns its argument.
const JsonTask<json(json)> echo_task{
    "echo", [](json j) { return j; },
    {.description = "returns its argument unchanged"}};

// sleep_ms: sleeps, returns the milliseconds slept.
const JsonTask<std::int64_t(std::int64_t)> sleep_task{
    "sleep_ms",
    [](std::int64_t ms) {
      if (ms < 0) throw std::invalid_argument("sleep_ms: negative duration " + std::to_string(ms));
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      return ms;
    },
    {.arg_shape = "integer (milliseconds)", .result_shape = "integer",
     .description = "sleeps for the given milliseconds, returns them"}};

// count_primes: the number of primes in [lo, hi).
const JsonTask<std::int64_t(PrimeRange)> count_primes_task{
    "count_primes", [](PrimeRange r) { return count_primes_in(r.lo, r.hi); },
    {.arg_shape = R"({"lo": integer, "hi": integer})",
     .result_shape = "integer",
     .description = "counts the primes in [lo, hi) with a segmented sieve",
     .summarize = [](std::span<const json> v) { return sum_summary(v, "primes found"); }}};

// fail: throws std::runtime_error with the given message.
const JsonTask<json(std::string)> fail_task{
    "fail", [](std::string message) -> json { throw std::runtime_error(message); },
    {.arg_shape = "string (the error message)", .result_shape = "never returns",
     .description = "throws std::runtime_error with the given message (for testing)"}};

// crash: kills the worker running it.
const JsonTask<json(json)> crash_task{
    "crash",
    [](json) -> json {
      ::kill(::getpid(), SIGKILL);
      std::this_thread::sleep_for(std::chrono::hours(1));
      return nullptr;
    },
    {.arg_shape = "any JSON (ignored)", .result_shape = "never returns",
     .description = "kills the worker running it with SIGKILL (for testing)"}};

const Task<void()> stdout_to_stderr{"taskfarm.cli.stdout_to_stderr", [] {
                                      std::fflush(stdout);
                                      ::dup2(STDERR_FILENO, STDOUT_FILENO);
                                    }};

}  // namespace

void link_builtin_tasks() noexcept { link_exec_task(); }

const Task<void()>& stdout_to_stderr_initializer() noexcept { return stdout_to_stderr; }

std::int64_t count_primes_in(std::int64_t lo, std::int64_t hi) {
  lo = std::max<std::int64_t>(lo, 0);
  if (hi <= lo || hi <= 2) return 0;
  std::int64_t count = (lo <= 2 && 2 < hi) ? 1 : 0;

  // Odd numbers in [first, hi); segment slot k stands for seg_start + 2k.
  std::int64_t first = std::max<std::int64_t>(lo, 3);
  if (first % 2 == 0) ++first;
  if (first >= hi) return count;
  const auto primes = odd_primes_upto(isqrt(hi - 1));
  // next[i]: index (in odd steps from `first`) of the next odd multiple of
  // primes[i] to strike, starting at p*p so that p itself survives.
  std::vector<std::int64_t> next(primes.size());
  for (std::size_t i = 0; i < primes.size(); ++i) {
    const std::int64_t p = primes[i];
    std::int64_t m = std::max(p * p, (first + p - 1) / p * p);
    if (m % 2 == 0) m += p;
    next[i] = (m - first) / 2;
  }

  constexpr std::int64_t kSegment = 1 << 15;  // odd slots per segment (32 KiB, stays in L1)
  std::vector<std::uint8_t> seg(kSegment);
  const std::int64_t total = (hi - first + 1) / 2;  // odd numbers in [first, hi)
  for (std::int64_t base = 0; base < total; base += kSegment) {
    const std::int64_t len = std::min(kSegment, total - base);
    std::memset(seg.data(), 1, static_cast<std::size_t>(len));
    for (std::size_t i = 0; i < primes.size(); ++i) {
      const std::int64_t p = primes[i];
      std::int64_t k = next[i] - base;
      for (; k < len; k += p) seg[static_cast<std::size_t>(k)] = 0;
      next[i] = k + base;
    }
    std::int64_t alive = 0;
    for (std::int64_t k = 0; k < len; ++k) alive += seg[static_cast<std::size_t>(k)];
    count += alive;
  }
  return count;
}

}  // namespace taskfarm::cli
