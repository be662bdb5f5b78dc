#include "taskfarm/worker/worker.hpp"

#include <cxxabi.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <typeinfo>

#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/registry.hpp"
#include "taskfarm/ipc/link.hpp"
#include "taskfarm/worker/protocol.hpp"
#include "taskfarm/worker/status.hpp"

namespace taskfarm::worker {

namespace {
std::uint64_t to_u64(const std::string* s) {
  std::uint64_t v = 0;
  if (s) std::from_chars(s->data(), s->data() + s->size(), v);
  return v;
}

using Clock = std::chrono::steady_clock;

// Type name and message of the exception being handled.
void describe_current(std::string& type, std::string& message) {
  try {
    throw;
  } catch (const std::exception& e) {
    type = demangle(typeid(e).name());
    message = e.what();
  } catch (...) {
    const std::type_info* ti = abi::__cxa_current_exception_type();
    type = ti ? demangle(ti->name()) : "unknown exception";
    message.clear();
  }
}

// Results of tasks that average under kCoalesceBelow are coalesced into fewer
// writes (a write per result would cost more than the task), but a result is not
// held longer than kMaxHold plus one task; slower tasks reply at once, so the
// master learns of each completion promptly.
constexpr std::uint64_t kCoalesceBelowNs = 20'000;
constexpr auto kMaxHold = std::chrono::milliseconds(1);

// Takes the status memfd out of `ep` (see status.hpp) and maps it; a worker
// without one (an endpoint made by hand) keeps its record in its own memory,
// where nobody reads it.
WorkerStatus* take_status(ipc::Endpoint& ep) {
  static WorkerStatus unshared;
  const auto index = to_u64(ep.param(kStatusFdParam));
  if (ep.param(kStatusFdParam) == nullptr || index >= ep.fds.size()) return &unshared;
  const int fd = ep.fds[index];
  ep.fds.erase(ep.fds.begin() + static_cast<std::ptrdiff_t>(index));
  void* p = ::mmap(nullptr, kStatusBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  return p == MAP_FAILED ? &unshared : static_cast<WorkerStatus*>(p);
}

// This process's resident memory, from /proc/self/statm (opened once, read
// with pread: the kernel writes the numbers anew on each read at offset 0).
class Resident {
 public:
  explicit Resident(bool wanted) noexcept
      : fd_(wanted ? ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC) : -1),
        page_(static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE))) {}
  ~Resident() {
    if (fd_ >= 0) ::close(fd_);
  }
  Resident(const Resident&) = delete;
  Resident& operator=(const Resident&) = delete;

  // "size resident shared text lib data dt", in pages; 0 when it cannot be read.
  [[nodiscard]] std::uint64_t bytes() const noexcept {
    char buf[128];
    const ssize_t n = fd_ >= 0 ? ::pread(fd_, buf, sizeof buf - 1, 0) : -1;
    if (n <= 0) return 0;
    const char* p = std::find(buf, buf + n, ' ');
    std::uint64_t pages = 0;
    if (p == buf + n || std::from_chars(p + 1, buf + n, pages).ec != std::errc()) return 0;
    return pages * page_;
  }

 private:
  int fd_;
  std::uint64_t page_;
};
}  // namespace

void WorkerConfig::store(ipc::Endpoint& ep) const {
  ep.set("slot", std::to_string(slot));
  if (!initializer.empty()) ep.set("init", initializer);
  if (max_tasks) ep.set("max_tasks", std::to_string(max_tasks));
  if (max_memory) ep.set("max_memory", std::to_string(max_memory));
  if (max_frame_bytes) ep.set("max_frame", std::to_string(max_frame_bytes));
  if (ring_bytes) ep.set("ring", std::to_string(ring_bytes));
}

WorkerConfig WorkerConfig::load(const ipc::Endpoint& ep) {
  WorkerConfig c;
  c.slot = static_cast<int>(to_u64(ep.param("slot")));
  if (const auto* i = ep.param("init")) c.initializer = *i;
  c.max_tasks = to_u64(ep.param("max_tasks"));
  c.max_memory = to_u64(ep.param("max_memory"));
  c.max_frame_bytes = to_u64(ep.param("max_frame"));
  c.ring_bytes = to_u64(ep.param("ring"));
  return c;
}

