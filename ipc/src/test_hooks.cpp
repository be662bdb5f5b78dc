#include "test_hooks.hpp"

#include "mqueue_link.hpp"
#include "shm_link.hpp"

namespace taskfarm::ipc::detail {

std::error_code write_raw_bytes(Link& link, std::span<const std::byte> bytes,
                                Link::Clock::duration timeout) {
  if (auto* shm = dynamic_cast<ShmLink*>(&link)) return shm->write_raw(bytes, timeout);
  return mqueue_write_raw(link, bytes, timeout);
}

}  // namespace taskfarm::ipc::detail
