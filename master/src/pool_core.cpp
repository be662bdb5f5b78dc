#include "pool_core.hpp"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include "pidfd.hpp"
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "taskfarm/common/errors.hpp"
#include "taskfarm/common/registry.hpp"
#include "taskfarm/common/task.hpp"
#include "taskfarm/common/wire.hpp"
#include "taskfarm/ipc/names.hpp"
#include "taskfarm/worker/protocol.hpp"
#include "taskfarm/worker/worker.hpp"

namespace taskfarm::detail {

namespace {

// The in-flight window per worker holds about this much work, so a worker never
// waits for a round trip (a cross-CPU wake-up each way) while tasks are queued, yet no
// worker hoards work another could start.
constexpr std::uint64_t kTargetQueueNs = 2'000'000;
constexpr std::size_t kMinWindow = 2;
constexpr std::size_t kMaxWindow = 4096;
// Back-pressure: a worker whose link already holds this much unsent output gets
// nothing more until it has read some. Large payloads then flow one or two at a
// time instead of piling up (copied) in the link's buffer while the worker reads
// the first; small frames are far below it and still coalesce.
constexpr std::size_t kMaxPendingOutputBytes = 256 * 1024;
// A worker whose link ended gets this long to be reported dead before it is killed.
constexpr auto kLinkGoneGrace = std::chrono::seconds(1);
// Worker starts that may fail in a row, with no worker becoming ready and no
// task finishing in between, before the pool gives up and fails its work
// (start_failed): a few for a start that crashed, exited or timed out, more for
// one killed from outside (SIGKILL or SIGTERM the pool did not send: an
// operator, the OOM killer), which says less about the next start. Each retry
// waits twice as long as the one before, from kFirstBackoff up to kMaxBackoff
// (after kills from outside: none the first kKilledStartsWithoutPause times in a
// row, then up to kMaxKilledBackoff; those are counted per slot).
constexpr unsigned kMaxFailedStarts = 5;
constexpr unsigned kMaxKilledStarts = 50;
constexpr unsigned kKilledStartsWithoutPause = 3;
constexpr auto kMaxKilledBackoff = std::chrono::milliseconds(40);
constexpr auto kFirstBackoff = std::chrono::milliseconds(10);
constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);

std::chrono::milliseconds backoff(unsigned failures) {
  auto d = kFirstBackoff;
  for (unsigned i = 1; i < failures && d < kMaxBackoff; ++i) d *= 2;
  return std::min(d, kMaxBackoff);
}

std::size_t cpu_count() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return static_cast<std::size_t>(CPU_COUNT(&set));
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<std::size_t>(n) : 1;
}

PoolOptions validate(PoolOptions o) {
  if (std::getenv(worker::kWorkerEnv) != nullptr)
    throw ConfigError(
        "this process was started as a taskfarm worker (Start::spawn) but main() did not call "
        "taskfarm::init(argc, argv) before creating a Pool; call it first in main()");
  Registry::instance().check();
  if (o.workers == 0) o.workers = cpu_count();
  if (o.workers > kMaxWorkers)
    throw ConfigError("PoolOptions::workers = " + std::to_string(o.workers) +
                      " exceeds the maximum of " + std::to_string(kMaxWorkers));
  if (o.transport != Transport::pipe && o.transport != Transport::socket &&
      o.transport != Transport::mqueue && o.transport != Transport::shm)
    throw ConfigError("PoolOptions::transport = " + std::to_string(static_cast<int>(o.transport)) +
                      " is not a transport (available: pipe, socket, mqueue, shm)");
  if (o.task_timeout.count() < 0)
    throw ConfigError("PoolOptions::task_timeout must not be negative (0 = no timeout), got " +
                      std::to_string(o.task_timeout.count()) + " ms");
  if (o.task_timeout > std::chrono::hours(24 * 366))
    throw ConfigError("PoolOptions::task_timeout of " + std::to_string(o.task_timeout.count()) +
                      " ms is more than a year; use 0 for no timeout");
  if (o.start_timeout.count() <= 0 || o.start_timeout > std::chrono::hours(24))
    throw ConfigError("PoolOptions::start_timeout must be positive and at most a day, got " +
                      std::to_string(o.start_timeout.count()) + " ms");
  if (o.max_retries > 1000)
    throw ConfigError("PoolOptions::max_retries = " + std::to_string(o.max_retries) +
                      " is not sane (at most 1000)");
  if (o.ring_bytes < kMinRingBytes || o.ring_bytes > kMaxRingBytes)
    throw ConfigError("PoolOptions::ring_bytes = " + std::to_string(o.ring_bytes) +
                      " is outside [" + std::to_string(kMinRingBytes) + ", " +
                      std::to_string(kMaxRingBytes) + "]");
  if (o.max_message_bytes < kMinMessageBytes || o.max_message_bytes > kMaxMessageBytes)
    throw ConfigError("PoolOptions::max_message_bytes = " + std::to_string(o.max_message_bytes) +
                      " is outside [" + std::to_string(kMinMessageBytes) + ", " +
                      std::to_string(kMaxMessageBytes) + "]");
  if (o.max_memory_per_child != 0 && o.max_memory_per_child < kMinMemoryPerChild)
    throw ConfigError("PoolOptions::max_memory_per_child = " + std::to_string(o.max_memory_per_child) +
                      " bytes is below 1 MiB (it counts bytes, not MiB); use 0 for no limit");
  if (o.initializer != nullptr && !Registry::instance().find(o.initializer->name()))
    throw ConfigError("PoolOptions::initializer names task \"" + o.initializer->name() +
                      "\", which is not registered (was it destroyed?)");
  return o;
}

