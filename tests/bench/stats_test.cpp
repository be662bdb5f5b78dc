// The statistics behind every figure: percentiles by linear interpolation
// between closest ranks (type 7, see bench/include/taskfarm/bench/stats.hpp).

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "taskfarm/bench/stats.hpp"

namespace {

using taskfarm::bench::percentile;
using taskfarm::bench::percentiles;
using taskfarm::bench::summarize;

TEST(Percentile, EndsAreMinimumAndMaximum) {
  const std::vector<double> v{7, 3, 9, 1};
  EXPECT_DOUBLE_EQ(percentile(v, 0.0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 1.0), 9);
}

TEST(Percentile, MedianOfEvenCountIsMeanOfTheMiddleTwo) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({10, 20, 30, 40, 50, 60}, 0.5), 35);
}

TEST(Percentile, MedianOfOddCountIsTheMiddleValue) {
  EXPECT_DOUBLE_EQ(percentile({5, 1, 3}, 0.5), 3);
}

TEST(Percentile, InterpolatesLinearlyBetweenClosestRanks) {
  // h = (n - 1) p; x[floor h] + frac(h) (x[floor h + 1] - x[floor h])
  const std::vector<double> v{1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile(v, 0.25), 1.75);  // h = 0.75
  EXPECT_DOUBLE_EQ(percentile(v, 0.75), 3.25);  // h = 2.25
  std::vector<double> ten;
  for (int i = 1; i <= 10; ++i) ten.push_back(i);
  EXPECT_NEAR(percentile(ten, 0.9), 9.1, 1e-12);    // h = 8.1
  EXPECT_NEAR(percentile(ten, 0.99), 9.91, 1e-12);  // h = 8.91
}

TEST(Percentile, AgreesWithNumpyLinearOnAThousandValues) {
  std::vector<double> v;
  for (int i = 1000; i >= 1; --i) v.push_back(i);  // unsorted on purpose
  // numpy.percentile(range(1, 1001), [50, 90, 99, 99.9]) == [500.5, 900.1, 990.01, 999.001]
  const double ps[] = {0.5, 0.9, 0.99, 0.999};
  const auto got = percentiles(v, ps);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_NEAR(got[0], 500.5, 1e-9);
  EXPECT_NEAR(got[1], 900.1, 1e-9);
  EXPECT_NEAR(got[2], 990.01, 1e-9);
  EXPECT_NEAR(got[3], 999.001, 1e-9);
}

TEST(Percentile, SingleValueIsEveryPercentile) {
  for (double p : {0.0, 0.1, 0.5, 0.999, 1.0}) EXPECT_DOUBLE_EQ(percentile({42}, p), 42);
}

TEST(Percentile, RepeatedValuesAndOutOfRangeFractions) {
  EXPECT_DOUBLE_EQ(percentile({2, 2, 2, 2}, 0.37), 2);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3}, -0.5), 1);  // clamped to [0, 1]
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3}, 1.5), 3);
}

TEST(Percentile, EmptySampleThrows) {
  EXPECT_THROW((void)percentile({}, 0.5), std::invalid_argument);
  EXPECT_THROW((void)summarize({}), std::invalid_argument);
}

TEST(Summary, QuartilesMedianSpreadAndMean) {
  const auto s = summarize({9, 1, 5, 3, 7});
  EXPECT_EQ(s.n, 5u);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.q1, 3);
  EXPECT_DOUBLE_EQ(s.median, 5);
  EXPECT_DOUBLE_EQ(s.q3, 7);
  EXPECT_DOUBLE_EQ(s.max, 9);
  EXPECT_DOUBLE_EQ(s.mean, 5);
}

}  // namespace
