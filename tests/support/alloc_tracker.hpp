#pragma once
// Records the largest single request made to the global operator new, so a test
// can prove that decoding a hostile size field did not allocate what it claimed.
//
// Linking alloc_tracker.cpp into a test program replaces the global
// operator new/delete of that program (plain and nothrow forms; the aligned forms
// keep their library definitions). Counting is always on and costs one relaxed
// atomic max per allocation.

#include <cstddef>

namespace taskfarm::test {

// Forgets the largest request seen so far.
void reset_largest_allocation() noexcept;
// The largest single operator new request since the last reset, in bytes.
[[nodiscard]] std::size_t largest_allocation() noexcept;

}  // namespace taskfarm::test