std::string signal_or_exit(int status, int& sig, int& code) {
  sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return WorkerLost::describe_status(sig, code);
}

}  // namespace

PoolCore::PoolCore(PoolOptions options) : opts_(validate(std::move(options))) {
  ipc::sweep_stale_names_once();  // what pools SIGKILLed before their workers attached left in /dev/shm
  link_config_.max_frame_bytes = opts_.max_message_bytes;
  link_config_.ring_bytes = opts_.ring_bytes;
  const int efd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (efd < 0) throw Error(std::string("cannot create an eventfd: ") + std::strerror(errno));
  wake_fd_ = ipc::UniqueFd(efd);

  // The fork server is made before this pool starts any thread: forked from this
  // process when it has a single thread, else a copy of the clean root server
  // (zygote.hpp). Never forked from a process with threads.
  zygote_ = threads_in_this_process() == 1 ? Zygote::fork_here(opts_.start)
                                           : Zygote::from_clean_root(opts_.start);
  workers_.resize(opts_.workers);
  stats_ = std::make_unique<StatsBoard>(opts_.workers);
  stats_->set_fork_server(zygote_->pid(), zygote_->image());
  ask_for_standby();
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    workers_[i].slot = static_cast<int>(i);
    spawn(workers_[i]);
    if (workers_[i].state == WState::empty) throw Error("cannot start worker " + std::to_string(i));
  }
  // Answers (spawned, failed, exited) are the dispatcher's: a start that fails
  // is retried there (start_failed), not turned into an exception here.
  // The pool's threads (dispatcher, callbacks) start only now, after the zygote
  // was forked, and with every signal blocked: user handlers run on user
  // threads, and a write to a dead worker's pipe can never raise SIGPIPE here.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  callbacks_ = std::make_shared<CallbackQueue>();
  thread_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

PoolCore::~PoolCore() { shutdown(true, false); }

void PoolCore::wake() {
  if (sleeping_.load(std::memory_order_seq_cst)) {
    const std::uint64_t one = 1;
    (void)!::write(wake_fd_.get(), &one, sizeof one);
  }
}

void PoolCore::submit(std::shared_ptr<Batch> batch, std::size_t chunksize) {
  const std::size_t n = batch->size();
  {
    std::lock_guard lock(inbox_mu_);
    if (closed_) throw PoolClosed("the pool is closed: no work can be submitted after close(), shutdown() or terminate()");
    if (n == 0) return;
    inbox_.emplace_back(std::move(batch), chunksize);
  }
  stats_->add_submitted(n);
  wake();
}

void PoolCore::close() {
  {
    std::lock_guard lock(inbox_mu_);
    closed_ = true;
    stop_requested_ = true;
  }
  sleeping_.store(true);  // force the wake-up write: state changed
  wake();
}

void PoolCore::join() {
  {
    std::lock_guard lock(inbox_mu_);
    if (!closed_) throw Error("Pool::join() needs close(), shutdown() or terminate() first");
  }
  join_thread();
}

void PoolCore::shutdown(bool wait, bool cancel_pending) {
  {
    std::lock_guard lock(inbox_mu_);
    closed_ = true;
    stop_requested_ = true;
    if (cancel_pending) cancel_requested_ = true;
  }
  sleeping_.store(true);
  wake();
  if (wait) join_thread();
}

void PoolCore::terminate() {
  {
    std::lock_guard lock(inbox_mu_);
    closed_ = true;
    stop_requested_ = true;
    terminate_requested_ = true;
  }
  sleeping_.store(true);
  wake();
  join_thread();
}

void PoolCore::join_thread() {
  if (thread_.get_id() == std::this_thread::get_id())
    throw Error("a pool cannot wait for itself: shutdown(true)/join()/terminate() called from "
                "one of its own callbacks");
  std::lock_guard lock(join_mu_);
  if (thread_.joinable()) thread_.join();
  standby_.reset();  // both servers exit once they see end of file
  zygote_.reset();
  if (callbacks_) callbacks_->stop();  // every task has ended: run the callbacks still queued
}

PoolStats PoolCore::stats() const { return stats_->snapshot(); }

// ---------------------------------------------------------------------------
// Dispatcher thread

void PoolCore::spawn(Worker& w) {
  // A new process numbers its items from 1 again: nothing of the last one may wait.
  if (!w.inflight.empty()) requeue_uncharged(w, 0);
  w.respawn_at = Clock::time_point::max();
  if (!zygote_) {
    set_broken(std::make_exception_ptr(Error("cannot start worker " + std::to_string(w.slot) +
                                             ": the pool has no fork server")));
    w.state = WState::empty;
    return;
  }
  ipc::LinkPair pair;
  if (auto ec = ipc::create_link(opts_.transport, link_config_, pair)) {
    set_broken(std::make_exception_ptr(
        Error("cannot create a " + std::string(to_string(opts_.transport)) + " link for worker " +
              std::to_string(w.slot) + ": " + ec.message())));
    w.state = WState::empty;
    return;
  }
  // A fresh status record per process (status.hpp), handed over with the link.
  w.status.reset();
  if (ipc::UniqueFd sfd(::memfd_create("taskfarm-status", MFD_CLOEXEC));
      sfd && ::ftruncate(sfd.get(), worker::kStatusBytes) == 0) {
    void* p = ::mmap(nullptr, worker::kStatusBytes, PROT_READ | PROT_WRITE, MAP_SHARED, sfd.get(), 0);
    if (p != MAP_FAILED) {
      w.status.reset(new (p) worker::WorkerStatus);
      pair.worker.set(worker::kStatusFdParam, std::to_string(pair.worker.fds.size()));
      pair.worker.fds.push_back(sfd.release());
    }
  }
  worker::WorkerConfig wc;
  wc.slot = w.slot;
  if (opts_.initializer) wc.initializer = opts_.initializer->name();
  wc.max_tasks = opts_.max_tasks_per_child;
  wc.max_memory = opts_.max_memory_per_child;
  wc.max_frame_bytes = opts_.max_message_bytes;
  wc.ring_bytes = opts_.ring_bytes;
  wc.store(pair.worker);
  w.names = pair.worker;
  w.names.fds.clear();
  w.token = next_token_++;
  // A request that cannot be sent means the server is dying: its end of file
  // comes next, and fork_server_lost() asks its successor (start_timeout covers
  // a server that neither answers nor dies).
  (void)zygote_->request_spawn(w.slot, w.token, pair.worker);
  for (int fd : pair.worker.fds) ::close(fd);  // the zygote has its own copies now
  w.link = std::move(pair.master);
  w.state = WState::spawning;
  w.asked_at = Clock::now();
  w.link_dead = false;
  w.recv_broken = false;
  w.said_hello = false;
  w.lost_with_server = false;
  w.timed_out = false;
  w.retired_for_memory = false;
  w.cause.clear();
  w.next_seq = 1;
  w.kill_deadline = Clock::time_point::max();
  w.killed_at = Clock::time_point::max();
}

