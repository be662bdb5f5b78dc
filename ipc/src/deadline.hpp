#pragma once
// The deadline `d` from now, saturating: Clock::duration::max() (and anything
// past the clock's range) is "never".

#include <chrono>

namespace taskfarm::ipc::detail {

inline std::chrono::steady_clock::time_point deadline_after(std::chrono::steady_clock::duration d) noexcept {
  using Clock = std::chrono::steady_clock;
  if (d == Clock::duration::max()) return Clock::time_point::max();
  const auto now = Clock::now();
  return d >= Clock::time_point::max() - now ? Clock::time_point::max() : now + d;
}

}  // namespace taskfarm::ipc::detail
