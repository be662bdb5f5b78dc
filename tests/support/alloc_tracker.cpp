#include "support/alloc_tracker.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace taskfarm::test {
namespace {
std::atomic<std::size_t> g_largest{0};

void note(std::size_t n) noexcept {
  std::size_t seen = g_largest.load(std::memory_order_relaxed);
  while (n > seen && !g_largest.compare_exchange_weak(seen, n, std::memory_order_relaxed)) {
  }
}

void* allocate(std::size_t n) {
  note(n);
  for (;;) {
    if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
    std::new_handler h = std::get_new_handler();
    if (h == nullptr) throw std::bad_alloc();
    h();
  }
}

void* allocate_nothrow(std::size_t n) noexcept {
  try {
    return allocate(n);
  } catch (...) {
    return nullptr;
  }
}
}  // namespace

void reset_largest_allocation() noexcept { g_largest.store(0, std::memory_order_relaxed); }
std::size_t largest_allocation() noexcept { return g_largest.load(std::memory_order_relaxed); }

}  // namespace taskfarm::test

void* operator new(std::size_t n) { return taskfarm::test::allocate(n); }
void* operator new[](std::size_t n) { return taskfarm::test::allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return taskfarm::test::allocate_nothrow(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return taskfarm::test::allocate_nothrow(n);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
