// The SVG chart writer: its output is well-formed SVG with the axes, ticks,
// labels and legend asked for; and the helpers that format ticks.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "taskfarm/bench/svg.hpp"
#include "xml_check.hpp"

namespace {

namespace svg = taskfarm::bench::svg;
using taskfarm::test::check_svg;
using taskfarm::test::parse_xml;
using taskfarm::test::XmlElement;

std::vector<std::string> texts(const XmlElement& root) {
  std::vector<std::string> out;
  for (const auto* t : root.find_all("text")) out.push_back(t->text);
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x == s) return true;
  return false;
}

TEST(SvgHelpers, NiceTicksCoverTheRangeWithRoundSteps) {
  EXPECT_EQ(svg::nice_ticks(0, 7.3, 4), (std::vector<double>{0, 2, 4, 6, 8}));
  EXPECT_EQ(svg::nice_ticks(0, 1, 5), (std::vector<double>{0, 0.2, 0.4, 0.6000000000000001, 0.8, 1}));
  const auto t = svg::nice_ticks(13, 87, 6);
  EXPECT_LE(t.front(), 13);
  EXPECT_GE(t.back(), 87);
  EXPECT_DOUBLE_EQ(t[1] - t[0], 10);
}

TEST(SvgHelpers, NumbersAndBytes) {
  EXPECT_EQ(svg::format_number(0), "0");
  EXPECT_EQ(svg::format_number(12), "12");
  EXPECT_EQ(svg::format_number(0.25), "0.25");
  EXPECT_EQ(svg::format_number(1500), "1.5k");
  EXPECT_EQ(svg::format_number(250000), "250k");
  EXPECT_EQ(svg::format_number(2.5e6), "2.5M");
  EXPECT_EQ(svg::format_bytes(64), "64 B");
  EXPECT_EQ(svg::format_bytes(4096), "4 KiB");
  EXPECT_EQ(svg::format_bytes(1 << 20), "1 MiB");
  EXPECT_EQ(svg::escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
}

TEST(SvgLineChart, LogLogChartIsWellFormedWithTicksLabelsAndLegend) {
  svg::LineChart c;
  c.title = "Latency <p50> & more";
  c.x = {"payload", svg::Scale::log, {}, {}, {64, 4096, 65536, 1 << 20}, svg::format_bytes};
  c.y = {"microseconds", svg::Scale::log, {}, {}, {}, {}};
  c.series.push_back({"pipe", {64, 4096, 65536, 1 << 20}, {40, 45, 120, 900}, {35, 40, 100, 800},
                      {50, 55, 140, 1000}, "", false, true});
  c.series.push_back({"raw pipe", {64, 4096, 65536, 1 << 20}, {30, 33, 90, 700}, {}, {}, "", true, true});
  const auto root = parse_xml(svg::render(c));
  EXPECT_EQ(check_svg(root), std::vector<std::string>{});
  const auto t = texts(root);
  EXPECT_TRUE(has(t, "Latency <p50> & more"));  // escaped on the way out, decoded by the parser
  for (const char* label : {"64 B", "4 KiB", "64 KiB", "1 MiB", "10", "100", "1k", "payload", "microseconds",
                            "pipe", "raw pipe"})
    EXPECT_TRUE(has(t, label)) << label;
  EXPECT_EQ(root.find_all("polyline").size(), 2u);
  EXPECT_EQ(root.find_all("circle").size(), 8u + 2u);  // 4 markers per series + 2 in the legend
}

TEST(SvgLineChart, PointsFallInsideThePlotArea) {
  svg::LineChart c;
  c.x = {"x", svg::Scale::linear, {}, {}, {}, {}};
  c.y = {"y", svg::Scale::linear, {}, {}, {}, {}};
  c.series.push_back({"s", {1, 2, 3}, {10, -5, 30}, {}, {}, "", false, true});
  const double w = 600, h = 400;
  const auto root = parse_xml(svg::render(c, w, h));
  ASSERT_EQ(check_svg(root), std::vector<std::string>{});
  const auto circles = root.find_all("circle");
  ASSERT_GE(circles.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    const double cx = std::stod(circles[i]->attrs.at("cx")), cy = std::stod(circles[i]->attrs.at("cy"));
    EXPECT_GT(cx, 0);
    EXPECT_LT(cx, w);
    EXPECT_GT(cy, 0);
    EXPECT_LT(cy, h);
  }
  // The highest value is drawn highest (smallest y), the lowest lowest.
  EXPECT_LT(std::stod(circles[2]->attrs.at("cy")), std::stod(circles[0]->attrs.at("cy")));
  EXPECT_GT(std::stod(circles[1]->attrs.at("cy")), std::stod(circles[0]->attrs.at("cy")));
}

TEST(SvgBarChart, GroupedBarsWithMissingValuesAndReferenceLine) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  svg::BarChart c;
  c.title = "Rates";
  c.categories = {"map chunksize=1", "submit"};
  c.y = {"tasks/s", svg::Scale::log, {}, {}, {}, svg::format_number};
  c.groups.push_back({"taskfarm", {500000, 200000}, {400000, 150000}, {600000, 250000}, ""});
  c.groups.push_back({"Python", {20000, nan}, {}, {}, ""});
  c.refs.push_back({"memcpy", 1e6});
  svg::Document doc(900, 500);
  svg::draw(doc, c, {0, 0, 900, 480});
  doc.note("a footnote", false);
  doc.note("WARNING: busy", true);
  const auto root = parse_xml(doc.str());
  EXPECT_EQ(check_svg(root), std::vector<std::string>{});
  const auto t = texts(root);
  for (const char* label : {"Rates", "taskfarm", "Python", "n/a", "memcpy", "500k", "20k", "a footnote",
                            "WARNING: busy", "tasks/s"})
    EXPECT_TRUE(has(t, label)) << label;
  // background + 3 bars + 2 legend boxes
  EXPECT_EQ(root.find_all("rect").size(), 1u + 3u + 2u);
}

TEST(XmlCheck, RejectsMalformedDocuments) {
  EXPECT_THROW(parse_xml("<svg><g></svg>"), std::runtime_error);
  EXPECT_THROW(parse_xml("<svg a=\"1\" a=\"2\"/>"), std::runtime_error);
  EXPECT_THROW(parse_xml("<svg a=1/>"), std::runtime_error);
  EXPECT_THROW(parse_xml("<svg>&nbsp;</svg>"), std::runtime_error);
  EXPECT_THROW(parse_xml("<svg/><svg/>"), std::runtime_error);
  EXPECT_THROW(parse_xml("<svg>"), std::runtime_error);
  EXPECT_NO_THROW(parse_xml("<?xml version=\"1.0\"?>\n<!-- c --><svg><text x='1'>a &amp; b</text></svg>"));
  const auto bad = parse_xml("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\" height=\"1\" viewBox=\"0 0 1 1\">"
                             "<rect x=\"0\" y=\"0\" width=\"-3\" height=\"1\"/><line x1=\"a\"/><text x=\"1\" y=\"2\"></text></svg>");
  EXPECT_GE(check_svg(bad).size(), 3u);
}

}  // namespace