int run(const ipc::Endpoint& endpoint, const WorkerConfig& config) noexcept {
  try {
    ipc::LinkConfig lc;
    if (config.max_frame_bytes) lc.max_frame_bytes = config.max_frame_bytes;
    if (config.ring_bytes) lc.ring_bytes = config.ring_bytes;
    ipc::Endpoint ep = endpoint;
    WorkerStatus* const status = take_status(ep);
    // Workers ignore SIGPIPE (the fork server sets it; spawned workers inherit
    // it through exec): pipe writes need no per-write signal guard. A task that
    // restores the default can only die of it once its master is gone.
    struct sigaction pipe_action {};
    if (::sigaction(SIGPIPE, nullptr, &pipe_action) == 0 && pipe_action.sa_handler == SIG_IGN)
      ipc::sigpipe_is_harmless_in_this_thread();
    std::unique_ptr<ipc::Link> link;
    if (auto ec = ipc::attach_link(ep, lc, link)) {
      std::fprintf(stderr, "taskfarm worker %d: cannot attach to %s: %s\n", config.slot,
                   endpoint.to_string().c_str(), ec.message().c_str());
      return kExitAttachFailed;
    }
    std::vector<std::byte> out;
    Resident rss(config.max_memory != 0);

    if (!config.initializer.empty()) {
      std::string type, message;
      auto init = detail::Registry::instance().find(config.initializer);
      if (!init) {
        type = "taskfarm::ConfigError";
        message = "initializer task \"" + config.initializer + "\" is not registered in the worker";
      } else {
        try {
          init->invoke({}, out);
        } catch (...) {
          describe_current(type, message);
        }
      }
      if (!type.empty()) {
        out.clear();
        detail::ByteWriter w(out);
        w.str(type);
        w.str(message);
        (void)link->send(FrameKind::init_error, 0, out);
        return kExitInitializerFailed;
      }
    }
    {
      out.clear();
      detail::ByteWriter(out).put(static_cast<std::uint32_t>(::getpid()));
      if (link->send(FrameKind::hello, 0, out)) return kExitOk;  // master already gone
    }

    Frame frame;
    std::string_view task_name;
    std::vector<ItemView> items;
    std::shared_ptr<const detail::TaskInfo> task;  // cache: chunks mostly repeat the task
    std::uint64_t done = 0;
    bool holding = false;
    std::uint64_t avg_ns = 0;
    Clock::time_point hold_since{};

    for (;;) {
      auto ec = link->try_receive(frame);
      if (ec == ipc::Errc::would_block) {
        // Nothing queued: hand over every result before sleeping.
        if (link->flush_for(Clock::duration::max())) return kExitOk;
        holding = false;
        ec = link->receive(frame);
      }
      if (ec == ipc::Errc::peer_gone || ec == ipc::Errc::closed) return kExitOk;  // master gone
      if (ec) {
        std::fprintf(stderr, "taskfarm worker %d: receive failed: %s\n", config.slot,
                     ec.message().c_str());
        return kExitProtocolError;
      }
      if (frame.kind() == FrameKind::shutdown) {
        (void)link->flush_for(std::chrono::seconds(5));
        return kExitOk;
      }
      if (frame.kind() != FrameKind::task || !parse_task(frame.payload, task_name, items)) {
        std::fprintf(stderr, "taskfarm worker %d: unexpected %s frame from the master\n",
                     config.slot, std::string(to_string(frame.kind())).c_str());
        return kExitProtocolError;
      }
      if (!task || task->name != task_name) task = detail::Registry::instance().find(task_name);

      std::uint64_t seq = frame.id();
      // One clock read per item: the end of one item is the start of the next.
      auto t0 = Clock::now();
      for (const auto& item : items) {
        status->started_ns.store(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t0.time_since_epoch()).count(),
            std::memory_order_relaxed);
        status->started.store(seq, std::memory_order_release);
        out.clear();
        detail::ByteWriter w(out);
        w.put(std::uint64_t{0});  // duration, patched below
        FrameKind kind = FrameKind::result_ok;
        if (!task) {
          out.clear();
          encode_error(out, 0, ErrorKind::unknown_task, "taskfarm::ConfigError",
                       "no task named \"" + std::string(task_name) +
                           "\" is registered in the worker process");
          kind = FrameKind::result_error;
        } else {
          try {
            task->invoke(item.args, out);
          } catch (...) {
            std::string type, message;
            describe_current(type, message);
            const bool ser = type == "taskfarm::SerializationError";
            out.clear();
            encode_error(out, 0, ser ? ErrorKind::serialization : ErrorKind::task_threw, type,
                         message);
            kind = FrameKind::result_error;
          }
        }
        if (out.size() > lc.max_frame_bytes) {
          // Too big for the link: a failure of this item, not of the worker (a
          // refused send would end the worker and be reported as WorkerLost).
          const std::string why = "the result is " + std::to_string(out.size() - sizeof(std::uint64_t)) +
                                  " bytes, more than max_message_bytes (" +
                                  std::to_string(lc.max_frame_bytes) + ")";
          out.clear();
          encode_error(out, 0, ErrorKind::serialization, "taskfarm::SerializationError", why);
          kind = FrameKind::result_error;
        }
        const auto t1 = Clock::now();
        status->finished.store(seq, std::memory_order_release);
        const auto dt = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
        t0 = t1;
        std::memcpy(out.data(), &dt, sizeof dt);
        avg_ns = avg_ns == 0 ? dt : (avg_ns * 7 + dt) / 8;
        if (!holding) {
          holding = true;
          hold_since = t1;
        }
        const bool now = avg_ns >= kCoalesceBelowNs || t1 - hold_since >= kMaxHold;
        if (auto sec = link->try_send(kind, seq, out, now ? ipc::Flush::now : ipc::Flush::deferred))
          return sec == ipc::Errc::peer_gone ? kExitOk : kExitProtocolError;
        if (now) holding = link->has_pending_output();
        ++seq;
        const bool ran_enough = config.max_tasks && ++done >= config.max_tasks;
        const bool too_big = config.max_memory && rss.bytes() > config.max_memory;
        if (ran_enough || too_big) {
          const auto reason = static_cast<std::byte>(too_big ? RetireReason::max_memory : RetireReason::max_tasks);
          (void)link->try_send(FrameKind::retiring, seq - 1, {&reason, 1}, ipc::Flush::now);
          (void)link->flush_for(std::chrono::seconds(5));
          return kExitOk;
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskfarm worker %d: %s\n", config.slot, e.what());
    return kExitProtocolError;
  } catch (...) {
    return kExitProtocolError;
  }
}

}  // namespace taskfarm::worker
