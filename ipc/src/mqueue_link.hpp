#pragma once
// The mqueue transport: a pair of Boost.Interprocess message_queues per worker
// (master->worker, worker->master).
//
// Each queue carries a byte stream of frames [FrameHeader|payload] cut into
// messages of at most kMqueueMessageBytes: small frames sent with Flush::deferred
// share a message; a frame sent on its own that fits one message is one message;
// a larger one goes as its header alone, then its payload in whole messages sent
// straight from the caller's buffer and received straight into the frame's (the
// queue's own copy in and out are the only ones). Message counts in the control
// block (SideLine::messages_sent/taken) tell either side whether there is a
// message or room without taking the queue's mutex. Beside the queues, a small control block (the
// LinkControl of shared_control.hpp: identity, wait/closed flags, the worker's
// semaphore) and the doorbell socket give this transport the same sleep/wake-up
// and death rules as shm: the worker sleeps on the semaphore in slices and checks
// its master in between, the master waits in poll() on the doorbell.
//
// Names and cleanup: message_queue can only be opened by name, so the two queues
// have names ("/taskfarm-<pid>-<random>-mq-m2w", "...-w2m"; create_only, 0600).
// The worker removes both right after opening them; the master removes them in
// peer_attached() and in its destructor (removal is idempotent) — unless its
// worker is alive and has not opened them yet: that worker still needs the names
// to attach and read what was sent, and removes them itself. Only a master
// killed, or a worker killed, between the creation of a link and the worker's
// attach can leave them behind.
// The control block travels by descriptor and has no name after its creation.
//
// The worker's endpoint: "mqueue:fds=<control>,<bell>;m2w=<name>;w2m=<name>".
//
// Boost's queue mutex is not robust: a process killed inside a send or receive
// would leave it locked forever. taskfarm_ipc is built with
// BOOST_INTERPROCESS_ENABLE_TIMEOUT_WHEN_LOCKING (see ipc/CMakeLists.txt), so such
// a lock throws after a timeout; the link then checks its peer and reports
// peer_gone instead of hanging, and never waits on that lock again. What the dead
// peer had queued is out of reach then (a master charges the death to the oldest
// item it has no result for, which may have finished).

#include <cstddef>
#include <memory>
#include <span>

#include "taskfarm/ipc/link.hpp"

namespace taskfarm::ipc::detail {

// 1 MiB per direction, whatever LinkConfig::ring_bytes says (that is the shm
// ring). Many moderate messages rather than a few large ones: the queue's
// capacity is counted in messages, and a flush of a few small frames takes a
// whole one. A 16 KiB payload plus its header fits one message; a 64 KiB one
// travels as a header message and 4 payload messages.
inline constexpr std::size_t kMqueueMessageBytes = 16 * 1024 + 64;
inline constexpr std::size_t kMqueueDepth = 64;

// Errors: OS errors (ENOSPC, EMFILE, ...).
[[nodiscard]] std::error_code create_mqueue_link(const LinkConfig& config, LinkPair& out);
// Takes ownership of the endpoint's descriptors (unless it is malformed).
// Errors: AttachError (bad_endpoint, bad_magic, bad_version, bad_layout), OS
// errors (a queue name that does not exist: ENOENT).
// Removes the queue names of a worker endpoint (see release_endpoint_names).
void release_mqueue_names(const Endpoint& ep) noexcept;
[[nodiscard]] std::error_code attach_mqueue_link(const Endpoint& ep, const LinkConfig& config,
                                                 std::unique_ptr<Link>& out);
// Tests only (test_hooks.hpp): appends bytes to an mqueue link's output stream
// unframed; function_not_supported for any other link.
[[nodiscard]] std::error_code mqueue_write_raw(Link& link, std::span<const std::byte> bytes,
                                               Link::Clock::duration timeout);

}  // namespace taskfarm::ipc::detail
