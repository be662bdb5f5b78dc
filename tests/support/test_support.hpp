#pragma once
// Shared test helpers: the leak checks every process-starting test runs.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

namespace taskfarm::test {

// True in the sanitizer builds, where every memory access is instrumented and
// runs 5-20x slower. Their suites look for memory and thread errors, which the
// same code paths reach with smaller sizes: the biggest payloads and the longest
// loops run at a fraction there (full_or_sanitized), in full in the release suite.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
template <class T>
constexpr T full_or_sanitized(T full, T sanitized) noexcept {
  return kSanitized ? sanitized : full;
}
// The largest payload of the large-frame tests: 64 MiB (8 MiB under sanitizers,
// still eight times a ring, a pipe buffer or a socket buffer).
inline constexpr std::size_t kLargestPayload =
    full_or_sanitized(std::size_t{64} << 20, std::size_t{8} << 20);

// Names in /dev/shm of objects this process created ("taskfarm-<pid>-...").
std::vector<std::string> shm_objects();
// The same for objects created by process `creator` (e.g. a forked master).
std::vector<std::string> shm_objects_of(pid_t creator);
// Live (non-zombie) processes whose parent is `parent`.
std::vector<pid_t> children_of(pid_t parent);
// Waits up to `ms` for children_of(getpid()) to become empty; returns what is left.
std::vector<pid_t> wait_no_children(int ms = 2000);

// Fixture: fails the test if it leaves a child process or a /dev/shm object
// behind that was not there when it started.
class LeakCheck : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

 private:
  std::vector<std::string> shm_before_;
};

}  // namespace taskfarm::test
