// Seeded mutation fuzzing of everything that decodes bytes sent by the other
// process: frame headers, the frame stream decoder of the shared-memory
// transports, real links of every transport, the worker protocol's envelopes
// (task and error payloads), and the cereal decoding of typical argument and
// result types, through decode<T>, decode_args and a registered task's invoker.
//
// Inputs are random bytes and valid encodings with 1..4 mutations
// (support/fuzz.hpp). Every decoder must either succeed or fail the documented
// way -- false from the protocol parsers, SerializationError from the value
// decoders, protocol_error/too_large from a link -- and must never crash (ASan
// and UBSan builds run this too) nor allocate much more than it was given: the
// largest single allocation is checked against the input size
// (support/alloc_tracker.hpp).
//
// The allocation bounds: 2x the input plus a small constant for everything that
// allocates bytes; for a container of wide elements, the documented bound of
// serialize.hpp instead, sizeof(element) x the input (a size tag may claim as
// many elements as there are bytes left); for a link, the documented growth of
// its receive buffer (what arrived, x2, at least 1 MiB).
//
// TASKFARM_FUZZ_ITERATIONS=<n> sets every test's iteration count (the link tests,
// which create kernel objects per iteration, run a tenth of it per transport).

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "frame_stream.hpp"
#include "support/alloc_tracker.hpp"
#include "support/fuzz.hpp"
#include "support/test_support.hpp"
#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/frame.hpp"
#include "taskfarm/common/registry.hpp"
#include "taskfarm/common/serialize.hpp"
#include "taskfarm/common/task.hpp"
#include "taskfarm/common/wire.hpp"
#include "taskfarm/ipc/link.hpp"
#include "taskfarm/worker/protocol.hpp"
#include "test_hooks.hpp"

// ---- typical argument types, and tasks that take them ----------------------

namespace fuzz_types {

struct Job {
  std::string name;
  bool urgent = false;
  std::optional<std::vector<std::int32_t>> sizes;
  std::map<std::string, double> weights;
  std::chrono::milliseconds budget{0};

  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, urgent, sizes, weights, budget);
  }
  bool operator==(const Job&) const = default;
};

}  // namespace fuzz_types

