#include "shared_control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "taskfarm/ipc/names.hpp"

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/permissions.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

namespace taskfarm::ipc::detail {

namespace bip = boost::interprocess;

namespace {
class AttachCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "taskfarm.ipc.attach"; }
  std::string message(int ev) const override {
    switch (static_cast<AttachError>(ev)) {
      case AttachError::bad_endpoint:
        return "malformed endpoint: wrong descriptors or missing parameters for this transport";
      case AttachError::bad_magic:
        return "bad magic number: the shared object is not a taskfarm link of this transport";
      case AttachError::bad_version:
        return "layout version mismatch: master and worker come from different taskfarm builds";
      case AttachError::bad_layout:
        return "size mismatch: the shared object's layout (ring/message size or object size) "
               "differs from what this side expects";
    }
    return "unknown attach error " + std::to_string(ev);
  }
};

std::uint64_t random64() noexcept {
  std::uint64_t r = 0;
  auto* p = reinterpret_cast<unsigned char*>(&r);
  std::size_t got = 0;
  while (got < sizeof r) {
    const ssize_t n = ::getrandom(p + got, sizeof r - got, 0);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // No getrandom (very old kernel): still unique through O_EXCL, just guessable.
    r ^= static_cast<std::uint64_t>(
        std::chrono::steady_clock::now().time_since_epoch().count()) * 0x9e3779b97f4a7c15ull;
    break;
  }
  return r;
}

std::mutex g_spin_mu;
std::vector<LinkControl*>* g_spinners = nullptr;  // leaked on purpose: no exit-time order issue

void retune_locked() noexcept {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  // This process plus one worker per link.
  const bool ok = g_spinners->size() + 1 <= cores;
  for (auto* c : *g_spinners) c->spin_ok.store(ok ? 1 : 0, std::memory_order_relaxed);
}
}  // namespace

const std::error_category& attach_category() noexcept {
  static const AttachCategory c;
  return c;
}

std::string unique_name(std::string_view tag) {
  // This process's start time, read once per process: `start_pid` is stored
  // (release) after `start`, so whoever loads its own pid there (acquire) reads
  // its own start time; a forked child finds its parent's pid and reads anew.
  static std::atomic<pid_t> start_pid{0};
  static std::atomic<std::uint64_t> start{0};
  const pid_t self = ::getpid();
  std::uint64_t started = 0;
  bool known = false;
  if (start_pid.load(std::memory_order_acquire) == self) {
    started = start.load(std::memory_order_relaxed);
    known = true;
  } else if (const auto t = process_start_time(self)) {
    started = *t;
    known = true;
    start.store(started, std::memory_order_relaxed);
    start_pid.store(self, std::memory_order_release);
  }
  char buf[128];
  if (known)
    std::snprintf(buf, sizeof buf, "/taskfarm-%ld-%llu-%016llx-", static_cast<long>(self),
                  static_cast<unsigned long long>(started),
                  static_cast<unsigned long long>(random64()));
  else  // no /proc: the older form, which a sweep removes only once the pid is dead
    std::snprintf(buf, sizeof buf, "/taskfarm-%ld-%016llx-", static_cast<long>(self),
                  static_cast<unsigned long long>(random64()));
  return std::string(buf) + std::string(tag);
}

std::error_code from_boost(const std::exception& e) noexcept {
  if (const auto* ie = dynamic_cast<const bip::interprocess_exception*>(&e)) {
    if (const int native = ie->get_native_error(); native != 0) return from_errno(native);
    switch (ie->get_error_code()) {
      case bip::already_exists_error: return from_errno(EEXIST);
      case bip::not_found_error: return from_errno(ENOENT);
      case bip::security_error: return from_errno(EACCES);
      case bip::out_of_memory_error:
      case bip::out_of_space_error: return from_errno(ENOSPC);
      case bip::size_error: return Errc::too_large;
      case bip::timeout_when_locking_error:
      case bip::timeout_when_waiting_error: return Errc::timed_out;
      default: break;
    }
  }
  return std::make_error_code(std::errc::io_error);
}

// ---------------------------------------------------------------------------
// SharedRegion

SharedRegion::SharedRegion(SharedRegion&& o) noexcept
    : boost_(std::move(o.boost_)),
      raw_(std::exchange(o.raw_, false)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)) {}

