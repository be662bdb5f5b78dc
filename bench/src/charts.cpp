// The charts of a report, drawn with the project's own SVG writer.

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <stdexcept>

#include "taskfarm/bench/report.hpp"
#include "taskfarm/bench/svg.hpp"

namespace taskfarm::bench {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const Record* find(const Report& r, const std::function<bool(const Record&)>& p) {
  for (const auto& x : r.records)
    if (p(x)) return &x;
  return nullptr;
}

// One colour per transport, the same in every chart; Python in grey.
std::string color_of(const std::string& transport) {
  if (transport == "pipe") return svg::palette(0);
  if (transport == "socket") return svg::palette(1);
  if (transport == "mqueue") return svg::palette(2);
  if (transport == "shm") return svg::palette(3);
  return "#7f7f7f";
}

std::vector<std::string> transports_of(const Report& r) {
  std::vector<std::string> out;
  for (const auto& t : r.transports)
    if (t.available) out.push_back(t.name);
  return out;
}

std::string setting(const Report& r, const std::string& key) {
  for (const auto& [k, v] : r.settings)
    if (k == key) return v;
  return "?";
}

std::string subtitle(const Report& r, const std::string& what) {
  return what + "; median of " + setting(r, "repeats") + " runs, whiskers min-max";
}

constexpr double kNotes = 40;  // room at the bottom of each figure for the footnotes

// The run's context under every chart: machine, mode, and any warning.
void footnotes(svg::Document& doc, const Report& r) {
  std::string kernel = r.machine.kernel.substr(0, r.machine.kernel.find(' ', r.machine.kernel.find(' ') + 1));
  doc.note("taskfarm bench, " + r.mode + " mode, " + r.started_at + "; " + std::to_string(r.machine.cores) +
           " CPUs (" + r.machine.cpu_model + "), " + kernel + "; " +
           (r.machine.python.empty() ? std::string("no Python") : r.machine.python));
  if (!r.warnings.empty())
    doc.note("WARNING: " + r.warnings.front().substr(0, 150) + (r.warnings.front().size() > 150 ? "..." : "") +
                 (r.warnings.size() > 1 ? " (+" + std::to_string(r.warnings.size() - 1) + " more in the report)" : ""),
             true);
}

void write(const std::filesystem::path& p, svg::Document& doc, const Report& r) {
  footnotes(doc, r);
  std::ofstream f(p);
  if (!f) throw std::runtime_error("cannot write " + p.string());
  f << doc.str();
}

svg::LineChart latency_chart(const Report& r, const std::string& metric, const std::string& label) {
  svg::LineChart c;
  c.title = "Round-trip latency " + label + " vs payload size";
  c.subtitle = subtitle(r, r.machine.placement_ipc.substr(0, r.machine.placement_ipc.find(" (")));
  c.x = {"payload (bytes, log scale)", svg::Scale::log, {}, {}, {}, svg::format_bytes};
  c.y = {"round trip " + label + " (microseconds, log scale)", svg::Scale::log, {}, {}, {}, {}};
  std::set<double> sizes;
  for (const auto& x : r.records)
    if (x.suite == "latency") sizes.insert(static_cast<double>(x.payload_bytes));
  c.x.ticks.assign(sizes.begin(), sizes.end());
  for (const auto& tn : transports_of(r)) {
    for (const char* impl : {"taskfarm", "raw"}) {
      svg::Series s;
      s.color = color_of(tn);
      s.dashed = std::string(impl) == "raw";
      for (const auto& x : r.records) {
        if (x.suite != "latency" || x.impl != impl || x.transport != tn || x.metric != metric) continue;
        s.name = x.subject;
        s.x.push_back(static_cast<double>(x.payload_bytes));
        s.y.push_back(x.summary.median);
        s.lo.push_back(x.summary.min);
        s.hi.push_back(x.summary.max);
      }
      if (!s.x.empty()) c.series.push_back(std::move(s));
    }
  }
  return c;
}

svg::BarChart throughput_chart(const Report& r, const std::string& metric, std::uint64_t size,
                               const std::string& title, const std::string& axis) {
  svg::BarChart c;
  c.title = title;
  c.subtitle = subtitle(r, "one way, " + r.machine.placement_ipc.substr(0, r.machine.placement_ipc.find(" (")));
  c.y.label = axis + " (log scale)";
  c.y.scale = svg::Scale::log;  // the transports differ by orders of magnitude
  c.y.format = svg::format_number;
  svg::Bars tf{"taskfarm transport", {}, {}, {}, "#0072B2"};
  svg::Bars raw{"raw OS mechanism", {}, {}, {}, "#9ecae1"};
  for (const auto& tn : transports_of(r)) {
    c.categories.push_back(tn);
    for (auto* b : {&tf, &raw}) {
      const std::string impl = b == &tf ? "taskfarm" : "raw";
      const Record* x = find(r, [&](const Record& y) {
        return y.suite == "throughput" && y.impl == impl && y.transport == tn && y.metric == metric &&
               y.payload_bytes == size;
      });
      b->values.push_back(x ? x->summary.median : kNaN);
      b->lo.push_back(x ? x->summary.min : kNaN);
      b->hi.push_back(x ? x->summary.max : kNaN);
    }
  }
  c.groups = {tf, raw};
  if (metric == "gb_per_s")
    for (const auto& x : r.records)
      if (x.suite == "throughput" && x.subject == "memcpy (cache)")
        c.refs.push_back({"memcpy 1 MiB (cache): " + svg::format_number(x.summary.median) + " GB/s",
                          x.summary.median});
  return c;
}

struct Workload {
  std::string suite, metric, start, label;
};

svg::BarChart vs_python_chart(const Report& r, const std::vector<Workload>& ws, const std::string& title,
                              const std::string& axis, const std::string& what) {
  svg::BarChart c;
  c.title = title;
  c.subtitle = subtitle(r, what);
  c.y = {axis, svg::Scale::log, {}, {}, {}, svg::format_number};
  for (const auto& w : ws) c.categories.push_back(w.label);
  auto fill = [&](svg::Bars& b, const std::function<bool(const Record&)>& which) {
    for (const auto& w : ws) {
      const Record* x = find(r, [&](const Record& y) {
        return y.suite == w.suite && y.metric == w.metric && y.start == w.start && which(y);
      });
      b.values.push_back(x ? x->summary.median : kNaN);
      b.lo.push_back(x ? x->summary.min : kNaN);
      b.hi.push_back(x ? x->summary.max : kNaN);
    }
  };
  for (const auto& tn : transports_of(r)) {
    svg::Bars b{"taskfarm " + tn, {}, {}, {}, color_of(tn)};
    fill(b, [&](const Record& y) { return y.impl == "taskfarm" && y.transport == tn; });
    c.groups.push_back(std::move(b));
  }
  svg::Bars py{"Python", {}, {}, {}, color_of("")};
  fill(py, [](const Record& y) { return y.impl == "python"; });
  c.groups.push_back(std::move(py));
  return c;
}

}  // namespace

