#pragma once
// What `taskfarm run` writes: the results (JSON Lines) and the joblog (TSV),
// and how --resume reads a joblog back. See docs/JOBFILES.md, "Results",
// "Joblog" and "Resuming".
//
// Both files are append-only files of whole lines. Lines are collected in
// memory and handed to the kernel whole, several per write(2) on an O_APPEND
// descriptor; a write that the disk cuts short is undone (ftruncate), so no
// reader ever sees half a line, and Ctrl-C cannot cut one either (the run
// finishes its writes before it exits). Only a kill -9 or a power cut in the
// middle of a write can leave a torn last line; reopening the file to append
// (--resume) removes it first.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace taskfarm::cli {

class LineFile {
 public:
  // Opens `path` (creating its directory) to append, or truncated when not
  // `append`; standard output when `path` is nullopt. Throws std::system_error.
  // With `defer_truncate`, a file that is to be truncated is not truncated yet:
  // truncate() does it (so a run opens all its outputs first, and a failure to
  // open one leaves the others as they were). Only regular files are ever
  // truncated or repaired; a character device (/dev/null) never is.
  static LineFile open(const std::optional<std::filesystem::path>& path, bool append, bool defer_truncate = false);
  LineFile() = default;
  LineFile(LineFile&& other) noexcept;
  LineFile& operator=(LineFile&& other) noexcept;
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;
  ~LineFile();

  // Does the truncation deferred by open(); nothing otherwise. Throws std::system_error.
  void truncate();
  // Queues one line (without its '\n').
  void add(std::string_view line);
  // Writes the queued lines. Throws std::system_error (nothing of the failed
  // write is left in the file).
  void flush();
  [[nodiscard]] bool is_open() const noexcept { return fd_ >= 0; }
  // True when nothing was ever written to it (the joblog then gets its header).
  [[nodiscard]] bool empty_at_open() const noexcept { return empty_at_open_; }
  [[nodiscard]] std::string describe() const;

 private:
  int fd_ = -1;
  bool owned_ = false;
  bool regular_ = false;
  bool empty_at_open_ = true;
  bool truncate_pending_ = false;
  std::optional<std::filesystem::path> path_;
  std::string buffer_;
};

// An output path and what names it in messages: "output.results",
// "output.joblog" (the job file) or "--output", "--joblog" (the command line).
struct OutputTarget {
  std::optional<std::filesystem::path> path;  // nullopt: standard output, or no joblog
  std::string name;
};

// Everything that would make opening the outputs fail, found without
// creating, opening or changing anything: a directory that cannot be created
// (a path component is a file, the nearest existing directory is not
// writable), a target that is a directory or is not writable, results and
// joblog that are the same file (character devices such as /dev/null may be
// shared). One message per problem: the name, the path, what is wrong, a fix.
[[nodiscard]] std::vector<std::string> check_outputs(const OutputTarget& results, const OutputTarget& joblog);

// The joblog's header: GNU parallel's nine columns, then ours.
inline constexpr std::string_view kJoblogHeader =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\tJob\tIndex\tStatus\tInputHash";

struct JoblogEntry {
  std::uint64_t seq = 0;           // index + 1 (GNU parallel's {#})
  double start = 0;                // seconds since the epoch
  double runtime = 0;              // seconds
  std::uint64_t send = 0, receive = 0;
  std::int64_t exitval = 0;
  int signal = 0;
  std::string command;
  std::string job;
  std::uint64_t index = 0;
  std::string status;              // ok, failed, timeout, lost, cancelled
  std::uint64_t input_hash = 0;
};

// One joblog line (no '\n'); tabs, newlines and backslashes in text columns
// are escaped as \t, \n, \r and \\.
[[nodiscard]] std::string format_joblog(const JoblogEntry& e);

// The hash that tells whether an input changed since it ran: the task's name
// and the expanded argument (before JsonTaskInfo::prepare), as compact JSON.
[[nodiscard]] std::uint64_t input_hash(std::string_view task, const nlohmann::json& arg);

// The last recorded outcome of every input in a joblog.
class ResumeLog {
 public:
  enum class Prior { none, ok, failed };
  // Reads `path`. Throws std::runtime_error when it is not a taskfarm joblog
  // (no Job, Index, Status and InputHash columns) or cannot be read. Lines that
  // do not parse (a torn last line) are ignored.
  static ResumeLog read(const std::filesystem::path& path);
  // What the last line for (job, index) says, if its InputHash is `hash`:
  // ok; failed (failed, timeout or lost); none (no line, a different hash, or
  // cancelled -- killed while running counts as not run).
  [[nodiscard]] Prior lookup(const std::string& job, std::uint64_t index, std::uint64_t hash) const;
  [[nodiscard]] std::size_t lines() const noexcept { return lines_; }

 private:
  // per job: (index, hash with the two low bits replaced by the status), sorted by index
  std::vector<std::pair<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>>> jobs_;
  std::size_t lines_ = 0;
};

}  // namespace taskfarm::cli
