// Sizes in job files and on the command line (pool.max_memory_per_child).

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "taskfarm/cli/size.hpp"

namespace {

using taskfarm::cli::parse_size;

std::string size_error(const char* text) {
  try {
    (void)parse_size(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(Size, Units) {
  EXPECT_EQ(parse_size("4096B"), 4096u);
  EXPECT_EQ(parse_size("1KiB"), 1024u);
  EXPECT_EQ(parse_size("512MiB"), std::uint64_t{512} << 20);
  EXPECT_EQ(parse_size("2GiB"), std::uint64_t{2} << 30);
  EXPECT_EQ(parse_size("3KB"), 3'000u);
  EXPECT_EQ(parse_size("100MB"), 100'000'000u);
  EXPECT_EQ(parse_size("4GB"), 4'000'000'000u);
  EXPECT_EQ(parse_size("0MiB"), 0u);
}

TEST(Size, Fractions) {
  EXPECT_EQ(parse_size("1.5GiB"), std::uint64_t{3} << 29);
  EXPECT_EQ(parse_size("0.5KiB"), 512u);
  EXPECT_EQ(parse_size("2.25MB"), 2'250'000u);
  EXPECT_EQ(parse_size("2.MiB"), std::uint64_t{2} << 20);
}

TEST(Size, RejectsWhatItCannotRead) {
  EXPECT_NE(size_error("512").find("a unit is required"), std::string::npos);
  EXPECT_NE(size_error("5x").find("unknown unit \"x\""), std::string::npos);
  EXPECT_NE(size_error("5 MiB").find("unknown unit"), std::string::npos);
  EXPECT_NE(size_error("5mib").find("unknown unit \"mib\""), std::string::npos);
  EXPECT_NE(size_error("1TB").find("unknown unit \"TB\""), std::string::npos);
  EXPECT_NE(size_error("-5MiB").find("must not be negative"), std::string::npos);
  EXPECT_NE(size_error("").find("expected a size"), std::string::npos);
  EXPECT_NE(size_error("MiB").find("expected a size"), std::string::npos);
  EXPECT_NE(size_error("0.3KiB").find("whole number of bytes"), std::string::npos);
  EXPECT_NE(size_error("1.5B").find("whole number of bytes"), std::string::npos);
  EXPECT_NE(size_error("99999999999GiB").find("too large"), std::string::npos);
  EXPECT_NE(size_error("99999999999999999999999B").find("too large"), std::string::npos);
  EXPECT_NE(size_error("5x").find("found \"5x\""), std::string::npos);  // says what it saw
}

}  // namespace
