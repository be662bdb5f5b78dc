#pragma once
// Shared test helpers: the leak checks every process-starting test runs.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <string>
#include <vector>

namespace taskfarm::test {

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
