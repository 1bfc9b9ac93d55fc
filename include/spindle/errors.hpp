// spindle's exceptions.
//
// Everything derives from spindle::Error (a std::exception) except Cancelled,
// which derives from nothing in std: `catch (const std::exception&)` must not
// swallow a cancellation by accident, just as asyncio.CancelledError is a
// BaseException and not an Exception.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace spindle {

// Base of every spindle error except Cancelled.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown at a task's suspension point when the task was cancelled, and by
// result()/get()/exception() of a cancelled future. Carries the message given
// to cancel(msg).
class Cancelled {
 public:
  Cancelled() = default;
  explicit Cancelled(std::string message) : message_(std::move(message)) {}
  const std::string& message() const noexcept { return message_; }
  const char* what() const noexcept { return message_.empty() ? "Cancelled" : message_.c_str(); }

 private:
  std::string message_;
};

// A deadline passed (wait_for, timeout, as_completed).
class TimeoutError : public Error {
 public:
  TimeoutError() : Error("timed out") {}
  explicit TimeoutError(const std::string& what) : Error(what) {}
};

// An operation is not allowed in the object's current state: result() of a
// pending future, set_result() twice, use of an empty handle, a task awaiting
// itself, spawn/sleep with no runtime.
class InvalidStateError : public Error {
 public:
  explicit InvalidStateError(const std::string& what) : Error(what) {}
};

// Several failures reported together (task_group). what() lists each one.
class ExceptionGroup : public Error {
 public:
  ExceptionGroup(std::string message, std::vector<std::exception_ptr> exceptions);
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

 private:
  std::vector<std::exception_ptr> exceptions_;
};

class QueueEmpty : public Error {
 public:
  QueueEmpty() : Error("queue is empty") {}
};
class QueueFull : public Error {
 public:
  QueueFull() : Error("queue is full") {}
};
class QueueShutDown : public Error {
 public:
  QueueShutDown() : Error("queue is shut down") {}
};
class BrokenBarrierError : public Error {
 public:
  BrokenBarrierError() : Error("barrier is broken") {}
};

// A one-line description of any exception_ptr: the what() of a std::exception,
// "Cancelled(msg)" for a cancellation, "unknown exception" otherwise.
std::string describe_exception(const std::exception_ptr& e);

}  // namespace spindle
