#include "taskfarm/cli/outputs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

namespace taskfarm::cli {

namespace {

[[noreturn]] void fail(int err, const std::string& what) { throw std::system_error(err, std::generic_category(), what); }

// Most bytes handed to one write(2): small enough that a write is not cut by
// anything but a full disk (undone) or a kill -9.
constexpr std::size_t kMaxWrite = 64 * 1024;

// A file that does not end in '\n' was torn by a crash: cut the partial line.
void drop_torn_tail(int fd, const std::string& name) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return;
  off_t end = st.st_size;
  char c = 0;
  if (::pread(fd, &c, 1, end - 1) == 1 && c == '\n') return;
  char buf[4096];
  while (end > 0) {
    const off_t from = std::max<off_t>(0, end - static_cast<off_t>(sizeof buf));
    const ssize_t n = ::pread(fd, buf, static_cast<std::size_t>(end - from), from);
    if (n <= 0) fail(errno ? errno : EIO, "cannot read " + name);
    for (ssize_t i = n - 1; i >= 0; --i) {
      if (buf[i] == '\n') {
        if (::ftruncate(fd, from + i + 1) != 0) fail(errno, "cannot repair " + name);
        return;
      }
    }
    end = from;
  }
  if (::ftruncate(fd, 0) != 0) fail(errno, "cannot repair " + name);
}

void escape_into(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\\': out += "\\\\"; break;
      default: out += c;
    }
  }
}

std::string unescape(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    const char n = s[++i];
    out += n == 't' ? '\t' : n == 'n' ? '\n' : n == 'r' ? '\r' : n;
  }
  return out;
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const std::size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string_view::npos ? std::string_view::npos : tab - start));
    if (tab == std::string_view::npos) return out;
    start = tab + 1;
  }
}

constexpr std::uint64_t kStatusMask = 3;
constexpr std::uint64_t kOk = 1, kFailed = 2, kCancelled = 3;

}  // namespace

LineFile LineFile::open(const std::optional<std::filesystem::path>& path, bool append, bool defer_truncate) {
  LineFile f;
  f.path_ = path;
  if (!path) {
    f.fd_ = STDOUT_FILENO;
    f.empty_at_open_ = true;
    return f;
  }
  std::error_code ec;
  if (std::filesystem::is_directory(*path, ec))
    throw std::system_error(std::make_error_code(std::errc::is_a_directory), path->string());
  if (path->has_parent_path()) {
    std::filesystem::create_directories(path->parent_path(), ec);
    if (ec) throw std::system_error(ec, "cannot create the directory " + path->parent_path().string());
  }
  // Read access too: a torn tail is found by reading backwards.
  // Never O_TRUNC: only a regular file is truncated, once it is open (and,
  // with defer_truncate, once every output is).
  const int flags = O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC;
  f.fd_ = ::open(path->c_str(), flags, 0644);
  if (f.fd_ < 0) fail(errno, "cannot open " + path->string());
  f.owned_ = true;
  struct stat st {};
  if (::fstat(f.fd_, &st) == 0) f.regular_ = S_ISREG(st.st_mode);
  if (append && f.regular_) drop_torn_tail(f.fd_, path->string());
  if (::fstat(f.fd_, &st) == 0) f.empty_at_open_ = !S_ISREG(st.st_mode) || st.st_size == 0;
  f.truncate_pending_ = !append && f.regular_;
  if (!defer_truncate) f.truncate();
  return f;
}

void LineFile::truncate() {
  if (!truncate_pending_) return;
  truncate_pending_ = false;
  if (::ftruncate(fd_, 0) != 0) fail(errno, "cannot truncate " + describe());
  empty_at_open_ = true;
}

LineFile::LineFile(LineFile&& o) noexcept { *this = std::move(o); }

