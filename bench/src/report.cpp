// The report's text forms: terminal table, JSON, CSV.

#include "taskfarm/bench/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <set>
#include <sstream>

#include "taskfarm/bench/svg.hpp"

namespace taskfarm::bench {

std::string Record::key() const {
  std::string k = suite + "/" + impl + "/" + subject + "/" + metric;
  if (payload_bytes) k += "/payload=" + std::to_string(payload_bytes);
  if (workers) k += "/workers=" + std::to_string(workers);
  if (!start.empty()) k += "/start=" + start;
  if (!chunking.empty()) k += "/chunksize=" + chunking;
  return k;
}

const Record* Report::find(const std::string& key) const {
  for (const auto& r : records)
    if (r.key() == key) return &r;
  return nullptr;
}

namespace {

using Pred = std::function<bool(const Record&)>;

const Record* find_rec(const Report& r, const Pred& p) {
  for (const auto& x : r.records)
    if (p(x)) return &x;
  return nullptr;
}

// Three significant digits, thousands as k/M for rates.
std::string fmt(double v) {
  if (!std::isfinite(v)) return "-";
  return svg::format_number(v);
}

std::string fmt_spread(const Record* r) {
  if (!r) return "-";
  return fmt(r->summary.median) + " [" + fmt(r->summary.min) + "-" + fmt(r->summary.max) + "]";
}

std::string ratio_text(double x) {
  if (!std::isfinite(x)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, x >= 100 ? "%.0fx" : x >= 10 ? "%.1fx" : x >= 0.1 ? "%.2fx" : "%.2gx", x);
  return buf;
}

const Comparison* find_cmp(const Report& r, const std::string& num, const std::string& den) {
  for (const auto& c : r.comparisons)
    if (c.numerator == num && c.denominator == den) return &c;
  return nullptr;
}

// A simple left-aligned text table.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void row(std::vector<std::string> r) { rows_.push_back(std::move(r)); }
  void print(std::ostream& out) const {
    std::vector<std::size_t> w;
    for (const auto& r : rows_)
      for (std::size_t i = 0; i < r.size(); ++i) {
        if (w.size() <= i) w.push_back(0);
        w[i] = std::max(w[i], r[i].size());
      }
    for (std::size_t k = 0; k < rows_.size(); ++k) {
      std::string line = "  ";
      for (std::size_t i = 0; i < rows_[k].size(); ++i) {
        line += rows_[k][i];
        if (i + 1 < rows_[k].size()) line += std::string(w[i] - rows_[k][i].size() + 2, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out << line << '\n';
      if (k == 0) {
        std::size_t total = 0;
        for (auto x : w) total += x + 2;
        out << "  " << std::string(total > 2 ? total - 2 : 0, '-') << '\n';
      }
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

std::vector<std::string> transports_in(const Report& r) {
  std::vector<std::string> out;
  for (const auto& t : r.transports)
    if (t.available) out.push_back(t.name);
  return out;
}

std::string raw_subject_for(const Report& r, const std::string& transport) {
  for (const auto& x : r.records)
    if (x.impl == "raw" && x.transport == transport) return x.subject;
  return "";
}

}  // namespace

void print_table(const Report& r, std::ostream& out) {
  const auto& m = r.machine;
  out << "taskfarm bench (" << r.mode << " mode), " << r.started_at << ", " << std::fixed
      << std::setprecision(0) << r.duration_s << " s\n";
  out << std::setprecision(2);
  out << "machine:   " << m.cores << " CPU(s) usable (" << m.online_cpus << " online), " << m.cpu_model
      << "\n           " << m.kernel << "\n";
  out << "load:      " << m.load1 << " " << m.load5 << " " << m.load15 << " before (1/5/15 min), "
      << m.load1_after << " after; others used " << std::setprecision(0) << 100 * m.busy_fraction
      << "% of CPU time just before\n";
  if (!m.load_by_suite.empty()) {
    out << "           1-minute load as each suite started (includes the benchmark's own 1-2):";
    for (const auto& [suite, load] : m.load_by_suite) out << " " << suite << " " << std::setprecision(2) << load;
    out << "\n";
  }
  out << "placement: IPC suites: " << (m.placement_ipc.empty() ? "-" : m.placement_ipc)
      << "; pool suites: " << (m.placement_pool.empty() ? "-" : m.placement_pool) << "\n";
  out << "python:    " << (m.python.empty() ? "-" : m.python) << "\n";
  out << "transports:";
  for (const auto& t : r.transports)
    out << " " << t.name << (t.available ? "" : " (UNAVAILABLE: " + t.error + ")");
  out << "\n";
  std::string rep = "?";
  for (const auto& [k, v] : r.settings)
    if (k == "repeats") rep = v;
  out << "method:    every figure is the median of " << rep
      << " runs, [min-max] over the runs; ratios divide medians\n";
  for (const auto& w : r.warnings) out << "WARNING:   " << w << "\n";

  const auto ts = transports_in(r);

  // Latency.
  if (find_rec(r, [](const Record& x) { return x.suite == "latency"; })) {
    out << "\nRound-trip latency, microseconds (each run's percentile of its samples; median of runs [min-max])\n";
    Table t({"transport", "payload", "p50 [min-max]", "p90", "p99", "p99.9", "raw p50 [min-max]", "raw p99",
             "p50 cost", "p99 cost"});
    for (const auto& tn : ts) {
      std::set<std::uint64_t> sizes;
      for (const auto& x : r.records)
        if (x.suite == "latency" && x.transport == tn) sizes.insert(x.payload_bytes);
      for (auto s : sizes) {
        auto get = [&](const std::string& impl, const std::string& metric) {
          return find_rec(r, [&](const Record& x) {
            return x.suite == "latency" && x.impl == impl && x.transport == tn && x.metric == metric &&
                   x.payload_bytes == s;
          });
        };
        const Record *p50 = get("taskfarm", "rtt_p50"), *p90 = get("taskfarm", "rtt_p90"),
                     *p99 = get("taskfarm", "rtt_p99"), *p999 = get("taskfarm", "rtt_p999"),
                     *r50 = get("raw", "rtt_p50"), *r99 = get("raw", "rtt_p99");
        const Comparison* c50 = p50 && r50 ? find_cmp(r, p50->key(), r50->key()) : nullptr;
        const Comparison* c99 = p99 && r99 ? find_cmp(r, p99->key(), r99->key()) : nullptr;
        t.row({tn, svg::format_bytes(static_cast<double>(s)), fmt_spread(p50), p90 ? fmt(p90->summary.median) : "-",
               p99 ? fmt(p99->summary.median) : "-", p999 ? fmt(p999->summary.median) : "-",
               fmt_spread(r50), r99 ? fmt(r99->summary.median) : "-", c50 ? ratio_text(c50->ratio) : "-",
               c99 ? ratio_text(c99->ratio) : "-"});
      }
    }
    t.print(out);
    out << "  cost = transport / raw mechanism (1.00x = no overhead; target <= 1.20x at p50)\n";
    out << "  raw mechanisms:";
    for (const auto& tn : ts) out << " " << tn << " -> " << raw_subject_for(r, tn) << ";";
    out << "\n";
  }

  // Throughput.
  if (find_rec(r, [](const Record& x) { return x.suite == "throughput"; })) {
    out << "\nOne-way throughput (median of runs [min-max])\n";
    Table t({"transport", "64 B msg/s", "raw msg/s", "cost", "1 MiB GB/s", "raw GB/s", "cost"});
    for (const auto& tn : ts) {
      auto get = [&](const std::string& impl, const std::string& metric, std::uint64_t size) {
        return find_rec(r, [&](const Record& x) {
          return x.suite == "throughput" && x.impl == impl && x.transport == tn && x.metric == metric &&
                 x.payload_bytes == size;
        });
      };
      const Record *a = get("taskfarm", "msgs_per_s", 64), *ar = get("raw", "msgs_per_s", 64),
                   *b = get("taskfarm", "gb_per_s", 1u << 20), *br = get("raw", "gb_per_s", 1u << 20);
      if (!a && !b) continue;
      const Comparison* ca = a && ar ? find_cmp(r, a->key(), ar->key()) : nullptr;
      const Comparison* cb = b && br ? find_cmp(r, b->key(), br->key()) : nullptr;
      t.row({tn, fmt_spread(a), fmt_spread(ar), ca ? ratio_text(ca->ratio) : "-", fmt_spread(b), fmt_spread(br),
             cb ? ratio_text(cb->ratio) : "-"});
    }
    t.print(out);
    for (const auto& x : r.records)
      if (x.suite == "throughput" && x.subject.rfind("memcpy", 0) == 0)
        out << "  " << x.subject << " of 1 MiB blocks: " << fmt_spread(&x) << " GB/s\n";
    out << "  cost = raw rate / transport rate (target <= 1.20x)\n";
  }

  // Pool rates against Python.
  auto py_rec = [&](const std::string& suite, const std::string& metric, const std::string& start) {
    return find_rec(r, [&](const Record& x) {
      return x.suite == suite && x.impl == "python" && x.metric == metric && x.start == start;
    });
  };
  auto tf_rec = [&](const std::string& tn, const std::string& suite, const std::string& metric,
                    const std::string& start) {
    return find_rec(r, [&](const Record& x) {
      return x.suite == suite && x.impl == "taskfarm" && x.transport == tn && x.metric == metric && x.start == start;
    });
  };
  struct Row {
    const char* suite;
    const char* metric;
    const char* start;
    const char* label;
    const char* target;
  };
  auto section = [&](const std::string& title, const std::string& unit, std::vector<Row> rows) {
    Table t({"workload", "runs on", unit + " [min-max]", "vs Python", "target"});
    bool any = false;
    for (const auto& row : rows) {
      const Record* py = py_rec(row.suite, row.metric, row.start);
      bool first = true;
      auto label = [&] {
        const std::string l = first ? row.label : "";
        first = false;
        return l;
      };
      if (py) t.row({label(), py->subject, fmt_spread(py), "1x", ""});
      for (const auto& tn : ts) {
        const Record* x = tf_rec(tn, row.suite, row.metric, row.start);
        if (!x) continue;
        const Comparison* c = py ? find_cmp(r, x->key(), py->key()) : nullptr;
        std::string verdict;
        if (c && c->target) verdict = std::string(row.target) + (c->met ? " met" : " MISSED");
        t.row({label(), "taskfarm " + tn, fmt_spread(x), c ? ratio_text(c->ratio) : "-", verdict});
      }
      any = any || !first;
    }
    if (!any) return;
    out << "\n" << title << "\n";
    t.print(out);
  };
  std::string workers = "?", payload = "1 MiB";
  for (const auto& [k, v] : r.settings) {
    if (k == "workers") workers = v;
    if (k == "payload_bytes") payload = svg::format_bytes(std::stod(v));
  }
  const std::string payload_label = "map " + payload + " argument, chunksize=1";
  section("Pool task rate, " + workers + " workers, unpinned (median of runs [min-max]; vs Python: how many times faster)",
          "tasks/s", {{"pool", "map_noop_chunk1", "", "map no-op, chunksize=1", ">= 16x"},
           {"pool", "map_noop_auto", "", "map no-op, automatic chunks", ">= 5x"},
           {"pool", "submit_get", "", "submit+get no-op", ">= 30x"},
           {"pool", "map_payload", "", payload_label.c_str(), ">= 7x"}});
  section("Pool start-up and shutdown, " + workers + " workers (vs Python: Python's time / taskfarm's time)", "ms",
          {{"startup", "start_to_first_result", "fork", "start to first result, fork", ">= 4x"},
           {"startup", "shutdown", "fork", "shutdown, fork", ""},
           {"startup", "start_to_first_result", "spawn", "start to first result, spawn", ""},
           {"startup", "shutdown", "spawn", "shutdown, spawn", ""}});

  // Scaling.
  if (find_rec(r, [](const Record& x) { return x.suite == "scaling"; })) {
    out << "\nCPU-bound scaling (same total work for every pool size; median of runs [min-max])\n";
    Table t({"workers", "tasks/s", "speedup", "efficiency"});
    for (const auto& x : r.records) {
      if (x.suite != "scaling" || x.metric != "cpu_tasks_per_s") continue;
      const Record* s = find_rec(r, [&](const Record& y) {
        return y.suite == "scaling" && y.metric == "speedup" && y.workers == x.workers;
      });
      t.row({std::to_string(x.workers), fmt_spread(&x), s ? fmt_spread(s) : "-",
             s ? std::to_string(static_cast<int>(std::lround(100 * s->summary.median / static_cast<double>(x.workers)))) + "%" : "-"});
    }
    t.print(out);
  }

  // Targets.
  std::map<std::string, std::vector<const Comparison*>> by_target;
  std::vector<std::string> order;
  for (const auto& c : r.comparisons) {
    if (!c.target) continue;
    if (!by_target.count(c.target_name)) order.push_back(c.target_name);
    by_target[c.target_name].push_back(&c);
  }
  if (!order.empty()) {
    out << "\nTargets\n";
    for (const auto& name : order) {
      const auto& cs = by_target[name];
      std::size_t met = 0;
      for (auto* c : cs) met += c->met;
      out << "  [" << (met == cs.size() ? "MET" : met == 0 ? "MISSED" : "PARTLY MET") << "] " << name << " ("
          << met << "/" << cs.size() << ")\n";
      for (auto* c : cs)
        if (!c->met) out << "      missed: " << c->name << ": " << ratio_text(c->ratio) << "\n";
    }
  }
}

void write_json(const Report& r, std::ostream& out) {
  using J = nlohmann::ordered_json;
  J j;
  j["schema_version"] = r.schema_version;
  j["tool"] = "taskfarm bench";
  j["taskfarm_version"] = r.taskfarm_version;
  j["mode"] = r.mode;
  j["started_at"] = r.started_at;
  j["duration_s"] = r.duration_s;
  const auto& m = r.machine;
  j["machine"] = {{"cores", m.cores},
                  {"online_cpus", m.online_cpus},
                  {"kernel", m.kernel},
                  {"hostname", m.hostname},
                  {"cpu_model", m.cpu_model},
                  {"load_average", {m.load1, m.load5, m.load15}},
                  {"load1_after", m.load1_after},
                  {"busy_fraction", m.busy_fraction},
                  {"load_by_suite", [&] {
                     J a = J::array();
                     for (const auto& [suite, load] : m.load_by_suite) a.push_back({{"suite", suite}, {"load1", load}});
                     return a;
                   }()},
                  {"placement_ipc", m.placement_ipc},
                  {"placement_pool", m.placement_pool},
                  {"python", m.python}};
  j["warnings"] = r.warnings;
  J settings = J::object();
  for (const auto& [k, v] : r.settings) settings[k] = v;
  j["settings"] = settings;
  J ts = J::array();
  for (const auto& t : r.transports) {
    J x = {{"name", t.name}, {"available", t.available}};
    if (!t.available) x["error"] = t.error;
    ts.push_back(x);
  }
  j["transports"] = ts;
  J recs = J::array();
  for (const auto& x : r.records) {
    J o;
    o["key"] = x.key();
    o["suite"] = x.suite;
    o["impl"] = x.impl;
    o["subject"] = x.subject;
    o["transport"] = x.transport;
    o["metric"] = x.metric;
    o["unit"] = x.unit;
    o["higher_is_better"] = x.higher_is_better;
    o["payload_bytes"] = x.payload_bytes;
    o["workers"] = x.workers;
    o["start"] = x.start;
    o["chunking"] = x.chunking;
    o["samples_per_run"] = x.samples_per_run;
    o["runs"] = x.runs;
    o["summary"] = {{"n", x.summary.n},          {"min", x.summary.min},       {"q1", x.summary.q1},
                    {"median", x.summary.median}, {"q3", x.summary.q3},         {"max", x.summary.max},
                    {"mean", x.summary.mean}};
    recs.push_back(o);
  }
  j["records"] = recs;
  J cmps = J::array();
  for (const auto& c : r.comparisons) {
    J o = {{"group", c.group},         {"name", c.name},   {"numerator", c.numerator},
           {"denominator", c.denominator}, {"ratio", c.ratio}, {"sense", c.sense}};
    if (c.target) {
      o["target"] = *c.target;
      o["target_name"] = c.target_name;
      o["met"] = c.met;
    } else {
      o["target"] = nullptr;
    }
    cmps.push_back(o);
  }
  j["comparisons"] = cmps;
  out << j.dump(2) << '\n';
}

namespace {
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + "\"";
}

std::string num(double v) {
  std::ostringstream o;
  o << std::setprecision(9) << v;
  return o.str();
}
}  // namespace

void write_csv(const Report& r, std::ostream& out) {
  out << "suite,impl,subject,transport,metric,unit,higher_is_better,payload_bytes,workers,start,chunking,"
         "samples_per_run,n_runs,median,min,q1,q3,max,mean,runs\n";
  for (const auto& x : r.records) {
    std::string runs;
    for (double v : x.runs) {
      if (!runs.empty()) runs += ';';
      runs += num(v);
    }
    out << csv_field(x.suite) << ',' << csv_field(x.impl) << ',' << csv_field(x.subject) << ','
        << csv_field(x.transport) << ',' << csv_field(x.metric) << ',' << csv_field(x.unit) << ','
        << (x.higher_is_better ? "true" : "false") << ',' << x.payload_bytes << ',' << x.workers << ','
        << csv_field(x.start) << ',' << csv_field(x.chunking) << ',' << x.samples_per_run << ','
        << x.summary.n << ',' << num(x.summary.median) << ',' << num(x.summary.min) << ','
        << num(x.summary.q1) << ',' << num(x.summary.q3) << ',' << num(x.summary.max) << ','
        << num(x.summary.mean) << ',' << runs << '\n';
  }
}

}  // namespace taskfarm::bench
