// Durations in job files.

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "taskfarm/cli/duration.hpp"

namespace {

using std::chrono::milliseconds;
using taskfarm::cli::parse_duration;

std::string duration_error(const char* text) {
  try {
    (void)parse_duration(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(Duration, Units) {
  EXPECT_EQ(parse_duration("500ms"), milliseconds(500));
  EXPECT_EQ(parse_duration("30s"), milliseconds(30'000));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120'000));
  EXPECT_EQ(parse_duration("2min"), milliseconds(120'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parse_duration("0s"), milliseconds(0));
}

TEST(Duration, Fractions) {
  EXPECT_EQ(parse_duration("1.5s"), milliseconds(1500));
  EXPECT_EQ(parse_duration("0.25m"), milliseconds(15'000));
  EXPECT_EQ(parse_duration("2.s"), milliseconds(2000));
}

TEST(Duration, RejectsWhatItCannotRead) {
  EXPECT_NE(duration_error("30").find("a unit is required"), std::string::npos);
  EXPECT_NE(duration_error("5x").find("unknown unit \"x\""), std::string::npos);
  EXPECT_NE(duration_error("5 s").find("unknown unit"), std::string::npos);
  EXPECT_NE(duration_error("-5s").find("must not be negative"), std::string::npos);
  EXPECT_NE(duration_error("").find("expected a duration"), std::string::npos);
  EXPECT_NE(duration_error("s").find("expected a duration"), std::string::npos);
  EXPECT_NE(duration_error("0.5ms").find("whole number of milliseconds"), std::string::npos);
  EXPECT_NE(duration_error("1.2.3s").find("unknown unit"), std::string::npos);
  EXPECT_NE(duration_error("99999999999999h").find("too long"), std::string::npos);
  EXPECT_NE(duration_error("5x").find("found \"5x\""), std::string::npos);  // says what it saw
}

}  // namespace
