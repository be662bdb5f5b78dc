#include "taskfarm/cli/inputs.hpp"

#include <glob.h>

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

class LinesCursor final : public InputCursor {
 public:
  LinesCursor(const InputSpec& spec) : spec_(spec) {
    f_ = std::fopen(spec.file.c_str(), "re");
    if (f_ == nullptr)
      throw JobError(spec.path, "cannot open " + quoted(spec.file_text) + ": " + std::strerror(errno));
  }
  ~LinesCursor() override {
    std::free(buf_);
    if (f_) std::fclose(f_);
  }
  LinesCursor(const LinesCursor&) = delete;
  LinesCursor& operator=(const LinesCursor&) = delete;

  Next next(json& item, std::string& problem) override {
    for (;;) {
      errno = 0;
      const ssize_t n = ::getline(&buf_, &cap_, f_);
      if (n < 0) {
        if (std::ferror(f_))
          throw JobError(spec_.path, "cannot read " + quoted(spec_.file_text) + " after line " +
                                         std::to_string(line_) + ": " + std::strerror(errno ? errno : EIO));
        return Next::end;
      }
      ++line_;
      std::size_t len = static_cast<std::size_t>(n);
      if (len > 0 && buf_[len - 1] == '\n') --len;
      if (len > 0 && buf_[len - 1] == '\r') --len;
      const std::string_view text(buf_, len);
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
      if (len == 0 && spec_.skip_empty) continue;
      item = std::string(text);
      return Next::item;
    }
  }
  [[nodiscard]] std::string where() const override {
    return "line " + std::to_string(line_) + " of " + quoted(spec_.file_text);
  }

 private:
  const InputSpec& spec_;
  std::FILE* f_ = nullptr;
  char* buf_ = nullptr;
  std::size_t cap_ = 0;
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
    const auto n = cursor->next(item, problem);
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
  while (cursor->next(item, problem) != InputCursor::Next::end) ++n;
  return n;
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
