// Encoding of task arguments and results: exact round trips, and hostile or
// truncated input rejected with SerializationError before anything big is allocated.

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "support/alloc_tracker.hpp"
#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/serialize.hpp"
#include "taskfarm/common/wire.hpp"

namespace {

using taskfarm::decode;
using taskfarm::decode_args;
using taskfarm::encode;
using taskfarm::SerializationError;

struct Point {
  int x = 0;
  double y = 0;
  std::string label;
  std::vector<int> tags;
  std::optional<std::map<std::string, int>> extra;

  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, y, label, tags, extra);
  }
  bool operator==(const Point&) const = default;
};

// A user type serialized by a free function instead of a member.
struct Celsius {
  float degrees = 0;
  bool operator==(const Celsius&) const = default;
};
template <class Archive>
void serialize(Archive& ar, Celsius& c) {
  ar(c.degrees);
}

template <class T>
T round_trip(const T& v) {
  return decode<T>(encode(v));
}

// Bytes of a u64 size tag followed by `tail` filler bytes.
std::vector<std::byte> size_tag_then(std::uint64_t tag, std::size_t tail) {
  std::vector<std::byte> out;
  taskfarm::detail::ByteWriter w(out);
  w.put(tag);
  for (std::size_t i = 0; i < tail; ++i) w.put(static_cast<std::uint8_t>('a' + i % 26));
  return out;
}

