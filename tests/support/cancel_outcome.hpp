// How a call ended, for tests of cancellation: whether it threw Cancelled,
// and with which message.
#pragma once

#include <concepts>
#include <exception>
#include <string>

#include <spindle/spindle.hpp>

namespace spindle::testing {

// True if f() throws Cancelled; false if it returns.
template <class F>
bool throws_cancelled(F&& f) {
  try {
    f();
  } catch (const Cancelled&) {
    return true;
  }
  return false;
}

// The message of the Cancelled that fn() throws, or "<no Cancelled>" if it
// returns.
template <class F>
requires std::invocable<F&> std::string cancelled_message(F&& fn) {
  try {
    fn();
  } catch (const Cancelled& c) {
    return c.message();
  }
  return "<no Cancelled>";
}

// The message of the Cancelled in `e`, or "<not Cancelled>" if `e` holds
// something else.
inline std::string cancelled_message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled& c) {
    return c.message();
  } catch (...) {
    return "<not Cancelled>";
  }
}

}  // namespace spindle::testing
