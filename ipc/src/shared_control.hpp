#pragma once
// What the shared-memory transports (shm, mqueue) have in common: the control
// block both processes map, the rules by which each side sleeps and is woken, the
// doorbell socket, and how kernel objects are named, created and removed.
//
// Sleeping and waking
// -------------------
// Each side has a `wait` flag in the control block. A side that found nothing to
// do (it drained everything first) arms its flag (store, seq_cst), re-checks its
// condition (a seq_cst load of the other side's ring index; for mqueue the
// messages its peer has sent or taken, SideLine::messages_sent/taken), and only
// then sleeps: the worker on the interprocess_semaphore
// `worker_sem` (after a bounded, adaptive spin when a core is free), the master
// in poll() on its end of the doorbell socket, since it waits on every worker at
// once from one thread (a worker that polls, through prepare_wait(), is rung the
// same way). A side that publishes data or frees space stores its index
// (seq_cst) and then loads the peer's flag (seq_cst); only if it is armed does it
// exchange it to 0 and pay for a wake-up (sem post or one doorbell byte). These
// are the two halves of a Dekker pair: in the single total order of seq_cst
// operations either the sleeper's re-check sees the new index, or the
// publisher's load sees the armed flag, so no wake-up is lost, and a producer
// whose consumer is awake makes no system call.
//
// Death and close
// ---------------
// The doorbell is a Unix-domain socketpair: the master keeps one end, the worker
// the other, and nobody else holds either. The kernel closes a dead process's
// end, so the survivor's end reads end-of-file (POLLIN|POLLHUP): the master's
// poll() wakes when its worker dies; the worker checks its end between the
// slices (kSlice) of its semaphore waits, so it never blocks without a deadline
// and notices a dead master within one slice. A clean close also sets the side's
// `closed` flag and wakes the peer at once.
//
// Names
// -----
// "/taskfarm-<pid>-<start time>-<64 random bits>-<tag>" (taskfarm/ipc/names.hpp),
// created exclusively (O_EXCL) with mode 0600. Objects that can travel by
// descriptor are removed right after they are created (SharedRegion), so no
// crash can leak them; the others (mqueue's queues) live until the worker has
// opened them, and what a crash leaves of them the next pool sweeps away.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/sync/interprocess_semaphore.hpp>

#include "deadline.hpp"
#include "taskfarm/ipc/fd.hpp"
#include "taskfarm/ipc/link.hpp"

namespace taskfarm::ipc::detail {

// Fixed, not std::hardware_destructive_interference_size: the layout is shared
// between builds and must not depend on compiler flags.
inline constexpr std::size_t kCacheLine = 64;

// Written once by the master before the worker exists; copied out (memcpy) and
// checked by the worker before it trusts anything else in the mapping.
struct ControlIdentity {
  std::uint64_t magic;         // which transport (kShmMagic, kMqueueMagic)
  std::uint32_t version;       // layout version of that transport
  std::uint32_t header_bytes;  // sizeof the transport's header struct
  std::uint64_t map_bytes;     // size of the whole shared object
  std::uint64_t capacity;      // shm: bytes per ring; mqueue: bytes per message
  std::uint64_t depth;         // mqueue: messages per queue; shm: 0
};
static_assert(std::is_trivially_copyable_v<ControlIdentity>);
static_assert(std::is_standard_layout_v<ControlIdentity>);
static_assert(sizeof(ControlIdentity) == 40);

// Values of SideLine::wait: how the side sleeps, so the waker knows how to wake it.
inline constexpr std::uint32_t kSleepSem = 1;   // in worker_sem.timed_wait()
inline constexpr std::uint32_t kSleepBell = 2;  // in poll() on its doorbell socket end
// Or-ed into the flag by a side that also waits for room to send (it has output
// pending): only then does the consumer's taking of data need to wake it.
inline constexpr std::uint32_t kWantsSpace = 4;

// One side's flags, alone on a cache line.
struct alignas(kCacheLine) SideLine {
  // Armed (seq_cst store) by this side right before it sleeps and cleared by it
  // when it wakes; exchanged to 0 (seq_cst) by the other side, which then wakes
  // it. Pairs with the other side's index store: see the file comment.
  std::atomic<std::uint32_t> wait{0};
  // Set (release) once, when this side closes its end cleanly; read (acquire) by
  // the other side before it concludes a channel is empty for good, so data
  // published before the close is still delivered.
  std::atomic<std::uint32_t> closed{0};
  // Set (release) once by the worker when it has attached (mqueue: opened and
  // removed the queue names); read (acquire) by the master's destructor.
  std::atomic<std::uint32_t> attached{0};
  // mqueue only: messages this side has put into its outgoing queue and taken
  // out of its incoming one, since the link was created. Each is stored
  // (seq_cst) by this side alone after the queue operation, before it loads the
  // peer's wait flag; the peer reads them (seq_cst) after arming. They answer
  // "is there a message?" and "is there room?" without taking the queue's
  // mutex, so a spinning consumer does not fight its producer for the lock.
  std::atomic<std::uint64_t> messages_sent{0};
  std::atomic<std::uint64_t> messages_taken{0};
};

// The control block, at offset 0 of every shm/mqueue shared object:
//
//   offset  line  field                  written by                 read by
//        0     0  id (40 B)              master, before the worker  worker, at attach
//       40     0  spin_ok                master, when its link      worker, before it
//                                        count changes              sleeps
//       64     1  master (wait, closed,  master arms / closes /     worker exchanges / reads
//                 messages_sent/taken)   counts (mqueue)
//      128     2  worker (wait, closed,  worker arms / closes /     master exchanges / reads
//                 attached, messages_    attaches / counts (mqueue)
//                 sent/taken)
//      192     3  worker_sem (a sem_t)   master posts               worker waits
//      256        end; a transport's own lines follow
struct LinkControl {
  explicit LinkControl(const ControlIdentity& identity) noexcept : id(identity) {}

