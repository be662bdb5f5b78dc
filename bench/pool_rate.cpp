// Pool task rate: pool.map of a no-op task, taskfarm vs Python's
// multiprocessing.Pool, measured in the same run.
//
// usage: taskfarm_pool_rate [--tasks N] [--repeats R] [--workers W] [--no-python]
// Prints a table of tasks/s (median of R runs) and the taskfarm/Python ratio.

#include <taskfarm/taskfarm.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

namespace {

inline const taskfarm::Task<int(int)> noop{"bench.noop", [](int x) { return x; }};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Pulls "name": {... "seconds": [a, b, c]} out of the Python script's JSON line.
std::vector<double> python_seconds(const std::string& json, const std::string& name) {
  std::vector<double> out;
  auto p = json.find("\"" + name + "\"");
  if (p == std::string::npos) return out;
  p = json.find("\"seconds\"", p);
  if (p == std::string::npos) return out;
  p = json.find('[', p);
  const auto end = json.find(']', p);
  std::string list = json.substr(p + 1, end - p - 1);
  char* s = list.data();
  while (*s) {
    char* e;
    const double v = std::strtod(s, &e);
    if (e == s) break;
    out.push_back(v);
    s = e;
    while (*s == ',' || *s == ' ') ++s;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);
  std::size_t tasks = 200'000, repeats = 5, workers = 2;
  bool python = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::strtoul(argv[++i], nullptr, 10) : 0UL; };
    if (a == "--tasks") tasks = next();
    else if (a == "--repeats") repeats = next();
    else if (a == "--workers") workers = next();
    else if (a == "--no-python") python = false;
    else {
      std::fprintf(stderr, "usage: %s [--tasks N] [--repeats R] [--workers W] [--no-python]\n", argv[0]);
      return 2;
    }
  }
  std::vector<int> xs(tasks);
  std::iota(xs.begin(), xs.end(), 0);

  struct Row {
    std::string name;
    double tf_rate;
    double py_rate;
  };
  std::vector<Row> rows;
  std::map<std::string, std::vector<double>> tf;
  for (auto transport : {taskfarm::Transport::pipe, taskfarm::Transport::socket}) {
    taskfarm::Pool pool({.workers = workers, .transport = transport});
    pool.map(noop, std::vector<int>(1000, 1));  // warm-up
    for (auto [label, chunk] : {std::pair{"map_noop_auto", std::size_t{0}}, {"map_noop_chunk1", std::size_t{1}}}) {
      std::vector<double> secs;
      for (std::size_t r = 0; r < repeats; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        const auto ys = pool.map(noop, xs, {.chunksize = chunk});
        secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        if (ys != xs) {
          std::fprintf(stderr, "wrong results\n");
          return 1;
        }
      }
      tf[std::string(label) + "/" + std::string(taskfarm::to_string(transport))] = secs;
    }
  }

  std::string py_json;
  if (python) {
    const std::string cmd = "python3 " TASKFARM_PY_BASELINE " " + std::to_string(tasks) + " " +
                            std::to_string(repeats) + " " + std::to_string(workers);
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      std::array<char, 4096> buf;
      while (std::fgets(buf.data(), buf.size(), p)) py_json += buf.data();
      ::pclose(p);
    }
  }

  std::printf("pool.map of a no-op task, %zu tasks, %zu workers, median of %zu runs\n\n", tasks,
              workers, repeats);
  std::printf("%-28s %14s %14s %10s\n", "workload/transport", "taskfarm t/s", "Python t/s", "ratio");
  for (const auto& [key, secs] : tf) {
    const double rate = static_cast<double>(tasks) / median(secs);
    const auto py = python_seconds(py_json, key.substr(0, key.find('/')));
    if (py.empty()) {
      std::printf("%-28s %14.0f %14s %10s\n", key.c_str(), rate, "-", "-");
    } else {
      const double py_rate = static_cast<double>(tasks) / median(py);
      std::printf("%-28s %14.0f %14.0f %9.1fx\n", key.c_str(), rate, py_rate, rate / py_rate);
    }
  }
  return 0;
}