void PoolCore::StatusUnmap::operator()(worker::WorkerStatus* p) const noexcept {
  ::munmap(p, worker::kStatusBytes);
}

std::optional<PoolCore::Running> PoolCore::running_item(const Worker& w) const noexcept {
  if (!w.status) {  // no record: assume the oldest item sent
    if (w.inflight.empty()) return std::nullopt;
    return Running{0, w.front_since};
  }
  const auto started = w.status->started.load(std::memory_order_acquire);
  const auto since_ns = w.status->started_ns.load(std::memory_order_relaxed);
  const auto finished = w.status->finished.load(std::memory_order_acquire);
  // Between items, or one already answered: none.
  if (started == finished || w.inflight.empty() || started < w.inflight.front().seq) return std::nullopt;
  // A worker's in-flight items carry consecutive seqs (send_chunk numbers them
  // from next_seq and results leave from the front), so this is a subscript.
  const auto k = static_cast<std::size_t>(started - w.inflight.front().seq);
  if (k >= w.inflight.size() || w.inflight[k].seq != started) return std::nullopt;
  return Running{k, Clock::time_point(std::chrono::duration_cast<Clock::duration>(
                        std::chrono::nanoseconds(since_ns)))};
}

void PoolCore::set_broken(std::exception_ptr e) {
  if (!broken_) broken_ = std::move(e);
}

void PoolCore::fail_item(const std::shared_ptr<Batch>& b, std::size_t i, std::exception_ptr e,
                         std::uint64_t duration_ns) {
  Outcome o;
  o.error = std::move(e);
  o.duration_ns = duration_ns;
  o.attempts = b->outcome(i).attempts;
  o.worker = b->outcome(i).worker;
  stats_->ended_without_running();
  b->complete(i, std::move(o));
}

void PoolCore::fail_all_queued(std::exception_ptr e) {
  for (auto& r : retryq_) fail_item(r.batch, r.index, e);
  retryq_.clear();
  for (auto& u : runq_)
    for (std::size_t i = u.next; i < u.batch->size(); ++i) {
      if (u.batch->claim(i))
        fail_item(u.batch, i, e);
      else
        stats_->ended_without_running();  // cancelled by its Future
    }
  runq_.clear();
}

void PoolCore::take_inbox() {
  std::vector<std::pair<std::shared_ptr<Batch>, std::size_t>> in;
  bool stop, cancel, term;
  {
    std::lock_guard lock(inbox_mu_);
    in.swap(inbox_);
    stop = stop_requested_;
    cancel = cancel_requested_;
    term = terminate_requested_;
  }
  for (auto& [b, chunk] : in) runq_.push_back({std::move(b), 0, std::max<std::size_t>(chunk, 1)});
  stopping_ = stop;
  if (term && !terminating_) {
    terminating_ = true;
    cancelling_ = true;
    for (auto& w : workers_)
      if (w.state != WState::empty && w.pid > 0) kill_worker(w, "was terminated");
  }
  if (cancel && !cancelling_) cancelling_ = true;
  if (cancelling_) {
    for (auto& r : retryq_) fail_item(r.batch, r.index, std::make_exception_ptr(Cancelled(
        "task \"" + r.batch->task() + "\" #" + std::to_string(r.batch->global_index(r.index)) + " was cancelled by pool shutdown")));
    retryq_.clear();
    for (auto& u : runq_)
      for (std::size_t i = u.next; i < u.batch->size(); ++i) {
        u.batch->cancel(i, "cancelled by pool shutdown before it started");
        stats_->ended_without_running();
      }
    runq_.clear();
  }
  if (broken_) fail_all_queued(broken_);
}

std::size_t PoolCore::window() const noexcept {
  // Prefetching only pays for tasks shorter than the queue target: a slow task
  // queued behind another slow one could have started on the next free worker.
  // Until the first result says how long tasks take, send one at a time.
  if (avg_ns_ == 0 || avg_ns_ >= kTargetQueueNs) return 1;
  return std::clamp<std::size_t>(kTargetQueueNs / avg_ns_, kMinWindow, kMaxWindow);
}

bool PoolCore::work_left() const noexcept {
  if (!runq_.empty() || !retryq_.empty()) return true;
  for (const auto& w : workers_)
    if (!w.inflight.empty()) return true;
  return false;
}

