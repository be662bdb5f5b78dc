#pragma once
// The frame: the unit every transport carries between the master and a worker.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace taskfarm {

// What a frame means. Values are part of the wire format: never renumber.
enum class FrameKind : std::uint16_t {
  hello = 1,         // worker -> master: attached and initialised; payload: u32 pid
  task = 2,          // master -> worker: a chunk of inputs for one task (see worker/protocol.hpp)
  result_ok = 3,     // worker -> master: one item's encoded result
  result_error = 4,  // worker -> master: one item's failure (type name, message)
  shutdown = 5,      // master -> worker: finish queued work, then exit
  init_error = 6,    // worker -> master: the initializer threw; the worker exits next
  retiring = 7,      // worker -> master: max_tasks_per_child or max_memory_per_child reached; it exits next
};

// Fixed header in front of every payload, in host byte order (both ends are one
// machine, one binary).
//
//   offset size  field
//        0    4  magic    kFrameMagic
//        4    2  version  kFrameVersion
//        6    2  kind     FrameKind
//        8    8  id       sequence number of the item or chunk the frame is about
//       16    8  length   payload bytes following the header (<= the link's maximum)
//       24       payload
struct FrameHeader {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t kind;
  std::uint64_t id;
  std::uint64_t length;
};
static_assert(sizeof(FrameHeader) == 24, "the frame header is 24 bytes on the wire");
static_assert(alignof(FrameHeader) == 8);
static_assert(std::is_trivially_copyable_v<FrameHeader>);
static_assert(std::is_standard_layout_v<FrameHeader>);

inline constexpr std::uint32_t kFrameMagic = 0x4d524654u;  // "TFRM" in memory on little-endian
inline constexpr std::uint16_t kFrameVersion = 1;
inline constexpr std::size_t kFrameHeaderSize = sizeof(FrameHeader);
inline constexpr std::uint64_t kDefaultMaxFrameBytes = std::uint64_t{256} << 20;

[[nodiscard]] constexpr FrameHeader make_header(FrameKind kind, std::uint64_t id,
                                                std::uint64_t length) noexcept {
  return FrameHeader{kFrameMagic, kFrameVersion, static_cast<std::uint16_t>(kind), id, length};
}

// Why a received header was rejected.
enum class FrameCheck { ok, bad_magic, bad_version, bad_kind, too_large };

// Validates a header read off the wire before anything is allocated for its payload.
[[nodiscard]] FrameCheck check_header(const FrameHeader& h, std::uint64_t max_payload) noexcept;

// "bad magic 0x41414141 (expected 0x4d524654)"-style text for error messages.
[[nodiscard]] std::string describe_check(FrameCheck c, const FrameHeader& h,
                                         std::uint64_t max_payload);

[[nodiscard]] std::string_view to_string(FrameKind k) noexcept;

// A received frame. The payload vector is reused between receives to avoid
// allocating per frame.
struct Frame {
  FrameHeader header{};
  std::vector<std::byte> payload;

  [[nodiscard]] FrameKind kind() const noexcept { return static_cast<FrameKind>(header.kind); }
  [[nodiscard]] std::uint64_t id() const noexcept { return header.id; }
};

}  // namespace taskfarm