namespace {

using fuzz_types::Job;
using taskfarm::SerializationError;
using taskfarm::test::fuzz_iterations;
using taskfarm::test::largest_allocation;
using taskfarm::test::mutated;
using taskfarm::test::random_bytes;
using taskfarm::test::reset_largest_allocation;
using taskfarm::test::Rng;

constexpr std::size_t kSlack = 4096;  // small fixed allocations (archive tables, messages)

// Registered at static initialisation; the test invokes them through the
// registry, as a worker does.
const taskfarm::Task<std::int64_t(std::int64_t)> t_int{"fuzz.int", [](std::int64_t x) { return x; }};
const taskfarm::Task<std::size_t(std::string)> t_text{"fuzz.text",
                                                      [](const std::string& s) { return s.size(); }};
const taskfarm::Task<double(std::vector<double>)> t_vec{"fuzz.vec", [](const std::vector<double>& v) {
                                                          double s = 0;
                                                          for (double d : v) s += d;
                                                          return s;
                                                        }};
const taskfarm::Task<std::size_t(std::map<std::string, int>)> t_map{
    "fuzz.map", [](const std::map<std::string, int>& m) { return m.size(); }};
const taskfarm::Task<std::size_t(Job)> t_job{"fuzz.job", [](const Job& j) { return j.name.size(); }};
const taskfarm::Task<std::string(int, std::string, double)> t_multi{
    "fuzz.multi", [](int a, std::string b, double) { return b + std::to_string(a); }};
const taskfarm::Task<bool(std::pair<std::string, std::vector<std::uint16_t>>)> t_pair{
    "fuzz.pair", [](const std::pair<std::string, std::vector<std::uint16_t>>& p) {
      return p.first.size() == p.second.size();
    }};
const taskfarm::Task<std::uint64_t(bool, std::optional<std::string>)> t_flags{
    "fuzz.flags", [](bool b, const std::optional<std::string>& s) {
      return static_cast<std::uint64_t>(b) + (s ? s->size() : 0);
    }};

std::string random_text(Rng& rng, std::size_t max_len) {
  std::string s(rng.below(max_len + 1), '\0');
  for (auto& c : s) c = static_cast<char>(rng.chance(4) ? rng.next() : 'a' + rng.below(26));
  return s;
}

// ---- generators of valid values ---------------------------------------------

template <class T>
struct Gen;

template <>
struct Gen<std::int64_t> {
  static std::int64_t make(Rng& r) { return static_cast<std::int64_t>(r.next()); }
};
template <>
struct Gen<int> {
  static int make(Rng& r) { return static_cast<int>(r.next()); }
};
template <>
struct Gen<double> {
  static double make(Rng& r) { return static_cast<double>(static_cast<std::int64_t>(r.next())) / 3.0; }
};
template <>
struct Gen<bool> {
  static bool make(Rng& r) { return r.chance(2); }
};
template <>
struct Gen<std::string> {
  static std::string make(Rng& r) { return random_text(r, 40); }
};
template <class T>
struct Gen<std::vector<T>> {
  static std::vector<T> make(Rng& r) {
    std::vector<T> v(r.below(12));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = Gen<T>::make(r);
    return v;
  }
};
template <>
struct Gen<std::uint16_t> {
  static std::uint16_t make(Rng& r) { return static_cast<std::uint16_t>(r.next()); }
};
template <class K, class V>
struct Gen<std::map<K, V>> {
  static std::map<K, V> make(Rng& r) {
    std::map<K, V> m;
    for (std::size_t n = r.below(8); n > 0; --n) m.emplace(Gen<K>::make(r), Gen<V>::make(r));
    return m;
  }
};
template <class A, class B>
struct Gen<std::pair<A, B>> {
  static std::pair<A, B> make(Rng& r) { return {Gen<A>::make(r), Gen<B>::make(r)}; }
};
template <class... T>
struct Gen<std::tuple<T...>> {
  static std::tuple<T...> make(Rng& r) { return std::tuple<T...>{Gen<T>::make(r)...}; }
};
template <class T>
struct Gen<std::optional<T>> {
  static std::optional<T> make(Rng& r) {
    if (r.chance(3)) return std::nullopt;
    return Gen<T>::make(r);
  }
};
template <class T, std::size_t N>
struct Gen<std::array<T, N>> {
  static std::array<T, N> make(Rng& r) {
    std::array<T, N> a{};
    for (auto& x : a) x = Gen<T>::make(r);
    return a;
  }
};
template <>
struct Gen<Job> {
  static Job make(Rng& r) {
    Job j;
    j.name = Gen<std::string>::make(r);
    j.urgent = r.chance(2);
    j.sizes = Gen<std::optional<std::vector<std::int32_t>>>::make(r);
    j.weights = Gen<std::map<std::string, double>>::make(r);
    j.budget = std::chrono::milliseconds(static_cast<std::int64_t>(r.below(100000)));
    return j;
  }
};

// What an input is: random bytes, or a valid encoding mutated (most of the
// time, since those reach the deep paths), or a valid encoding as it is.
enum class Kind { random, mutated, valid };
Kind pick_kind(Rng& rng) {
  const auto k = rng.below(10);
  return k < 2 ? Kind::random : k < 9 ? Kind::mutated : Kind::valid;
}

// Decodes mutated and random encodings of T, `iters` times. `growth`: the
// allowed largest allocation per input byte (see the file comment).
template <class T>
void fuzz_decode(const char* name, std::uint64_t seed, std::size_t iters, std::size_t growth) {
  SCOPED_TRACE(name);
  Rng rng(seed);
  std::size_t ok = 0, rejected = 0;
  for (std::size_t it = 0; it < iters; ++it) {
    const T original = Gen<T>::make(rng);
    const auto valid = taskfarm::encode(original);
    const Kind kind = pick_kind(rng);
    const auto input = kind == Kind::random    ? random_bytes(rng, 96)
                       : kind == Kind::mutated ? mutated(rng, valid)
                                               : valid;
    reset_largest_allocation();
    try {
      const T value = taskfarm::decode<T>(input);
      ++ok;
      if (kind == Kind::valid) {
        ASSERT_TRUE(value == original) << "a valid encoding round-trips, iteration " << it;
      }
    } catch (const SerializationError& e) {
      ++rejected;
      ASSERT_NE(std::string(e.what()), "") << "iteration " << it;
      ASSERT_NE(kind, Kind::valid) << "a valid encoding was refused: " << e.what();
    } catch (const std::exception& e) {
      FAIL() << "iteration " << it << ": not a SerializationError: " << e.what();
    }
    const std::size_t largest = largest_allocation();
    ASSERT_LE(largest, growth * input.size() + kSlack)
        << "iteration " << it << ": " << input.size() << " bytes of input";
  }
  std::printf("[fuzz] decode<%s>: %zu inputs, %zu decoded, %zu refused\n", name, iters, ok, rejected);
  EXPECT_GT(ok, 0u);
  EXPECT_GT(rejected, 0u) << "the mutations never produced an invalid encoding";
}

TEST(Fuzz, CheckHeaderOnRandomAndMutatedHeaders) {
  Rng rng(0x4845414445520001ull);
  const std::size_t iters = fuzz_iterations(200'000);
  const std::uint64_t max = std::uint64_t{1} << 20;
  std::size_t ok = 0;
  for (std::size_t it = 0; it < iters; ++it) {
    std::vector<std::byte> raw;
    if (rng.chance(4)) {
      raw = random_bytes(rng, sizeof(taskfarm::FrameHeader));
    } else {
      const auto h = taskfarm::make_header(static_cast<taskfarm::FrameKind>(1 + rng.below(7)),
                                           rng.next(), rng.below(2 * max));
      raw.resize(sizeof h);
      std::memcpy(raw.data(), &h, sizeof h);
      raw = mutated(rng, raw);
    }
    raw.resize(sizeof(taskfarm::FrameHeader));  // a header is always read whole
    taskfarm::FrameHeader h;
    std::memcpy(&h, raw.data(), sizeof h);
    const auto c = taskfarm::check_header(h, max);
    ASSERT_FALSE(taskfarm::describe_check(c, h, max).empty());
    if (c == taskfarm::FrameCheck::ok) {
      ++ok;
      ASSERT_EQ(h.magic, taskfarm::kFrameMagic);
      ASSERT_EQ(h.version, taskfarm::kFrameVersion);
      ASSERT_GE(h.kind, 1u);
      ASSERT_LE(h.kind, 7u);
      ASSERT_LE(h.length, max);
    }
  }
  std::printf("[fuzz] check_header: %zu headers, %zu accepted\n", iters, ok);
  EXPECT_GT(ok, 0u);
}

// A byte stream of `n` valid frames, and the frames.
std::vector<std::byte> frame_stream(Rng& rng, std::size_t n, std::vector<taskfarm::Frame>* frames) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i < n; ++i) {
    taskfarm::Frame f;
    f.payload = random_bytes(rng, rng.chance(8) ? 2000 : 40);
    f.header = taskfarm::make_header(static_cast<taskfarm::FrameKind>(1 + rng.below(7)), rng.next(),
                                     f.payload.size());
    const auto* hb = reinterpret_cast<const std::byte*>(&f.header);
    out.insert(out.end(), hb, hb + sizeof f.header);
    out.insert(out.end(), f.payload.begin(), f.payload.end());
    if (frames) frames->push_back(std::move(f));
  }
  return out;
}