bool PoolCore::send_chunk(Worker& w) {
  // A worker retiring after max_tasks_per_child is never sent more than it will
  // run; what it does not run would only come back.
  std::size_t allowance = std::numeric_limits<std::size_t>::max();
  if (opts_.max_tasks_per_child) {
    const std::uint64_t sent = w.next_seq - 1;
    if (sent >= opts_.max_tasks_per_child) return false;
    allowance = static_cast<std::size_t>(opts_.max_tasks_per_child - sent);
  }
  std::shared_ptr<Batch> batch;
  std::vector<std::size_t> idx;
  if (!retryq_.empty()) {
    batch = retryq_.front().batch;
    idx.push_back(retryq_.front().index);
    retryq_.pop_front();
  } else {
    while (!runq_.empty() && idx.empty()) {
      auto& u = runq_.front();
      std::uint64_t bytes = 0;
      while (u.next < u.batch->size() && idx.size() < std::min(u.chunk, allowance)) {
        const auto len = u.batch->input(u.next).size();
        if (!idx.empty() && bytes + len + 12 > opts_.max_message_bytes / 2) break;
        if (u.batch->claim(u.next)) {
          if (len + 64 + u.batch->task().size() > opts_.max_message_bytes) {
            fail_item(u.batch, u.next, std::make_exception_ptr(SerializationError(
                "the argument of task \"" + u.batch->task() + "\" #" + std::to_string(u.batch->global_index(u.next)) +
                " is " + std::to_string(len) + " bytes, more than max_message_bytes (" +
                std::to_string(opts_.max_message_bytes) + ")")));
          } else {
            idx.push_back(u.next);
            bytes += len + 12;
          }
        } else {
          stats_->ended_without_running();  // cancelled by its Future before it was sent
        }
        ++u.next;
      }
      batch = u.batch;
      if (u.next >= u.batch->size()) runq_.pop_front();
    }
  }
  if (idx.empty()) return false;

  std::vector<std::byte> payload;
  std::size_t total = 8 + batch->task().size();
  for (auto i : idx) total += 12 + batch->input(i).size();
  payload.reserve(total);
  ByteWriter wr(payload);
  wr.str(batch->task());
  wr.put(static_cast<std::uint32_t>(idx.size()));
  const std::uint64_t first_seq = w.next_seq;
  if (w.inflight.empty() && opts_.task_timeout.count() > 0) w.front_since = Clock::now();
  for (auto i : idx) {
    const auto in = batch->input(i);
    wr.put(static_cast<std::uint64_t>(batch->global_index(i)));
    wr.put(static_cast<std::uint32_t>(in.size()));
    wr.bytes(in);
    auto& o = batch->outcome(i);
    ++o.attempts;
    o.worker = w.slot;
    w.inflight.push_back({batch, i, w.next_seq++});
  }
  if (auto ec = w.link->try_send(FrameKind::task, first_seq, payload, ipc::Flush::deferred))
    link_failed(w, ec);
  return true;
}

void PoolCore::schedule() {
  if (broken_ || terminating_) return;
  const std::size_t n = workers_.size();
  const std::size_t win = window();
  bool progress = true;
  // Deal chunks round-robin so that every worker gets some before any gets many.
  while (progress && (!runq_.empty() || !retryq_.empty())) {
    progress = false;
    for (std::size_t k = 0; k < n && (!runq_.empty() || !retryq_.empty()); ++k) {
      Worker& w = workers_[(rr_ + k) % n];
      if (w.state != WState::ready || w.link_dead || w.inflight.size() >= win) continue;
      if (w.link->pending_output_bytes() >= kMaxPendingOutputBytes) continue;
      if (send_chunk(w)) progress = true;
    }
    rr_ = (rr_ + 1) % n;
  }
  for (auto& w : workers_)
    if (w.link && !w.link_dead && w.link->has_pending_output())
      if (auto ec = w.link->flush(); ec && ec != ipc::Errc::would_block) link_failed(w, ec);
}

void PoolCore::record(Worker& w, std::uint64_t duration_ns, bool failed) {
  avg_ns_ = avg_ns_ == 0 ? std::max<std::uint64_t>(duration_ns, 1) : (avg_ns_ * 15 + duration_ns) / 16;
  stats_->task_done(w.slot, duration_ns, failed);
}

void PoolCore::on_result(Worker& w, Frame& f) {
  if (w.inflight.empty() || w.inflight.front().seq != f.id()) {
    protocol_violation(w, "answered an item it was not running (protocol violation)");
    return;
  }
  InFlight item = std::move(w.inflight.front());
  w.inflight.pop_front();
  if (opts_.task_timeout.count() > 0) w.front_since = Clock::now();
  Outcome o;
  o.attempts = item.batch->outcome(item.index).attempts;
  o.worker = w.slot;
  if (f.kind() == FrameKind::result_ok) {
    if (f.payload.size() < 8) {
      protocol_violation(w, "sent a truncated result (protocol violation)");
      w.inflight.push_front(std::move(item));
      return;
    }
    std::memcpy(&o.duration_ns, f.payload.data(), 8);
    o.ok = true;
    o.value.assign(f.payload.data() + 8, f.payload.data() + f.payload.size());
  } else {
    worker::ErrorView ev;
    if (!worker::parse_error(f.payload, ev)) {
      protocol_violation(w, "sent a malformed error report (protocol violation)");
      w.inflight.push_front(std::move(item));
      return;
    }
    o.duration_ns = ev.duration_ns;
    const std::string& task = item.batch->task();
    switch (ev.kind) {
      case worker::ErrorKind::task_threw:
        o.error = std::make_exception_ptr(
            RemoteError(std::string(ev.type), std::string(ev.message), task, item.batch->global_index(item.index)));
        break;
      case worker::ErrorKind::serialization:
        o.error = std::make_exception_ptr(SerializationError(
            "task \"" + task + "\" #" + std::to_string(item.batch->global_index(item.index)) + ": " + std::string(ev.message)));
        break;
      case worker::ErrorKind::unknown_task:
        o.error = std::make_exception_ptr(ConfigError(std::string(ev.message)));
        break;
    }
  }
  record(w, o.duration_ns, !o.ok);
  item.batch->complete(item.index, std::move(o));
}

