#include "taskfarm/cli/inputs.hpp"

#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "taskfarm/cli/job_error.hpp"

namespace taskfarm::cli {

namespace {

using json = nlohmann::json;

std::string quoted(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

class ListCursor final : public InputCursor {
 public:
  explicit ListCursor(std::shared_ptr<const json> list) : list_(std::move(list)) {}
  Next next(json& item, std::string&) override {
    if (i_ >= list_->size()) return Next::end;
    item = (*list_)[i_++];
    return Next::item;
  }

 private:
  std::shared_ptr<const json> list_;
  std::size_t i_ = 0;
};

class RangeCursor final : public InputCursor {
 public:
  RangeCursor(std::int64_t start, std::uint64_t count, std::int64_t step)
      : next_(static_cast<std::uint64_t>(start)), left_(count), step_(static_cast<std::uint64_t>(step)) {}
  Next next(json& item, std::string&) override {
    if (left_ == 0) return Next::end;
    item = static_cast<std::int64_t>(next_);  // two's complement: exact across the whole int64 range
    next_ += step_;
    --left_;
    return Next::item;
  }

 private:
  std::uint64_t next_, left_, step_;
};

std::uint64_t range_count(std::int64_t start, std::int64_t stop, std::int64_t step) {
  if (stop <= start || step <= 0) return 0;
  const std::uint64_t span = static_cast<std::uint64_t>(stop) - static_cast<std::uint64_t>(start);
  return (span - 1) / static_cast<std::uint64_t>(step) + 1;
}

// The lines of a file or a stream, through a buffer of our own: the
// descriptor may be non-blocking (a FIFO is opened O_NONBLOCK so that open()
// does not wait for a writer), so no stdio. The buffer holds at most one
// chunk plus the longest line.
class LinesCursor final : public InputCursor {
 public:
  explicit LinesCursor(const InputSpec& spec) : spec_(spec) {
    if (spec.file == "-") {
      // Standard input as it is: its flags are shared with whoever gave it
      // to us, so it is not made non-blocking; next() polls before reading.
      fd_ = STDIN_FILENO;
      owned_ = false;
    } else {
      fd_ = ::open(spec.file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (fd_ < 0)
        throw JobError(spec.path, "cannot open " + quoted(spec.file_text) + ": " + std::strerror(errno));
      struct stat st {};
      if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
        ::close(fd_);
        fd_ = -1;
        throw JobError(spec.path, "cannot read " + quoted(spec.file_text) + ": it is a directory");
      }
      regular_ = ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode);
    }
  }
  ~LinesCursor() override {
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  LinesCursor(const LinesCursor&) = delete;
  LinesCursor& operator=(const LinesCursor&) = delete;

  [[nodiscard]] int poll_fd() const override { return eof_ ? -1 : fd_; }

  Next next(json& item, std::string& problem) override {
    for (;;) {
      std::string_view text;
      if (!take_line(text)) {
        if (eof_) return Next::end;
        if (!fill()) return Next::pending;
        continue;
      }
      ++line_;
      if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
      if (spec_.json_lines) {
        if (text.find_first_not_of(" \t") == std::string_view::npos) {
          if (spec_.skip_empty) continue;
          problem = where() + ": an empty line is not JSON";
          return Next::bad;
        }
        try {
          item = json::parse(text);
        } catch (const json::exception& e) {
          // parse_error, or out_of_range for a number too large ("1e999").
          std::string what = e.what();
          if (auto p = what.find(": "); p != std::string::npos)
            what.erase(0, p + 2);
          else if (auto q = what.find("] "); q != std::string::npos)
            what.erase(0, q + 2);
          problem = where() + ": invalid JSON: " + what;
          return Next::bad;
        }
        return Next::item;
      }
      if (text.empty() && spec_.skip_empty) continue;
      item = std::string(text);
      return Next::item;
    }
  }
  [[nodiscard]] std::string where() const override {
    return "line " + std::to_string(line_) + " of " + quoted(spec_.file_text);
  }

 private:
  static constexpr std::size_t kChunk = 64 * 1024;

  // The next whole line (without its '\n'), or the last one without '\n' at
  // the end of the input; false when none is buffered. The view lives until
  // the next call.
  bool take_line(std::string_view& text) {
    const std::size_t avail = buf_.size() - pos_;
    if (avail == 0) return false;
    const char* begin = buf_.data() + pos_;
    if (const void* nl = std::memchr(begin, '\n', avail)) {
      const auto len = static_cast<std::size_t>(static_cast<const char*>(nl) - begin);
      text = std::string_view(begin, len);
      pos_ += len + 1;
      return true;
    }
    if (!eof_) return false;
    text = std::string_view(begin, avail);  // a last line without '\n' is an item
    pos_ = buf_.size();
    return true;
  }

  // Reads what is there without blocking; false when nothing is yet.
  bool fill() {
    if (!regular_) {
      // A FIFO read end that no writer has opened yet reads as end of file
      // but polls as nothing: only a POLLIN or POLLHUP says that a read()
      // means what it returns.
      pollfd p{fd_, POLLIN, 0};
      const int n = ::poll(&p, 1, 0);
      if (n < 0 && errno != EINTR) fail(errno);
      if (n <= 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return false;
    }
    if (pos_ > 0) {  // keep only the partial line
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    const std::size_t had = buf_.size();
    buf_.resize(had + kChunk);
    ssize_t n;
    do {
      n = ::read(fd_, buf_.data() + had, kChunk);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      const int e = errno;
      buf_.resize(had);
      if (e == EAGAIN || e == EWOULDBLOCK) return false;
      fail(e);
    }
    buf_.resize(had + static_cast<std::size_t>(n));
    if (n == 0) eof_ = true;
    return true;
  }

  [[noreturn]] void fail(int e) const {
    throw JobError(spec_.path, "cannot read " + quoted(spec_.file_text) + " after line " + std::to_string(line_) +
                                   ": " + std::strerror(e ? e : EIO));
  }

  const InputSpec& spec_;
  int fd_ = -1;
  bool owned_ = true;
  bool regular_ = false;
  bool eof_ = false;
  std::string buf_;
  std::size_t pos_ = 0;  // buf_[pos_, size) is not consumed yet
  std::uint64_t line_ = 0;
};

// Runs the glob; paths are relative to the job file's directory as written
// (or absolute), sorted.
std::vector<std::string> run_glob(const InputSpec& spec) {
  const bool rooted = !spec.pattern.empty() && (spec.pattern[0] == '/' || spec.pattern[0] == '~');
  std::string prefix;  // the base directory, glob-escaped
  std::string base = spec.base_dir.string();
  if (!rooted) {
    for (char c : base) {
      if (std::strchr("*?[]{}\\~", c) != nullptr) prefix += '\\';
      prefix += c;
    }
    if (prefix.empty() || prefix.back() != '/') {
      prefix += '/';
      base += '/';
    }
  }
  glob_t g{};
  const int rc = ::glob((prefix + spec.pattern).c_str(), GLOB_BRACE | GLOB_TILDE_CHECK, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0) {
    out.reserve(g.gl_pathc);
    for (std::size_t i = 0; i < g.gl_pathc; ++i) {
      std::string p = g.gl_pathv[i];
      if (!rooted && !spec.absolute && p.rfind(base, 0) == 0) p.erase(0, base.size());
      out.push_back(std::move(p));
    }
  }
  ::globfree(&g);
  if (rc == GLOB_NOSPACE) throw JobError(spec.path, "out of memory while matching " + quoted(spec.pattern));
  if (rc == GLOB_ABORTED) throw JobError(spec.path, "cannot read a directory while matching " + quoted(spec.pattern));
  if (rc == GLOB_NOMATCH || out.empty())
    throw JobError(spec.path, "the pattern " + quoted(spec.pattern) + " matches no file (in " +
                                  quoted(spec.base_dir.string()) + ")");
  return out;
}

class GlobCursor final : public InputCursor {
 public:
  explicit GlobCursor(std::vector<std::string> paths) : paths_(std::move(paths)) {}
  Next next(json& item, std::string&) override {
    if (i_ >= paths_.size()) return Next::end;
    item = paths_[i_++];
    return Next::item;
  }
  [[nodiscard]] std::string where() const override { return i_ == 0 ? std::string() : quoted(paths_[i_ - 1]); }

 private:
  std::vector<std::string> paths_;
  std::size_t i_ = 0;
};

// Reads an axis of a product into memory.
std::vector<json> read_axis(const InputSpec& axis) {
  std::vector<json> values;
  auto cursor = axis.open();
  json item;
  std::string problem;
  for (;;) {
    const auto n = cursor->next_wait(item, problem);
    if (n == InputCursor::Next::end) break;
    if (n == InputCursor::Next::bad) throw JobError(axis.path, problem);
    if (values.size() == kMaxAxisValues)
      throw JobError(axis.path, "an axis of a product has at most " + std::to_string(kMaxAxisValues) + " values");
    values.push_back(std::move(item));
  }
  if (values.empty()) throw JobError(axis.path, "an axis of a product needs at least one value");
  return values;
}

class ProductCursor final : public InputCursor {
 public:
  explicit ProductCursor(const InputSpec& spec) {
    for (const auto& [name, axis] : spec.axes) {
      names_.push_back(name);
      values_.push_back(read_axis(axis));
    }
    pos_.assign(values_.size(), 0);
  }
  Next next(json& item, std::string&) override {
    if (done_) return Next::end;
    item = json::object();
    for (std::size_t a = 0; a < values_.size(); ++a) item[names_[a]] = values_[a][pos_[a]];
    // Odometer: the last axis turns fastest.
    std::size_t a = values_.size();
    while (a > 0) {
      --a;
      if (++pos_[a] < values_[a].size()) return Next::item;
      pos_[a] = 0;
    }
    done_ = true;  // every axis wrapped: this was the last combination
    return Next::item;
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::vector<json>> values_;
  std::vector<std::size_t> pos_;
  bool done_ = false;
};

}  // namespace

const char* InputSpec::kind_name() const noexcept {
  switch (kind) {
    case InputKind::list: return "list";
    case InputKind::range: return "range";
    case InputKind::lines: return "lines";
    case InputKind::glob: return "glob";
    case InputKind::product: return "product";
  }
  return "?";
}

std::optional<std::uint64_t> InputSpec::size() const {
  switch (kind) {
    case InputKind::list: return list->size();
    case InputKind::range: return range_count(start, stop, step);
    case InputKind::lines: return std::nullopt;
    case InputKind::glob: return run_glob(*this).size();
    case InputKind::product: {
      std::uint64_t n = 1;
      for (const auto& [name, axis] : axes) {
        const auto k = axis.size();
        if (!k || __builtin_mul_overflow(n, *k, &n)) return std::nullopt;
      }
      return n;
    }
  }
  return std::nullopt;
}

std::uint64_t InputSpec::count() const {
  if (auto n = size()) return *n;
  auto cursor = open();
  json item;
  std::string problem;
  std::uint64_t n = 0;
  while (cursor->next_wait(item, problem) != InputCursor::Next::end) ++n;
  return n;
}

bool InputSpec::streamed() const {
  if (kind != InputKind::lines) return false;
  if (file == "-") return true;
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return false;  // open() says why
  return !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

std::uint64_t InputSpec::count_lines() const {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw JobError(path, "cannot open " + quoted(file_text) + ": " + std::strerror(errno));
  // As in the cursor: one '\r' before the line end is dropped; then a line is
  // empty when nothing is left (for JSON lines: nothing but spaces and tabs).
  std::uint64_t n = 0;
  std::uint64_t len = 0;       // characters in the current line so far
  std::uint64_t nonblank = 0;  // of which not space or tab (counted up to 2)
  char last = 0;
  auto end_line = [&] {
    std::uint64_t l = len, nb = nonblank;
    if (l > 0 && last == '\r') {
      --l;
      --nb;
    }
    const bool empty = json_lines ? nb == 0 : l == 0;
    if (!empty || !skip_empty) ++n;
    len = nonblank = 0;
    last = 0;
  };
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t got = ::read(fd, buf.data(), buf.size());
    if (got < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      throw JobError(path, "cannot read " + quoted(file_text) + ": " + std::strerror(e));
    }
    if (got == 0) break;
    const char* p = buf.data();
    const char* end = p + got;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
      const char* line_end = nl ? nl : end;
      if (line_end > p) {
        len += static_cast<std::uint64_t>(line_end - p);
        last = line_end[-1];
        for (const char* c = p; c < line_end && nonblank < 2; ++c)
          if (*c != ' ' && *c != '\t') ++nonblank;
      }
      if (!nl) break;
      end_line();
      p = nl + 1;
    }
  }
  ::close(fd);
  if (len > 0) end_line();  // a last line without '\n'
  return n;
}

InputCursor::Next InputCursor::next_wait(json& item, std::string& problem) {
  for (;;) {
    const Next n = next(item, problem);
    if (n != Next::pending) return n;
    pollfd p{poll_fd(), POLLIN, 0};
    if (p.fd >= 0) (void)::poll(&p, 1, -1);
  }
}

std::unique_ptr<InputCursor> InputSpec::open() const {
  switch (kind) {
    case InputKind::list: return std::make_unique<ListCursor>(list);
    case InputKind::range: return std::make_unique<RangeCursor>(start, range_count(start, stop, step), step);
    case InputKind::lines: return std::make_unique<LinesCursor>(*this);
    case InputKind::glob: return std::make_unique<GlobCursor>(run_glob(*this));
    case InputKind::product: return std::make_unique<ProductCursor>(*this);
  }
  throw JobError(path, "unknown kind of input");
}

}  // namespace taskfarm::cli
