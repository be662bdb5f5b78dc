#include "taskfarm/worker/protocol.hpp"

namespace taskfarm::worker {

bool parse_task(std::span<const std::byte> payload, std::string_view& task,
                std::vector<ItemView>& items) {
  detail::ByteReader r(payload);
  task = r.str();
  const auto count = r.get<std::uint32_t>();
  // Each item needs at least 12 bytes: refuse counts the payload cannot hold.
  if (!r.ok() || count > r.remaining() / 12) return false;
  items.clear();
  items.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto index = r.get<std::uint64_t>();
    const auto len = r.get<std::uint32_t>();
    items.push_back({index, r.bytes(len)});
  }
  return r.at_end();
}

bool parse_error(std::span<const std::byte> payload, ErrorView& out) {
  detail::ByteReader r(payload);
  out.duration_ns = r.get<std::uint64_t>();
  const auto kind = r.get<std::uint8_t>();
  out.type = r.str();
  out.message = r.str();
  if (kind > static_cast<std::uint8_t>(ErrorKind::unknown_task)) return false;
  out.kind = static_cast<ErrorKind>(kind);
  return r.at_end();
}

RetireReason parse_retire_reason(std::span<const std::byte> payload) noexcept {
  if (payload.size() == 1 && payload[0] == std::byte{static_cast<std::uint8_t>(RetireReason::max_memory)})
    return RetireReason::max_memory;
  return RetireReason::max_tasks;
}

void encode_error(std::vector<std::byte>& out, std::uint64_t duration_ns, ErrorKind kind,
                  std::string_view type, std::string_view message) {
  detail::ByteWriter w(out);
  w.put(duration_ns);
  w.put(static_cast<std::uint8_t>(kind));
  w.str(type);
  w.str(message);
}

}  // namespace taskfarm::worker
