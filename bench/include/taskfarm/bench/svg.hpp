#pragma once
// A plain SVG chart writer: line charts (linear or log axes, error bars) and
// grouped bar charts, with axes, ticks, labels, grid lines and a legend.
// Output is standalone SVG 1.1 text, no scripts, no external resources.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace taskfarm::bench::svg {

enum class Scale { linear, log };

struct Axis {
  std::string label;
  Scale scale = Scale::linear;
  std::optional<double> min, max;               // otherwise from the data (and 0 for linear bars)
  std::vector<double> ticks;                    // explicit major ticks; empty = automatic
  std::function<std::string(double)> format;    // tick labels; empty = format_number
};

struct Series {
  std::string name;
  std::vector<double> x, y;     // NaN y = no point
  std::vector<double> lo, hi;   // optional error bar per point (empty = none)
  std::string color;            // empty = from the palette
  bool dashed = false;
  bool markers = true;
};

struct LineChart {
  std::string title, subtitle;
  Axis x, y;
  std::vector<Series> series;
  bool legend = true;
};

struct Bars {
  std::string name;
  std::vector<double> values;   // one per category; NaN = no bar
  std::vector<double> lo, hi;   // optional whiskers
  std::string color;
};

struct RefLine {                // a labelled horizontal line across a bar chart
  std::string label;
  double value = 0;
};

struct BarChart {
  std::string title, subtitle;
  std::vector<std::string> categories;
  Axis y;
  std::vector<Bars> groups;     // one bar per group in each category
  std::vector<RefLine> refs;
  bool legend = true;
  bool value_labels = true;     // the value above each bar
};

struct Rect {
  double x = 0, y = 0, w = 0, h = 0;
};

// An SVG document being assembled.
class Document {
 public:
  Document(double width, double height);
  void line(double x1, double y1, double x2, double y2, std::string_view stroke,
            double width = 1, bool dashed = false);
  void rect(double x, double y, double w, double h, std::string_view fill,
            std::string_view stroke = "none");
  void circle(double cx, double cy, double r, std::string_view fill);
  void polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke,
                double width, bool dashed);
  // anchor: start, middle, end; rotate: degrees about (x, y).
  void text(double x, double y, std::string_view s, std::string_view anchor = "start",
            double size = 12, bool bold = false, double rotate = 0,
            std::string_view fill = "#222");
  // A footnote line at the bottom left (warnings in red). Reserve ~14 px per
  // note at the bottom of the document.
  void note(std::string_view s, bool warning = false);
  [[nodiscard]] std::string str() const;

 private:
  double width_, height_;
  std::string body_;
  std::vector<std::pair<std::string, bool>> notes_;
};

void draw(Document& doc, const LineChart& chart, Rect area);
void draw(Document& doc, const BarChart& chart, Rect area);
[[nodiscard]] std::string render(const LineChart& chart, double width = 820, double height = 520);
[[nodiscard]] std::string render(const BarChart& chart, double width = 820, double height = 520);

// Helpers, public for the tests.
[[nodiscard]] std::string escape(std::string_view text);
// Round ticks (1, 2, 5 x 10^k) covering [lo, hi], about `target` of them.
[[nodiscard]] std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// "1.5M", "200k", "0.25", "12"
[[nodiscard]] std::string format_number(double v);
// "64 B", "4 KiB", "1 MiB"
[[nodiscard]] std::string format_bytes(double v);
[[nodiscard]] std::string palette(std::size_t i);

}  // namespace taskfarm::bench::svg
