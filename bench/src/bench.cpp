// The engine's entry points: option defaults, the run, the command line.

#include "taskfarm/bench/bench.hpp"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <set>
#include <sstream>

#include "engine.hpp"
#include "machine.hpp"
#include "taskfarm/ipc/link.hpp"

namespace taskfarm::bench {

namespace detail {

void Context::progress(const std::string& what) const {
  if (!opt.progress) return;
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log << "[" << std::fixed << std::setprecision(1) << std::setw(6) << s << " s] " << what << '\n'
      << std::flush;
}

void Context::warn(const std::string& what) {
  report.warnings.push_back(what);
  log << "warning: " << what << '\n' << std::flush;
}

void Context::suite_started(const std::string& suite) {
  report.machine.load_by_suite.emplace_back(suite, load_average_1min());
}

bool Context::wants(const std::string& suite) const {
  return opt.suites.empty() || std::find(opt.suites.begin(), opt.suites.end(), suite) != opt.suites.end();
}

void Context::add(Record r) {
  if (r.runs.empty()) return;
  r.summary = summarize(r.runs);
  report.records.push_back(std::move(r));
}

void Context::unavailable(Transport t, const std::string& why) {
  for (auto& s : report.transports) {
    if (s.name != to_string(t)) continue;
    if (s.available) {
      s.available = false;
      s.error = why;
      log << "transport " << s.name << " unavailable: " << why << '\n' << std::flush;
    }
  }
}

bool Context::available(Transport t) const {
  for (const auto& s : report.transports)
    if (s.name == to_string(t)) return s.available;
  return false;
}

Record make_record(std::string suite, std::string impl, std::string subject, std::string transport,
                   std::string metric, std::string unit, bool higher_is_better) {
  Record r;
  r.suite = std::move(suite);
  r.impl = std::move(impl);
  r.subject = std::move(subject);
  r.transport = std::move(transport);
  r.metric = std::move(metric);
  r.unit = std::move(unit);
  r.higher_is_better = higher_is_better;
  return r;
}

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string join_sizes(const std::vector<std::uint64_t>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

std::string fixed(double v, int decimals) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(decimals) << v;
  return o.str();
}

}  // namespace
}  // namespace detail

BenchOptions defaults_for(BenchOptions o) {
  const bool quick = o.mode == Mode::quick;
  auto fill = [](auto& v, auto q, auto f, bool is_quick) {
    if (v == 0) v = is_quick ? q : f;
  };
  fill(o.repeats, 3u, 5u, quick);
  fill(o.rtt_samples, 200u, 2000u, quick);
  fill(o.warmup, 50u, 200u, quick);
  fill(o.stream_small, 20'000u, 200'000u, quick);
  fill(o.stream_large, 32u, 512u, quick);
  fill(o.pool_tasks, 10'000u, 100'000u, quick);
  fill(o.submit_tasks, 2'000u, 20'000u, quick);
  fill(o.payload_tasks, 20u, 200u, quick);
  fill(o.start_repeats, 3u, 10u, quick);
  fill(o.scaling_tasks, 10u, 100u, quick);
  if (o.scaling_task_ms <= 0) o.scaling_task_ms = quick ? 2.0 : 5.0;
  const std::size_t cpus = detail::allowed_cpus().size();
  if (o.workers == 0) o.workers = cpus;
  if (o.max_workers == 0) o.max_workers = cpus;
  if (o.payload_sizes.empty()) o.payload_sizes = {64, 4096, 65536, std::uint64_t{1} << 20};
  return o;
}

