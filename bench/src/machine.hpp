#pragma once
// What the report says about the machine: CPUs, kernel, load, and CPU placement.

#include <sched.h>

#include <string>
#include <vector>

#include "taskfarm/bench/report.hpp"

namespace taskfarm::bench::detail {

// CPUs this process may run on (sched_getaffinity), ascending.
[[nodiscard]] std::vector<int> allowed_cpus();
// Cores, kernel, host, CPU model and load averages; busy_fraction is measured
// over `sample_ms` from /proc/stat (share of non-idle CPU time on all CPUs).
[[nodiscard]] MachineInfo probe_machine(int sample_ms);
// 1-minute load average, or 0 when unknown.
[[nodiscard]] double load_average_1min();

// Restores the calling process's CPU mask on destruction.
class AffinityGuard {
 public:
  AffinityGuard();
  ~AffinityGuard();
  AffinityGuard(const AffinityGuard&) = delete;
  AffinityGuard& operator=(const AffinityGuard&) = delete;

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

// Pins the calling thread/process to one CPU; false if the system refused.
bool pin_to_cpu(int cpu) noexcept;

}  // namespace taskfarm::bench::detail
