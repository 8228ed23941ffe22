// Wall-clock time as the APIs and logs carry it: milliseconds (or seconds)
// since the Unix epoch.
#pragma once

#include <chrono>
#include <cstdint>

namespace ztseg {

inline int64_t unixMillis() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

inline int64_t unixSeconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace ztseg
