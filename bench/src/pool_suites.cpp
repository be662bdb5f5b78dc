// pool, startup and scaling: taskfarm's Pool end to end.

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine.hpp"
#include "machine.hpp"
#include "taskfarm/taskfarm.hpp"

namespace taskfarm::bench::detail {

namespace {

// The tasks of the benchmark. Defined at namespace scope in a translation unit
// that run() always links, so spawned workers of any program that links the
// engine find them.
const Task<int(int)> noop{"taskfarm.bench.noop", [](int x) { return x; }};
const Task<std::uint64_t(std::string)> payload_size{
    "taskfarm.bench.payload_size", [](const std::string& s) { return static_cast<std::uint64_t>(s.size()); }};
// CPU-bound work: `n` rounds of xorshift, the result returned so none is skipped.
std::uint64_t spin_impl(std::uint64_t n) {
  std::uint64_t x = 88172645463325252ull;
  for (std::uint64_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}
const Task<std::uint64_t(std::uint64_t)> spin{"taskfarm.bench.spin", &spin_impl};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("wrong results from " + what);
}

// Iterations of spin_impl that take about `ms` milliseconds here.
std::uint64_t calibrate_spin(double ms) {
  std::uint64_t n = 100'000;
  for (;;) {
    const auto t0 = Clock::now();
    volatile std::uint64_t sink = spin_impl(n);
    (void)sink;
    const double s = seconds_since(t0);
    if (s > 0.02 || n > (std::uint64_t{1} << 40))
      return std::max<std::uint64_t>(1, static_cast<std::uint64_t>(static_cast<double>(n) * ms / 1e3 / s));
    n *= 4;
  }
}

void pool_rates(Context& ctx, Transport t) {
  const auto& o = ctx.opt;
  const std::string tn(to_string(t));
  Pool pool({.workers = o.workers, .transport = t});
  std::vector<int> xs(o.pool_tasks);
  std::iota(xs.begin(), xs.end(), 0);
  const std::vector<std::string> blobs(o.payload_tasks, std::string(o.payload_bytes, 'x'));
  // Warm-up: workers started, code and allocator paths hot.
  check(pool.map(noop, std::vector<int>(1000, 1)) == std::vector<int>(1000, 1), "the warm-up");
  if (!blobs.empty())
    (void)pool.map(payload_size, std::vector<std::string>(blobs.begin(), blobs.begin() + std::min<std::size_t>(blobs.size(), 4)),
                   {.chunksize = 1});

  auto chunk1 = make_record("pool", "taskfarm", tn, tn, "map_noop_chunk1", "tasks/s", true);
  auto autoc = make_record("pool", "taskfarm", tn, tn, "map_noop_auto", "tasks/s", true);
  auto submit = make_record("pool", "taskfarm", tn, tn, "submit_get", "tasks/s", true);
  auto big = make_record("pool", "taskfarm", tn, tn, "map_payload", "tasks/s", true);
  chunk1.chunking = "1";
  autoc.chunking = "auto";
  big.chunking = "1";
  big.payload_bytes = o.payload_bytes;
  for (auto* r : {&chunk1, &autoc, &submit, &big}) r->workers = pool.size();
  chunk1.samples_per_run = autoc.samples_per_run = o.pool_tasks;
  submit.samples_per_run = o.submit_tasks;
  big.samples_per_run = o.payload_tasks;

  for (std::size_t r = 0; r < o.repeats; ++r) {
    ctx.progress("pool " + tn + ": run " + std::to_string(r + 1) + "/" + std::to_string(o.repeats));
    auto t0 = Clock::now();
    auto ys = pool.map(noop, xs, {.chunksize = 1});
    chunk1.runs.push_back(static_cast<double>(xs.size()) / seconds_since(t0));
    check(ys == xs, "map(chunksize=1)");

    t0 = Clock::now();
    ys = pool.map(noop, xs);
    autoc.runs.push_back(static_cast<double>(xs.size()) / seconds_since(t0));
    check(ys == xs, "map(automatic chunking)");

    t0 = Clock::now();
    std::vector<Future<int>> futures;
    futures.reserve(o.submit_tasks);
    for (std::size_t i = 0; i < o.submit_tasks; ++i) futures.push_back(pool.submit(noop, static_cast<int>(i)));
    long long sum = 0;
    for (auto& f : futures) sum += f.get();
    submit.runs.push_back(static_cast<double>(o.submit_tasks) / seconds_since(t0));
    const auto n = static_cast<long long>(o.submit_tasks);
    check(sum == n * (n - 1) / 2, "submit+get");

    if (o.payload_tasks > 0) {
      t0 = Clock::now();
      const auto sizes = pool.map(payload_size, blobs, {.chunksize = 1});
      big.runs.push_back(static_cast<double>(blobs.size()) / seconds_since(t0));
      check(sizes == std::vector<std::uint64_t>(blobs.size(), o.payload_bytes), "the payload tasks");
    }
  }
  ctx.add(std::move(chunk1));
  ctx.add(std::move(autoc));
  ctx.add(std::move(submit));
  if (o.payload_tasks > 0) ctx.add(std::move(big));
}

void startup(Context& ctx) {
  const auto& o = ctx.opt;
  std::vector<Start> starts{Start::fork};
  if (o.spawn) starts.push_back(Start::spawn);
  std::vector<Transport> ts;
  for (Transport t : o.transports)
    if (ctx.available(t)) ts.push_back(t);
  // [transport][start] -> (start-to-first-result ms, shutdown ms) per run
  std::vector<std::vector<std::pair<std::vector<double>, std::vector<double>>>> runs(
      ts.size(), std::vector<std::pair<std::vector<double>, std::vector<double>>>(starts.size()));
  std::size_t workers = 0;
  // Round 0 warms caches (the program's pages, the loader) and is not recorded.
  for (std::size_t r = 0; r <= o.start_repeats; ++r) {
    ctx.progress(r == 0 ? std::string("startup: warm-up")
                        : "startup: run " + std::to_string(r) + "/" + std::to_string(o.start_repeats));
    for (std::size_t i = 0; i < ts.size(); ++i) {
      for (std::size_t j = 0; j < starts.size(); ++j) {
        try {
          const auto t0 = Clock::now();
          Pool pool({.workers = o.workers, .transport = ts[i], .start = starts[j]});
          const int v = pool.submit(noop, 7).get();
          const double first = seconds_since(t0) * 1e3;
          const auto t1 = Clock::now();
          pool.shutdown();
          const double down = seconds_since(t1) * 1e3;
          check(v == 7, "the first task");
          workers = pool.size();
          if (r == 0) continue;
          runs[i][j].first.push_back(first);
          runs[i][j].second.push_back(down);
        } catch (const std::exception& e) {
          ctx.warn("startup with " + std::string(to_string(ts[i])) + "/" +
                   std::string(to_string(starts[j])) + " failed: " + e.what());
        }
      }
    }
  }
  for (std::size_t i = 0; i < ts.size(); ++i) {
    for (std::size_t j = 0; j < starts.size(); ++j) {
      const std::string tn(to_string(ts[i]));
      auto a = make_record("startup", "taskfarm", tn, tn, "start_to_first_result", "ms", false);
      auto b = make_record("startup", "taskfarm", tn, tn, "shutdown", "ms", false);
      a.start = b.start = std::string(to_string(starts[j]));
      a.workers = b.workers = workers;
      a.samples_per_run = b.samples_per_run = 1;
      a.runs = runs[i][j].first;
      b.runs = runs[i][j].second;
      if (!a.runs.empty()) ctx.add(std::move(a));
      if (!b.runs.empty()) ctx.add(std::move(b));
    }
  }
}

void scaling(Context& ctx) {
  const auto& o = ctx.opt;
  const Transport t = o.scaling_transport;
  if (!ctx.available(t)) {
    ctx.warn("scaling skipped: transport " + std::string(to_string(t)) + " is unavailable");
    return;
  }
  const std::uint64_t iters = calibrate_spin(o.scaling_task_ms);
  const std::size_t total = o.scaling_tasks * o.max_workers;  // the same work for every pool size
  const std::vector<std::uint64_t> inputs(total, iters);
  const std::uint64_t expect = spin_impl(iters);
  std::vector<std::vector<double>> rates(o.max_workers + 1);
  for (std::size_t w = 1; w <= o.max_workers; ++w) {
    Pool pool({.workers = w, .transport = t});
    (void)pool.map(spin, std::vector<std::uint64_t>(w, iters / 10 + 1), {.chunksize = 1});  // warm-up
    for (std::size_t r = 0; r < o.repeats; ++r) {
      ctx.progress("scaling: " + std::to_string(w) + " worker(s), run " + std::to_string(r + 1) + "/" +
                   std::to_string(o.repeats));
      const auto t0 = Clock::now();
      const auto out = pool.map(spin, inputs, {.chunksize = 1});
      rates[w].push_back(static_cast<double>(total) / seconds_since(t0));
      check(out == std::vector<std::uint64_t>(total, expect), "the CPU-bound tasks");
    }
  }
  const std::string tn(to_string(t));
  const double base = summarize(rates[1]).median;
  for (std::size_t w = 1; w <= o.max_workers; ++w) {
    auto rate = make_record("scaling", "taskfarm", tn, tn, "cpu_tasks_per_s", "tasks/s", true);
    auto speed = make_record("scaling", "taskfarm", tn, tn, "speedup", "x", true);
    rate.workers = speed.workers = w;
    rate.chunking = speed.chunking = "1";
    rate.samples_per_run = speed.samples_per_run = total;
    rate.runs = rates[w];
    for (double v : rates[w]) speed.runs.push_back(v / base);
    ctx.add(std::move(rate));
    ctx.add(std::move(speed));
  }
}

}  // namespace

void run_pool_suites(Context& ctx) {
  // Pools run unpinned: the workers inherit the master's CPU mask (through the
  // fork server), and pinning the master would pin every worker with it.
  ctx.report.machine.placement_pool = "unpinned (the OS schedules master and workers)";
  // Start-up first, from a master as small as it gets: fork() copies the page
  // tables of the whole process (for the fork server, then for every worker),
  // so a master whose heap still holds the pool workloads' hundreds of MiB
  // starts pools several times slower. (That is real, and worth knowing, but it
  // is not the figure compared with Python's small interpreter.)
  ::malloc_trim(0);
  if (ctx.wants("startup")) {
    ctx.suite_started("startup");
    startup(ctx);
  }
  if (ctx.wants("pool")) {
    ctx.suite_started("pool");
    for (Transport t : ctx.opt.transports) {
      if (!ctx.available(t)) continue;
      try {
        pool_rates(ctx, t);
      } catch (const std::exception& e) {
        ctx.warn("pool workloads over " + std::string(to_string(t)) + " failed: " + e.what());
      }
      ::malloc_trim(0);
    }
  }
  if (ctx.wants("scaling")) {
    ctx.suite_started("scaling");
    if (allowed_cpus().size() < 2 && ctx.opt.max_workers < 2) {
      ctx.warn("scaling skipped: one CPU, nothing to scale to");
    } else {
      try {
        scaling(ctx);
      } catch (const std::exception& e) {
        ctx.warn(std::string("scaling failed: ") + e.what());
      }
    }
  }
}

}  // namespace taskfarm::bench::detail