  alignas(kCacheLine) ControlIdentity id;
  // 1 when spinning before sleeping can pay: the master's process plus its
  // workers do not outnumber the cores. Relaxed: a hint, never a correctness
  // matter.
  std::atomic<std::uint32_t> spin_ok{0};
  SideLine master;
  SideLine worker;
  // The worker sleeps here (always with a deadline); the master posts it when it
  // finds the worker's wait flag armed with kSleepSem. Never destroyed: a
  // destroyed semaphore a peer may still be waiting on is undefined behaviour,
  // and unmapping is all the cleanup a process-shared sem_t needs.
  alignas(kCacheLine) boost::interprocess::interprocess_semaphore worker_sem{0};
};
static_assert(std::is_standard_layout_v<LinkControl>);
static_assert(sizeof(LinkControl) == 4 * kCacheLine);
static_assert(alignof(LinkControl) == kCacheLine);
static_assert(offsetof(LinkControl, spin_ok) == 40);
static_assert(offsetof(LinkControl, master) == 1 * kCacheLine);
static_assert(offsetof(LinkControl, worker) == 2 * kCacheLine);
static_assert(offsetof(LinkControl, worker_sem) == 3 * kCacheLine);
static_assert(sizeof(boost::interprocess::interprocess_semaphore) <= kCacheLine);
static_assert(offsetof(SideLine, messages_sent) == 16 && sizeof(SideLine) == kCacheLine);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
                  std::atomic<std::uint64_t>::is_always_lock_free,
              "atomics shared between processes must be lock-free (address-free)");

// Errors of attach_link for the shm and mqueue transports, with messages that
// say what does not match.
enum class AttachError {
  bad_endpoint = 1,  // wrong number of descriptors, missing parameters
  bad_magic,         // the object is not a taskfarm link of this transport
  bad_version,       // master and worker were built from different versions
  bad_layout,        // sizes differ (ring/message size, truncated object)
};
const std::error_category& attach_category() noexcept;
inline std::error_code make_error_code(AttachError e) noexcept {
  return {static_cast<int>(e), attach_category()};
}

// "/taskfarm-<pid>-<start time>-<16 hex digits from getrandom()>-<tag>"
// (without "<start time>-" if /proc/self/stat cannot be read).
[[nodiscard]] std::string unique_name(std::string_view tag);

// An OS error code for a Boost.Interprocess exception.
[[nodiscard]] std::error_code from_boost(const std::exception& e) noexcept;

// A mapped shared-memory object. The creator maps it through Boost
// (shared_memory_object + mapped_region); the worker maps the descriptor it was
// handed, so it never opens anything by name.
class SharedRegion {
 public:
  SharedRegion() noexcept = default;
  SharedRegion(SharedRegion&& o) noexcept;
  SharedRegion& operator=(SharedRegion&& o) noexcept;
  SharedRegion(const SharedRegion&) = delete;
  SharedRegion& operator=(const SharedRegion&) = delete;
  ~SharedRegion();