SharedRegion& SharedRegion::operator=(SharedRegion&& o) noexcept {
  if (this != &o) {
    reset();
    boost_ = std::move(o.boost_);
    raw_ = std::exchange(o.raw_, false);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

SharedRegion::~SharedRegion() { reset(); }

void SharedRegion::reset() noexcept {
  if (raw_ && data_) ::munmap(data_, size_);
  boost_ = bip::mapped_region();  // unmaps the creator's mapping, if any
  raw_ = false;
  data_ = nullptr;
  size_ = 0;
}

std::error_code SharedRegion::create(std::string_view tag, std::size_t bytes, SharedRegion& out,
                                     UniqueFd& fd) {
  for (int attempt = 0;; ++attempt) {
    const std::string name = unique_name(tag);
    try {
      bip::shared_memory_object obj(bip::create_only, name.c_str(), bip::read_write,
                                    bip::permissions(0600));
      // From here the name exists: remove it however we leave.
      struct Unlink {
        const std::string& n;
        ~Unlink() { bip::shared_memory_object::remove(n.c_str()); }
      } unlink_name{name};
      obj.truncate(static_cast<bip::offset_t>(bytes));
      const int handle = obj.get_mapping_handle().handle;
      if (const int e = ::posix_fallocate(handle, 0, static_cast<off_t>(bytes)); e != 0)
        return from_errno(e);
      bip::mapped_region region(obj, bip::read_write);
      const int dup = ::fcntl(handle, F_DUPFD_CLOEXEC, 0);
      if (dup < 0) return from_errno(errno);
      fd = UniqueFd(dup);
      out.reset();
      out.data_ = region.get_address();
      out.size_ = region.get_size();
      out.boost_ = std::move(region);
      return {};
    } catch (const bip::interprocess_exception& e) {
      // A name collision is (astronomically) possible: pick another name.
      if (e.get_error_code() == bip::already_exists_error && attempt < 3) continue;
      return from_boost(e);
    } catch (const std::exception& e) {
      return from_boost(e);
    }
  }
}

std::error_code SharedRegion::attach(int fd, std::size_t min_bytes, SharedRegion& out) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return from_errno(errno);
  if (st.st_size < 0 || static_cast<std::uint64_t>(st.st_size) < min_bytes)
    return AttachError::bad_layout;
  const auto bytes = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return from_errno(errno);
  out.reset();
  out.raw_ = true;
  out.data_ = p;
  out.size_ = bytes;
  return {};
}

// ---------------------------------------------------------------------------
// PeerSync

PeerSync::PeerSync(Role role, LinkControl* control, UniqueFd bell, bool may_spin) noexcept
    : role_(role),
      control_(control),
      mine_(role == Role::master ? &control->master : &control->worker),
      peer_(role == Role::master ? &control->worker : &control->master),
      bell_(std::move(bell)),
      may_spin_(may_spin) {
  set_nonblocking(bell_.get(), true);
}

void PeerSync::arm(std::uint32_t how) noexcept {
  mine_->wait.store(how, std::memory_order_seq_cst);
  armed_ = true;
}

void PeerSync::disarm_awake() noexcept {
  if (!armed_) return;
  armed_ = false;
  const std::uint32_t how = mine_->wait.exchange(0, std::memory_order_seq_cst);
  if (how == 0 && role_ == Role::worker) {
    try {
      (void)control_->worker_sem.try_wait();
    } catch (...) {
    }
  }
}

void PeerSync::ring() noexcept {
  const char b = 0;
  // MSG_NOSIGNAL: a dead peer is EPIPE, never SIGPIPE. A full socket buffer means
  // the peer has unread bells already, which is as good.
  while (::send(bell_.get(), &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EINTR) {
  }
}

void PeerSync::wake_peer() noexcept {
  // The load keeps the line shared while the peer is awake (the common case); only
  // an armed flag costs an exchange and a wake-up.
  if (peer_->wait.load(std::memory_order_seq_cst) == 0) return;
  wake_armed();
}

void PeerSync::wake_peer_for_space() noexcept {
  // Ordering: the peer armed (seq_cst) before re-checking this side's taken
  // count; this side stored that count (seq_cst) before this load, so an armed
  // flag is seen here whenever the peer could have missed the room.
  if ((peer_->wait.load(std::memory_order_seq_cst) & kWantsSpace) == 0) return;
  wake_armed();
}

void PeerSync::wake_armed() noexcept {
  const std::uint32_t how = peer_->wait.exchange(0, std::memory_order_seq_cst);
  if (how & kSleepSem) {
    try {
      control_->worker_sem.post();
    } catch (...) {
      // EOVERFLOW cannot happen (one post per arming); nothing else is recoverable.
    }
  }
  if (how & kSleepBell) ring();
}

bool PeerSync::check_peer_gone(bool force) noexcept {
  if (gone_) return true;
  if (peer_closed()) return gone_ = true;
  if (!force) {
    const auto now = Clock::now();
    if (now < next_check_) return false;
    next_check_ = now + std::chrono::milliseconds(1);
  }
  char buf[64];
  for (;;) {
    const ssize_t n = ::recv(bell_.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) continue;  // bells; read on until EAGAIN or end of file
    if (n == 0) return gone_ = true;  // end of file: the peer's end was closed (exit or kill)
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    return gone_ = true;  // ECONNRESET and the like
  }
}

void PeerSync::sleep_until(Clock::time_point until) noexcept {
  const auto left = std::chrono::ceil<std::chrono::microseconds>(until - Clock::now());
  if (left.count() <= 0) return;
  if (role_ == Role::worker) {
    try {
      const auto abs = boost::posix_time::microsec_clock::universal_time() +
                       boost::posix_time::microseconds(left.count());
      (void)control_->worker_sem.timed_wait(abs);
    } catch (...) {
      // sem_timedwait failed (EINTR): a spurious wake-up; the caller re-checks.
    }
    return;
  }
  pollfd p{bell_.get(), POLLIN, 0};
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  (void)::poll(&p, 1, static_cast<int>(ms));
}

void PeerSync::close() noexcept {
  if (!control_) return;
  mine_->closed.store(1, std::memory_order_seq_cst);
  wake_armed();
}

std::error_code make_doorbell(UniqueFd& master_end, UniqueFd& worker_end) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return from_errno(errno);
  master_end = UniqueFd(sv[0]);
  worker_end = UniqueFd(sv[1]);
  return {};
}

void register_spinner(LinkControl* control) {
  std::lock_guard lock(g_spin_mu);
  if (!g_spinners) g_spinners = new std::vector<LinkControl*>();
  g_spinners->push_back(control);
  retune_locked();
}

void unregister_spinner(LinkControl* control) noexcept {
  std::lock_guard lock(g_spin_mu);
  if (!g_spinners) return;
  std::erase(*g_spinners, control);
  retune_locked();
}

}  // namespace taskfarm::ipc::detail
