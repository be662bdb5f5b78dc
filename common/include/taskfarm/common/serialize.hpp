#pragma once
// Encoding of task arguments and results with cereal.
//
// Two archives of our own, wire-compatible with cereal's BinaryArchive (native
// byte order, 64-bit sizes), write straight into / read straight out of byte
// buffers (no iostreams on the hot path). The input archive checks every size
// tag against the bytes that remain, so a corrupt or hostile payload can never
// make the decoder allocate more than the payload could possibly hold (every
// element of a container takes at least one byte on the wire; containers of
// empty types are therefore limited to as many elements as there are bytes left).

#include <cereal/cereal.hpp>
#include <cereal/types/array.hpp>
#include <cereal/types/chrono.hpp>
#include <cereal/types/map.hpp>
#include <cereal/types/optional.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/tuple.hpp>
#include <cereal/types/utility.hpp>
#include <cereal/types/vector.hpp>

#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskfarm/common/errors.hpp"

namespace taskfarm::detail {

class OutputArchive : public cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision> {
 public:
  explicit OutputArchive(std::vector<std::byte>& out)
      : cereal::OutputArchive<OutputArchive, cereal::AllowEmptyClassElision>(this), out_(out) {}

  void save_binary(const void* data, std::size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    out_.insert(out_.end(), p, p + size);
  }

 private:
  std::vector<std::byte>& out_;
};

class InputArchive : public cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision> {
 public:
  explicit InputArchive(std::span<const std::byte> in)
      : cereal::InputArchive<InputArchive, cereal::AllowEmptyClassElision>(this), in_(in) {}

  void load_binary(void* data, std::size_t size) {
    if (size > in_.size() - pos_)
      throw SerializationError("truncated data: needed " + std::to_string(size) +
                               " more bytes, " + std::to_string(in_.size() - pos_) + " left");
    if (size != 0) std::memcpy(data, in_.data() + pos_, size);
    pos_ += size;
  }
  // A container may not announce more elements than there are bytes left.
  void check_size(std::uint64_t n) const {
    if (n > in_.size() - pos_)
      throw SerializationError("corrupt data: a container claims " + std::to_string(n) +
                               " elements but only " + std::to_string(in_.size() - pos_) +
                               " bytes remain");
  }
  [[nodiscard]] std::size_t remaining() const noexcept { return in_.size() - pos_; }

 private:
  std::span<const std::byte> in_;
  std::size_t pos_ = 0;
};

template <class T>
  requires std::is_arithmetic_v<T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const T& t) {
  ar.save_binary(std::addressof(t), sizeof t);
}
// A bool on the wire is one byte, 0 or 1. Any other byte is corrupt data: copied
// into a bool as it is, it would make every later read of that bool undefined.
inline bool bool_from_wire(unsigned char b) {
  if (b > 1)
    throw SerializationError("corrupt data: a bool must be 0 or 1, found " + std::to_string(b));
  return b != 0;
}

template <class T>
  requires std::is_arithmetic_v<T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, T& t) {
  if constexpr (std::is_same_v<T, bool>) {
    static_assert(sizeof(bool) == 1, "a bool is one byte on the wire");
    unsigned char b = 0;
    ar.load_binary(&b, 1);
    t = bool_from_wire(b);
  } else {
    ar.load_binary(std::addressof(t), sizeof t);
  }
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::NameValuePair<T>& t) {
  ar(t.value);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::NameValuePair<T>& t) {
  ar(t.value);
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::SizeTag<T>& t) {
  ar(t.size);
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::SizeTag<T>& t) {
  ar(t.size);
  ar.check_size(static_cast<std::uint64_t>(t.size));
}
template <class T>
void CEREAL_SAVE_FUNCTION_NAME(OutputArchive& ar, const cereal::BinaryData<T>& bd) {
  ar.save_binary(bd.data, static_cast<std::size_t>(bd.size));
}
template <class T>
void CEREAL_LOAD_FUNCTION_NAME(InputArchive& ar, cereal::BinaryData<T>& bd) {
  ar.load_binary(bd.data, static_cast<std::size_t>(bd.size));
}

}  // namespace taskfarm::detail

CEREAL_REGISTER_ARCHIVE(taskfarm::detail::OutputArchive)
CEREAL_REGISTER_ARCHIVE(taskfarm::detail::InputArchive)
CEREAL_SETUP_ARCHIVE_TRAITS(taskfarm::detail::InputArchive, taskfarm::detail::OutputArchive)

