#include "common/error.hpp"

#include <cstring>

namespace ztseg {

void throwErrno(const std::string& what, int err) {
    throw Error(what + ": " + std::strerror(err < 0 ? -err : err));
}

}  // namespace ztseg
