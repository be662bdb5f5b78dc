#include "machine.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

namespace taskfarm::bench::detail {

std::vector<int> allowed_cpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  if (out.empty()) {
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    for (long c = 0; c < (n > 0 ? n : 1); ++c) out.push_back(static_cast<int>(c));
  }
  return out;
}

double load_average_1min() {
  double l[3] = {0, 0, 0};
  if (::getloadavg(l, 3) < 1) return 0;
  return l[0];
}

namespace {
// Total and idle jiffies of the "cpu" line of /proc/stat.
bool cpu_times(unsigned long long& total, unsigned long long& idle) {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long v[10] = {};
  if (!(f >> cpu) || cpu != "cpu") return false;
  for (auto& x : v) f >> x;
  total = 0;
  for (int i = 0; i < 8; ++i) total += v[i];  // guest time is already counted in user
  idle = v[3] + v[4];                         // idle + iowait
  return total > 0;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}
}  // namespace

MachineInfo probe_machine(int sample_ms) {
  MachineInfo m;
  m.cores = static_cast<unsigned>(allowed_cpus().size());
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  m.online_cpus = online > 0 ? static_cast<unsigned>(online) : m.cores;
  utsname u{};
  if (::uname(&u) == 0) {
    m.kernel = std::string(u.sysname) + " " + u.release + " " + u.version + " " + u.machine;
    m.hostname = u.nodename;
  }
  m.cpu_model = cpu_model();
  double l[3] = {0, 0, 0};
  if (::getloadavg(l, 3) == 3) {
    m.load1 = l[0];
    m.load5 = l[1];
    m.load15 = l[2];
  }
  unsigned long long t0 = 0, i0 = 0, t1 = 0, i1 = 0;
  if (sample_ms > 0 && cpu_times(t0, i0)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(sample_ms));
    if (cpu_times(t1, i1) && t1 > t0)
      m.busy_fraction = 1.0 - static_cast<double>(i1 - i0) / static_cast<double>(t1 - t0);
  }
  return m;
}

AffinityGuard::AffinityGuard() {
  CPU_ZERO(&saved_);
  ok_ = ::sched_getaffinity(0, sizeof saved_, &saved_) == 0;
}

AffinityGuard::~AffinityGuard() {
  if (ok_) ::sched_setaffinity(0, sizeof saved_, &saved_);
}

bool pin_to_cpu(int cpu) noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  return ::sched_setaffinity(0, sizeof set, &set) == 0;
}

}  // namespace taskfarm::bench::detail
