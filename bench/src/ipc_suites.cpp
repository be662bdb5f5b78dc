// latency and throughput: each transport against the raw mechanism it is built on.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>

#include "channels.hpp"
#include "engine.hpp"
#include "machine.hpp"
#include "taskfarm/bench/stats.hpp"
#include "taskfarm/bench/svg.hpp"

namespace taskfarm::bench::detail {

namespace {

std::vector<std::byte> payload(std::size_t n) {
  std::vector<std::byte> v(n);
  std::uint32_t x = 2463534242u;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::byte>(x);
  }
  return v;
}

struct Slot {
  std::unique_ptr<Channel> channel;
  std::optional<Transport> transport;  // set for taskfarm transports
  bool failed = false;
};

// Round trips timed per run: fewer for payloads above 64 KiB, whose round trips
// are long and whose tails are dominated by copying, not by scheduling.
std::size_t samples_for(const BenchOptions& o, std::uint64_t size) {
  if (size <= (64u << 10)) return o.rtt_samples;
  return std::max<std::size_t>(o.rtt_samples / 4, std::min<std::size_t>(o.rtt_samples, 50));
}

std::size_t warmup_for(const BenchOptions& o, std::uint64_t size) {
  if (size <= (64u << 10)) return o.warmup;
  return std::max<std::size_t>(o.warmup / 10, 5);
}

void fail(Context& ctx, Slot& s, const std::exception& e) {
  s.failed = true;
  if (s.transport)
    ctx.unavailable(*s.transport, std::string("failed during the benchmark: ") + e.what());
  else
    ctx.warn("raw baseline " + s.channel->info().subject + " failed: " + e.what());
  s.channel->stop();
}

// GB/s of memcpy in `block`-sized pieces cycling over `src`/`dst`.
double memcpy_gbps(const std::vector<std::byte>& src, std::vector<std::byte>& dst, std::size_t block,
                   std::size_t copies) {
  const std::size_t blocks = src.size() / block;
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < copies; ++i) {
    const std::size_t off = (i % blocks) * block;
    std::memcpy(dst.data() + off, src.data() + off, block);
    __asm__ __volatile__("" : : "r"(dst.data()) : "memory");  // keep every copy
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(block) * static_cast<double>(copies) / s / 1e9;
}

}  // namespace

std::string raw_name(Transport t) {
  switch (t) {
    case Transport::pipe: return "raw pipe";
    case Transport::socket: return "raw socketpair";
    case Transport::mqueue: return "raw Boost message_queue";
    case Transport::shm: return "raw semaphores";
  }
  return "raw";
}