TEST(Fuzz, FrameStreamDecoderOnGarbageAndMutatedStreams) {
  // The decoder of the shm and mqueue transports, fed the way they feed it:
  // pieces of arbitrary size, the whole-frame fast path first.
  Rng rng(0x53545245414d0002ull);
  const std::size_t iters = fuzz_iterations(20'000);
  std::size_t complete = 0, protocol = 0, too_large = 0;
  for (std::size_t it = 0; it < iters; ++it) {
    std::vector<taskfarm::Frame> frames;
    const auto valid = frame_stream(rng, 1 + rng.below(5), &frames);
    const Kind kind = pick_kind(rng);
    const auto input = kind == Kind::random    ? random_bytes(rng, 512)
                       : kind == Kind::mutated ? mutated(rng, valid)
                                               : valid;
    const std::uint64_t max = rng.chance(4) ? std::uint64_t{1} << 40 : 4096;
    taskfarm::ipc::detail::FrameAssembler as(max);
    std::vector<taskfarm::Frame> got;
    std::error_code ec;
    reset_largest_allocation();
    std::size_t pos = 0;
    taskfarm::Frame f;
    while (pos < input.size() && !ec) {
      const std::size_t piece = std::min(input.size() - pos, 1 + rng.below(rng.chance(2) ? 64 : 4096));
      const std::byte* p = input.data() + pos;
      std::size_t used = as.take_whole(p, piece, f, ec);
      if (used > 0) {
        got.push_back(f);
      } else if (!ec) {
        used = as.feed(p, piece, input.size() - pos, ec);
        if (!ec && as.ready()) {
          as.take(f);
          got.push_back(f);
        }
      }
      ASSERT_LE(used, piece);
      ASSERT_TRUE(used > 0 || ec) << "the decoder must make progress, iteration " << it;
      pos += used;
    }
    const std::size_t largest = largest_allocation();
    ASSERT_LE(largest, 2 * input.size() + kSlack) << "iteration " << it;
    if (ec) {
      ASSERT_TRUE(ec == taskfarm::ipc::Errc::protocol_error || ec == taskfarm::ipc::Errc::too_large)
          << ec.message();
      (ec == taskfarm::ipc::Errc::protocol_error ? protocol : too_large)++;
    } else {
      ++complete;
    }
    for (const auto& g : got) {
      ASSERT_EQ(taskfarm::check_header(g.header, max), taskfarm::FrameCheck::ok);
      ASSERT_EQ(g.payload.size(), g.header.length);
    }
    if (kind == Kind::valid && max == 4096) {
      ASSERT_FALSE(ec) << ec.message();
      ASSERT_EQ(got.size(), frames.size());
      for (std::size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].id(), frames[i].id());
        ASSERT_EQ(got[i].payload, frames[i].payload);
      }
    }
  }
  std::printf("[fuzz] frame stream: %zu streams, %zu clean, %zu protocol_error, %zu too_large\n",
              iters, complete, protocol, too_large);
  EXPECT_GT(complete, 0u);
  EXPECT_GT(protocol, 0u);
  EXPECT_GT(too_large, 0u);
}

