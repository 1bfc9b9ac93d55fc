#include <spindle/errors.hpp>

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <typeinfo>

#include "debug.hpp"

namespace spindle {
namespace {

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

std::string group_message(const std::string& message,
                          const std::vector<std::exception_ptr>& exceptions) {
  std::string what = message + " (" + std::to_string(exceptions.size()) + " sub-exception" +
                     (exceptions.size() == 1 ? "" : "s") + ")";
  for (std::size_t i = 0; i < exceptions.size(); ++i) {
    what += "\n  [" + std::to_string(i + 1) + "] " + describe_exception(exceptions[i]);
  }
  return what;
}

}  // namespace

ExceptionGroup::ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions)
    : Error(group_message(message, exceptions)), exceptions_(std::move(exceptions)) {}

std::string describe_exception(const std::exception_ptr& e) {
  if (!e) {
    return "None";
  }
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled& c) {
    return "Cancelled('" + c.message() + "')";
  } catch (const std::exception& ex) {
    return demangle(typeid(ex).name()) + "('" + ex.what() + "')";
  } catch (...) {
    return "unknown exception";
  }
}

namespace detail {

void assert_fail(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "spindle: internal invariant broken: %s\n  %s at %s:%d\n", msg, expr, file,
               line);
  std::abort();
}

void fatal(const char* msg) {
  std::fprintf(stderr, "%s\n", msg);
  std::abort();
}

}  // namespace detail
}  // namespace spindle