Report run(const BenchOptions& options, std::ostream& log) {
  Report report;
  detail::Context ctx{defaults_for(options), log, report};
  const auto& o = ctx.opt;
  report.taskfarm_version = TASKFARM_VERSION_STRING;
  report.mode = o.mode == Mode::quick ? "quick" : "full";
  report.started_at = detail::utc_now();

  // The machine, and whether figures taken on it can mean anything.
  report.machine = detail::probe_machine(o.mode == Mode::quick ? 300 : 1000);
  auto& m = report.machine;
  std::vector<std::string> refusals;
  const double per_core = m.cores ? m.load1 / m.cores : m.load1;
  if (per_core > o.max_load_per_core || m.busy_fraction > o.max_busy_fraction) {
    refusals.push_back("the machine is busy: 1-minute load average " + detail::fixed(m.load1, 2) +
                       " on " + std::to_string(m.cores) + " CPU(s), " +
                       detail::fixed(100 * m.busy_fraction, 0) +
                       "% of CPU time used by other processes just before the run; absolute figures "
                       "will be noisy and slow (ratios taken in this run stay comparable)");
  }
  if (m.cores < 2) {
    refusals.push_back("only one CPU: round trips measure same-CPU wake-ups, not the cross-CPU ones "
                       "a pool pays, and there is no scaling to measure");
  }
  if (o.max_workers > m.cores) {
    report.warnings.push_back("scaling goes to " + std::to_string(o.max_workers) + " workers on " +
                              std::to_string(m.cores) + " CPU(s): beyond the CPUs no speedup is possible");
  }
  for (const auto& r : refusals) {
    if (o.require_idle) throw BusyMachine(r);
    ctx.warn(r);
  }

  report.settings = {
      {"suites", o.suites.empty() ? "latency,throughput,pool,startup,scaling" : [&] {
         std::string s;
         for (const auto& x : o.suites) s += (s.empty() ? "" : ",") + x;
         return s;
       }()},
      {"repeats", std::to_string(o.repeats)},
      {"rtt_samples", std::to_string(o.rtt_samples)},
      {"warmup", std::to_string(o.warmup)},
      {"payload_sizes", detail::join_sizes(o.payload_sizes)},
      {"stream_small", std::to_string(o.stream_small)},
      {"stream_large", std::to_string(o.stream_large)},
      {"pool_tasks", std::to_string(o.pool_tasks)},
      {"submit_tasks", std::to_string(o.submit_tasks)},
      {"payload_tasks", std::to_string(o.payload_tasks)},
      {"payload_bytes", std::to_string(o.payload_bytes)},
      {"start_repeats", std::to_string(o.start_repeats)},
      {"scaling_tasks_per_worker", std::to_string(o.scaling_tasks)},
      {"scaling_task_ms", detail::fixed(o.scaling_task_ms, 2)},
      {"workers", std::to_string(o.workers)},
      {"max_workers", std::to_string(o.max_workers)},
      {"scaling_transport", std::string(to_string(o.scaling_transport))},
      {"spawn", o.spawn ? "yes" : "no"},
      {"pin", o.pin ? "yes" : "no"},
  };

  // Which transports exist here at all: one link created and dropped each.
  for (Transport t : o.transports) {
    TransportStatus s{std::string(to_string(t)), true, ""};
    ipc::LinkPair pair;
    if (auto ec = ipc::create_link(t, ipc::LinkConfig{}, pair)) {
      s.available = false;
      s.error = "create_link: " + ec.message();
      log << "transport " << s.name << " unavailable: " << s.error << '\n';
    }
    for (int fd : pair.worker.fds) ::close(fd);
    report.transports.push_back(std::move(s));
  }
  std::vector<Transport> usable;
  for (Transport t : o.transports)
    if (ctx.available(t)) usable.push_back(t);
  ctx.opt.transports = usable;

  // A peer that dies must not kill the master with SIGPIPE.
  struct sigaction ign{}, old{};
  ign.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ign, &old);
  try {
    detail::run_ipc_suites(ctx);
    detail::run_pool_suites(ctx);
    detail::run_python_suites(ctx);
  } catch (...) {
    ::sigaction(SIGPIPE, &old, nullptr);
    throw;
  }
  ::sigaction(SIGPIPE, &old, nullptr);

  detail::add_comparisons(report);
  report.machine.load1_after = detail::load_average_1min();
  // The benchmark itself keeps at most about one process per CPU busy; a load
  // clearly above that means others ran too (the 1-minute average lags, so this
  // is a hint, not a measurement).
  {
    const double limit = m.cores * (1 + o.max_load_per_core);
    std::string busy;
    for (const auto& [suite, load] : m.load_by_suite)
      if (load > limit) busy += (busy.empty() ? "" : ", ") + suite + " " + detail::fixed(load, 2);
    if (report.machine.load1_after > limit)
      busy += (busy.empty() ? "" : ", ") + std::string("the end ") + detail::fixed(report.machine.load1_after, 2);
    if (!busy.empty())
      ctx.warn("other processes probably ran during the benchmark: the 1-minute load average exceeded " +
               detail::fixed(limit, 1) + " (the benchmark's own share and then some) at: " + busy +
               "; figures taken then are noisy");
  }
  report.duration_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.t0).count();

  if (o.json_path) {
    std::ofstream f(*o.json_path);
    if (!f) throw std::runtime_error("cannot write " + o.json_path->string());
    write_json(report, f);
  }
  if (o.csv_path) {
    std::ofstream f(*o.csv_path);
    if (!f) throw std::runtime_error("cannot write " + o.csv_path->string());
    write_csv(report, f);
  }
  if (o.svg_dir) {
    for (const auto& p : write_charts(report, *o.svg_dir)) ctx.progress("wrote " + p.string());
  }
  return report;
}

