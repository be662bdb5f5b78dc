#include "taskfarm/bench/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace taskfarm::bench::svg {

namespace {

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

std::string trimmed(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

// Three significant digits at most, no exponent for ordinary magnitudes.
std::string short_number(double v) {
  const double a = std::fabs(v);
  if (a >= 100) return trimmed(v, 0);
  if (a >= 10) return trimmed(v, 1);
  if (a >= 1) return trimmed(v, 2);
  if (a >= 0.001) return trimmed(v, 3 - static_cast<int>(std::floor(std::log10(a))) - 1);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2g", v);
  return buf;
}

bool finite(double v) { return std::isfinite(v); }

// A data axis mapped onto a pixel range.
struct Mapping {
  Scale scale = Scale::linear;
  double lo = 0, hi = 1;    // domain
  double p0 = 0, p1 = 1;    // pixels of lo and hi
  std::vector<double> major, minor;
  std::vector<bool> labelled;  // per major tick

  [[nodiscard]] double t(double v) const {
    if (scale == Scale::log) {
      v = std::max(v, lo * 1e-6);
      return (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
    }
    return (v - lo) / (hi - lo);
  }
  [[nodiscard]] double px(double v) const { return p0 + t(v) * (p1 - p0); }
  [[nodiscard]] bool inside(double v) const {
    const double tt = t(v);
    return tt >= -1e-9 && tt <= 1 + 1e-9;
  }
};

Mapping make_mapping(const Axis& axis, std::vector<double> values, bool include_zero) {
  Mapping m;
  m.scale = axis.scale;
  values.erase(std::remove_if(values.begin(), values.end(),
                              [&](double v) { return !finite(v) || (axis.scale == Scale::log && v <= 0); }),
               values.end());
  if (axis.scale == Scale::log) {
    double dmin = values.empty() ? 1 : *std::min_element(values.begin(), values.end());
    double dmax = values.empty() ? 10 : *std::max_element(values.begin(), values.end());
    for (double t : axis.ticks) {
      dmin = std::min(dmin, t);
      dmax = std::max(dmax, t);
    }
    if (!axis.ticks.empty()) {
      m.lo = dmin / 1.5;
      m.hi = dmax * 1.5;
    } else {
      m.lo = std::pow(10.0, std::floor(std::log10(dmin)));
      m.hi = std::pow(10.0, std::ceil(std::log10(dmax)));
      if (m.hi <= m.lo) m.hi = m.lo * 10;
    }
    if (axis.min && *axis.min > 0) m.lo = *axis.min;
    if (axis.max && *axis.max > m.lo) m.hi = *axis.max;
    if (!axis.ticks.empty()) {
      m.major = axis.ticks;
      m.labelled.assign(m.major.size(), true);
    } else {
      const int d0 = static_cast<int>(std::floor(std::log10(m.lo) + 1e-9));
      const int d1 = static_cast<int>(std::ceil(std::log10(m.hi) - 1e-9));
      const bool few = d1 - d0 <= 2;
      for (int d = d0; d <= d1; ++d) {
        const double base = std::pow(10.0, d);
        for (int k = 1; k <= 9; ++k) {
          const double v = base * k;
          if (v < m.lo * (1 - 1e-9) || v > m.hi * (1 + 1e-9)) continue;
          if (k == 1 || (few && (k == 2 || k == 5))) {
            m.major.push_back(v);
            m.labelled.push_back(true);
          } else if (d1 - d0 <= 6) {
            m.minor.push_back(v);
          }
        }
      }
    }
    return m;
  }
  double dmin = values.empty() ? 0 : *std::min_element(values.begin(), values.end());
  double dmax = values.empty() ? 1 : *std::max_element(values.begin(), values.end());
  if (include_zero) {
    dmin = std::min(dmin, 0.0);
    dmax = std::max(dmax, 0.0);
  }
  if (axis.min) dmin = *axis.min;
  if (axis.max) dmax = *axis.max;
  if (dmax <= dmin) dmax = dmin + 1;
  if (!axis.ticks.empty()) {
    m.major = axis.ticks;
    m.lo = std::min(dmin, *std::min_element(axis.ticks.begin(), axis.ticks.end()));
    m.hi = std::max(dmax, *std::max_element(axis.ticks.begin(), axis.ticks.end()));
    if (!axis.min && !axis.max) {  // a margin so that end points do not sit on the frame
      const double pad = (m.hi - m.lo) * 0.05;
      m.lo -= include_zero && m.lo == 0 ? 0 : pad;
      m.hi += pad;
    }
  } else {
    m.major = nice_ticks(dmin, dmax);
    m.lo = axis.min ? dmin : std::min(dmin, m.major.front());
    m.hi = axis.max ? dmax : std::max(dmax, m.major.back());
    std::erase_if(m.major, [&](double v) { return v < m.lo - 1e-12 || v > m.hi + 1e-12; });
  }
  m.labelled.assign(m.major.size(), true);
  return m;
}

std::string label_of(const Axis& axis, double v) {
  return axis.format ? axis.format(v) : format_number(v);
}

struct Frame {
  double left, top, right, bottom;
};

Frame frame_for(Document& doc, const std::string& title, const std::string& subtitle, Rect area,
                bool legend, double bottom_margin) {
  double top = area.y + 10;
  if (!title.empty()) {
    doc.text(area.x + 12, area.y + 24, title, "start", 16, true);
    top = area.y + 34;
  }
  if (!subtitle.empty()) {
    doc.text(area.x + 12, top + 8, subtitle, "start", 11, false, 0, "#555");
    top += 18;
  }
  return Frame{area.x + 74, top + 14, area.x + area.w - (legend ? 232 : 24),
               area.y + area.h - bottom_margin};
}

void draw_y_axis(Document& doc, const Axis& axis, const Mapping& y, const Frame& f, Rect area) {
  for (double v : y.minor) {
    if (!y.inside(v)) continue;
    const double py = y.px(v);
    doc.line(f.left, py, f.right, py, "#f0f0f0");
    doc.line(f.left - 3, py, f.left, py, "#444");
  }
  for (std::size_t i = 0; i < y.major.size(); ++i) {
    const double v = y.major[i];
    if (!y.inside(v)) continue;
    const double py = y.px(v);
    doc.line(f.left, py, f.right, py, "#d9d9d9");
    doc.line(f.left - 6, py, f.left, py, "#444");
    if (y.labelled[i]) doc.text(f.left - 9, py + 4, label_of(axis, v), "end", 11);
  }
  doc.line(f.left, f.top, f.left, f.bottom, "#444", 1.2);
  if (!axis.label.empty())
    doc.text(area.x + 18, (f.top + f.bottom) / 2, axis.label, "middle", 12, false, -90);
}

void legend_entry(Document& doc, double x, double y, const std::string& name, const std::string& color,
                  bool dashed, bool marker, bool box) {
  if (box) {
    doc.rect(x, y - 9, 14, 12, color);
  } else {
    doc.line(x, y - 3, x + 26, y - 3, color, 2.2, dashed);
    if (marker) doc.circle(x + 13, y - 3, 3.5, color);
  }
  doc.text(x + (box ? 20 : 32), y + 1, name, "start", 12);
}

}  // namespace

// ---------------------------------------------------------------------------

Document::Document(double width, double height) : width_(width), height_(height) {}

void Document::line(double x1, double y1, double x2, double y2, std::string_view stroke,
                    double width, bool dashed) {
  body_ += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" +
           num(y2) + "\" stroke=\"" + escape(stroke) + "\" stroke-width=\"" + num(width) + "\"" +
           (dashed ? " stroke-dasharray=\"6 4\"" : "") + "/>\n";
}

void Document::rect(double x, double y, double w, double h, std::string_view fill,
                    std::string_view stroke) {
  body_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(std::max(w, 0.0)) +
           "\" height=\"" + num(std::max(h, 0.0)) + "\" fill=\"" + escape(fill) + "\" stroke=\"" +
           escape(stroke) + "\"/>\n";
}

void Document::circle(double cx, double cy, double r, std::string_view fill) {
  body_ += "<circle cx=\"" + num(cx) + "\" cy=\"" + num(cy) + "\" r=\"" + num(r) + "\" fill=\"" +
           escape(fill) + "\" stroke=\"white\" stroke-width=\"1\"/>\n";
}

void Document::polyline(const std::vector<std::pair<double, double>>& points,
                        std::string_view stroke, double width, bool dashed) {
  if (points.size() < 2) return;
  std::string p;
  for (const auto& [x, y] : points) p += num(x) + "," + num(y) + " ";
  p.pop_back();
  body_ += "<polyline points=\"" + p + "\" fill=\"none\" stroke=\"" + escape(stroke) +
           "\" stroke-width=\"" + num(width) + "\" stroke-linejoin=\"round\"" +
           (dashed ? " stroke-dasharray=\"7 5\"" : "") + "/>\n";
}

void Document::text(double x, double y, std::string_view s, std::string_view anchor, double size,
                    bool bold, double rotate, std::string_view fill) {
  body_ += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" text-anchor=\"" + escape(anchor) +
           "\" font-size=\"" + num(size) + "\" fill=\"" + escape(fill) + "\"" +
           (bold ? " font-weight=\"bold\"" : "") +
           (rotate != 0 ? " transform=\"rotate(" + num(rotate) + " " + num(x) + " " + num(y) + ")\"" : "") +
           ">" + escape(s) + "</text>\n";
}

void Document::note(std::string_view s, bool warning) {
  notes_.emplace_back(s, warning);
}

std::string Document::str() const {
  std::string notes;
  double y = height_ - 8 - 14 * static_cast<double>(notes_.size() ? notes_.size() - 1 : 0);
  for (const auto& [s, warning] : notes_) {
    notes += "<text x=\"12\" y=\"" + num(y) + "\" text-anchor=\"start\" font-size=\"10.5\" fill=\"" +
             (warning ? std::string("#b30000") : std::string("#666")) + "\">" + escape(s) + "</text>\n";
    y += 14;
  }
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + num(width_) +
         "\" height=\"" + num(height_) + "\" viewBox=\"0 0 " + num(width_) + " " + num(height_) +
         "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
         "<rect x=\"0\" y=\"0\" width=\"" + num(width_) + "\" height=\"" + num(height_) +
         "\" fill=\"white\" stroke=\"none\"/>\n" + body_ + notes + "</svg>\n";
}

// ---------------------------------------------------------------------------

void draw(Document& doc, const LineChart& chart, Rect area) {
  const Frame f = frame_for(doc, chart.title, chart.subtitle, area, chart.legend, 56);
  std::vector<double> xs, ys;
  for (const auto& s : chart.series) {
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!finite(s.y[i])) continue;
      xs.push_back(s.x[i]);
      ys.push_back(s.y[i]);
      if (i < s.lo.size()) ys.push_back(s.lo[i]);
      if (i < s.hi.size()) ys.push_back(s.hi[i]);
    }
  }
  Mapping x = make_mapping(chart.x, xs, false);
  if (chart.y.scale == Scale::linear && !ys.empty() && !chart.y.max) {  // points off the top frame
    const double top = *std::max_element(ys.begin(), ys.end());
    ys.push_back(top + 0.06 * std::fabs(top));
  }
  Mapping y = make_mapping(chart.y, ys, chart.y.scale == Scale::linear && !chart.y.min);
  x.p0 = f.left;
  x.p1 = f.right;
  y.p0 = f.bottom;
  y.p1 = f.top;

