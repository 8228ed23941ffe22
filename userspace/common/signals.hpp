// Daemons (ztsegd, ztseg-controller) read SIGTERM, SIGINT and SIGHUP from a
// signalfd in their loop.
#pragma once

#include "common/unique_fd.hpp"

namespace ztseg {

// Blocks SIGTERM, SIGINT and SIGHUP for the calling thread (and every thread
// it starts afterwards: call it before starting any) and returns a
// non-blocking signalfd that reports them. Throws Error on failure.
UniqueFd daemonSignals();

}  // namespace ztseg
