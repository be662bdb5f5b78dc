#pragma once
// Hooks for tests that play a misbehaving peer on the shared-memory transports
// (which have no descriptor to write stray bytes to). Not for production code.

#include <span>
#include <system_error>

#include "taskfarm/ipc/link.hpp"

namespace taskfarm::ipc::detail {

// Appends `bytes` to the output byte stream of an shm or mqueue link as they
// are, outside any frame (garbage, half a header, a lying length), and waits up
// to `timeout` for them to enter the channel. function_not_supported for other
// transports (write to their writable_fd() instead).
[[nodiscard]] std::error_code write_raw_bytes(Link& link, std::span<const std::byte> bytes,
                                              Link::Clock::duration timeout);

// `on`: every pipe link this process creates from now on uses O_NONBLOCK
// descriptors and poll(), as on a kernel without RWF_NOWAIT for pipes (the
// fallback; fork after the call to have a peer do the same). `!on`: back to
// blocking descriptors with per-call RWF_NOWAIT (until the kernel refuses it).
void stream_links_use_nonblocking_descriptors(bool on) noexcept;

}  // namespace taskfarm::ipc::detail
