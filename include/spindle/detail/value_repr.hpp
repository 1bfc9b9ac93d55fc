// Not API. Formats a result for repr(): strings quoted like Python's repr,
// anything streamable as it streams, other types by name only.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>

namespace spindle::detail {

template <class T, class = void>
struct IsStreamable : std::false_type {};
template <class T>
struct IsStreamable<
    T, std::void_t<decltype(std::declval<std::ostream&>() << std::declval<const T&>())>>
    : std::true_type {};

template <class T>
void write_value_repr(std::ostream& os, const T& v) {
  if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    os << '\'' << std::string_view(v) << '\'';
  } else if constexpr (std::is_same_v<T, bool>) {
    os << (v ? "True" : "False");
  } else if constexpr (IsStreamable<T>::value) {
    os << v;
  } else {
    os << "<object>";
  }
}

}  // namespace spindle::detail