  draw_y_axis(doc, chart.y, y, f, area);
  for (double v : x.minor)
    if (x.inside(v)) doc.line(x.px(v), f.bottom, x.px(v), f.bottom + 3, "#444");
  for (std::size_t i = 0; i < x.major.size(); ++i) {
    const double v = x.major[i];
    if (!x.inside(v)) continue;
    const double px = x.px(v);
    doc.line(px, f.top, px, f.bottom, "#eeeeee");
    doc.line(px, f.bottom, px, f.bottom + 6, "#444");
    if (x.labelled[i]) doc.text(px, f.bottom + 20, label_of(chart.x, v), "middle", 11);
  }
  doc.line(f.left, f.bottom, f.right, f.bottom, "#444", 1.2);
  if (!chart.x.label.empty()) doc.text((f.left + f.right) / 2, f.bottom + 42, chart.x.label, "middle", 12);

  for (std::size_t k = 0; k < chart.series.size(); ++k) {
    const auto& s = chart.series[k];
    const std::string color = s.color.empty() ? palette(k) : s.color;
    std::vector<std::pair<double, double>> pts;
    for (std::size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!finite(s.y[i]) || (chart.y.scale == Scale::log && s.y[i] <= 0)) continue;
      pts.emplace_back(x.px(s.x[i]), y.px(s.y[i]));
      if (i < s.lo.size() && i < s.hi.size() && finite(s.lo[i]) && finite(s.hi[i])) {
        const double px = x.px(s.x[i]);
        doc.line(px, y.px(s.hi[i]), px, y.px(s.lo[i]), color, 1.2);
        doc.line(px - 4, y.px(s.hi[i]), px + 4, y.px(s.hi[i]), color, 1.2);
        doc.line(px - 4, y.px(s.lo[i]), px + 4, y.px(s.lo[i]), color, 1.2);
      }
    }
    doc.polyline(pts, color, 2.2, s.dashed);
    if (s.markers)
      for (const auto& [px, py] : pts) doc.circle(px, py, 3.8, color);
  }
  if (chart.legend) {
    double ly = f.top + 6;
    for (std::size_t k = 0; k < chart.series.size(); ++k) {
      const auto& s = chart.series[k];
      legend_entry(doc, f.right + 18, ly, s.name, s.color.empty() ? palette(k) : s.color, s.dashed,
                   s.markers, false);
      ly += 20;
    }
  }
}

