#pragma once
// Payloads of the master <-> worker frames (the header is common/frame.hpp).
//
//   task          id = sequence number of the first item; the items that follow are
//                 id, id+1, ... in order
//                 str task | u32 count | count x (u64 input_index | u32 len | bytes)
//   result_ok    id = item sequence   u64 duration_ns | encoded result
//   result_error id = item sequence   u64 duration_ns | u8 ErrorKind | str type | str message
//   hello        id = 0               u32 pid
//   init_error   id = 0               str type | str message
//   retiring     id = last item sequence the worker ran   [u8 RetireReason; none = max_tasks]
//   shutdown     id = 0               (empty)
//
// A worker answers the items of its link strictly in the order it received them,
// so the master always knows which item a worker is running.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/common/wire.hpp"

namespace taskfarm::worker {

enum class ErrorKind : std::uint8_t {
  task_threw = 0,     // the task's own exception
  serialization = 1,  // the argument could not be decoded or the result encoded
  unknown_task = 2,   // no task of that name in the worker
};

// Why a worker retires (the payload of its retiring frame). It exits right
// after; the master replaces it and re-queues, uncharged, what it did not run.
enum class RetireReason : std::uint8_t {
  max_tasks = 0,   // it ran max_tasks_per_child items
  max_memory = 1,  // its RSS was above max_memory_per_child after an item
};

struct ItemView {
  std::uint64_t index;
  std::span<const std::byte> args;
};

// Parses a task payload; false if it is malformed.
bool parse_task(std::span<const std::byte> payload, std::string_view& task,
                std::vector<ItemView>& items);

struct ErrorView {
  std::uint64_t duration_ns = 0;
  ErrorKind kind = ErrorKind::task_threw;
  std::string_view type, message;
};
bool parse_error(std::span<const std::byte> payload, ErrorView& out);

// The reason a retiring frame gives; an empty payload (or one this build does
// not know) is max_tasks.
RetireReason parse_retire_reason(std::span<const std::byte> payload) noexcept;

void encode_error(std::vector<std::byte>& out, std::uint64_t duration_ns, ErrorKind kind,
                  std::string_view type, std::string_view message);

}  // namespace taskfarm::worker
