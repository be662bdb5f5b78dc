#pragma once
// Seeded mutation fuzzing without a fuzzing engine: a small deterministic
// generator, mutations of byte strings, and the iteration count.
//
// Every run with the same TASKFARM_FUZZ_ITERATIONS sees the same inputs, so a
// failure reproduces; the failing iteration and its seed are in the message.
// TASKFARM_FUZZ_ITERATIONS=<n> replaces each fuzz test's default count (the
// defaults keep every test at a few seconds, ASan included).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace taskfarm::test {

// splitmix64: fast, tiny, good enough to pick mutations.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) noexcept : x_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (x_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); 0 when n == 0.
  std::size_t below(std::size_t n) noexcept { return n == 0 ? 0 : static_cast<std::size_t>(next() % n); }
  bool chance(unsigned one_in) noexcept { return below(one_in) == 0; }
  std::byte byte() noexcept { return static_cast<std::byte>(next()); }

 private:
  std::uint64_t x_;
};

// The iteration count of a fuzz test: TASKFARM_FUZZ_ITERATIONS if set (and a
// positive number), else `dflt`.
inline std::size_t fuzz_iterations(std::size_t dflt) {
  if (const char* s = std::getenv("TASKFARM_FUZZ_ITERATIONS")) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(s, &end, 10);
    if (end != s && *end == '\0' && v > 0) return static_cast<std::size_t>(v);
  }
  return dflt;
}

// Values that make size and length fields interesting.
inline std::uint64_t interesting_u64(Rng& rng, std::size_t input_size) {
  static constexpr std::uint64_t kFixed[] = {0,
                                             1,
                                             2,
                                             7,
                                             8,
                                             12,
                                             23,
                                             24,
                                             25,
                                             0x7f,
                                             0x80,
                                             0xff,
                                             0x100,
                                             0xffff,
                                             0x10000,
                                             0x7fffffffull,
                                             0x80000000ull,
                                             0xffffffffull,
                                             0x100000000ull,
                                             std::uint64_t{1} << 40,
                                             std::uint64_t{1} << 62,
                                             std::uint64_t{1} << 63,
                                             ~std::uint64_t{0},
                                             ~std::uint64_t{0} - 1};
  if (rng.chance(3)) {
    // Near the input's own size: the lies that almost fit.
    const auto delta = static_cast<std::int64_t>(rng.below(33)) - 16;
    return static_cast<std::uint64_t>(static_cast<std::int64_t>(input_size) + delta);
  }
  return kFixed[rng.below(sizeof kFixed / sizeof kFixed[0])];
}

// One random mutation of `b` (which may come out empty).
inline void mutate_once(Rng& rng, std::vector<std::byte>& b) {
  switch (rng.below(10)) {
    case 0:  // flip one bit
      if (!b.empty()) b[rng.below(b.size())] ^= static_cast<std::byte>(1u << rng.below(8));
      break;
    case 1: {  // a random or extreme byte
      if (b.empty()) break;
      static constexpr unsigned char kBytes[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
      b[rng.below(b.size())] =
          rng.chance(2) ? rng.byte() : static_cast<std::byte>(kBytes[rng.below(sizeof kBytes)]);
      break;
    }
    case 2:
    case 3: {  // an interesting 1/2/4/8-byte integer over whatever is there
      static constexpr std::size_t kWidths[] = {1, 2, 4, 8};
      const std::size_t w = kWidths[rng.below(4)];
      if (b.size() < w) break;
      const std::uint64_t v = interesting_u64(rng, b.size());
      std::memcpy(b.data() + rng.below(b.size() - w + 1), &v, w);  // little-endian: low bytes
      break;
    }
    case 4: {  // insert random bytes
      const std::size_t n = 1 + rng.below(rng.chance(4) ? 64 : 8);
      const std::size_t at = rng.below(b.size() + 1);
      std::vector<std::byte> ins(n);
      for (auto& x : ins) x = rng.byte();
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), ins.begin(), ins.end());
      break;
    }
    case 5: {  // delete a range
      if (b.empty()) break;
      const std::size_t at = rng.below(b.size());
      const std::size_t n = 1 + rng.below(std::min<std::size_t>(b.size() - at, 16));
      b.erase(b.begin() + static_cast<std::ptrdiff_t>(at),
              b.begin() + static_cast<std::ptrdiff_t>(at + n));
      break;
    }
    case 6:  // truncate
      b.resize(rng.below(b.size() + 1));
      break;
    case 7: {  // copy a range of itself elsewhere (repeats structure)
      if (b.size() < 2) break;
      const std::size_t from = rng.below(b.size());
      const std::size_t n = 1 + rng.below(std::min<std::size_t>(b.size() - from, 32));
      const std::vector<std::byte> piece(b.begin() + static_cast<std::ptrdiff_t>(from),
                                         b.begin() + static_cast<std::ptrdiff_t>(from + n));
      const std::size_t at = rng.below(b.size() + 1);
      b.insert(b.begin() + static_cast<std::ptrdiff_t>(at), piece.begin(), piece.end());
      break;
    }
    case 8:  // append random bytes
      for (std::size_t n = 1 + rng.below(16); n > 0; --n) b.push_back(rng.byte());
      break;
    default:  // add or subtract a little from one byte
      if (!b.empty()) {
        auto& x = b[rng.below(b.size())];
        x = static_cast<std::byte>(static_cast<unsigned>(x) + (rng.chance(2) ? 1u : 255u));
      }
      break;
  }
}

// 1..4 mutations.
inline std::vector<std::byte> mutated(Rng& rng, std::vector<std::byte> b) {
  for (std::size_t n = 1 + rng.below(4); n > 0; --n) mutate_once(rng, b);
  return b;
}

inline std::vector<std::byte> random_bytes(Rng& rng, std::size_t max_len) {
  std::vector<std::byte> b(rng.below(max_len + 1));
  for (auto& x : b) x = rng.byte();
  return b;
}

}  // namespace taskfarm::test