void draw(Document& doc, const BarChart& chart, Rect area) {
  const Frame f = frame_for(doc, chart.title, chart.subtitle, area, chart.legend, 58);
  std::vector<double> ys;
  for (const auto& g : chart.groups) {
    for (double v : g.values) ys.push_back(v);
    for (double v : g.hi) ys.push_back(v);
    for (double v : g.lo) ys.push_back(v);
  }
  for (const auto& r : chart.refs) ys.push_back(r.value);
  if (chart.y.scale == Scale::linear && !ys.empty()) {  // headroom for the value labels
    const double top = *std::max_element(ys.begin(), ys.end(), [](double a, double b) {
      return !finite(a) || (finite(b) && b > a);
    });
    if (finite(top)) ys.push_back(top * 1.12);
  }
  Mapping y = make_mapping(chart.y, ys, chart.y.scale == Scale::linear);
  y.p0 = f.bottom;
  y.p1 = f.top;
  draw_y_axis(doc, chart.y, y, f, area);

  const std::size_t nc = std::max<std::size_t>(chart.categories.size(), 1);
  const std::size_t ng = std::max<std::size_t>(chart.groups.size(), 1);
  const double cw = (f.right - f.left) / static_cast<double>(nc);
  const double bw = std::min(cw * 0.8 / static_cast<double>(ng), 46.0);
  const double base = chart.y.scale == Scale::log ? f.bottom : y.px(std::max(y.lo, 0.0));
  for (std::size_t c = 0; c < chart.categories.size(); ++c) {
    const double cx = f.left + cw * (static_cast<double>(c) + 0.5);
    const double x0 = cx - bw * static_cast<double>(ng) / 2;
    for (std::size_t g = 0; g < chart.groups.size(); ++g) {
      const auto& grp = chart.groups[g];
      const std::string color = grp.color.empty() ? palette(g) : grp.color;
      const double bx = x0 + bw * static_cast<double>(g);
      const double v = c < grp.values.size() ? grp.values[c] : std::nan("");
      if (!finite(v) || (chart.y.scale == Scale::log && v <= 0)) {
        doc.text(bx + bw / 2 + 3.5, f.bottom - 4, "n/a", "start", 9, false, -90, "#999");
        continue;
      }
      const double top = std::clamp(y.px(v), f.top, f.bottom);
      doc.rect(bx + 1, top, bw - 2, base - top, color);
      // Whisker on the right part of the bar, value label on the left part, so
      // that they do not cross.
      const bool whisker = c < grp.lo.size() && c < grp.hi.size() && finite(grp.lo[c]) && finite(grp.hi[c]);
      if (whisker) {
        const double mid = bx + bw * (bw >= 18 ? 0.74 : 0.5);
        const double hy = std::clamp(y.px(grp.hi[c]), f.top, f.bottom);
        const double ly = std::clamp(y.px(grp.lo[c]), f.top, f.bottom);
        doc.line(mid, hy, mid, ly, "#222", 1);
        doc.line(mid - 3, hy, mid + 3, hy, "#222", 1);
        doc.line(mid - 3, ly, mid + 3, ly, "#222", 1);
      }
      if (chart.value_labels) {
        const std::string label = label_of(chart.y, v);
        const double tx = bx + bw * (whisker && bw >= 18 ? 0.36 : 0.5) + 3.5;
        if (base - top > 12 + 6.5 * static_cast<double>(label.size()))
          doc.text(tx, top + 5, label, "end", 9.5, false, -90, "white");
        else
          doc.text(tx, top - 5, label, "start", 9.5, false, -90, "#222");
      }
    }
    // Category label, on two lines when long.
    const std::string& name = chart.categories[c];
    if (name.size() > 14 && name.find(' ') != std::string::npos) {
      std::size_t cut = name.find(' ', name.size() / 2);
      if (cut == std::string::npos) cut = name.rfind(' ');
      doc.text(cx, f.bottom + 18, name.substr(0, cut), "middle", 11.5);
      doc.text(cx, f.bottom + 33, name.substr(cut + 1), "middle", 11.5);
    } else {
      doc.text(cx, f.bottom + 18, name, "middle", 11.5);
    }
  }
  for (const auto& r : chart.refs) {
    if (!y.inside(r.value)) continue;
    const double py = y.px(r.value);
    doc.line(f.left, py, f.right, py, "#666", 1.2, true);
    doc.text(f.right - 4, py - 5, r.label, "end", 10.5, false, 0, "#444");
  }
  doc.line(f.left, base, f.right, base, "#444", 1.2);
  if (chart.legend) {
    double ly = f.top + 6;
    for (std::size_t g = 0; g < chart.groups.size(); ++g) {
      const auto& grp = chart.groups[g];
      legend_entry(doc, f.right + 18, ly, grp.name, grp.color.empty() ? palette(g) : grp.color,
                   false, false, true);
      ly += 20;
    }
  }
}