namespace taskfarm {

namespace detail {
// Arithmetic values and strings are the bulk of small task arguments. They are
// written directly, byte for byte as cereal's binary archive writes them (value
// bytes; u64 length + characters), skipping the construction of a cereal archive
// (several hash tables) per value.
template <class T>
inline constexpr bool kFastCodable =
    std::is_arithmetic_v<T> || std::is_same_v<T, std::string>;

template <class T>
void fast_encode(std::vector<std::byte>& out, const T& v) {
  if constexpr (std::is_arithmetic_v<T>) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + sizeof v);
  } else {
    const std::uint64_t n = v.size();
    const auto* p = reinterpret_cast<const std::byte*>(&n);
    out.insert(out.end(), p, p + sizeof n);
    const auto* c = reinterpret_cast<const std::byte*>(v.data());
    out.insert(out.end(), c, c + v.size());
  }
}

// Reads one value at `pos`, advancing it. Throws SerializationError.
template <class T>
void fast_decode(std::span<const std::byte> in, std::size_t& pos, T& v) {
  auto need = [&](std::uint64_t n) {
    if (n > in.size() - pos)
      throw SerializationError("truncated data: needed " + std::to_string(n) + " more bytes, " +
                               std::to_string(in.size() - pos) + " left");
  };
  if constexpr (std::is_same_v<T, bool>) {
    need(1);
    v = bool_from_wire(static_cast<unsigned char>(in[pos]));
    pos += 1;
  } else if constexpr (std::is_arithmetic_v<T>) {
    need(sizeof v);
    std::memcpy(&v, in.data() + pos, sizeof v);
    pos += sizeof v;
  } else {
    std::uint64_t n;
    need(sizeof n);
    std::memcpy(&n, in.data() + pos, sizeof n);
    pos += sizeof n;
    need(n);
    v.assign(reinterpret_cast<const char*>(in.data() + pos), n);
    pos += n;
  }
}

inline void check_consumed(std::span<const std::byte> in, std::size_t pos, const char* what) {
  if (pos != in.size())
    throw SerializationError(std::to_string(in.size() - pos) + what);
}
}  // namespace detail

// Appends the encoding of each value to `out`. Throws SerializationError.
template <class... Ts>
void encode_into(std::vector<std::byte>& out, const Ts&... values) {
  if constexpr ((detail::kFastCodable<Ts> && ...)) {
    (detail::fast_encode(out, values), ...);
  } else {
    try {
      detail::OutputArchive ar(out);
      (ar(values), ...);
    } catch (const SerializationError&) {
      throw;
    } catch (const std::exception& e) {
      throw SerializationError(std::string("cannot encode value: ") + e.what());
    }
  }
}

template <class... Ts>
[[nodiscard]] std::vector<std::byte> encode(const Ts&... values) {
  std::vector<std::byte> out;
  encode_into(out, values...);
  return out;
}

// Decodes exactly one T from `in`; trailing bytes are an error (they mean the two
// sides disagree about the type). Throws SerializationError.
template <class T>
[[nodiscard]] T decode(std::span<const std::byte> in) {
  static_assert(std::is_default_constructible_v<T>,
                "taskfarm decodes arguments and results into default-constructed values");
  T value{};
  if constexpr (detail::kFastCodable<T>) {
    std::size_t pos = 0;
    detail::fast_decode(in, pos, value);
    detail::check_consumed(in, pos, " bytes left over after decoding: the sender encoded a different type");
  } else {
    try {
      detail::InputArchive ar(in);
      ar(value);
      if (ar.remaining() != 0)
        throw SerializationError(std::to_string(ar.remaining()) +
                                 " bytes left over after decoding: the sender encoded a different type");
    } catch (const SerializationError&) {
      throw;
    } catch (const std::exception& e) {
      throw SerializationError(std::string("cannot decode value: ") + e.what());
    }
  }
  return value;
}

namespace detail {
template <class Tuple>
struct AllFast;
template <class... Ts>
struct AllFast<std::tuple<Ts...>> : std::bool_constant<(kFastCodable<Ts> && ...)> {};
}  // namespace detail

// Decodes the elements of a tuple one after another (how arguments travel).
template <class Tuple>
[[nodiscard]] Tuple decode_args(std::span<const std::byte> in) {
  Tuple t{};
  if constexpr (detail::AllFast<Tuple>::value) {
    std::size_t pos = 0;
    std::apply([&](auto&... elems) { (detail::fast_decode(in, pos, elems), ...); }, t);
    detail::check_consumed(in, pos, " argument bytes left over: the caller passed different argument types");
  } else {
    try {
      detail::InputArchive ar(in);
      std::apply([&ar](auto&... elems) { (ar(elems), ...); }, t);
      if (ar.remaining() != 0)
        throw SerializationError(std::to_string(ar.remaining()) +
                                 " argument bytes left over: the caller passed different argument types");
    } catch (const SerializationError&) {
      throw;
    } catch (const std::exception& e) {
      throw SerializationError(std::string("cannot decode arguments: ") + e.what());
    }
  }
  return t;
}

}  // namespace taskfarm