LineFile& LineFile::operator=(LineFile&& o) noexcept {
  if (this != &o) {
    if (owned_ && fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    owned_ = std::exchange(o.owned_, false);
    regular_ = o.regular_;
    empty_at_open_ = o.empty_at_open_;
    truncate_pending_ = std::exchange(o.truncate_pending_, false);
    path_ = std::move(o.path_);
    buffer_ = std::move(o.buffer_);
  }
  return *this;
}

LineFile::~LineFile() {
  if (owned_ && fd_ >= 0) ::close(fd_);
}

void LineFile::add(std::string_view line) {
  buffer_.append(line);
  buffer_ += '\n';
  if (buffer_.size() >= 4 * kMaxWrite) flush();
}

void LineFile::flush() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    // Up to kMaxWrite bytes, ending at a line end (one longer line goes whole).
    std::size_t len = buffer_.size() - done;
    if (len > kMaxWrite) {
      const std::size_t nl = buffer_.rfind('\n', done + kMaxWrite - 1);
      len = (nl != std::string::npos && nl >= done) ? nl + 1 - done : buffer_.find('\n', done) + 1 - done;
    }
    off_t before = -1;
    if (regular_) before = ::lseek(fd_, 0, SEEK_END);
    std::size_t put = 0;
    while (put < len) {
      const ssize_t n = ::write(fd_, buffer_.data() + done + put, len - put);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int e = errno;
        if (put > 0 && before >= 0) (void)!::ftruncate(fd_, before);  // leave no half line
        buffer_.erase(0, done);
        fail(e, "cannot write " + describe());
      }
      put += static_cast<std::size_t>(n);
    }
    done += len;
  }
  buffer_.clear();
}

std::string LineFile::describe() const { return path_ ? path_->string() : std::string("standard output"); }

