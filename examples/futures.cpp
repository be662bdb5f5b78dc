// pool.submit returns a Future; as_completed yields futures as they finish;
// then() attaches Python-style callback / error_callback.

#include <taskfarm/taskfarm.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

// Sleeps `ms` milliseconds, then reports it; a negative duration is an error.
inline const taskfarm::Task<std::string(int)> nap{"example.nap", [](int ms) {
  if (ms < 0) throw std::invalid_argument("cannot sleep " + std::to_string(ms) + " ms");
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return "slept " + std::to_string(ms) + " ms";
}};

}  // namespace

int main(int argc, char** argv) {
  taskfarm::init(argc, argv);
  taskfarm::Pool pool({.workers = 2});

  std::vector<taskfarm::Future<std::string>> futures;
  for (int ms : {300, 100, 200, -1, 50}) futures.push_back(pool.submit(nap, ms));

  // Completion order, not submission order.
  int failures = 0;
  std::vector<std::string> order;
  for (const auto& f : taskfarm::as_completed(futures)) {
    try {
      order.push_back(f.get());
    } catch (const taskfarm::RemoteError& e) {
      order.push_back(std::string("failed: ") + e.type_name() + ": " + e.message());
      ++failures;
    }
    std::printf("%s\n", order.back().c_str());
  }

  // Callbacks run on the pool's callback thread, exactly one of them per future.
  std::atomic<int> ok{0}, errors{0};
  auto a = pool.submit(nap, 10).then([&](std::string) { ++ok; }, [&](std::exception_ptr) { ++errors; });
  auto b = pool.submit(nap, -5).then([&](std::string) { ++ok; }, [&](std::exception_ptr) { ++errors; });
  auto [done, not_done] = taskfarm::wait(std::vector{a, b});
  pool.shutdown();  // waits for the callbacks too
  std::printf("callbacks: %d ok, %d errors; %zu done, %zu not done\n", ok.load(), errors.load(),
              done.size(), not_done.size());
  return failures == 1 && ok == 1 && errors == 1 && order.size() == 5 ? 0 : 1;
}