  // Creates a new object (create_only, mode 0600, a fresh unique_name(tag)),
  // allocates all of its `bytes` (so a full /dev/shm is an error here, not a
  // SIGBUS later), maps it, and removes its name before returning: from then on
  // only the mappings and `fd` (close-on-exec, for the worker) keep it alive.
  // Errors: OS errors (ENOSPC, EMFILE, ...).
  [[nodiscard]] static std::error_code create(std::string_view tag, std::size_t bytes,
                                              SharedRegion& out, UniqueFd& fd);
  // Maps the whole object behind `fd` read-write. `fd` may be closed afterwards.
  // Errors: bad_layout if it is smaller than `min_bytes`; OS errors.
  [[nodiscard]] static std::error_code attach(int fd, std::size_t min_bytes, SharedRegion& out);

  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  void reset() noexcept;

  boost::interprocess::mapped_region boost_;  // the creator's mapping
  bool raw_ = false;                          // the attacher's mapping: mmap/munmap
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

// One side's end of a link's sleep/wake machinery (see the file comment).
class PeerSync {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Role : std::uint8_t { master, worker };

  // A sleeping worker re-checks that its master lives at least this often.
  static constexpr auto kSlice = std::chrono::milliseconds(50);

  PeerSync() noexcept = default;
  PeerSync(Role role, LinkControl* control, UniqueFd bell, bool may_spin) noexcept;

  [[nodiscard]] Role role() const noexcept { return role_; }
  [[nodiscard]] int fd() const noexcept { return bell_.get(); }

  // After this side published data or freed space: wakes the peer if, and only
  // if, it is armed. The caller's index store (seq_cst) precedes this call.
  void wake_peer() noexcept;
  // wake_peer() for a consumer that just made room: wakes the peer only if it
  // armed with kWantsSpace. A peer asleep waiting for data only (its reply, say)
  // is left alone: waking it per message taken would cost it a wake-up, a
  // re-check and a sleep for nothing, several times per large frame.
  void wake_peer_for_space() noexcept;
  // Whether the peer has armed its flag (it sleeps or is about to). A hint for
  // batching; wake_peer() is what makes wake-ups reliable.
  [[nodiscard]] bool peer_waiting() const noexcept {
    return peer_->wait.load(std::memory_order_relaxed) != 0;
  }
  // Arms this side's flag with `how` (seq_cst); the caller re-checks its
  // condition next and disarms if it holds.
  void arm(std::uint32_t how) noexcept;
  void disarm() noexcept {
    if (armed_) {
      mine_->wait.store(0, std::memory_order_relaxed);
      armed_ = false;
    }
  }

  // Disarms after a re-check found work. If the peer exchanged the flag first,
  // its post is (or is about to be) on worker_sem: take it if it is there, so
  // the count does not creep up with wake-ups nobody waited for.
  void disarm_awake() noexcept;

  // Drains doorbell bytes and notices a peer that died or closed. `force`:
  // always read the socket; otherwise at most about once a millisecond (the
  // worker's try_receive, which must not make a system call per frame). Returns
  // true once the peer is known to be gone (sticky). The caller re-checks its
  // channel afterwards, so data published before the death is not lost.
  bool check_peer_gone(bool force) noexcept;
  [[nodiscard]] bool peer_known_gone() const noexcept { return gone_; }
  [[nodiscard]] bool peer_closed() const noexcept {
    return peer_->closed.load(std::memory_order_acquire) != 0;
  }

  // Blocks until ready() holds, the peer is gone (then returns ok: the caller's
  // next try_* reports it) or the deadline passes (timed_out). The worker spins
  // briefly when allowed, then sleeps on worker_sem in slices of kSlice and
  // checks its master between slices; the master sleeps in poll() on the
  // doorbell. ready() must read the shared index with a seq_cst load.
  // `wants_space`: ready() also holds when room to send appears (see kWantsSpace).
  template <class Ready>
  [[nodiscard]] std::error_code wait(Clock::time_point deadline, Ready&& ready,
                                     bool wants_space = false);