namespace {

std::uint64_t parse_size(const std::string& text) {
  std::size_t pos = 0;
  const double v = std::stod(text, &pos);
  std::string unit = text.substr(pos);
  unit.erase(0, unit.find_first_not_of(' '));
  std::transform(unit.begin(), unit.end(), unit.begin(), [](unsigned char c) { return std::tolower(c); });
  double mul = 1;
  if (unit.empty() || unit == "b") mul = 1;
  else if (unit == "k" || unit == "kib" || unit == "kb") mul = 1024;
  else if (unit == "m" || unit == "mib" || unit == "mb") mul = 1024.0 * 1024;
  else if (unit == "g" || unit == "gib" || unit == "gb") mul = 1024.0 * 1024 * 1024;
  else throw std::invalid_argument("unknown size unit '" + unit + "' in '" + text + "'");
  if (v < 1 || !std::isfinite(v)) throw std::invalid_argument("size must be at least 1 byte: '" + text + "'");
  return static_cast<std::uint64_t>(std::llround(v * mul));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Benchmarks taskfarm's IPC transports against the raw OS mechanisms, and its pool "
               "against Python's multiprocessing, in one run.",
               argc > 0 ? argv[0] : "taskfarm bench"};
  BenchOptions o;
  bool quick = false, full = false, no_python = false, no_pin = false, no_spawn = false, quiet = false;
  std::vector<std::string> transports, sizes, suites;
  std::string scaling_transport = "pipe", json, csv, svg, payload_bytes;
  auto* q = app.add_flag("--quick", quick, "small sizes of work: under a minute");
  app.add_flag("--full", full, "the full run (the default)")->excludes(q);
  app.add_option("--suites", suites, "parts to run: latency,throughput,pool,startup,scaling (default all)")
      ->delimiter(',')
      ->check(CLI::IsMember({"latency", "throughput", "pool", "startup", "scaling"}));
  app.add_option("--transports", transports, "transports to measure (default pipe,socket,mqueue,shm)")
      ->delimiter(',')
      ->check(CLI::IsMember({"pipe", "socket", "mqueue", "shm"}));
  app.add_option("--sizes", sizes, "latency payload sizes, e.g. 64,4K,64K,1M (default)")->delimiter(',');
  app.add_option("--repeats", o.repeats, "runs of every measurement (quick 3, full 5)");
  app.add_option("--samples", o.rtt_samples, "round trips timed per run and size (quick 200, full 2000; a quarter above 64 KiB)");
  app.add_option("--warmup", o.warmup, "untimed round trips before the runs (quick 50, full 200)");
  app.add_option("--stream-small", o.stream_small, "64 B messages per throughput run (quick 20000, full 200000)");
  app.add_option("--stream-large", o.stream_large, "1 MiB messages per throughput run (quick 32, full 512)");
  app.add_option("--tasks", o.pool_tasks, "no-op tasks per pool.map run (quick 10000, full 100000)");
  app.add_option("--submit-tasks", o.submit_tasks, "tasks per submit+get run (quick 2000, full 20000)");
  app.add_option("--payload-tasks", o.payload_tasks, "large-payload tasks per run (quick 20, full 200)");
  app.add_option("--payload-bytes", payload_bytes, "argument size of the payload tasks (default 1M)");
  app.add_option("--start-repeats", o.start_repeats, "pools started per transport and start method (quick 3, full 10)");
  app.add_option("--scaling-tasks", o.scaling_tasks, "CPU-bound tasks per worker of --max-workers (quick 10, full 100)");
  app.add_option("--scaling-task-ms", o.scaling_task_ms, "duration of one CPU-bound task (quick 2, full 5)");
  app.add_option("--workers", o.workers, "pool workers (default: the CPUs)");
  app.add_option("--max-workers", o.max_workers, "scaling from 1 to this many workers (default: the CPUs)");
  app.add_option("--scaling-transport", scaling_transport, "transport of the scaling runs (default pipe)")
      ->check(CLI::IsMember({"pipe", "socket", "mqueue", "shm"}));
  app.add_flag("--no-spawn", no_spawn, "leave out Start::spawn pools");
  app.add_flag("--no-pin", no_pin, "do not pin master and peer to CPUs in the IPC suites");
  app.add_flag("--no-python", no_python, "skip the Python baselines");
  app.add_option("--python", o.python_exe, "the Python interpreter (default python3)");
  app.add_option("--python-script", o.python_script, "a pool_baseline.py to run instead of the built-in copy");
  app.add_flag("--require-idle", o.require_idle, "refuse to run (exit 3) on a busy or single-CPU machine");
  app.add_option("--max-load", o.max_load_per_core, "busy above this 1-minute load average per CPU (default 0.5)");
  app.add_option("--json", json, "write the report as JSON (bench/bench.schema.json)");
  app.add_option("--csv", csv, "write one CSV line per figure");
  app.add_option("--svg", svg, "write the charts as SVG files into this directory");
  app.add_flag("--quiet", quiet, "no progress lines on stderr");
  try {
    app.parse(argc, argv);
    o.mode = quick ? Mode::quick : Mode::full;
    if (!transports.empty()) {
      o.transports.clear();
      for (const auto& t : transports) o.transports.push_back(*parse_transport(t));
    }
    for (const auto& s : sizes) o.payload_sizes.push_back(parse_size(s));
    if (!payload_bytes.empty()) o.payload_bytes = parse_size(payload_bytes);
    o.scaling_transport = *parse_transport(scaling_transport);
    o.suites = suites;
    o.python = !no_python;
    o.pin = !no_pin;
    o.spawn = !no_spawn;
    o.progress = !quiet;
    if (!json.empty()) o.json_path = json;
    if (!csv.empty()) o.csv_path = csv;
    if (!svg.empty()) o.svg_dir = svg;
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << app.get_name() << ": " << e.what() << '\n';
    return 2;
  }
  try {
    const Report report = run(o, std::cerr);
    print_table(report, std::cout);
    return 0;
  } catch (const BusyMachine& e) {
    std::cerr << app.get_name() << ": refusing to run: " << e.what() << '\n';
    return 3;
  } catch (const std::exception& e) {
    std::cerr << app.get_name() << ": " << e.what() << '\n';
    return 1;
  }
}

}  // namespace taskfarm::bench
