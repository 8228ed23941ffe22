// Confirm windows ("apply --confirm-within 60s", agent/confirm_window.hpp,
// the controller's rollout.confirm_within_ms): how they are written and
// their bounds, the same for ztsegctl, ztsegd and ztseg-controller.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>

#include "common/error.hpp"

namespace ztseg {

inline constexpr uint32_t kMaxConfirmWindowMs = 24u * 3600 * 1000;  // a day

// "60s", "2m", "1500ms": how windows are named in log lines and errors.
inline std::string formatWindow(uint32_t ms) {
    if (ms != 0 && ms % 60000 == 0) {
        return std::to_string(ms / 60000) + "m";
    }
    if (ms % 1000 == 0) {
        return std::to_string(ms / 1000) + "s";
    }
    return std::to_string(ms) + "ms";
}

// "30s", "2m", "1h", "500ms" (a bare number is seconds) -> milliseconds.
// Throws Error for anything else, 0, or more than a day.
inline uint32_t parseConfirmWindow(const std::string& text) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    const std::string unit(end, text.data() + text.size());
    uint64_t scale = unit == "ms"                  ? 1
                     : unit == "s" || unit.empty() ? 1000
                     : unit == "m"                 ? 60000
                     : unit == "h"                 ? 3600000
                                                   : 0;
    if (ec != std::errc() || end == text.data() || scale == 0) {
        throw Error("confirm window '" + text + "': expected a duration such as 30s, 2m or 1h");
    }
    if (n == 0) {
        throw Error("confirm window '" + text +
                    "': must be longer than 0 (leave the option out to apply without one)");
    }
    if (n > kMaxConfirmWindowMs / scale) {
        throw Error("confirm window '" + text + "': longer than the limit of " +
                    formatWindow(kMaxConfirmWindowMs));
    }
    if (n * scale < 1000) {
        throw Error("confirm window '" + text +
                    "': shorter than 1s leaves no time to confirm anything");
    }
    return uint32_t(n * scale);
}

}  // namespace ztseg