TEST(Serialize, Integers) {
  EXPECT_EQ(round_trip(0), 0);
  EXPECT_EQ(round_trip(-1), -1);
  EXPECT_EQ(round_trip(std::numeric_limits<int>::min()), std::numeric_limits<int>::min());
  EXPECT_EQ(round_trip(std::numeric_limits<std::int64_t>::max()),
            std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(round_trip(std::numeric_limits<std::uint64_t>::max()),
            std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(round_trip(std::uint8_t{255}), 255);
  EXPECT_EQ(round_trip(std::int16_t{-32768}), -32768);
  EXPECT_EQ(round_trip(true), true);
  EXPECT_EQ(round_trip('x'), 'x');
  EXPECT_EQ(encode(std::int32_t{5}).size(), 4u) << "arithmetic values are stored raw";
  EXPECT_EQ(encode(std::uint64_t{5}).size(), 8u);
}

TEST(Serialize, FloatingPoint) {
  EXPECT_EQ(round_trip(3.5), 3.5);
  EXPECT_EQ(round_trip(-0.0f), -0.0f);
  EXPECT_EQ(round_trip(std::numeric_limits<double>::max()), std::numeric_limits<double>::max());
  EXPECT_EQ(round_trip(std::numeric_limits<double>::denorm_min()),
            std::numeric_limits<double>::denorm_min());
  EXPECT_TRUE(std::isnan(round_trip(std::numeric_limits<double>::quiet_NaN())));
}

TEST(Serialize, Strings) {
  EXPECT_EQ(round_trip(std::string()), "");
  EXPECT_EQ(round_trip(std::string("hello")), "hello");
  const std::string with_nuls("a\0b\0\0c", 6);
  EXPECT_EQ(round_trip(with_nuls), with_nuls);
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + 7);
  EXPECT_EQ(round_trip(big), big);
  EXPECT_EQ(encode(std::string()).size(), 8u) << "an empty string is just its size tag";
}

TEST(Serialize, Vectors) {
  EXPECT_EQ(round_trip(std::vector<int>{}), std::vector<int>{});
  EXPECT_EQ(round_trip(std::vector<int>{1, -2, 3}), (std::vector<int>{1, -2, 3}));
  EXPECT_EQ(round_trip(std::vector<char>{'a', '\0', 'z'}), (std::vector<char>{'a', '\0', 'z'}));
  const std::vector<std::string> words{"", "one", std::string(1000, 'w')};
  EXPECT_EQ(round_trip(words), words);
  const std::vector<std::vector<double>> nested{{}, {1.5}, {2.5, 3.5}};
  EXPECT_EQ(round_trip(nested), nested);
  EXPECT_EQ(round_trip(std::vector<bool>{true, false, true}), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(round_trip(std::vector<std::string>{}), std::vector<std::string>{});
}

TEST(Serialize, Maps) {
  const std::map<std::string, int> m{{"a", 1}, {"b", -2}, {"", 0}};
  EXPECT_EQ(round_trip(m), m);
  const std::map<int, std::vector<std::string>> m2{{1, {"x"}}, {2, {}}};
  EXPECT_EQ(round_trip(m2), m2);
  EXPECT_EQ(round_trip(std::map<int, int>{}), (std::map<int, int>{}));
}

TEST(Serialize, TuplesPairsArraysOptionals) {
  const std::tuple<int, std::string, double> t{1, "two", 3.0};
  EXPECT_EQ(round_trip(t), t);
  EXPECT_EQ(round_trip(std::tuple<>{}), std::tuple<>{});
  const std::pair<std::string, std::vector<int>> p{"k", {4, 5}};
  EXPECT_EQ(round_trip(p), p);
  EXPECT_EQ(round_trip(std::array<int, 3>{7, 8, 9}), (std::array<int, 3>{7, 8, 9}));
  EXPECT_EQ(round_trip(std::optional<int>{}), std::nullopt);
  EXPECT_EQ(round_trip(std::optional<int>{42}), 42);
  EXPECT_EQ(round_trip(std::optional<std::string>{""}), std::optional<std::string>{""})
      << "an engaged empty string is not the same as nothing";
  EXPECT_EQ(round_trip(std::chrono::milliseconds(1500)), std::chrono::milliseconds(1500));
}

TEST(Serialize, UserStructs) {
  const Point p{3, -1.25, "origin", {1, 2, 3}, std::map<std::string, int>{{"z", 26}}};
  EXPECT_EQ(round_trip(p), p);
  EXPECT_EQ(round_trip(Point{}), Point{});
  const std::vector<Point> many{p, Point{}, Point{1, 2, "", {}, std::nullopt}};
  EXPECT_EQ(round_trip(many), many);
  EXPECT_EQ(round_trip(Celsius{21.5f}), Celsius{21.5f});
}

TEST(Serialize, EncodeIntoAppends) {
  std::vector<std::byte> out = encode(1);
  taskfarm::encode_into(out, std::string("x"), 2.0);
  EXPECT_EQ(out.size(), 4u + 8 + 1 + 8);
  const auto args = decode_args<std::tuple<int, std::string, double>>(out);
  EXPECT_EQ(args, (std::tuple<int, std::string, double>{1, "x", 2.0}));
}

TEST(Serialize, DecodeArgsRoundTrip) {
  const auto bytes = encode(std::string("abc"), 5, std::vector<int>{1});
  const auto t = decode_args<std::tuple<std::string, int, std::vector<int>>>(bytes);
  EXPECT_EQ(std::get<0>(t), "abc");
  EXPECT_EQ(std::get<1>(t), 5);
  EXPECT_EQ(std::get<2>(t), std::vector<int>{1});
  EXPECT_EQ(decode_args<std::tuple<>>({}), std::tuple<>{});
}

TEST(Serialize, ScalarAndStringShortcutMatchesTheArchive) {
  // Scalars and strings skip the cereal archive; their bytes must be what the
  // archive writes, since either side may take either path.
  EXPECT_EQ(encode(42), encode(std::tuple<int>{42}));
  EXPECT_EQ(encode(std::string("abc")), encode(std::tuple<std::string>{"abc"}));
  EXPECT_EQ(encode(1.5, std::string("x"), std::int8_t{-3}),
            encode(std::tuple<double, std::string, std::int8_t>{1.5, "x", -3}));
  const auto via_archive = encode(std::tuple<int, std::string>{7, "seven"});
  EXPECT_EQ((decode_args<std::tuple<int, std::string>>(via_archive)),
            (std::tuple<int, std::string>{7, "seven"}));
  const auto via_shortcut = encode(7, std::string("seven"));
  EXPECT_EQ((decode<std::tuple<int, std::string>>(via_shortcut)),
            (std::tuple<int, std::string>{7, "seven"}));
  EXPECT_EQ((decode_args<std::tuple<int, std::vector<char>>>(encode(7, std::string("ab")))),
            (std::tuple<int, std::vector<char>>{7, {'a', 'b'}}));
}

TEST(Serialize, EveryTruncationIsASerializationError) {
  const Point p{3, -1.25, "origin", {1, 2, 3}, std::map<std::string, int>{{"z", 26}}};
  const auto bytes = encode(p);
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW((void)decode<Point>(std::span<const std::byte>(bytes.data(), n)), SerializationError)
        << "prefix of " << n << " of " << bytes.size() << " bytes";
  }
  EXPECT_THROW((void)decode<int>({}), SerializationError);
  EXPECT_THROW((void)decode<std::string>({}), SerializationError);
  const auto s = encode(std::string("some text"));
  for (std::size_t n = 0; n < s.size(); ++n)
    EXPECT_THROW((void)decode<std::string>(std::span<const std::byte>(s.data(), n)), SerializationError)
        << "prefix of " << n;
  const auto args = encode(1, std::string("two"), 3.0);
  for (std::size_t n = 0; n < args.size(); ++n)
    EXPECT_THROW((void)(decode_args<std::tuple<int, std::string, double>>(
                     std::span<const std::byte>(args.data(), n))),
                 SerializationError)
        << "prefix of " << n;
}

TEST(Serialize, TruncationMessageSaysWhatWasMissing) {
  const auto bytes = encode(std::int64_t{1});
  try {
    (void)decode<std::int64_t>(std::span<const std::byte>(bytes.data(), 3));
    FAIL() << "no exception";
  } catch (const SerializationError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("truncated"), std::string::npos) << what;
  }
}