void PoolCore::requeue_uncharged(Worker& w, std::size_t from) {
  // Items sent but never started go back to the front, in order, as they were.
  for (std::size_t k = w.inflight.size(); k-- > from;) {
    auto& it = w.inflight[k];
    --it.batch->outcome(it.index).attempts;
    retryq_.push_front({std::move(it.batch), it.index});
  }
  w.inflight.resize(from);
}

void PoolCore::on_frame(Worker& w, Frame& f) {
  switch (f.kind()) {
    case FrameKind::result_ok:
    case FrameKind::result_error:
      on_result(w, f);
      return;
    case FrameKind::hello:
      if (w.state == WState::starting || w.state == WState::spawning) {
        w.state = WState::ready;
        w.said_hello = true;
        failed_starts_ = 0;  // starting works
        w.killed_starts = 0;
        w.link->peer_attached();
      }
      return;
    case FrameKind::init_error: {
      ByteReader r(f.payload);
      const auto type = r.str();
      const auto msg = r.str();
      set_broken(std::make_exception_ptr(Error(
          "the pool's initializer \"" + (opts_.initializer ? opts_.initializer->name() : std::string("?")) +
          "\" failed in worker " + std::to_string(w.slot) + " with " + std::string(type) +
          (msg.empty() ? "" : ": " + std::string(msg)) + "; the pool cannot run tasks")));
      return;
    }
    case FrameKind::retiring: {
      w.retired_for_memory = worker::parse_retire_reason(f.payload) == worker::RetireReason::max_memory;
      std::size_t keep = 0;
      while (keep < w.inflight.size() && w.inflight[keep].seq <= f.id()) ++keep;
      requeue_uncharged(w, keep);
      w.state = WState::stopping;  // it exits next; replaced when the zygote reports it
      return;
    }
    default:
      protocol_violation(w, "sent an unexpected " + std::string(to_string(f.kind())) + " frame");
  }
}

void PoolCore::link_failed(Worker& w, std::error_code ec, bool receiving) {
  if (receiving && ec != ipc::Errc::peer_gone && ec != ipc::Errc::closed) w.recv_broken = true;
  if (w.link_dead) return;
  w.link_dead = true;
  if (ec == ipc::Errc::peer_gone || ec == ipc::Errc::closed) {
    // Normally the process is dying; the zygote reports its status in a moment.
    w.kill_deadline = Clock::now() + kLinkGoneGrace;
    return;
  }
  kill_worker(w, ec == ipc::Errc::too_large
                     ? "sent a frame larger than max_message_bytes (" + std::to_string(opts_.max_message_bytes) + ")"
                     : "sent a corrupt frame (" + ec.message() + ")");
}

void PoolCore::kill_worker(Worker& w, std::string cause) {
  if (w.cause.empty()) w.cause = std::move(cause);
  w.link_dead = true;
  w.kill_deadline = Clock::time_point::max();
  if (w.killed_at == Clock::time_point::max()) w.killed_at = Clock::now();
  if (w.pidfd) pidfd_send_signal(w.pidfd.get(), SIGKILL);
  if (w.pid > 0) ::kill(-w.pid, SIGKILL);  // its process group: whatever it started
}

void PoolCore::protocol_violation(Worker& w, std::string cause) {
  w.recv_broken = true;  // whatever it says from now on is not trusted
  kill_worker(w, std::move(cause));
}

void PoolCore::service(Worker& w) {
  // A link that can no longer be written to (the worker died while we sent) may
  // still hold results the worker wrote before: keep reading until it is empty.
  if (!w.link || w.recv_broken) return;
  Frame f;
  for (int budget = 4096; budget > 0; --budget) {
    const auto ec = w.link->try_receive(f);
    if (ec == ipc::Errc::would_block) return;
    if (ec) {
      link_failed(w, ec, true);
      return;
    }
    on_frame(w, f);
    if (w.recv_broken) return;
  }
}

