#pragma once
// The inputs of a job: an explicit list, a range of integers, the lines of a
// file, the files a glob matches, or the product of several of those (a
// parameter sweep). See docs/JOBFILES.md, "Inputs".
//
// Inputs are streamed: open() gives a cursor that produces one item at a time,
// so a job over a file of ten million lines never holds more than the items in
// flight.
//
// A `lines` input that is not a regular file ("-" for standard input,
// /dev/stdin, a pipe, a FIFO, a character device) is a stream: it can be read
// only once, so validation does not read it, and its cursor never blocks: it
// answers `pending` when no whole line has arrived yet, and the caller polls
// poll_fd() (the run loop polls it together with its other descriptors). Only the axes of a product are read into memory (each is iterated
// many times), and a glob's matches (glob(3) returns them all at once).

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace taskfarm::cli {

// The most values one axis of a product may have (axes are held in memory).
inline constexpr std::size_t kMaxAxisValues = 1'000'000;

enum class InputKind { list, range, lines, glob, product };

class InputCursor {
 public:
  enum class Next { item, bad, end, pending };
  virtual ~InputCursor() = default;
  // item: `item` is the next input. bad: the next input exists but cannot be
  // read (a line that is not JSON); `problem` says why, and the cursor goes on
  // with the one after. end: no more inputs. Throws JobError when the source
  // itself fails (a read error). pending (streams only): no whole line has
  // arrived yet; poll poll_fd() for POLLIN and call again.
  virtual Next next(nlohmann::json& item, std::string& problem) = 0;
  // The descriptor to poll when next() said pending; -1 when it never does.
  [[nodiscard]] virtual int poll_fd() const { return -1; }
  // next(), waiting (poll(2), no timeout) while it is pending.
  Next next_wait(nlohmann::json& item, std::string& problem);
  // Where the last item came from, for messages ("line 17 of \"data.txt\"",
  // "\"data/a.txt\""); empty when the index says it all.
  [[nodiscard]] virtual std::string where() const { return {}; }
};

struct InputSpec {
  InputKind kind = InputKind::list;
  std::string path;  // JSON path of this spec, for messages: "jobs[0].inputs.lines"

  // list: the items (a non-empty array).
  std::shared_ptr<const nlohmann::json> list;
  // range: start, start + step, ... below stop.
  std::int64_t start = 0, stop = 0, step = 1;
  // lines: one item per line of `file`.
  std::filesystem::path file;   // resolved against the job file's directory; "-" is standard input
  std::string file_text;        // as written, for messages
  bool json_lines = false;      // each line is a JSON value (else a string)
  bool skip_empty = true;       // empty lines are not items
  // glob: the matching paths, sorted.
  std::string pattern;            // as written
  std::filesystem::path base_dir; // the job file's directory (relative patterns)
  bool absolute = false;          // items as absolute paths (else as matched)
  // product: one object {axis: value, ...} per combination; the first axis
  // varies slowest, the last fastest.
  std::vector<std::pair<std::string, InputSpec>> axes;

  // The number of items when it is known without reading a file: list, range,
  // glob (it runs the glob), and products of those. nullopt for lines.
  [[nodiscard]] std::optional<std::uint64_t> size() const;
  // Starts reading. Throws JobError (at `path`) when a file cannot be opened, a
  // glob fails, or an axis of a product cannot be read.
  [[nodiscard]] std::unique_ptr<InputCursor> open() const;
  // Counts the items by reading them all (for lines); never holds them.
  // Never call it on a stream (it would consume it).
  [[nodiscard]] std::uint64_t count() const;
  // lines: true when `file` is "-" or not a regular file (decided by stat(2),
  // which does not block, never by opening it). A stream is read exactly once.
  [[nodiscard]] bool streamed() const;
  // lines from a regular file: the number of items, by a fast scan of the
  // file that does not parse JSON (lines, less the empty ones when skip_empty;
  // a line that is not JSON counts, as it becomes a failed input). Throws
  // JobError when the file cannot be read.
  [[nodiscard]] std::uint64_t count_lines() const;
  // "list", "range", "lines", "glob", "product".
  [[nodiscard]] const char* kind_name() const noexcept;
};

}  // namespace taskfarm::cli