std::vector<std::filesystem::path> write_charts(const Report& r, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::vector<std::filesystem::path> out;

  if (find(r, [](const Record& x) { return x.suite == "latency"; })) {
    svg::Document doc(1500, 560 + kNotes);
    auto p50 = latency_chart(r, "rtt_p50", "p50");
    auto p99 = latency_chart(r, "rtt_p99", "p99");
    p50.legend = false;
    p99.subtitle = "solid: taskfarm transport; dashed: the raw OS mechanism under it";
    svg::draw(doc, p50, {0, 0, 700, 560});
    svg::draw(doc, p99, {700, 0, 800, 560});
    out.push_back(dir / "latency.svg");
    write(out.back(), doc, r);
  }
  if (find(r, [](const Record& x) { return x.suite == "throughput"; })) {
    svg::Document doc(1400, 520 + kNotes);
    svg::draw(doc, throughput_chart(r, "msgs_per_s", 64, "Throughput, 64 B messages", "messages per second"),
              {0, 0, 700, 520});
    svg::draw(doc, throughput_chart(r, "gb_per_s", std::uint64_t{1} << 20, "Throughput, 1 MiB messages",
                                    "GB per second"),
              {700, 0, 700, 520});
    out.push_back(dir / "throughput.svg");
    write(out.back(), doc, r);
  }
  if (find(r, [](const Record& x) { return x.suite == "pool"; })) {
    svg::Document doc(1100, 560 + kNotes);
    svg::draw(doc,
              vs_python_chart(r,
                              {{"pool", "map_noop_chunk1", "", "map no-op chunksize=1"},
                               {"pool", "map_noop_auto", "", "map no-op automatic chunks"},
                               {"pool", "submit_get", "", "submit+get (Python: ProcessPoolExecutor)"},
                               {"pool", "map_payload", "",
                                "map " + svg::format_bytes(std::stod(setting(r, "payload_bytes"))) +
                                    " argument chunksize=1"}},
                              "Pool task rate: taskfarm vs Python multiprocessing", "tasks per second (log scale)",
                              setting(r, "workers") + " workers, unpinned"),
              {0, 0, 1100, 560});
    out.push_back(dir / "pool_vs_python.svg");
    write(out.back(), doc, r);
  }
  if (find(r, [](const Record& x) { return x.suite == "startup"; })) {
    svg::Document doc(1100, 560 + kNotes);
    svg::draw(doc,
              vs_python_chart(r,
                              {{"startup", "start_to_first_result", "fork", "start to first result (fork)"},
                               {"startup", "shutdown", "fork", "shutdown (fork)"},
                               {"startup", "start_to_first_result", "spawn", "start to first result (spawn)"},
                               {"startup", "shutdown", "spawn", "shutdown (spawn)"}},
                              "Pool start-up and shutdown: taskfarm vs Python",
                              "milliseconds (log scale, lower is better)", setting(r, "workers") + " workers"),
              {0, 0, 1100, 560});
    out.push_back(dir / "startup.svg");
    write(out.back(), doc, r);
  }
  if (find(r, [](const Record& x) { return x.suite == "scaling"; })) {
    svg::LineChart c;
    c.title = "CPU-bound scaling";
    c.subtitle = subtitle(r, "same total work at every pool size, " + setting(r, "scaling_task_ms") +
                                 " ms tasks, " + setting(r, "scaling_transport"));
    c.x = {"workers", svg::Scale::linear, {}, {}, {}, {}};
    c.y = {"speedup over 1 worker", svg::Scale::linear, 0.0, {}, {}, {}};
    svg::Series tf{"taskfarm", {}, {}, {}, {}, "#0072B2", false, true};
    svg::Series ideal{"ideal (linear)", {}, {}, {}, {}, "#999999", true, false};
    for (const auto& x : r.records) {
      if (x.suite != "scaling" || x.metric != "speedup") continue;
      const double w = static_cast<double>(x.workers);
      tf.x.push_back(w);
      tf.y.push_back(x.summary.median);
      tf.lo.push_back(x.summary.min);
      tf.hi.push_back(x.summary.max);
      ideal.x.push_back(w);
      ideal.y.push_back(w);
      c.x.ticks.push_back(w);
    }
    c.series = {tf, ideal};
    svg::Document doc(900, 500 + kNotes);
    svg::draw(doc, c, {0, 0, 900, 500});
    out.push_back(dir / "scaling.svg");
    write(out.back(), doc, r);
  }
  return out;
}

}  // namespace taskfarm::bench
