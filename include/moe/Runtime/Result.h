//===- Result.h - Value-or-error results of the runtime ---------*- C++ -*-===//
//
// The runtime builds without exceptions: every fallible operation returns a
// Result<T> holding either a value or a one-line error message, or a Status
// holding only the message. Messages name the file and the problem, e.g.
// "ckpt/model.safetensors: header length 4096 exceeds the 100 bytes after it".
//
//===----------------------------------------------------------------------===//

#ifndef MOE_RUNTIME_RESULT_H
#define MOE_RUNTIME_RESULT_H

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace moe::runtime {

/// Escapes, as \xNN, the bytes of text taken from a file or a command line
/// that could break a message's single line or act on a terminal: C0
/// controls, DEL, malformed UTF-8, C1 controls, bidirectional controls and
/// line/paragraph separators. Other UTF-8 is kept. Every message that quotes
/// input quotes it through printable().
std::string printable(std::string_view text);

/// True when printable(text) == text: nothing in `text` needs escaping.
bool isPrintable(std::string_view text);

/// What kind of failure a Status holds (moe_status of the C API): callers
/// that drive a GPU tell "no GPU here" from "the GPU failed".
enum class StatusCode {
  Ok = 0,
  /// A bad argument, file, checkpoint or module.
  Error = 1,
  /// No CUDA driver, no GPU, or no such device.
  CudaUnavailable = 2,
  /// A CUDA call failed (out of memory, a kernel launch, a copy).
  CudaError = 3,
};

/// The outcome of an operation without a value: success or an error message.
class [[nodiscard]] Status {
public:
  /// Returns a successful status.
  static Status success() { return Status(); }
  /// Returns a failed status carrying `message`.
  static Status failure(std::string message,
                        StatusCode code = StatusCode::Error) {
    Status s;
    s.failed = true;
    s.message = std::move(message);
    s.errorCode = code == StatusCode::Ok ? StatusCode::Error : code;
    return s;
  }

  /// True on success.
  bool ok() const { return !failed; }
  /// True on success.
  explicit operator bool() const { return ok(); }
  /// The error message; empty on success.
  const std::string &error() const { return message; }
  /// The kind of failure; Ok on success.
  StatusCode code() const { return errorCode; }
  /// The same failure with `prefix` before its message.
  Status withContext(const std::string &prefix) const {
    return ok() ? *this : failure(prefix + message, errorCode);
  }

private:
  Status() = default;
  bool failed = false;
  std::string message;
  StatusCode errorCode = StatusCode::Ok;
};

/// Either a value of type T or an error message.
template <typename T> class [[nodiscard]] Result {
public:
  /// Wraps a value.
  Result(T value) : value(std::move(value)) {}
  /// Converts a failed status into a failed result.
  Result(Status status) : message(status.error()), errorCode(status.code()) {
    assert(!status.ok() && "a Result needs a value or an error");
  }
  /// Returns a failed result carrying `message`.
  static Result failure(std::string message) {
    return Result(Status::failure(std::move(message)));
  }

  /// True when a value is present.
  bool ok() const { return value.has_value(); }
  /// True when a value is present.
  explicit operator bool() const { return ok(); }
  /// The error message; empty when a value is present.
  const std::string &error() const { return message; }
  /// The error as a status (success when a value is present).
  Status status() const {
    return ok() ? Status::success() : Status::failure(message, errorCode);
  }
  /// The kind of failure; Ok when a value is present.
  StatusCode code() const { return ok() ? StatusCode::Ok : errorCode; }

  /// The value; only valid when ok().
  T &operator*() { return *value; }
  /// The value; only valid when ok().
  const T &operator*() const { return *value; }
  /// Member access on the value; only valid when ok().
  T *operator->() { return &*value; }
  /// Member access on the value; only valid when ok().
  const T *operator->() const { return &*value; }
  /// Moves the value out; only valid when ok().
  T take() { return std::move(*value); }

private:
  std::optional<T> value;
  std::string message;
  StatusCode errorCode = StatusCode::Ok;
};

} // namespace moe::runtime

#endif // MOE_RUNTIME_RESULT_H