void PoolCore::worker_exited(Worker& w, int status) {
  // Results written before the end are still in the link: take them first.
  service(w);
  int sig = 0, code = -1;
  const std::string how = signal_or_exit(status, sig, code);
  // The item it was running ran from its start (the worker's status record)
  // to the kill, or else to the moment its death was noticed: the duration of
  // a timed-out, lost or terminated item.
  std::optional<std::size_t> running_k;
  std::uint64_t ran_ns = 0;
  if (const auto run = running_item(w); run && run->since != Clock::time_point{}) {
    running_k = run->index;
    const auto end = w.killed_at != Clock::time_point::max() ? w.killed_at : Clock::now();
    if (end > run->since)
      ran_ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(end - run->since).count());
  }
  if (!w.inflight.empty() && !terminating_) {
    // Charge only the item it was running (its status record says which). Items
    // it finished but had not reported yet (results coalesced in the worker),
    // and those it had not started, go back uncharged.
    // A worker the master killed for garbage on its link is blamed on the item
    // whose result was due, even between items: garbage written by a task that
    // then returned would otherwise re-queue that task uncharged forever.
    if (const auto run = running_item(w); !run) {
      if (!w.recv_broken) requeue_uncharged(w, 0);
    } else if (run->index != 0) {
      InFlight it = std::move(w.inflight[run->index]);
      w.inflight.erase(w.inflight.begin() + static_cast<std::ptrdiff_t>(run->index));
      w.inflight.push_front(std::move(it));
    }
  }
  if (!w.inflight.empty()) {
    InFlight& running = w.inflight.front();
    auto& o = running.batch->outcome(running.index);
    if (terminating_) {
      for (std::size_t k = 0; k < w.inflight.size(); ++k) {
        auto& it = w.inflight[k];
        fail_item(it.batch, it.index, std::make_exception_ptr(Cancelled(
            "task \"" + it.batch->task() + "\" #" + std::to_string(it.batch->global_index(it.index)) + " was cancelled: the pool was terminated")),
            running_k == k ? ran_ns : 0);
      }
      w.inflight.clear();
    } else {
      const bool retry = o.attempts <= opts_.max_retries && !broken_;
      if (retry) {
        stats_->retried();
        requeue_uncharged(w, 1);
        retryq_.push_front({running.batch, running.index});
        w.inflight.clear();
      } else {
        std::exception_ptr e;
        if (w.timed_out)
          e = std::make_exception_ptr(TaskTimeout(running.batch->task(), running.batch->global_index(running.index), opts_.task_timeout));
        else
          e = std::make_exception_ptr(WorkerLost({w.slot, static_cast<long>(w.pid), sig, code,
                                                  running.batch->task(), running.batch->global_index(running.index),
                                                  w.cause.empty() ? std::string() : w.cause + " and " + how}));
        auto b = running.batch;
        const auto i = running.index;
        requeue_uncharged(w, 1);
        w.inflight.clear();
        fail_item(b, i, e, running_k ? ran_ns : 0);  // the running item was moved to the front
      }
    }
  }
  const bool was_ready = w.said_hello;
  const bool with_server = w.lost_with_server;
  const pid_t pid = w.pid;
  w.link.reset();
  w.pidfd.reset();
  ipc::release_endpoint_names(w.names);  // what it would have removed once attached
  w.pid = 0;
  w.state = WState::empty;
  stats_->set_pid(w.slot, 0);
  if (terminating_ || broken_ || shutdown_sent_) return;
  if (was_ready || with_server) {
    // A worker that had started (or that died because its fork server did) is
    // simply replaced.
    stats_->restarted(w.slot, w.retired_for_memory);
    spawn(w);
    return;
  }
  // Died before it was ready. Some causes repeat with every start (it cannot
  // attach to its link in a spawned program without taskfarm::init, or its
  // initializer failed): the pool fails its work at once. Others may pass (a
  // kill from outside, the OOM killer, a crash at start): start_failed backs off
  // and tries again a few times.
  std::string hint;
  bool systematic = false;
  if (code == worker::kExitAttachFailed && opts_.start == Start::spawn) {
    hint = " (could not attach to its link; does main() call taskfarm::init(argc, argv) first?)";
    systematic = true;
  } else if (code == worker::kExitAttachFailed) {
    hint = " (could not attach to its link)";
  } else if (code == worker::kExitInitializerFailed) {
    hint = " (its initializer failed)";
    systematic = true;
  }
  const bool killed_from_outside = (sig == SIGKILL || sig == SIGTERM) && w.cause.empty();
  start_failed(w, "worker " + std::to_string(w.slot) + " (pid " + std::to_string(pid) + ") " +
                      (w.cause.empty() ? how : w.cause + " and " + how) + " before it was ready" + hint,
               systematic, killed_from_outside);
}

void PoolCore::start_failed(Worker& w, const std::string& why, bool systematic, bool killed) {
  w.state = WState::empty;
  if (broken_ || terminating_ || shutdown_sent_) return;
  // Kills from outside are counted per slot (a chaos of kills spread over the
  // workers says nothing about any one start) and restarted at once the first
  // few times; the pool's other failures are counted together.
  const unsigned n = killed ? ++w.killed_starts : ++failed_starts_;
  if (!systematic && n <= (killed ? kMaxKilledStarts : kMaxFailedStarts)) {
    stats_->restarted(w.slot);
    const auto pause = !killed ? backoff(n)
                       : n <= kKilledStartsWithoutPause ? std::chrono::milliseconds(0)
                                                        : std::min(backoff(n - kKilledStartsWithoutPause), kMaxKilledBackoff);
    w.respawn_at = Clock::now() + pause;
    return;
  }
  const std::string times =
      systematic ? std::string()
                 : " (" + std::to_string(n) + " starts in a row failed with no worker becoming ready in between)";
  set_broken(std::make_exception_ptr(Error(why + times + "; the pool cannot run tasks")));
  fail_all_queued(broken_);
}

void PoolCore::start_due_workers() {
  if (broken_ || terminating_ || shutdown_sent_) return;
  const auto now = Clock::now();
  for (auto& w : workers_)
    if (w.state == WState::empty && w.respawn_at <= now) spawn(w);
}

void PoolCore::ask_for_standby() {
  if (standby_ || !zygote_ || Clock::now() < standby_due_) return;
  std::error_code ec;
  standby_ = Zygote::copy_of(*zygote_, opts_.start, next_token_++, ec);
  // Not sent: the active server is dying, and its end of file comes next.
}

