// pool.map: split a computation into independent inputs, run them on worker
// processes, get the results back in input order.
//
// Counts the primes below 2,000,000 in 40 blocks and checks the total against
// a single-process count.

#include <taskfarm/taskfarm.hpp>

#include <cstdint>
#include <cstdio>
#include <numeric>
#include <utility>
#include <vector>

namespace {

std::uint64_t count_primes(std::pair<std::uint64_t, std::uint64_t> range) {
  std::uint64_t n = 0;
  for (std::uint64_t x = std::max<std::uint64_t>(range.first, 2); x < range.second; ++x) {
    bool prime = true;
    for (std::uint64_t d = 2; d * d <= x; ++d)
      if (x % d == 0) {
        prime = false;
        break;
      }
    n += prime;
  }
  return n;
}

// A task: a unique name and a function. Defined at namespace scope so that it is
// registered before main() runs, in the master and in every worker.
inline const taskfarm::Task<std::uint64_t(std::pair<std::uint64_t, std::uint64_t>)> primes{
    "example.count_primes", &count_primes};

}  // namespace

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);  // first line of main: required for Start::spawn workers

  constexpr std::uint64_t kLimit = 2'000'000, kBlocks = 40;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> blocks;
  for (std::uint64_t b = 0; b < kBlocks; ++b)
    blocks.emplace_back(b * kLimit / kBlocks, (b + 1) * kLimit / kBlocks);

  taskfarm::Pool pool({.workers = 2});
  const std::vector<std::uint64_t> counts = pool.map(primes, blocks);  // in input order
  const std::uint64_t total = std::accumulate(counts.begin(), counts.end(), std::uint64_t{0});

  std::printf("primes below %llu: %llu (first block %llu, last block %llu)\n",
              static_cast<unsigned long long>(kLimit), static_cast<unsigned long long>(total),
              static_cast<unsigned long long>(counts.front()),
              static_cast<unsigned long long>(counts.back()));
  // pi(2,000,000) = 148933
  return total == 148933 ? 0 : 1;
}