  // mqueue's message counts (SideLine::messages_sent/taken): this side records
  // its running totals; the peer's are read with seq_cst loads.
  void record_sent(std::uint64_t total) noexcept {
    mine_->messages_sent.store(total, std::memory_order_seq_cst);
  }
  void record_taken(std::uint64_t total) noexcept {
    mine_->messages_taken.store(total, std::memory_order_seq_cst);
  }
  [[nodiscard]] std::uint64_t peer_sent() const noexcept {
    return peer_->messages_sent.load(std::memory_order_seq_cst);
  }
  [[nodiscard]] std::uint64_t peer_taken() const noexcept {
    return peer_->messages_taken.load(std::memory_order_seq_cst);
  }

  // Worker: records that it is attached (SideLine::attached).
  void mark_attached() noexcept { mine_->attached.store(1, std::memory_order_release); }
  [[nodiscard]] bool peer_attached() const noexcept {
    return peer_->attached.load(std::memory_order_acquire) != 0;
  }

  // Marks this end closed and wakes the peer if it sleeps (an awake peer sees
  // the flag at its next check).
  void close() noexcept;

 private:
  template <class Ready>
  bool spin(Ready& ready);
  void sleep_until(Clock::time_point until) noexcept;
  void ring() noexcept;
  // Disarms the peer's wait flag and wakes it the way it armed (semaphore, bell).
  void wake_armed() noexcept;

  Role role_ = Role::master;
  LinkControl* control_ = nullptr;
  SideLine* mine_ = nullptr;
  SideLine* peer_ = nullptr;
  UniqueFd bell_;
  bool may_spin_ = false;
  bool armed_ = false;
  bool gone_ = false;
  Clock::time_point next_check_{};
  Clock::duration spin_for_ = std::chrono::microseconds(4);
  unsigned spins_ = 0;
};

// The doorbell: a Unix-domain socketpair, close-on-exec, one end per side.
[[nodiscard]] std::error_code make_doorbell(UniqueFd& master_end, UniqueFd& worker_end);

// Registers a master-side control block for spin tuning: spin_ok is 1 in all of
// them while this process and its linked workers do not outnumber the cores.
void register_spinner(LinkControl* control);
void unregister_spinner(LinkControl* control) noexcept;


// ---------------------------------------------------------------------------

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Adaptive: spins for twice the waits that spinning recently caught, halves
// after a miss, and every kProbeEvery-th wait spins the full kMax so that a
// budget that shrank can learn again (a wait that ended in sleep says nothing
// about how soon the data came: its length is mostly the wake-up).
template <class Ready>
bool PeerSync::spin(Ready& ready) {
  if (!may_spin_ || control_->spin_ok.load(std::memory_order_relaxed) == 0) return false;
  constexpr auto kMin = std::chrono::microseconds(1);
  constexpr auto kMax = std::chrono::microseconds(30);  // below one cross-CPU wake-up (MACHINE.md)
  constexpr unsigned kProbeEvery = 16;
  const auto start = Clock::now();
  const auto until = start + (++spins_ % kProbeEvery == 0 ? Clock::duration(kMax) : spin_for_);
  for (unsigned i = 1;; ++i) {
    if (ready()) {
      const auto waited = Clock::now() - start;
      spin_for_ = std::clamp<Clock::duration>(std::max(spin_for_, 2 * waited), kMin, kMax);
      return true;
    }
    cpu_relax();
    if (i % 64 == 0 && Clock::now() >= until) {
      spin_for_ = std::max<Clock::duration>(spin_for_ / 2, kMin);
      return false;
    }
  }
}

template <class Ready>
std::error_code PeerSync::wait(Clock::time_point deadline, Ready&& ready, bool wants_space) {
  if (gone_) return {};
  if (role_ == Role::worker && spin(ready)) return {};
  for (;;) {
    arm((role_ == Role::worker ? kSleepSem : kSleepBell) | (wants_space ? kWantsSpace : 0));
    if (ready() || peer_closed()) {
      disarm_awake();
      if (!ready()) gone_ = true;  // closed, and nothing left to do: callers see peer_gone
      return {};
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      disarm();
      return Errc::timed_out;
    }
    sleep_until(deadline - now > kSlice ? now + kSlice : deadline);
    disarm();
    if (ready()) return {};
    if (check_peer_gone(true)) return {};
    if (Clock::now() >= deadline) return Errc::timed_out;
  }
}

}  // namespace taskfarm::ipc::detail

template <>
struct std::is_error_code_enum<taskfarm::ipc::detail::AttachError> : std::true_type {};