void PoolCore::service_standby() {
  if (!standby_) return;
  std::vector<Zygote::Event> none;
  const bool gone = static_cast<bool>(standby_->read_events(none));
  if (!gone && standby_->ready()) {
    standby_failures_ = 0;
    return;
  }
  if (gone || Clock::now() - standby_->born() > opts_.start_timeout) {
    // Killed, or never started: ask again, later each time it keeps failing.
    standby_->kill();
    standby_.reset();
    standby_due_ = Clock::now() + backoff(++standby_failures_);
  }
}

void PoolCore::lost_with_server(Worker& w) {
  // Its fork server died; the worker dies with it (PR_SET_PDEATHSIG). Make sure
  // it is gone before its status record and last results are read, since its
  // exit will never be reported.
  w.lost_with_server = true;
  kill_worker(w, "was lost with its fork server");
  if (w.pidfd) {
    pollfd p{w.pidfd.get(), POLLIN, 0};
    while (::poll(&p, 1, 5000) < 0 && errno == EINTR) {
    }
  }
  worker_exited(w, SIGKILL);  // the wait status of a SIGKILL death
}

void PoolCore::fork_server_lost() {
  std::unique_ptr<Zygote> dead = std::move(zygote_);
  stats_->fork_server_restarted();
  std::string why;
  if (standby_) {
    zygote_ = std::move(standby_);
  } else {
    try {
      zygote_ = Zygote::from_clean_root(opts_.start);
    } catch (const std::exception& e) {
      why = e.what();
    }
  }
  if (!zygote_) {
    set_broken(std::make_exception_ptr(Error(
        "the pool's fork server (pid " + std::to_string(dead->pid()) +
        ") died with no standby, and no new one could be started: " + why +
        "; the pool cannot run tasks")));
    fail_all_queued(broken_);
  }
  stats_->set_fork_server(zygote_ ? zygote_->pid() : 0, zygote_ ? zygote_->image() : dead->image());
  for (auto& w : workers_) {
    if (w.state == WState::empty) continue;
    if (w.pid > 0) {
      lost_with_server(w);
      continue;
    }
    if (w.said_hello || !w.inflight.empty()) {
      // Ready (its hello came over the link before the server's answer) and
      // perhaps running work, but its pid never came: it dies with the server
      // (PR_SET_PDEATHSIG); its items are settled as for any death, so that they
      // never wait for results a replacement's fresh sequence numbers could match.
      w.lost_with_server = true;
      if (w.cause.empty()) w.cause = "was lost with its fork server";
      w.link_dead = true;
      worker_exited(w, SIGKILL);
      continue;
    }
    // Asked for, never answered: the request died with the server.
    w.link.reset();
    ipc::release_endpoint_names(w.names);
    w.state = WState::empty;
    if (!broken_ && !terminating_ && !shutdown_sent_) spawn(w);
  }
  for (auto& w : workers_)  // what they held and nobody else can run now
    if (broken_) {
      for (auto& it : w.inflight) fail_item(it.batch, it.index, broken_);
      w.inflight.clear();
    }
  dead.reset();  // reaps it, if it was this process's child
  standby_due_ = Clock::time_point{};
  ask_for_standby();
}

void PoolCore::handle_zygote_events(std::vector<Zygote::Event>& events) {
  for (auto& e : events) {
    switch (e.kind) {
      case Zygote::Event::spawned: {
        for (auto& w : workers_) {
          // The worker's hello may already have arrived over its link.
          if (w.token != e.token || w.state == WState::empty || w.pid != 0) continue;
          w.pid = e.pid;
          w.pidfd = std::move(e.pidfd);
          if (w.state == WState::spawning) w.state = WState::starting;
          stats_->set_pid(w.slot, e.pid);
          if (terminating_) kill_worker(w, "was terminated");
        }
        break;
      }
      case Zygote::Event::failed: {
        if (standby_ && e.token == standby_->token()) {  // could not fork a standby
          standby_.reset();
          standby_due_ = Clock::now() + backoff(++standby_failures_);
          break;
        }
        for (auto& w : workers_)
          if (w.token == e.token && w.state != WState::empty && w.pid == 0) {
            w.link.reset();
            ipc::release_endpoint_names(w.names);
            start_failed(w, "cannot start worker " + std::to_string(w.slot) + ": " + e.error, false, false);
          }
        break;
      }
      case Zygote::Event::exited: {
        for (auto& w : workers_)
          if (w.pid == e.pid && w.state != WState::empty) {
            worker_exited(w, e.status);
            break;
          }
        break;
      }
    }
  }
  events.clear();
}

void PoolCore::check_deadlines() {
  const auto now = Clock::now();
  bool server_stuck = false;
  for (auto& w : workers_) {
    if (w.state == WState::empty) continue;
    if (now >= w.kill_deadline) kill_worker(w, "closed its link to the master without exiting");
    if (!w.said_hello && w.cause.empty() && now - w.asked_at >= opts_.start_timeout) {
      if (w.pid > 0)
        kill_worker(w, "was not ready within start_timeout (" + std::to_string(opts_.start_timeout.count()) + " ms)");
      else
        server_stuck = true;  // the fork server never answered
    }
    if (opts_.task_timeout.count() <= 0 || w.inflight.empty() || w.timed_out || w.link_dead) continue;
    if (const auto run = running_item(w); run && now - run->since >= opts_.task_timeout) {
      w.timed_out = true;
      kill_worker(w, "was killed after task_timeout (" + std::to_string(opts_.task_timeout.count()) + " ms)");
    }
  }
  if (server_stuck && zygote_) {
    // It neither answers nor dies: kill it; its standby takes over.
    zygote_->kill();
    if (!zygote_->ready()) fork_server_lost();  // no pid to kill: give it up
  }
}

