#pragma once
// What a benchmark run produces, and the ways it is written out.
//
// Every figure is a Record: one measured quantity (a metric of one subject under
// fixed parameters) with the value of each repeated run and their Summary. The
// headline value is the median over runs; min/max and the quartiles give the
// spread. Comparisons divide two records' medians (a transport against its raw OS
// mechanism, taskfarm against Python) and, where the project has a target for
// that ratio, say whether it is met.

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "taskfarm/bench/stats.hpp"

namespace taskfarm::bench {

struct Record {
  std::string suite;      // latency, throughput, memcpy, pool, startup, scaling
  std::string impl;       // taskfarm, raw, python
  std::string subject;    // "pipe", "raw pipe", "Python Pool", ...
  std::string transport;  // the taskfarm transport, or the one a raw mechanism underlies
  std::string metric;     // rtt_p50, msgs_per_s, tasks_per_s, start_to_first_result, ...
  std::string unit;       // us, ms, msg/s, GB/s, tasks/s, x
  bool higher_is_better = false;
  // Parameters (0 or empty: not applicable).
  std::uint64_t payload_bytes = 0;
  std::uint64_t workers = 0;
  std::string start;      // fork or spawn
  std::string chunking;   // "1", "auto"
  std::uint64_t samples_per_run = 0;  // measurements behind each run's value
  std::vector<double> runs;           // one value per repeated run
  Summary summary;

  // suite/impl/subject/metric/params, unique within a report.
  [[nodiscard]] std::string key() const;
};

struct Comparison {
  std::string group;        // overhead (transport vs raw), python (taskfarm vs Python)
  std::string name;         // e.g. "pipe RTT p50 @ 64 B vs raw pipe"
  std::string numerator;    // Record::key() of each side
  std::string denominator;
  // How many times better the numerator is than the denominator (>1 = better),
  // or for overhead comparisons how many times the cost of the raw mechanism the
  // transport pays (>1 = slower). `sense` says which.
  double ratio = 0;
  std::string sense;        // "cost" (lower is better) or "speedup" (higher is better)
  std::optional<double> target;  // the project's target for this ratio, if any
  bool met = false;              // only meaningful with a target
  std::string target_name;       // which target of docs/PERFORMANCE.md it belongs to
};

struct TransportStatus {
  std::string name;
  bool available = false;
  std::string error;  // why not, when not
};

struct MachineInfo {
  unsigned cores = 0;           // CPUs this process may run on
  unsigned online_cpus = 0;
  std::string kernel;           // uname: sysname release version machine
  std::string hostname;
  std::string cpu_model;
  double load1 = 0, load5 = 0, load15 = 0;  // before the run
  double busy_fraction = 0;     // share of CPU time others used during a short sample before the run
  double load1_after = 0;       // after the run (includes the benchmark's own load)
  // The 1-minute load average as each suite started (it includes the
  // benchmark's own processes, about 1 to 2 while a suite runs).
  std::vector<std::pair<std::string, double>> load_by_suite;
  std::string placement_ipc;    // e.g. "master on CPU 0, peer on CPU 1 (sched_setaffinity)"
  std::string placement_pool;   // e.g. "unpinned (workers scheduled by the OS)"
  std::string python;           // python3 version, or why there is none
};

struct Report {
  int schema_version = 1;
  std::string taskfarm_version;
  std::string mode;             // quick, full, custom
  std::string started_at;       // UTC, ISO 8601
  double duration_s = 0;
  MachineInfo machine;
  std::vector<std::string> warnings;
  // The settings the run used, as "name" -> "value" text (for the record).
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<TransportStatus> transports;
  std::vector<Record> records;
  std::vector<Comparison> comparisons;

  [[nodiscard]] const Record* find(const std::string& key) const;
};

// A readable table of every figure, comparison and target.
void print_table(const Report& report, std::ostream& out);
// The whole report as JSON (bench/bench.schema.json describes it).
void write_json(const Report& report, std::ostream& out);
// One line per record: its parameters and summary.
void write_csv(const Report& report, std::ostream& out);
// Writes the charts as SVG files into `dir` (created if missing) and returns
// their paths. Throws std::filesystem::filesystem_error / std::runtime_error.
std::vector<std::filesystem::path> write_charts(const Report& report,
                                                const std::filesystem::path& dir);

}  // namespace taskfarm::bench