namespace {

std::string quote_path(const std::filesystem::path& p) {
  return nlohmann::json(p.string()).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The problems of one output path, as check_outputs() describes.
void check_one_output(const OutputTarget& t, std::vector<std::string>& problems) {
  namespace fs = std::filesystem;
  if (!t.path) return;
  const fs::path& p = *t.path;
  const std::string head = t.name + ": " + quote_path(p) + ": ";
  struct stat st {};
  if (::stat(p.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      problems.push_back(head + "is a directory: give a file name (such as " + quote_path(p / "out") + ")");
    } else if (::access(p.c_str(), W_OK) != 0) {
      problems.push_back(head + "cannot be written (" + std::strerror(errno) +
                         "): give a file you may write, or change its permissions");
    }
    return;
  }
  if (errno != ENOENT && errno != ENOTDIR) {
    problems.push_back(head + "cannot be checked (" + std::strerror(errno) + ")");
    return;
  }
  // It does not exist: the nearest existing ancestor must be a directory we
  // may create entries in (ENOTDIR: a component on the way is a file).
  fs::path up = p.has_parent_path() ? p.parent_path() : fs::path(".");
  for (;;) {
    struct stat s2 {};
    if (::stat(up.c_str(), &s2) == 0) {
      if (!S_ISDIR(s2.st_mode)) {
        problems.push_back(head + quote_path(up) +
                           " is a file, not a directory: give a path in a directory (or move the file away)");
      } else if (::access(up.c_str(), W_OK | X_OK) != 0) {
        problems.push_back(head + "cannot be created: the directory " + quote_path(up) + " is not writable (" +
                           std::strerror(errno) + "): give a path in a directory you may write to");
      }
      return;
    }
    if (errno != ENOENT && errno != ENOTDIR) {
      problems.push_back(head + "cannot be created: " + quote_path(up) + ": " + std::strerror(errno));
      return;
    }
    if (up == "." || up == up.root_path()) return;
    up = up.has_parent_path() ? up.parent_path() : fs::path(".");
  }
}

}  // namespace

std::vector<std::string> check_outputs(const OutputTarget& results, const OutputTarget& joblog) {
  std::vector<std::string> problems;
  check_one_output(results, problems);
  check_one_output(joblog, problems);
  if (results.path && joblog.path) {
    struct stat a {}, b {};
    const bool ea = ::stat(results.path->c_str(), &a) == 0, eb = ::stat(joblog.path->c_str(), &b) == 0;
    const bool devices = ea && eb && S_ISCHR(a.st_mode) && S_ISCHR(b.st_mode);
    std::error_code e1, e2;
    const auto ca = std::filesystem::weakly_canonical(*results.path, e1);
    const auto cb = std::filesystem::weakly_canonical(*joblog.path, e2);
    const bool same = (ea && eb && a.st_dev == b.st_dev && a.st_ino == b.st_ino) || (!e1 && !e2 && ca == cb);
    if (same && !devices)
      problems.push_back(joblog.name + ": " + quote_path(*joblog.path) + ": is the same file as the results (" +
                         results.name + ": " + quote_path(*results.path) +
                         "); they must be different files: give the joblog a file of its own, such as " +
                         quote_path(results.path->parent_path() / "joblog.tsv"));
  }
  return problems;
}

std::string format_joblog(const JoblogEntry& e) {
  char nums[160];
  std::snprintf(nums, sizeof nums, "%llu\t:\t%.3f\t%.3f\t%llu\t%llu\t%lld\t%d\t", static_cast<unsigned long long>(e.seq),
                e.start, e.runtime, static_cast<unsigned long long>(e.send), static_cast<unsigned long long>(e.receive),
                static_cast<long long>(e.exitval), e.signal);
  std::string line = nums;
  escape_into(line, e.command);
  line += '\t';
  escape_into(line, e.job);
  char tail[64];
  std::snprintf(tail, sizeof tail, "\t%llu\t", static_cast<unsigned long long>(e.index));
  line += tail;
  line += e.status;
  std::snprintf(tail, sizeof tail, "\t%016llx", static_cast<unsigned long long>(e.input_hash));
  line += tail;
  return line;
}

std::uint64_t input_hash(std::string_view task, const nlohmann::json& arg) {
  // FNV-1a over "task\0argument", then a 64-bit finalizer (splitmix64) so that
  // similar arguments spread over the whole range.
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ULL;
    }
  };
  mix(task);
  mix(std::string_view("\0", 1));
  mix(arg.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

ResumeLog ResumeLog::read(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open the joblog " + path.string());
  std::string line;
  if (!std::getline(in, line)) return {};  // empty: nothing ran yet
  const auto head = split_tabs(line);
  auto column = [&](std::string_view name) -> std::size_t {
    const auto it = std::find(head.begin(), head.end(), name);
    if (it == head.end())
      throw std::runtime_error("the joblog " + path.string() + " has no \"" + std::string(name) +
                               "\" column: it was not written by taskfarm (its header is \"" + line + "\")");
    return static_cast<std::size_t>(it - head.begin());
  };
  const std::size_t c_job = column("Job"), c_index = column("Index"), c_status = column("Status"),
                    c_hash = column("InputHash");
  const std::size_t ncols = head.size();

  ResumeLog log;
  std::vector<std::pair<std::string, std::vector<std::pair<std::uint64_t, std::uint64_t>>>> jobs;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // no '\n' at the end: a torn line
    const auto cols = split_tabs(line);
    if (cols.size() != ncols) continue;
    std::uint64_t index = 0, hash = 0;
    const auto ix = cols[c_index], hx = cols[c_hash];
    if (std::from_chars(ix.data(), ix.data() + ix.size(), index).ec != std::errc{}) continue;
    if (std::from_chars(hx.data(), hx.data() + hx.size(), hash, 16).ec != std::errc{}) continue;
    const std::string_view st = cols[c_status];
    std::uint64_t status = 0;
    if (st == "ok")
      status = kOk;
    else if (st == "failed" || st == "timeout" || st == "lost")
      status = kFailed;
    else if (st == "cancelled")
      status = kCancelled;
    else
      continue;
    const std::string job = unescape(cols[c_job]);
    auto it = std::find_if(jobs.begin(), jobs.end(), [&](const auto& j) { return j.first == job; });
    if (it == jobs.end()) it = jobs.insert(jobs.end(), {job, {}});
    it->second.emplace_back(index, (hash & ~kStatusMask) | status);
    ++log.lines_;
  }
  if (in.bad()) throw std::runtime_error("cannot read the joblog " + path.string());
  // Sorted by index; of several lines for one input the last one counts.
  for (auto& [job, entries] : jobs) {
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::pair<std::uint64_t, std::uint64_t>> last;
    last.reserve(entries.size());
    for (std::size_t i = 0; i < entries.size(); ++i)
      if (i + 1 == entries.size() || entries[i + 1].first != entries[i].first) last.push_back(entries[i]);
    entries.swap(last);
  }
  log.jobs_ = std::move(jobs);
  return log;
}

ResumeLog::Prior ResumeLog::lookup(const std::string& job, std::uint64_t index, std::uint64_t hash) const {
  const auto j = std::find_if(jobs_.begin(), jobs_.end(), [&](const auto& e) { return e.first == job; });
  if (j == jobs_.end()) return Prior::none;
  const auto& v = j->second;
  const auto it = std::lower_bound(v.begin(), v.end(), index, [](const auto& e, std::uint64_t i) { return e.first < i; });
  if (it == v.end() || it->first != index) return Prior::none;
  if ((it->second & ~kStatusMask) != (hash & ~kStatusMask)) return Prior::none;
  switch (it->second & kStatusMask) {
    case kOk: return Prior::ok;
    case kFailed: return Prior::failed;
    default: return Prior::none;
  }
}

}  // namespace taskfarm::cli
