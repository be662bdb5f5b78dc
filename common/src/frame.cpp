#include "taskfarm/common/frame.hpp"

#include <cstdio>

namespace taskfarm {

FrameCheck check_header(const FrameHeader& h, std::uint64_t max_payload) noexcept {
  if (h.magic != kFrameMagic) return FrameCheck::bad_magic;
  if (h.version != kFrameVersion) return FrameCheck::bad_version;
  if (h.kind < static_cast<std::uint16_t>(FrameKind::hello) ||
      h.kind > static_cast<std::uint16_t>(FrameKind::retiring))
    return FrameCheck::bad_kind;
  if (h.length > max_payload) return FrameCheck::too_large;
  return FrameCheck::ok;
}

std::string describe_check(FrameCheck c, const FrameHeader& h, std::uint64_t max_payload) {
  char buf[160];
  switch (c) {
    case FrameCheck::ok:
      return "frame ok";
    case FrameCheck::bad_magic:
      std::snprintf(buf, sizeof buf, "bad frame magic 0x%08x (expected 0x%08x)", h.magic,
                    kFrameMagic);
      return buf;
    case FrameCheck::bad_version:
      std::snprintf(buf, sizeof buf, "unsupported frame version %u (expected %u)", h.version,
                    kFrameVersion);
      return buf;
    case FrameCheck::bad_kind:
      std::snprintf(buf, sizeof buf, "unknown frame kind %u", h.kind);
      return buf;
    case FrameCheck::too_large:
      std::snprintf(buf, sizeof buf, "frame payload of %llu bytes exceeds the maximum of %llu",
                    static_cast<unsigned long long>(h.length),
                    static_cast<unsigned long long>(max_payload));
      return buf;
  }
  return "invalid frame";
}

std::string_view to_string(FrameKind k) noexcept {
  switch (k) {
    case FrameKind::hello: return "hello";
    case FrameKind::task: return "task";
    case FrameKind::result_ok: return "result_ok";
    case FrameKind::result_error: return "result_error";
    case FrameKind::shutdown: return "shutdown";
    case FrameKind::init_error: return "init_error";
    case FrameKind::retiring: return "retiring";
  }
  return "unknown";
}

}  // namespace taskfarm