void run_ipc_suites(Context& ctx) {
  const auto& o = ctx.opt;
  const bool latency = ctx.wants("latency"), throughput = ctx.wants("throughput");
  if (!latency && !throughput) return;
  constexpr std::uint64_t kSmall = 64, kLarge = std::uint64_t{1} << 20;

  const auto cpus = allowed_cpus();
  const bool pin = o.pin && cpus.size() >= 2;
  AffinityGuard restore;
  int peer_cpu = -1;
  if (pin) {
    peer_cpu = cpus[1];
    if (!pin_to_cpu(cpus[0])) ctx.warn("could not pin the master to CPU " + std::to_string(cpus[0]));
    ctx.report.machine.placement_ipc = "master on CPU " + std::to_string(cpus[0]) + ", peer on CPU " +
                                       std::to_string(cpus[1]) + " (sched_setaffinity)";
  } else {
    ctx.report.machine.placement_ipc =
        cpus.size() < 2 ? "unpinned (only one CPU: master and peer share it)" : "unpinned (--no-pin)";
  }

  std::uint64_t max_msg = throughput ? kLarge : 1;
  for (auto s : o.payload_sizes) max_msg = std::max(max_msg, s);

  std::vector<Slot> slots;
  for (Transport t : o.transports) {
    ctx.progress("starting peers for " + std::string(to_string(t)));
    try {
      Slot s;
      s.transport = t;
      s.channel = std::make_unique<Channel>(
          ChannelInfo{std::string(to_string(t)), "taskfarm", std::string(to_string(t))},
          make_transport(t), max_msg, peer_cpu);
      slots.push_back(std::move(s));
    } catch (const std::exception& e) {
      ctx.unavailable(t, e.what());
    }
    try {
      Slot s;
      s.channel = std::make_unique<Channel>(ChannelInfo{raw_name(t), "raw", std::string(to_string(t))},
                                            make_raw(t), max_msg, peer_cpu);
      slots.push_back(std::move(s));
    } catch (const std::exception& e) {
      ctx.warn(raw_name(t) + " baseline unavailable: " + e.what());
    }
  }

  if (latency) {
    ctx.suite_started("latency");
    const auto& sizes = o.payload_sizes;
    std::vector<std::vector<std::byte>> msgs;
    for (auto n : sizes) msgs.push_back(payload(n));
    // per slot, per size, per percentile: one value per run
    constexpr double kP[] = {0.50, 0.90, 0.99, 0.999};
    constexpr const char* kMetric[] = {"rtt_p50", "rtt_p90", "rtt_p99", "rtt_p999"};
    std::vector<std::vector<std::array<std::vector<double>, 4>>> runs(
        slots.size(), std::vector<std::array<std::vector<double>, 4>>(sizes.size()));
    ctx.progress("latency: warm-up");
    for (auto& s : slots) {
      try {
        for (std::size_t si = 0; si < sizes.size(); ++si)
          (void)s.channel->round_trips(msgs[si], warmup_for(o, sizes[si]));
      } catch (const std::exception& e) {
        fail(ctx, s, e);
      }
    }
    for (std::size_t r = 0; r < o.repeats; ++r) {
      ctx.progress("latency: run " + std::to_string(r + 1) + "/" + std::to_string(o.repeats));
      for (std::size_t si = 0; si < sizes.size(); ++si) {
        // Interleaved: every mechanism measured in turn within each run and size,
        // starting with a different one each run, so drift in the machine's load
        // hits all of them alike.
        for (std::size_t k = 0; k < slots.size(); ++k) {
          const std::size_t i = (k + r) % slots.size();
          auto& s = slots[i];
          if (s.failed) continue;
          try {
            (void)s.channel->round_trips(msgs[si], 5);  // re-warm after the others ran
            auto v = s.channel->round_trips(msgs[si], samples_for(o, sizes[si]));
            const auto p = percentiles(std::move(v), kP);
            for (int q = 0; q < 4; ++q) runs[i][si][q].push_back(p[q]);
          } catch (const std::exception& e) {
            fail(ctx, s, e);
          }
        }
      }
    }
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].failed) continue;
      const auto& info = slots[i].channel->info();
      for (std::size_t si = 0; si < sizes.size(); ++si) {
        for (int q = 0; q < 4; ++q) {
          auto rec = make_record("latency", info.impl, info.subject, info.transport, kMetric[q], "us", false);
          rec.payload_bytes = sizes[si];
          rec.samples_per_run = samples_for(o, sizes[si]);
          rec.runs = runs[i][si][q];
          ctx.add(std::move(rec));
        }
      }
    }
  }

  if (throughput) {
    ctx.suite_started("throughput");
    const std::uint64_t sizes[2] = {kSmall, kLarge};
    const std::size_t counts[2] = {o.stream_small, o.stream_large};
    std::vector<std::byte> msgs[2] = {payload(kSmall), payload(kLarge)};
    std::vector<std::array<std::vector<double>, 2>> secs(slots.size());
    ctx.progress("throughput: warm-up");
    for (auto& s : slots) {
      if (s.failed) continue;
      try {
        (void)s.channel->stream(msgs[0], std::min<std::size_t>(counts[0], 2000));
        (void)s.channel->stream(msgs[1], std::min<std::size_t>(counts[1], 8));
      } catch (const std::exception& e) {
        fail(ctx, s, e);
      }
    }
    for (std::size_t r = 0; r < o.repeats; ++r) {
      ctx.progress("throughput: run " + std::to_string(r + 1) + "/" + std::to_string(o.repeats));
      for (int z = 0; z < 2; ++z) {
        for (std::size_t k = 0; k < slots.size(); ++k) {
          const std::size_t i = (k + r) % slots.size();
          auto& s = slots[i];
          if (s.failed) continue;
          try {
            secs[i][z].push_back(s.channel->stream(msgs[z], counts[z]));
          } catch (const std::exception& e) {
            fail(ctx, s, e);
          }
        }
      }
    }
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (slots[i].failed) continue;
      const auto& info = slots[i].channel->info();
      for (int z = 0; z < 2; ++z) {
        auto msgs_rec = make_record("throughput", info.impl, info.subject, info.transport, "msgs_per_s", "msg/s", true);
        auto gb_rec = make_record("throughput", info.impl, info.subject, info.transport, "gb_per_s", "GB/s", true);
        msgs_rec.payload_bytes = gb_rec.payload_bytes = sizes[z];
        msgs_rec.samples_per_run = gb_rec.samples_per_run = counts[z];
        for (double s : secs[i][z]) {
          msgs_rec.runs.push_back(static_cast<double>(counts[z]) / s);
          gb_rec.runs.push_back(static_cast<double>(counts[z]) * static_cast<double>(sizes[z]) / s / 1e9);
        }
        ctx.add(std::move(msgs_rec));
        ctx.add(std::move(gb_rec));
      }
    }
    // memcpy: the ceiling of any copy through memory on this machine.
    ctx.progress("throughput: memcpy");
    auto cache = make_record("throughput", "raw", "memcpy (cache)", "", "gb_per_s", "GB/s", true);
    auto dram = make_record("throughput", "raw", "memcpy (64 MiB working set)", "", "gb_per_s", "GB/s", true);
    cache.payload_bytes = dram.payload_bytes = kLarge;
    const std::size_t copies = std::max<std::size_t>(o.stream_large, 64);
    cache.samples_per_run = dram.samples_per_run = copies;
    const std::vector<std::byte> small_src = payload(kLarge);
    std::vector<std::byte> small_dst(kLarge), big_src(64 * kLarge, std::byte{7}), big_dst(64 * kLarge, std::byte{0});
    (void)memcpy_gbps(small_src, small_dst, kLarge, 8);
    for (std::size_t r = 0; r < o.repeats; ++r) {
      cache.runs.push_back(memcpy_gbps(small_src, small_dst, kLarge, copies));
      dram.runs.push_back(memcpy_gbps(big_src, big_dst, kLarge, copies));
    }
    ctx.add(std::move(cache));
    ctx.add(std::move(dram));
  }
  for (auto& s : slots) s.channel->stop();
}

}  // namespace taskfarm::bench::detail
