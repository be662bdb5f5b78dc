#include "support/test_support.hpp"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

namespace taskfarm::test {

std::vector<std::string> shm_objects() { return shm_objects_of(::getpid()); }

std::vector<std::string> shm_objects_of(pid_t creator) {
  // Only one process's objects (names start "taskfarm-<pid>-"): tests of other
  // processes run in parallel under ctest -j and come and go meanwhile.
  const std::string mine = "taskfarm-" + std::to_string(creator) + "-";
  std::vector<std::string> out;
  if (DIR* d = ::opendir("/dev/shm")) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.find(mine) != std::string::npos) out.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid <= 0) continue;
    std::ifstream st("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    if (!std::getline(st, line)) continue;
    // pid (comm) state ppid ...; comm may contain spaces and parentheses.
    const auto close = line.rfind(')');
    if (close == std::string::npos || close + 4 > line.size()) continue;
    const char state = line[close + 2];
    const pid_t ppid = static_cast<pid_t>(std::atol(line.c_str() + close + 4));
    // The clean root fork server lives as long as its master (worker/fork_server.hpp):
    // not something a test left behind.
    const auto open = line.find('(');
    if (open != std::string::npos && line.compare(open + 1, close - open - 1, "tf-fork-root") == 0) continue;
    if (ppid == parent && state != 'Z' && state != 'X') out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

std::vector<pid_t> wait_no_children(int ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    auto kids = children_of(::getpid());
    if (kids.empty() || std::chrono::steady_clock::now() > deadline) return kids;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void LeakCheck::SetUp() { shm_before_ = shm_objects(); }

void LeakCheck::TearDown() {
  const auto kids = wait_no_children();
  EXPECT_TRUE(kids.empty()) << "the test left " << kids.size() << " child process(es) running";
  const auto after = shm_objects();
  std::vector<std::string> leaked;
  std::set_difference(after.begin(), after.end(), shm_before_.begin(), shm_before_.end(),
                      std::back_inserter(leaked));
  EXPECT_TRUE(leaked.empty()) << "the test left " << leaked.size()
                              << " object(s) in /dev/shm, first: " << (leaked.empty() ? "" : leaked[0]);
}

}  // namespace taskfarm::test