std::string render(const LineChart& chart, double width, double height) {
  Document doc(width, height);
  draw(doc, chart, Rect{0, 0, width, height});
  return doc.str();
}

std::string render(const BarChart& chart, double width, double height) {
  Document doc(width, height);
  draw(doc, chart, Rect{0, 0, width, height});
  return doc.str();
}

// ---------------------------------------------------------------------------

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!finite(lo) || !finite(hi)) return {0, 1};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    const double d = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const double first = std::floor(lo / step + 1e-9);
  const double last = std::ceil(hi / step - 1e-9);
  std::vector<double> out;
  for (double k = first; k <= last + 0.5; k += 1) {
    double v = k * step;
    if (std::fabs(v) < step * 1e-9) v = 0;
    out.push_back(v);
  }
  return out;
}

std::string format_number(double v) {
  if (!finite(v)) return "n/a";
  const double a = std::fabs(v);
  if (a >= 1e9) return short_number(v / 1e9) + "G";
  if (a >= 1e6) return short_number(v / 1e6) + "M";
  if (a >= 1e3) return short_number(v / 1e3) + "k";
  return short_number(v);
}

std::string format_bytes(double v) {
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (std::fabs(v) >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  return short_number(v) + " " + units[u];
}

std::string palette(std::size_t i) {
  // Okabe-Ito, readable by colour-blind people, then greys.
  static const char* colors[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                 "#CC79A7", "#56B4E9", "#000000", "#999999"};
  return colors[i % std::size(colors)];
}

}  // namespace taskfarm::bench::svg
