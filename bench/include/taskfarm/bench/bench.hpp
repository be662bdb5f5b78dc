#pragma once
// The benchmark engine behind `taskfarm bench`.
//
// It measures every IPC transport (round-trip latency over payload sizes,
// one-way throughput) against the raw OS mechanism it is built on, and the pool
// end to end (task rates, start-up and shutdown, scaling) against Python's
// multiprocessing.Pool and concurrent.futures.ProcessPoolExecutor in the same
// run. See docs/PERFORMANCE.md for the method and the targets.
//
// The program that runs it must call taskfarm::init(argc, argv) first in main():
// the start-up figures include Start::spawn pools, whose workers re-execute the
// program (/proc/self/exe) and enter the worker loop from init().

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "taskfarm/bench/report.hpp"
#include "taskfarm/common/options.hpp"

namespace taskfarm::bench {

enum class Mode { quick, full };

struct BenchOptions {
  Mode mode = Mode::full;
  // Which parts run: latency, throughput, pool, startup, scaling (empty = all).
  std::vector<std::string> suites;
  std::vector<Transport> transports{Transport::pipe, Transport::socket, Transport::mqueue,
                                    Transport::shm};
  std::vector<std::uint64_t> payload_sizes;  // latency; empty = 64 B, 4 KiB, 64 KiB, 1 MiB

  // Sizes of the work; 0 = the mode's default (see defaults_for()).
  std::size_t repeats = 0;          // runs of every measurement
  std::size_t rtt_samples = 0;      // round trips timed per run and payload size
  std::size_t warmup = 0;           // untimed round trips before the first run
  std::size_t stream_small = 0;     // 64 B messages per throughput run
  std::size_t stream_large = 0;     // 1 MiB messages per throughput run
  std::size_t pool_tasks = 0;       // no-op tasks per map run
  std::size_t submit_tasks = 0;     // submit+get tasks per run
  std::size_t payload_tasks = 0;    // 1 MiB tasks per run
  std::uint64_t payload_bytes = std::uint64_t{1} << 20;
  std::size_t start_repeats = 0;    // pools started per start method and transport
  std::size_t scaling_tasks = 0;    // CPU-bound tasks per worker in the scaling runs
  double scaling_task_ms = 0;       // duration of one CPU-bound task

  std::size_t workers = 0;          // pool workers (0 = the CPUs this process may use)
  std::size_t max_workers = 0;      // scaling: 1..max_workers (0 = the CPUs)
  Transport scaling_transport = Transport::pipe;
  bool spawn = true;                // include Start::spawn in the start-up figures

  bool pin = true;                  // pin master and peer to two CPUs in the IPC suites
  bool python = true;               // run the Python baselines when python3 exists
  std::string python_exe = "python3";
  std::filesystem::path python_script;  // empty = the copy built into the engine

  bool require_idle = false;        // refuse (BusyMachine) instead of warning
  double max_load_per_core = 0.5;   // "busy" above this 1-minute load average per CPU
  double max_busy_fraction = 0.25;  // ... or above this share of CPU time used by others

  std::optional<std::filesystem::path> json_path, csv_path, svg_dir;
  bool progress = true;             // progress lines on the log stream
};

// Fills every 0 of `o` with the default of its mode.
[[nodiscard]] BenchOptions defaults_for(BenchOptions o);

// The machine is too busy or too small and require_idle was set.
struct BusyMachine : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Runs the benchmark; progress and warnings go to `log`. Writes the JSON, CSV and
// SVG outputs named in the options. Throws BusyMachine (require_idle), or
// std::runtime_error when a measurement cannot be made (e.g. no process can be
// forked); a transport that cannot be created is reported as unavailable, not
// thrown.
Report run(const BenchOptions& options, std::ostream& log);

// Command-line entry point: parses `argv` (argv[0] is the program or subcommand
// name), runs, prints the table on stdout. Returns 0 on success, 2 for a bad
// command line, 3 when the machine was refused (--require-idle), 1 on failure.
int main(int argc, char** argv);

}  // namespace taskfarm::bench
