// The one error-handling scheme of ztseg: every failure throws ztseg::Error
// whose message names what was being done, to which object, and why (errno
// text, verifier output). Process boundaries (main, API handlers, test
// fixtures) catch it; nothing in between returns error codes.
#pragma once

#include <stdexcept>
#include <string>

namespace ztseg {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A request that would not fit a map: refused before anything is written.
class CapacityError : public Error {
  public:
    using Error::Error;
};

// "<what>: <strerror(err)>"; err is a positive errno value.
[[noreturn]] void throwErrno(const std::string& what, int err);

}  // namespace ztseg