TEST(Serialize, TrailingBytesAreASerializationError) {
  EXPECT_THROW((void)decode<int>(encode(1, 2)), SerializationError);
  EXPECT_THROW((void)decode<int>(encode(std::string("hello"))), SerializationError)
      << "a string read as an int leaves bytes over";
  EXPECT_THROW((void)decode_args<std::tuple<int>>(encode(1, 2)), SerializationError);
  try {
    (void)decode<std::uint8_t>(encode(std::uint32_t{1}));
    FAIL() << "no exception";
  } catch (const SerializationError& e) {
    EXPECT_NE(std::string(e.what()).find("3 bytes left over"), std::string::npos) << e.what();
  }
}

TEST(Serialize, AllocationTrackerSeesLargeRequests) {
  // The bound checks below are only as good as the tracker: prove it counts.
  taskfarm::test::reset_largest_allocation();
  auto v = std::make_unique<std::vector<char>>(std::size_t{1} << 20);
  EXPECT_GE(taskfarm::test::largest_allocation(), std::size_t{1} << 20);
  taskfarm::test::reset_largest_allocation();
  EXPECT_EQ(taskfarm::test::largest_allocation(), 0u);
}

TEST(Serialize, HugeSizeTagIsRejectedWithoutAllocating) {
  // A vector<char> whose size tag claims 2^60 elements, followed by a few bytes.
  const auto bytes = size_tag_then(std::uint64_t{1} << 60, 16);
  taskfarm::test::reset_largest_allocation();
  EXPECT_THROW((void)decode<std::vector<char>>(bytes), SerializationError);
  EXPECT_LT(taskfarm::test::largest_allocation(), std::size_t{1} << 16);

  // Sizes that an allocator might well grant (8 GiB, 1 GiB) are refused just the same.
  for (std::uint64_t tag : {std::uint64_t{1} << 33, std::uint64_t{1} << 30, std::uint64_t{17}}) {
    const auto b = size_tag_then(tag, 16);
    taskfarm::test::reset_largest_allocation();
    EXPECT_THROW((void)decode<std::vector<char>>(b), SerializationError) << tag;
    EXPECT_THROW((void)decode<std::string>(b), SerializationError) << tag;
    EXPECT_THROW((void)decode<std::vector<std::string>>(b), SerializationError) << tag;
    EXPECT_THROW((void)(decode<std::map<int, int>>(b)), SerializationError) << tag;
    EXPECT_LT(taskfarm::test::largest_allocation(), std::size_t{1} << 16) << tag;
  }
}

TEST(Serialize, SizeTagErrorNamesTheClaim) {
  try {
    (void)decode<std::vector<char>>(size_tag_then(std::uint64_t{1} << 60, 3));
    FAIL() << "no exception";
  } catch (const SerializationError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(std::to_string(std::uint64_t{1} << 60)), std::string::npos) << what;
  }
}

TEST(Serialize, WideElementsAreBoundedByThePayload) {
  // A vector<int64_t> claiming as many elements as there are bytes left passes
  // the size check but cannot be filled: the decoder fails having allocated at
  // most 8x the payload.
  const auto bytes = size_tag_then(4096, 4096);
  taskfarm::test::reset_largest_allocation();
  EXPECT_THROW((void)decode<std::vector<std::int64_t>>(bytes), SerializationError);
  EXPECT_LE(taskfarm::test::largest_allocation(), 8u * bytes.size());
}

TEST(Serialize, NestedCorruptSizeInsideAValidPrefix) {
  // The outer vector is fine; the size tag of its second string is absurd.
  std::vector<std::byte> bytes = encode(std::vector<std::string>{"ok", "fine"});
  // layout: u64 n=2 | u64 2 "ok" | u64 4 "fine"
  const std::uint64_t absurd = std::uint64_t{1} << 62;
  std::memcpy(bytes.data() + 8 + 8 + 2, &absurd, sizeof absurd);
  taskfarm::test::reset_largest_allocation();
  EXPECT_THROW((void)decode<std::vector<std::string>>(bytes), SerializationError);
  EXPECT_LT(taskfarm::test::largest_allocation(), std::size_t{1} << 16);
}

}  // namespace
