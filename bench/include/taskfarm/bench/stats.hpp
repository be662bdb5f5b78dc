#pragma once
// The statistics every benchmark figure goes through.
//
// Percentiles use linear interpolation between closest ranks (Hyndman & Fan
// type 7; the default of R, NumPy's "linear" and Excel's PERCENTILE.INC): for n
// sorted values x[0..n-1] and a fraction p in [0, 1], h = (n - 1) * p and
//
//   percentile(x, p) = x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])
//
// so p = 0 is the minimum, p = 1 the maximum, p = 0.5 the usual median (the mean
// of the two middle values when n is even), and every result lies between two
// observed values. A single value is every percentile of itself.

#include <cstddef>
#include <span>
#include <vector>

namespace taskfarm::bench {

// The spread of a set of repeated measurements (one value per run).
struct Summary {
  std::size_t n = 0;
  double min = 0, q1 = 0, median = 0, q3 = 0, max = 0, mean = 0;
};

// `sorted` must be sorted ascending and non-empty; p in [0, 1] (clamped).
// Throws std::invalid_argument for an empty input.
[[nodiscard]] double percentile_sorted(std::span<const double> sorted, double p);
// Sorts a copy first.
[[nodiscard]] double percentile(std::vector<double> values, double p);
// Several percentiles of one sample, sorting once; `ps` are fractions.
[[nodiscard]] std::vector<double> percentiles(std::vector<double> values, std::span<const double> ps);
// min, quartiles, median, max and mean of `values`. Throws for an empty input.
[[nodiscard]] Summary summarize(std::vector<double> values);

}  // namespace taskfarm::bench
