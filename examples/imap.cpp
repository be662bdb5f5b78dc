// pool.imap over an unbounded lazy range: inputs are pulled only as results are
// consumed, so an infinite input runs in bounded memory and stopping early
// leaves the rest of the input untouched.
//
// Finds the first 12 starting values whose Collatz sequence takes more than 250
// steps to reach 1, checking candidates 1, 2, 3, ... on the workers.

#include <taskfarm/taskfarm.hpp>

#include <cstdint>
#include <cstdio>
#include <ranges>
#include <vector>

namespace {

int collatz_steps(std::uint64_t n) {
  int steps = 0;
  while (n != 1) {
    n = n % 2 ? 3 * n + 1 : n / 2;
    ++steps;
  }
  return steps;
}

struct Candidate {
  std::uint64_t n = 0;
  int steps = 0;
  template <class Archive>
  void serialize(Archive& ar) {  // user types travel through cereal
    ar(n, steps);
  }
};

inline const taskfarm::Task<Candidate(std::uint64_t)> steps_of{
    "example.collatz", [](std::uint64_t n) { return Candidate{n, collatz_steps(n)}; }};

}  // namespace

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);
  taskfarm::Pool pool({.workers = 2});

  std::uint64_t pulled = 0;  // how many inputs the pool has asked for
  auto candidates = std::views::iota(std::uint64_t{1}) |
                    std::views::transform([&pulled](std::uint64_t n) { ++pulled; return n; });

  std::vector<Candidate> found;
  for (const Candidate& c : pool.imap(steps_of, candidates, {.chunksize = 16, .lookahead = 512})) {
    if (c.steps > 250) found.push_back(c);
    if (found.size() == 12) break;  // stop consuming: the rest of the input is never pulled
  }
  for (const auto& c : found) std::printf("%llu needs %d steps\n", static_cast<unsigned long long>(c.n), c.steps);
  const std::uint64_t last = found.back().n;
  std::printf("consumed results up to %llu, inputs pulled: %llu (look-ahead 512)\n",
              static_cast<unsigned long long>(last), static_cast<unsigned long long>(pulled));
  // Results come in input order, so `last` inputs were consumed; at most the
  // look-ahead was pulled beyond them.
  return found.size() == 12 && pulled <= last + 512 ? 0 : 1;
}
