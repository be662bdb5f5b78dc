// ByteWriter / ByteReader: the envelope codec of the worker protocol. A short
// or corrupt buffer must turn into ok() == false, never into a read past the end.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "taskfarm/common/wire.hpp"

namespace {

using taskfarm::detail::ByteReader;
using taskfarm::detail::ByteWriter;

std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> v(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) v[i] = static_cast<std::byte>(s[i]);
  return v;
}

TEST(ByteWriterReader, RoundTripOfEveryFieldKind) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  w.put(std::uint8_t{0xfe});
  w.put(std::uint32_t{0xdeadbeef});
  w.put(std::int64_t{-5});
  w.put(3.25);
  w.str("hello");
  w.str("");
  const auto raw = bytes_of("raw!");
  w.bytes(raw);
  EXPECT_EQ(w.size(), 1u + 4 + 8 + 8 + (4 + 5) + 4 + 4);
  EXPECT_EQ(&w.buffer(), &buf);

  ByteReader r(buf);
  EXPECT_EQ(r.get<std::uint8_t>(), 0xfe);
  EXPECT_EQ(r.get<std::uint32_t>(), 0xdeadbeefu);
  EXPECT_EQ(r.get<std::int64_t>(), -5);
  EXPECT_EQ(r.get<double>(), 3.25);
  EXPECT_EQ(r.str(), "hello");
  EXPECT_EQ(r.str(), "");
  EXPECT_EQ(r.remaining(), 4u);
  const auto rest = r.bytes(4);
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(std::vector<std::byte>(rest.begin(), rest.end()), raw);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.at_end());
}

TEST(ByteWriterReader, WriterAppendsToExistingContent) {
  std::vector<std::byte> buf = bytes_of("ab");
  ByteWriter w(buf);
  w.put(std::uint16_t{0x0102});
  ASSERT_EQ(buf.size(), 4u);
  EXPECT_EQ(buf[0], std::byte{'a'});
  ByteReader r(std::span<const std::byte>(buf).subspan(2));
  EXPECT_EQ(r.get<std::uint16_t>(), 0x0102);
  EXPECT_TRUE(r.at_end());
}

TEST(ByteReader, ReadingPastTheEndFailsAndStaysFailed) {
  std::vector<std::byte> buf;
  ByteWriter(buf).put(std::uint16_t{7});
  ByteReader r(buf);
  EXPECT_EQ(r.get<std::uint32_t>(), 0u) << "a short read returns a zero value";
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.at_end());
  EXPECT_EQ(r.remaining(), 0u);
  // Every later read also fails, even one that would have fit.
  EXPECT_EQ(r.get<std::uint8_t>(), 0u);
  EXPECT_TRUE(r.bytes(1).empty());
  EXPECT_TRUE(r.str().empty());
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, EmptyInput) {
  ByteReader r(std::span<const std::byte>{});
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(r.bytes(0).empty());
  EXPECT_TRUE(r.ok()) << "reading zero bytes at the end is fine";
  EXPECT_EQ(r.get<std::uint64_t>(), 0u);
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, StringLengthLargerThanTheBufferFails) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  w.put(std::uint32_t{0xffffffffu});  // claims 4 GiB of text
  w.bytes(bytes_of("tiny"));
  ByteReader r(buf);
  EXPECT_TRUE(r.str().empty());
  EXPECT_FALSE(r.ok());
}

TEST(ByteReader, BytesLargerThanTheRestFailsWithoutConsuming) {
  const auto buf = bytes_of("abcdef");
  ByteReader r(buf);
  EXPECT_EQ(r.bytes(2).size(), 2u);
  EXPECT_TRUE(r.bytes(5).empty());
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.rest().empty());
}

TEST(ByteReader, RestTakesEverythingLeft) {
  const auto buf = bytes_of("abcdef");
  ByteReader r(buf);
  (void)r.get<std::uint16_t>();
  const auto rest = r.rest();
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest[0], std::byte{'c'});
  EXPECT_TRUE(r.at_end());
  EXPECT_TRUE(r.rest().empty());
  EXPECT_TRUE(r.ok());
}

TEST(ByteReader, TrailingBytesAreNotAtEnd) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  w.put(std::uint32_t{1});
  w.put(std::uint8_t{2});
  ByteReader r(buf);
  EXPECT_EQ(r.get<std::uint32_t>(), 1u);
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.at_end());
  EXPECT_EQ(r.remaining(), 1u);
}

TEST(ByteReader, EveryTruncationOfAValidMessageIsDetected) {
  std::vector<std::byte> buf;
  ByteWriter w(buf);
  w.str("task-name");
  w.put(std::uint32_t{2});
  w.put(std::uint64_t{10});
  w.str("args");
  for (std::size_t n = 0; n < buf.size(); ++n) {
    ByteReader r(std::span<const std::byte>(buf.data(), n));
    (void)r.str();
    (void)r.get<std::uint32_t>();
    (void)r.get<std::uint64_t>();
    (void)r.str();
    EXPECT_FALSE(r.at_end()) << "prefix of " << n << " bytes";
  }
  ByteReader whole(buf);
  EXPECT_EQ(whole.str(), "task-name");
  EXPECT_EQ(whole.get<std::uint32_t>(), 2u);
  EXPECT_EQ(whole.get<std::uint64_t>(), 10u);
  EXPECT_EQ(whole.str(), "args");
  EXPECT_TRUE(whole.at_end());
}

}  // namespace