int PoolCore::poll_timeout_ms() const {
  auto next = Clock::time_point::max();
  if (standby_ && !standby_->ready()) next = std::min(next, standby_->born() + opts_.start_timeout);
  if (!standby_ && zygote_ && !broken_) next = std::min(next, standby_due_);
  for (const auto& w : workers_) {
    if (w.state == WState::empty) {
      if (!broken_ && !shutdown_sent_ && !terminating_) next = std::min(next, w.respawn_at);
      continue;
    }
    next = std::min(next, w.kill_deadline);
    if (!w.said_hello) next = std::min(next, w.asked_at + opts_.start_timeout);
    if (opts_.task_timeout.count() > 0 && !w.inflight.empty() && !w.timed_out) {
      // Not running any yet (per its record): it may start one at any moment;
      // look again a timeout from now, when such an item could first be overdue.
      const auto run = running_item(w);
      next = std::min(next, (run ? run->since : Clock::now()) + opts_.task_timeout);
    }
  }
  if (next == Clock::time_point::max()) return -1;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
}

void PoolCore::run() noexcept {
  ipc::sigpipe_is_harmless_in_this_thread();  // this thread blocks every signal
  std::vector<pollfd> pfds;
  std::vector<Worker*> owners;  // pfds[i] belongs to owners[i] (nullptr: ours)
  std::vector<Zygote::Event> events;
  for (;;) {
    take_inbox();
    start_due_workers();
    ask_for_standby();
    if (stopping_ && !work_left() && !shutdown_sent_) {
      shutdown_sent_ = true;
      for (auto& w : workers_) {
        if (w.state == WState::empty) continue;
        if (w.link && !w.link_dead) {
          if (auto ec = w.link->try_send(FrameKind::shutdown, 0, {}, ipc::Flush::now)) link_failed(w, ec);
        }
        if (w.state == WState::spawning || w.state == WState::starting) {
          // It will read the shutdown frame after its hello; nothing else to do.
        }
        w.state = WState::stopping;
      }
    }
    if (shutdown_sent_ || terminating_) {
      bool any = false;
      for (const auto& w : workers_) any = any || w.state != WState::empty;
      if (!any && !work_left()) break;
    }
    schedule();

    pfds.clear();
    owners.clear();
    pfds.push_back({wake_fd_.get(), POLLIN, 0});
    owners.push_back(nullptr);
    pfds.push_back({zygote_ ? zygote_->fd() : -1, POLLIN, 0});  // poll skips -1
    owners.push_back(nullptr);
    pfds.push_back({standby_ ? standby_->fd() : -1, POLLIN, 0});
    owners.push_back(nullptr);
    bool must_not_sleep = false;
    for (auto& w : workers_) {
      if (!w.link || w.link_dead) continue;
      pfds.push_back({w.link->readable_fd(), POLLIN, 0});
      owners.push_back(&w);
      if (w.link->has_pending_output() && w.link->writable_fd() >= 0) {
        pfds.push_back({w.link->writable_fd(), POLLOUT, 0});
        owners.push_back(&w);
      }
    }
    sleeping_.store(true, std::memory_order_seq_cst);
    bool inbox_ready;
    {
      std::lock_guard lock(inbox_mu_);
      inbox_ready = !inbox_.empty() || (stop_requested_ && !stopping_) ||
                    (cancel_requested_ && !cancelling_) || (terminate_requested_ && !terminating_);
    }
    // schedule() may just have dropped the last queued entries (cancelled by
    // their futures): if that left nothing to do while stopping, go round again
    // to stop the workers instead of sleeping with nothing left to wake us.
    const bool stop_due = stopping_ && !shutdown_sent_ && !work_left();
    if (!inbox_ready && !stop_due) {
      // Arm the links' wake-ups only when we are about to sleep: an armed
      // shared-memory link makes its worker ring us.
      for (auto& w : workers_)
        if (w.link && !w.link_dead && !w.link->prepare_wait()) must_not_sleep = true;
    }
    const int timeout = (inbox_ready || must_not_sleep || stop_due) ? 0 : poll_timeout_ms();
    int r = ::poll(pfds.data(), pfds.size(), timeout);
    sleeping_.store(false, std::memory_order_relaxed);
    if (r < 0 && errno != EINTR) {
      set_broken(std::make_exception_ptr(Error(std::string("dispatcher poll failed: ") + std::strerror(errno))));
      break;
    }
    if (r > 0 && pfds[0].revents) {
      std::uint64_t v;
      (void)!::read(wake_fd_.get(), &v, sizeof v);
    }
    // Links before zygote events, so a dead worker's last results are read first.
    for (std::size_t i = 3; r > 0 && i < pfds.size(); ++i) {
      if (!pfds[i].revents || owners[i] == nullptr) continue;
      Worker& w = *owners[i];
      if (pfds[i].events == POLLOUT) {
        if (w.link && !w.link_dead)
          if (auto ec = w.link->flush(); ec && ec != ipc::Errc::would_block) link_failed(w, ec);
      } else {
        service(w);
      }
    }
    if (must_not_sleep)
      for (auto& w : workers_) service(w);
    if (r > 0 && pfds[2].revents) service_standby();
    if (r > 0 && pfds[1].revents && zygote_) {
      const bool gone = static_cast<bool>(zygote_->read_events(events));
      handle_zygote_events(events);
      if (gone) fork_server_lost();
      else if (zygote_->ready()) stats_->set_fork_server(zygote_->pid(), zygote_->image());
    }
    if (standby_ && !standby_->ready() && Clock::now() - standby_->born() > opts_.start_timeout)
      service_standby();
    check_deadlines();
  }
}

}  // namespace taskfarm::detail
