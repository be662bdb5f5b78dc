#pragma once
// Bounds-checked little helpers to build and parse the envelope payloads of the
// worker protocol (not user data: that goes through serialize.hpp).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace taskfarm::detail {

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::byte>& out) noexcept : out_(out) {}

  template <class T>
    requires std::is_trivially_copyable_v<T>
  void put(const T& v) {
    bytes({reinterpret_cast<const std::byte*>(&v), sizeof v});
  }
  void bytes(std::span<const std::byte> b) {
    // resize + memcpy rather than insert: same cost, and no GCC 12 false
    // -Wstringop-overflow on an insert into a just-cleared vector.
    const std::size_t at = out_.size();
    out_.resize(at + b.size());
    if (!b.empty()) std::memcpy(out_.data() + at, b.data(), b.size());
  }
  // u32 length + bytes
  void str(std::string_view s) {
    put(static_cast<std::uint32_t>(s.size()));
    bytes({reinterpret_cast<const std::byte*>(s.data()), s.size()});
  }
  [[nodiscard]] std::size_t size() const noexcept { return out_.size(); }
  std::vector<std::byte>& buffer() noexcept { return out_; }

 private:
  std::vector<std::byte>& out_;
};

// Every read checks the remaining length; a short or corrupt payload makes ok()
// false and every later read return zero values, so a caller checks once at the end.
class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> in) noexcept : in_(in) {}

  template <class T>
    requires std::is_trivially_copyable_v<T>
  T get() noexcept {
    T v{};
    if (!ok_ || in_.size() - pos_ < sizeof v) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, in_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::span<const std::byte> bytes(std::size_t n) noexcept {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view str() noexcept {
    auto n = get<std::uint32_t>();
    auto b = bytes(n);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }
  std::span<const std::byte> rest() noexcept { return bytes(in_.size() - pos_); }
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  [[nodiscard]] bool at_end() const noexcept { return ok_ && pos_ == in_.size(); }
  [[nodiscard]] std::size_t remaining() const noexcept { return ok_ ? in_.size() - pos_ : 0; }

 private:
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace taskfarm::detail
