#pragma once
// Internals shared by the suites of the benchmark engine.

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "taskfarm/bench/bench.hpp"
#include "taskfarm/bench/report.hpp"

namespace taskfarm::bench::detail {

struct Context {
  BenchOptions opt;  // with every default filled in
  std::ostream& log;
  Report& report;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

  void progress(const std::string& what) const;
  void warn(const std::string& what);
  [[nodiscard]] bool wants(const std::string& suite) const;
  // Notes the load average as `suite` starts.
  void suite_started(const std::string& suite);
  // Summarizes `r.runs` and appends it.
  void add(Record r);
  // Marks a transport unavailable (first reason wins).
  void unavailable(Transport t, const std::string& why);
  [[nodiscard]] bool available(Transport t) const;
};

[[nodiscard]] Record make_record(std::string suite, std::string impl, std::string subject,
                                 std::string transport, std::string metric, std::string unit,
                                 bool higher_is_better);

// latency + throughput (+ memcpy): transports against raw mechanisms, pinned.
void run_ipc_suites(Context& ctx);
// pool, startup, scaling: taskfarm's Pool, unpinned.
void run_pool_suites(Context& ctx);
// The same pool workloads on Python; records with impl "python".
void run_python_suites(Context& ctx);
// Overhead and Python ratios, with the project's targets.
void add_comparisons(Report& report);

// The Python baseline script compiled into the engine (bench/python/pool_baseline.py).
extern const char* const kPoolBaselinePy;

[[nodiscard]] std::string raw_name(Transport t);

}  // namespace taskfarm::bench::detail
