#include "pool_support.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <cstdio>
#include <mutex>
#include <csignal>
#include <cstdlib>
#include <numeric>
#include <stdexcept>
#include <thread>

namespace pool_test {

std::atomic<std::uint32_t>* map_run_counters() {
  void* m = ::mmap(nullptr, kRunSlots * sizeof(std::atomic<std::uint32_t>), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) std::abort();
  static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
                "the counters are shared between processes");
  return static_cast<std::atomic<std::uint32_t>*>(m);  // zero-filled
}

void reset_runs() {
  for (std::size_t i = 0; i < kRunSlots; ++i) g_runs[i].store(0, std::memory_order_relaxed);
}

bool touch(const std::filesystem::path& p) {
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool wait_for_file(const std::filesystem::path& p, std::chrono::milliseconds patience) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (!std::filesystem::exists(p)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "taskfarm-pool-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string text_pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = 2463534242u ^ seed ^ static_cast<std::uint32_t>(n);
  for (auto& c : s) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
}

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// This process and its descendants, parents first.
std::vector<pid_t> process_tree() {
  std::vector<std::pair<pid_t, pid_t>> all;  // pid, ppid
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
      if (pid <= 0) continue;
      const std::string st = read_line("/proc/" + std::string(e->d_name) + "/stat");
      const auto close = st.rfind(')');
      if (close == std::string::npos || close + 4 > st.size()) continue;
      all.emplace_back(pid, static_cast<pid_t>(std::atol(st.c_str() + close + 4)));
    }
    ::closedir(d);
  }
  std::vector<pid_t> tree{::getpid()};
  for (std::size_t i = 0; i < tree.size(); ++i)
    for (const auto& [pid, ppid] : all)
      if (ppid == tree[i]) tree.push_back(pid);
  return tree;
}

}  // namespace

// What every thread of this process and of each of its descendants (the
// pools' fork servers and workers) is doing: its state, the kernel function it
// sleeps in and its system call, and with gdb installed, every thread's stack.
void dump_process_tree() {
  const bool have_gdb = std::system("command -v gdb >/dev/null 2>&1") == 0;
  for (const pid_t pid : process_tree()) {
    const std::string base = "/proc/" + std::to_string(pid);
    std::fprintf(stderr, "HANG: process %d (%s), parent chain from this test process\n", pid,
                 read_line(base + "/comm").c_str());
    if (DIR* d = ::opendir((base + "/task").c_str())) {
      while (dirent* e = ::readdir(d)) {
        if (e->d_name[0] == '.') continue;
        const std::string t = base + "/task/" + e->d_name;
        const std::string st = read_line(t + "/stat");
        const auto close = st.rfind(')');
        const char state = close != std::string::npos && close + 2 < st.size() ? st[close + 2] : '?';
        std::fprintf(stderr, "HANG:   thread %s (%s) state %c wchan %s syscall %s\n", e->d_name,
                     read_line(t + "/comm").c_str(), state, read_line(t + "/wchan").c_str(),
                     read_line(t + "/syscall").c_str());
      }
      ::closedir(d);
    }
    if (have_gdb && pid != ::getpid()) {
      const std::string cmd = "timeout 20 gdb -p " + std::to_string(pid) +
                              " -batch -nx -ex 'thread apply all bt' 2>/dev/null | grep -E '^(Thread|#)' >&2";
      (void)std::system(cmd.c_str());
    }
  }
  std::fflush(stderr);
}

struct HangGuard::State {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
};

HangGuard::HangGuard(std::string what, std::chrono::seconds patience)
    : state_(std::make_shared<State>()) {
  thread_ = std::thread([s = state_, what = std::move(what), patience] {
    std::unique_lock lock(s->mu);
    if (!s->cv.wait_for(lock, patience, [&] { return s->done; })) {
      std::fprintf(stderr, "HANG: %s did not return within %lld s\n", what.c_str(),
                   static_cast<long long>(patience.count()));
      dump_process_tree();
      std::fflush(stderr);
      std::abort();
    }
  });
}

HangGuard::~HangGuard() {
  {
    std::lock_guard lock(state_->mu);
    state_->done = true;
  }
  state_->cv.notify_all();
  thread_.join();
}

// ---- tasks ----------------------------------------------------------------

int square_impl(int x) { return x * x; }

std::uint64_t count_run_impl(std::uint64_t x) {
  if (x < kRunSlots) g_runs[x].fetch_add(1, std::memory_order_relaxed);
  return x;
}

int jitter_impl(int x) {
  const auto us = (static_cast<unsigned>(x) * 7919u) % 300u;
  std::this_thread::sleep_for(std::chrono::microseconds(us));
  return x;
}

int throw_if_odd_impl(int x) {
  if (x % 2 != 0) throw std::invalid_argument("odd: " + std::to_string(x));
  return x;
}

int throw_int_impl(int) { throw 42; }

int fail_negative_impl(int x) {
  if (x < 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(-x));
    throw std::runtime_error("negative " + std::to_string(x));
  }
  return x;
}

std::string complement_impl(std::string s) {
  for (auto& c : s) c = static_cast<char>(~c);
  return s;
}

std::vector<char> reverse_impl(std::vector<char> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

std::string make_text_impl(std::uint64_t n) { return text_pattern(n, 7); }

int gated_impl(std::string dir, int tag) {
  const std::filesystem::path d(dir);
  if (!touch(d / ("started-" + std::to_string(tag)))) throw std::runtime_error("cannot touch");
  if (!wait_for_file(d / "release", std::chrono::seconds(60)))
    throw std::runtime_error("never released");
  return tag;
}

int sleep_ms_impl(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

int die_on_3_quick_impl(int x) {
  if (x >= 0 && static_cast<std::size_t>(x) < kRunSlots) g_runs[x].fetch_add(1);
  if (x == 3) ::raise(SIGKILL);
  return 10 * x;
}

int die_on_3_impl(int x) {
  if (x != 3) std::this_thread::sleep_for(std::chrono::microseconds(100));
  return die_on_3_quick_impl(x);
}

int die_once_on_3_impl(std::pair<std::string, int> dir_and_x) {
  const int x = dir_and_x.second;
  if (x != 3) std::this_thread::sleep_for(std::chrono::microseconds(100));
  if (x >= 0 && static_cast<std::size_t>(x) < kRunSlots) g_runs[x].fetch_add(1);
  if (x == 3) {
    const auto marker = std::filesystem::path(dir_and_x.first) / "died-once";
    const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::close(fd);
      ::raise(SIGKILL);
    }
  }
  return 10 * x;
}

void touch_file_impl(std::string path) {
  if (!touch(path)) throw std::runtime_error("cannot create " + path);
}

void void_throw_if_odd_impl(int x) {
  if (x % 2 != 0) throw std::invalid_argument("odd: " + std::to_string(x));
}

void noop_impl() {}

void bad_init_impl() { throw std::runtime_error("init boom"); }
void good_init_impl() { g_initialized = 42; }
int read_init_impl(int) { return g_initialized; }

int add_impl(int a, int b) { return a + b; }

long worker_pid_impl(int) { return static_cast<long>(::getpid()); }

}  // namespace pool_test
