#pragma once
// PoolCore: the machinery behind Pool.
//
// Threads: user threads call submit/close/shutdown/... ; one dispatcher thread
// owns every link, the zygote's control socket and all scheduling state (fields
// marked "dispatcher only"). They meet in the inbox (mutex) and the wake eventfd.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "taskfarm/common/options.hpp"
#include "taskfarm/ipc/fd.hpp"
#include "taskfarm/ipc/link.hpp"
#include "taskfarm/master/detail/batch.hpp"
#include "taskfarm/master/detail/callbacks.hpp"
#include "taskfarm/master/stats.hpp"
#include "taskfarm/worker/status.hpp"
#include "stats_board.hpp"
#include "zygote.hpp"

namespace taskfarm::detail {

class PoolCore {
 public:
  explicit PoolCore(PoolOptions options);
  ~PoolCore();

  void submit(std::shared_ptr<Batch> batch, std::size_t chunksize);
  void close();
  void join();
  void shutdown(bool wait, bool cancel_pending);
  void terminate();
  [[nodiscard]] PoolStats stats() const;
  [[nodiscard]] const PoolOptions& options() const noexcept { return opts_; }
  [[nodiscard]] const std::shared_ptr<CallbackQueue>& callbacks() const noexcept { return callbacks_; }

 private:
  using Clock = std::chrono::steady_clock;

  struct InFlight {
    std::shared_ptr<Batch> batch;
    std::size_t index;
    std::uint64_t seq;
  };
  struct WorkUnit {
    std::shared_ptr<Batch> batch;
    std::size_t next;
    std::size_t chunk;
  };
  struct Retry {
    std::shared_ptr<Batch> batch;
    std::size_t index;
  };
  enum class WState { empty, spawning, starting, ready, stopping };
  struct StatusUnmap {
    void operator()(worker::WorkerStatus* p) const noexcept;
  };
  struct Worker {
    int slot = 0;
    WState state = WState::empty;
    pid_t pid = 0;
    ipc::UniqueFd pidfd;
    std::unique_ptr<ipc::Link> link;
    ipc::Endpoint names;            // the worker's endpoint without descriptors: its named objects
    std::deque<InFlight> inflight;
    std::uint64_t next_seq = 1;     // items sent to this process so far + 1
    std::uint64_t token = 0;
    bool link_dead = false;            // nothing more is sent on the link
    bool recv_broken = false;          // nothing more can be read from it (garbage)
    bool said_hello = false;
    bool lost_with_server = false;     // died because its fork server died
    unsigned killed_starts = 0;        // starts in a row killed from outside before ready
    std::string cause;                 // why the master killed it, if it did
    bool timed_out = false;            // killed for task_timeout
    Clock::time_point asked_at{};      // when its start was requested (start_timeout)
    Clock::time_point respawn_at = Clock::time_point::max();  // empty slot: start again then
    bool retired_for_memory = false;   // its retiring frame said max_memory_per_child
    Clock::time_point front_since{};   // when inflight.front() started running (estimate)
    // The process's record of the item it runs (status.hpp); null if it could
    // not be made, and then front_since and the oldest item are the estimate.
    std::unique_ptr<worker::WorkerStatus, StatusUnmap> status;
    Clock::time_point kill_deadline = Clock::time_point::max();  // link gone, process not
    Clock::time_point killed_at = Clock::time_point::max();      // when the master first killed it
  };

  void run() noexcept;  // the dispatcher thread
  void wake();
  void take_inbox();
  void spawn(Worker& w);
  void handle_zygote_events(std::vector<Zygote::Event>& events);
  // Fork servers: the standby is asked for when missing; when the active one
  // dies the standby takes over (or a clean one is started) and the workers the
  // dead one had started, which die with it, are handled as lost.
  void ask_for_standby();
  void service_standby();
  void fork_server_lost();
  void lost_with_server(Worker& w);
  void start_failed(Worker& w, const std::string& why, bool systematic, bool killed_from_outside);
  void start_due_workers();
  void service(Worker& w);
  void on_frame(Worker& w, Frame& f);
  void on_result(Worker& w, Frame& f);
  void link_failed(Worker& w, std::error_code ec, bool receiving = false);
  void kill_worker(Worker& w, std::string cause);
  void protocol_violation(Worker& w, std::string cause);
  void worker_exited(Worker& w, int status);
  // Where the item the worker is running now sits in w.inflight, and since
  // when it runs; nullopt when it runs none of them (per its status record).
  struct Running {
    std::size_t index;
    Clock::time_point since;
  };
  [[nodiscard]] std::optional<Running> running_item(const Worker& w) const noexcept;
  void requeue_uncharged(Worker& w, std::size_t from);
  void schedule();
  bool send_chunk(Worker& w);
  void record(Worker& w, std::uint64_t duration_ns, bool failed);
  // Ends item i with error e; duration_ns: how long it ran (0: it did not).
  void fail_item(const std::shared_ptr<Batch>& b, std::size_t i, std::exception_ptr e, std::uint64_t duration_ns = 0);
  void fail_all_queued(std::exception_ptr e);
  void check_deadlines();
  int poll_timeout_ms() const;
  [[nodiscard]] std::size_t window() const noexcept;
  [[nodiscard]] bool work_left() const noexcept;
  void set_broken(std::exception_ptr e);
  void join_thread();

  PoolOptions opts_;
  ipc::LinkConfig link_config_;

  // --- shared with user threads ---
  std::mutex inbox_mu_;
  std::vector<std::pair<std::shared_ptr<Batch>, std::size_t>> inbox_;
  bool closed_ = false;          // guarded by inbox_mu_: no more submissions
  bool stop_requested_ = false;  // guarded by inbox_mu_: exit once the work is done
  bool cancel_requested_ = false;
  bool terminate_requested_ = false;
  std::atomic<bool> sleeping_{false};
  ipc::UniqueFd wake_fd_;
  std::thread thread_;
  std::mutex join_mu_;

  std::unique_ptr<StatsBoard> stats_;
  std::shared_ptr<CallbackQueue> callbacks_;

  // --- dispatcher only ---
  std::unique_ptr<Zygote> zygote_;   // the active fork server (null: none could be had)
  std::unique_ptr<Zygote> standby_;  // a copy of it, ready to take over
  unsigned standby_failures_ = 0;    // standby requests in a row that failed
  Clock::time_point standby_due_{};  // do not ask for a standby before this
  unsigned failed_starts_ = 0;       // worker starts in a row that failed, none ready in between
  std::vector<Worker> workers_;
  std::deque<WorkUnit> runq_;
  std::deque<Retry> retryq_;
  std::exception_ptr broken_;  // set: every task fails with this
  bool stopping_ = false;      // stop requested, draining
  bool cancelling_ = false;
  bool terminating_ = false;
  bool shutdown_sent_ = false;
  std::uint64_t next_token_ = 1;
  std::uint64_t avg_ns_ = 0;   // EWMA of task durations, sizes the in-flight window
  std::size_t rr_ = 0;         // round-robin start for scheduling
};

}  // namespace taskfarm::detail