// ---- real links ---------------------------------------------------------------

class LinkFuzz : public taskfarm::test::LeakCheck,
                 public ::testing::WithParamInterface<taskfarm::Transport> {};

// Bytes written, unframed, into a real link's worker-to-master direction reach
// the master's try_receive: a random prefix is a protocol error, and whatever a
// mutated stream turns into is valid frames, protocol_error or too_large --
// never a crash, a hang or a huge allocation. Both ends live in this process.
TEST_P(LinkFuzz, GarbageWrittenIntoALinkIsAProtocolError) {
  const taskfarm::Transport transport = GetParam();
  Rng rng(0x4c494e4b00000003ull + static_cast<std::uint64_t>(transport));
  const std::size_t iters = std::max<std::size_t>(1, fuzz_iterations(2'000) / 10);
  std::size_t protocol = 0, clean = 0, too_large = 0;
  for (std::size_t it = 0; it < iters; ++it) {
    SCOPED_TRACE("iteration " + std::to_string(it));
    taskfarm::ipc::LinkConfig config;
    config.max_frame_bytes = rng.chance(2) ? 4096 : std::uint64_t{1} << 30;
    config.ring_bytes = 64 * 1024;
    taskfarm::ipc::LinkPair pair;
    ASSERT_FALSE(taskfarm::ipc::create_link(transport, config, pair));
    std::unique_ptr<taskfarm::ipc::Link> worker;
    ASSERT_FALSE(taskfarm::ipc::attach_link(pair.worker, config, worker));
    pair.master->peer_attached();

    const bool pure_garbage = rng.chance(2);
    std::vector<taskfarm::Frame> frames;
    std::vector<std::byte> bytes;
    if (pure_garbage) {
      bytes = random_bytes(rng, 3000);
      if (bytes.empty()) bytes.push_back(std::byte{0});
      bytes[0] = static_cast<std::byte>(0x55);  // never the first byte of the magic
      // ... and enough of it for a whole header.
      while (bytes.size() < sizeof(taskfarm::FrameHeader)) bytes.push_back(rng.byte());
    } else {
      bytes = mutated(rng, frame_stream(rng, 1 + rng.below(4), &frames));
    }
    if (worker->writable_fd() >= 0) {
      std::size_t done = 0;
      while (done < bytes.size()) {
        const ssize_t n = ::write(worker->writable_fd(), bytes.data() + done, bytes.size() - done);
        ASSERT_GT(n, 0) << "a few KiB fit in the channel";
        done += static_cast<std::size_t>(n);
      }
    } else {
      ASSERT_FALSE(taskfarm::ipc::detail::write_raw_bytes(*worker, bytes, std::chrono::seconds(10)));
    }
    worker.reset();  // end of stream after the bytes

    reset_largest_allocation();
    taskfarm::Frame f;
    std::error_code ec;
    std::size_t received = 0;
    for (;;) {
      ec = pair.master->receive_for(f, std::chrono::seconds(30));
      if (ec) break;
      ++received;
      ASSERT_EQ(f.payload.size(), f.header.length);
    }
    const std::size_t largest = largest_allocation();
    ASSERT_LE(largest, 2 * bytes.size() + (std::size_t{1} << 20) + (64 << 10));
    ASSERT_NE(ec, taskfarm::ipc::Errc::timed_out) << "the master hung on " << bytes.size() << " bytes";
    if (pure_garbage) {
      ASSERT_EQ(ec, taskfarm::ipc::Errc::protocol_error) << ec.message();
      ASSERT_EQ(received, 0u);
    }
    ASSERT_TRUE(ec == taskfarm::ipc::Errc::protocol_error || ec == taskfarm::ipc::Errc::too_large ||
                ec == taskfarm::ipc::Errc::peer_gone)
        << ec.message();
    if (ec != taskfarm::ipc::Errc::peer_gone) {
      ASSERT_EQ(pair.master->try_receive(f), ec) << "a broken link stays broken";
    }
    (ec == taskfarm::ipc::Errc::protocol_error ? protocol
     : ec == taskfarm::ipc::Errc::too_large    ? too_large
                                               : clean)++;
  }
  std::printf("[fuzz] %s link: %zu streams, %zu protocol_error, %zu too_large, %zu clean end\n",
              taskfarm::to_string(transport).data(), iters, protocol, too_large, clean);
  EXPECT_GT(protocol, 0u);
}

INSTANTIATE_TEST_SUITE_P(Transports, LinkFuzz,
                         ::testing::Values(taskfarm::Transport::pipe, taskfarm::Transport::socket,
                                           taskfarm::Transport::mqueue, taskfarm::Transport::shm),
                         [](const auto& p) { return std::string(taskfarm::to_string(p.param)); });

// ---- the worker protocol ------------------------------------------------------

struct TaskItem {
  std::uint64_t index;
  std::vector<std::byte> args;
};

std::vector<std::byte> task_payload(std::string_view task, const std::vector<TaskItem>& items) {
  std::vector<std::byte> out;
  taskfarm::detail::ByteWriter w(out);
  w.str(task);
  w.put(static_cast<std::uint32_t>(items.size()));
  for (const auto& i : items) {
    w.put(i.index);
    w.put(static_cast<std::uint32_t>(i.args.size()));
    w.bytes(i.args);
  }
  return out;
}

// Valid encoded arguments for one of the fuzz tasks.
std::vector<std::byte> args_for(Rng& rng, const std::string& task) {
  if (task == "fuzz.int") return taskfarm::encode(Gen<std::int64_t>::make(rng));
  if (task == "fuzz.text") return taskfarm::encode(Gen<std::string>::make(rng));
  if (task == "fuzz.vec") return taskfarm::encode(Gen<std::vector<double>>::make(rng));
  if (task == "fuzz.map") return taskfarm::encode(Gen<std::map<std::string, int>>::make(rng));
  if (task == "fuzz.job") return taskfarm::encode(Gen<Job>::make(rng));
  if (task == "fuzz.multi")
    return taskfarm::encode(Gen<int>::make(rng), Gen<std::string>::make(rng), Gen<double>::make(rng));
  if (task == "fuzz.pair")
    return taskfarm::encode(Gen<std::pair<std::string, std::vector<std::uint16_t>>>::make(rng));
  return taskfarm::encode(Gen<bool>::make(rng), Gen<std::optional<std::string>>::make(rng));
}

const std::vector<std::string> kTasks = {"fuzz.int", "fuzz.text", "fuzz.vec",   "fuzz.map",
                                         "fuzz.job", "fuzz.multi", "fuzz.pair", "fuzz.flags"};

TEST(Fuzz, TaskPayloadsParseOrAreRefusedAndTheirArgumentsDecodeOrThrow) {
  // The worker's side of a task frame: parse_task, then each item's arguments
  // through the registered task's invoker (decode_args + the call + encode).
  Rng rng(0x5441534b00000004ull);
  const std::size_t iters = fuzz_iterations(20'000);
  std::size_t parsed = 0, refused = 0, invoked = 0, arg_errors = 0;
  for (std::size_t it = 0; it < iters; ++it) {
    const std::string& task = kTasks[rng.below(kTasks.size())];
    std::vector<TaskItem> items(rng.below(5));
    for (auto& i : items) {
      i.index = rng.next();
      i.args = args_for(rng, task);
    }
    const auto valid = task_payload(task, items);
    const Kind kind = pick_kind(rng);
    const auto input = kind == Kind::random    ? random_bytes(rng, 200)
                       : kind == Kind::mutated ? mutated(rng, valid)
                                               : valid;
    std::string_view name;
    std::vector<taskfarm::worker::ItemView> views;
    reset_largest_allocation();
    const bool ok = taskfarm::worker::parse_task(input, name, views);
    ASSERT_LE(largest_allocation(), 2 * input.size() + kSlack) << "iteration " << it;
    if (kind == Kind::valid) {
      ASSERT_TRUE(ok) << "iteration " << it;
      ASSERT_EQ(name, task);
      ASSERT_EQ(views.size(), items.size());
    }
    if (!ok) {
      ++refused;
      continue;
    }
    ++parsed;
    // Everything parse_task hands out lies inside the payload.
    const auto* lo = input.data();
    const auto* hi = input.data() + input.size();
    ASSERT_TRUE(name.empty() || (reinterpret_cast<const std::byte*>(name.data()) >= lo &&
                                 reinterpret_cast<const std::byte*>(name.data() + name.size()) <= hi));
    for (const auto& v : views)
      ASSERT_TRUE(v.args.empty() || (v.args.data() >= lo && v.args.data() + v.args.size() <= hi));

    const auto info = taskfarm::detail::Registry::instance().find(name);
    if (!info) continue;  // an unknown task: the worker reports it by name
    for (const auto& v : views) {
      std::vector<std::byte> out;
      reset_largest_allocation();
      try {
        info->invoke(v.args, out);
        ++invoked;
      } catch (const SerializationError& e) {
        ++arg_errors;
        ASSERT_NE(std::string(e.what()), "");
      } catch (const std::exception& e) {
        FAIL() << "iteration " << it << ", task " << name << ": not a SerializationError: "
               << e.what();
      }
      // Job holds an optional vector of int32 (4 bytes per element on the wire
      // and in memory); vector<double> 8; the rest are byte-bounded.
      ASSERT_LE(largest_allocation(), 8 * v.args.size() + kSlack)
          << "iteration " << it << ", task " << name;
    }
  }
  std::printf("[fuzz] task payloads: %zu, %zu parsed, %zu refused; items: %zu ran, %zu SerializationError\n",
              iters, parsed, refused, invoked, arg_errors);
  EXPECT_GT(parsed, 0u);
  EXPECT_GT(refused, 0u);
  EXPECT_GT(invoked, 0u);
  EXPECT_GT(arg_errors, 0u);
}

TEST(Fuzz, ErrorPayloadsParseOrAreRefused) {
  Rng rng(0x4552524f52000005ull);
  const std::size_t iters = fuzz_iterations(50'000);
  std::size_t parsed = 0, refused = 0;
  for (std::size_t it = 0; it < iters; ++it) {
    std::vector<std::byte> valid;
    const auto kind_byte = static_cast<taskfarm::worker::ErrorKind>(rng.below(3));
    const std::string type = random_text(rng, 30), message = random_text(rng, 80);
    taskfarm::worker::encode_error(valid, rng.next(), kind_byte, type, message);
    const Kind kind = pick_kind(rng);
    const auto input = kind == Kind::random    ? random_bytes(rng, 150)
                       : kind == Kind::mutated ? mutated(rng, valid)
                                               : valid;
    taskfarm::worker::ErrorView ev;
    reset_largest_allocation();
    const bool ok = taskfarm::worker::parse_error(input, ev);
    ASSERT_LE(largest_allocation(), kSlack);
    if (kind == Kind::valid) {
      ASSERT_TRUE(ok);
      ASSERT_EQ(ev.type, type);
      ASSERT_EQ(ev.message, message);
      ASSERT_EQ(ev.kind, kind_byte);
    }
    if (!ok) {
      ++refused;
      continue;
    }
    ++parsed;
    ASSERT_LE(static_cast<unsigned>(ev.kind), 2u);
    const auto* lo = reinterpret_cast<const char*>(input.data());
    const auto* hi = lo + input.size();
    for (std::string_view s : {ev.type, ev.message})
      ASSERT_TRUE(s.empty() || (s.data() >= lo && s.data() + s.size() <= hi));
  }
  std::printf("[fuzz] error payloads: %zu, %zu parsed, %zu refused\n", iters, parsed, refused);
  EXPECT_GT(parsed, 0u);
  EXPECT_GT(refused, 0u);
}

// ---- values: results and arguments ---------------------------------------------

TEST(Fuzz, ScalarsAndStringsDecodeOrThrowSerializationError) {
  const std::size_t n = fuzz_iterations(20'000);
  fuzz_decode<std::int64_t>("int64", 101, n, 2);
  fuzz_decode<double>("double", 102, n, 2);
  fuzz_decode<bool>("bool", 103, n, 2);
  fuzz_decode<std::string>("string", 104, n, 2);
}

// Found by this fuzzing under UBSan: a bool byte other than 0 or 1 was copied
// into a bool as it was ("load of value 9, which is not a valid value for type
// 'bool'" when the task read its argument). Every path that decodes a bool
// refuses it now.
TEST(Fuzz, BoolBytesOtherThanZeroAndOneAreRefused) {
  const auto with_byte = [](std::vector<std::byte> b, std::size_t at, unsigned char v) {
    b.at(at) = static_cast<std::byte>(v);
    return b;
  };
  for (unsigned char v : {2, 9, 0x80, 0xff}) {
    SCOPED_TRACE("byte " + std::to_string(v));
    EXPECT_THROW((void)taskfarm::decode<bool>(with_byte(taskfarm::encode(true), 0, v)), SerializationError);
    EXPECT_THROW((void)(taskfarm::decode_args<std::tuple<bool, int>>(with_byte(taskfarm::encode(true, 5), 0, v))),
                 SerializationError);
    EXPECT_THROW((void)taskfarm::decode<std::optional<int>>(
                     with_byte(taskfarm::encode(std::optional<int>(4)), 0, v)),
                 SerializationError);
    // u64 size, then one byte per bool.
    EXPECT_THROW((void)taskfarm::decode<std::vector<bool>>(
                     with_byte(taskfarm::encode(std::vector<bool>{true, false}), 9, v)),
                 SerializationError);
    EXPECT_THROW((void)taskfarm::decode<Job>(with_byte(taskfarm::encode(Job{}), 8, v)), SerializationError)
        << "Job.urgent follows the empty name's u64 size";
    std::vector<std::byte> out;
    EXPECT_THROW(taskfarm::detail::Registry::instance().find("fuzz.flags")->invoke(
                     with_byte(taskfarm::encode(false, std::optional<std::string>()), 0, v), out),
                 SerializationError);
  }
  EXPECT_EQ(taskfarm::decode<bool>(taskfarm::encode(true)), true);
  EXPECT_EQ(taskfarm::decode<bool>(taskfarm::encode(false)), false);
  EXPECT_EQ(taskfarm::decode<std::vector<bool>>(taskfarm::encode(std::vector<bool>{true, false})),
            (std::vector<bool>{true, false}));
}

TEST(Fuzz, ContainersDecodeOrThrowSerializationError) {
  const std::size_t n = fuzz_iterations(20'000);
  fuzz_decode<std::vector<double>>("vector<double>", 201, n, sizeof(double));
  fuzz_decode<std::vector<std::string>>("vector<string>", 202, n, sizeof(std::string));
  fuzz_decode<std::vector<bool>>("vector<bool>", 203, n, 2);
  fuzz_decode<std::map<std::string, int>>("map<string,int>", 204, n, 2);
  fuzz_decode<std::array<std::int32_t, 4>>("array<int32,4>", 205, n, 2);
  fuzz_decode<std::optional<std::vector<std::int32_t>>>("optional<vector<int32>>", 206, n,
                                                        sizeof(std::int32_t));
}

TEST(Fuzz, CompositesDecodeOrThrowSerializationError) {
  const std::size_t n = fuzz_iterations(20'000);
  fuzz_decode<std::pair<std::string, std::vector<std::uint16_t>>>("pair<string,vector<u16>>", 301,
                                                                  n, 2);
  fuzz_decode<std::tuple<int, std::string, double>>("tuple<int,string,double>", 302, n, 2);
  fuzz_decode<std::vector<std::pair<int, std::string>>>(
      "vector<pair<int,string>>", 303, n, sizeof(std::pair<int, std::string>));
  fuzz_decode<Job>("Job", 304, n, sizeof(std::int32_t));
}

TEST(Fuzz, ArgumentTuplesDecodeOrThrowSerializationError) {
  // decode_args: arguments are the tuple's elements one after another.
  Rng rng(0x4152475300000006ull);
  const std::size_t iters = fuzz_iterations(20'000);
  std::size_t ok = 0, rejected = 0;
  for (std::size_t it = 0; it < iters; ++it) {
    const auto a = Gen<int>::make(rng);
    const auto b = Gen<std::string>::make(rng);
    const auto c = Gen<std::vector<std::int32_t>>::make(rng);
    const auto valid = taskfarm::encode(a, b, c);
    const Kind kind = pick_kind(rng);
    const auto input = kind == Kind::random    ? random_bytes(rng, 120)
                       : kind == Kind::mutated ? mutated(rng, valid)
                                               : valid;
    for (int fast = 0; fast < 2; ++fast) {
      reset_largest_allocation();
      try {
        if (fast) {
          // Scalars and strings only: the archive-free path.
          (void)taskfarm::decode_args<std::tuple<int, std::string>>(input);
        } else {
          const auto t = taskfarm::decode_args<std::tuple<int, std::string, std::vector<std::int32_t>>>(input);
          if (kind == Kind::valid) {
            ASSERT_EQ(t, std::make_tuple(a, b, c));
          }
        }
        ++ok;
      } catch (const SerializationError&) {
        ++rejected;
        if (!fast) {
          ASSERT_NE(kind, Kind::valid);
        }
      } catch (const std::exception& e) {
        FAIL() << "iteration " << it << ": not a SerializationError: " << e.what();
      }
      ASSERT_LE(largest_allocation(), sizeof(std::int32_t) * input.size() + kSlack);
    }
  }
  std::printf("[fuzz] decode_args: %zu inputs x 2 tuples, %zu decoded, %zu refused\n", iters, ok, rejected);
  EXPECT_GT(ok, 0u);
  EXPECT_GT(rejected, 0u);
}

}  // namespace
