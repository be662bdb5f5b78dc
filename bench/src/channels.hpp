#pragma once
// The IPC mechanisms under test, each with a forked peer process.
//
// A Channel moves whole messages whose size both sides know in advance. It is
// either a taskfarm transport (a Link: frames with headers, the real thing) or
// the raw OS mechanism that transport is built on, with no framing at all:
//
//   transport  raw baseline
//   pipe       two pipes, write()/read() of the bare bytes (same 1 MiB pipe buffer)
//   socket     a Unix socketpair, send()/recv() of the bare bytes (same buffer sizes)
//   mqueue     two Boost.Interprocess message_queues, 16 KiB messages, depth 64
//   shm        two rings of slots in a MAP_SHARED mapping, POSIX sem_t items/spaces
//
// The peer is forked once and then obeys commands sent over a separate pipe,
// outside the timed path: "echo N messages of S bytes" (round trips) or "sink N
// messages of S bytes, then answer 1 byte" (one-way streaming).

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "taskfarm/common/options.hpp"

namespace taskfarm::bench::detail {

// One end of a channel. Not thread-safe; one per process.
class Side {
 public:
  virtual ~Side() = default;
  // Sends one message. False on failure (error() says why).
  [[nodiscard]] virtual bool send(std::span<const std::byte> msg) = 0;
  // Receives the next message, which must be `n` bytes. The view is valid until
  // the next call. False on failure, a wrong size, or no message within 30 s.
  [[nodiscard]] virtual bool recv(std::size_t n, std::span<const std::byte>& msg) = 0;
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

 protected:
  std::string error_;
};

// A mechanism before and across fork().
class Mechanism {
 public:
  virtual ~Mechanism() = default;
  // Creates the kernel objects for messages of up to `max_msg` bytes. Empty on
  // success, else why not.
  [[nodiscard]] virtual std::string create(std::size_t max_msg) = 0;
  // Descriptors the peer needs (everything else is closed in the peer).
  [[nodiscard]] virtual std::vector<int> peer_fds() const = 0;
  // In the peer, after fork. Null on failure.
  [[nodiscard]] virtual std::unique_ptr<Side> peer_side() = 0;
  // In the master, after fork. Null on failure (`error` says why).
  [[nodiscard]] virtual std::unique_ptr<Side> master_side(std::string& error) = 0;
};

struct ChannelInfo {
  std::string subject;    // "pipe", "raw pipe", ...
  std::string impl;       // taskfarm or raw
  std::string transport;  // the transport it is or underlies
};

[[nodiscard]] std::unique_ptr<Mechanism> make_transport(Transport t);
[[nodiscard]] std::unique_ptr<Mechanism> make_raw(Transport underlying);

// A mechanism with its peer process running.
class Channel {
 public:
  // Forks the peer (pinned to `peer_cpu` when >= 0). Throws std::runtime_error
  // with the reason when the mechanism or the peer cannot be set up.
  Channel(ChannelInfo info, std::unique_ptr<Mechanism> mech, std::size_t max_msg, int peer_cpu);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  [[nodiscard]] const ChannelInfo& info() const noexcept { return info_; }
  // Round trips of `msg` (echoed back by the peer): one duration each, in
  // microseconds. Throws std::runtime_error on a failure.
  [[nodiscard]] std::vector<double> round_trips(std::span<const std::byte> msg, std::size_t n);
  // Sends `n` messages of `msg` one way and waits for the peer's answer that it
  // received them all: the seconds that took. Throws std::runtime_error.
  [[nodiscard]] double stream(std::span<const std::byte> msg, std::size_t n);
  // Stops the peer and reaps it.
  void stop() noexcept;

 private:
  void command(std::uint32_t op, std::uint64_t size, std::uint64_t count);

  ChannelInfo info_;
  std::unique_ptr<Mechanism> mech_;
  std::unique_ptr<Side> side_;
  pid_t pid_ = -1;
  int cmd_fd_ = -1;
};

// Closes every descriptor >= 3 not in `keep` (the peer side of fork()).
void close_fds_except(std::vector<int> keep) noexcept;

}  // namespace taskfarm::bench::detail
