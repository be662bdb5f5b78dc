// The frame header: what check_header accepts and rejects, and how it says why.

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "taskfarm/common/frame.hpp"

namespace {

using taskfarm::check_header;
using taskfarm::describe_check;
using taskfarm::FrameCheck;
using taskfarm::FrameHeader;
using taskfarm::FrameKind;
using taskfarm::make_header;

constexpr std::uint64_t kMax = std::uint64_t{1} << 20;

TEST(FrameHeader, MakeHeaderFillsEveryField) {
  const FrameHeader h = make_header(FrameKind::result_error, 0x1122334455667788ull, 4242);
  EXPECT_EQ(h.magic, taskfarm::kFrameMagic);
  EXPECT_EQ(h.version, taskfarm::kFrameVersion);
  EXPECT_EQ(h.kind, static_cast<std::uint16_t>(FrameKind::result_error));
  EXPECT_EQ(h.id, 0x1122334455667788ull);
  EXPECT_EQ(h.length, 4242u);
}

TEST(FrameHeader, WireLayoutIsFixed) {
  // The header is copied to and from the wire as raw bytes: pin the offsets.
  const FrameHeader h = make_header(FrameKind::task, 7, 9);
  unsigned char raw[sizeof h];
  std::memcpy(raw, &h, sizeof h);
  std::uint32_t magic;
  std::uint16_t version, kind;
  std::uint64_t id, length;
  std::memcpy(&magic, raw + 0, 4);
  std::memcpy(&version, raw + 4, 2);
  std::memcpy(&kind, raw + 6, 2);
  std::memcpy(&id, raw + 8, 8);
  std::memcpy(&length, raw + 16, 8);
  EXPECT_EQ(magic, taskfarm::kFrameMagic);
  EXPECT_EQ(version, taskfarm::kFrameVersion);
  EXPECT_EQ(kind, 2);
  EXPECT_EQ(id, 7u);
  EXPECT_EQ(length, 9u);
  EXPECT_EQ(taskfarm::kFrameHeaderSize, 24u);
}

TEST(FrameHeader, GoodHeadersPass) {
  for (auto k : {FrameKind::hello, FrameKind::task, FrameKind::result_ok, FrameKind::result_error,
                 FrameKind::shutdown, FrameKind::init_error, FrameKind::retiring}) {
    EXPECT_EQ(check_header(make_header(k, 1, 0), kMax), FrameCheck::ok) << to_string(k);
    EXPECT_EQ(check_header(make_header(k, 1, kMax), kMax), FrameCheck::ok)
        << "a payload of exactly the maximum is allowed";
  }
  EXPECT_EQ(describe_check(FrameCheck::ok, make_header(FrameKind::task, 1, 0), kMax), "frame ok");
}

TEST(FrameHeader, BadMagicIsRejectedAndDescribed) {
  FrameHeader h = make_header(FrameKind::task, 1, 10);
  h.magic = 0x41414141u;
  EXPECT_EQ(check_header(h, kMax), FrameCheck::bad_magic);
  const std::string text = describe_check(FrameCheck::bad_magic, h, kMax);
  EXPECT_NE(text.find("magic"), std::string::npos) << text;
  EXPECT_NE(text.find("0x41414141"), std::string::npos) << text;
  EXPECT_NE(text.find("0x4d524654"), std::string::npos) << "names the expected magic: " << text;
}

TEST(FrameHeader, BadVersionIsRejectedAndDescribed) {
  FrameHeader h = make_header(FrameKind::task, 1, 10);
  h.version = 9;
  EXPECT_EQ(check_header(h, kMax), FrameCheck::bad_version);
  const std::string text = describe_check(FrameCheck::bad_version, h, kMax);
  EXPECT_NE(text.find("version 9"), std::string::npos) << text;
  EXPECT_NE(text.find("expected 1"), std::string::npos) << text;
}

TEST(FrameHeader, UnknownKindsAreRejectedAndDescribed) {
  for (std::uint16_t kind : {0, 8, 99, 0xffff}) {
    FrameHeader h = make_header(FrameKind::task, 1, 10);
    h.kind = kind;
    EXPECT_EQ(check_header(h, kMax), FrameCheck::bad_kind) << kind;
    const std::string text = describe_check(FrameCheck::bad_kind, h, kMax);
    EXPECT_NE(text.find("kind " + std::to_string(kind)), std::string::npos) << text;
  }
}

TEST(FrameHeader, TooLargeIsRejectedAndDescribed) {
  const FrameHeader h = make_header(FrameKind::result_ok, 1, kMax + 1);
  EXPECT_EQ(check_header(h, kMax), FrameCheck::too_large);
  const std::string text = describe_check(FrameCheck::too_large, h, kMax);
  EXPECT_NE(text.find(std::to_string(kMax + 1)), std::string::npos) << text;
  EXPECT_NE(text.find(std::to_string(kMax)), std::string::npos) << text;
  EXPECT_NE(text.find("maximum"), std::string::npos) << text;

  FrameHeader absurd = make_header(FrameKind::result_ok, 1, ~std::uint64_t{0});
  EXPECT_EQ(check_header(absurd, kMax), FrameCheck::too_large);
}

TEST(FrameHeader, MagicIsCheckedBeforeEverythingElse) {
  // A stream of garbage must be called garbage, not "too large" or "bad kind".
  FrameHeader h{};
  std::memset(&h, 0xab, sizeof h);
  EXPECT_EQ(check_header(h, kMax), FrameCheck::bad_magic);
}

TEST(FrameKindNames, EveryKindHasItsName) {
  EXPECT_EQ(to_string(FrameKind::hello), "hello");
  EXPECT_EQ(to_string(FrameKind::task), "task");
  EXPECT_EQ(to_string(FrameKind::result_ok), "result_ok");
  EXPECT_EQ(to_string(FrameKind::result_error), "result_error");
  EXPECT_EQ(to_string(FrameKind::shutdown), "shutdown");
  EXPECT_EQ(to_string(FrameKind::init_error), "init_error");
  EXPECT_EQ(to_string(FrameKind::retiring), "retiring");
  EXPECT_EQ(to_string(static_cast<FrameKind>(77)), "unknown");
}

TEST(Frame, AccessorsReadTheHeader) {
  taskfarm::Frame f;
  f.header = make_header(FrameKind::retiring, 12, 0);
  EXPECT_EQ(f.kind(), FrameKind::retiring);
  EXPECT_EQ(f.id(), 12u);
}

}  // namespace
