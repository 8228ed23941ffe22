// The record of a pending confirmation in ztsegd's state_dir (agent/
// confirm_window.hpp writes it; ztsegctl status reads it while ztsegd is
// stopped): a header line, one "key value" line per field, "end".
#pragma once

#include <cstdint>
#include <string>

#include "shared/confirm_duration.hpp"

namespace ztseg {

inline constexpr const char* kPendingConfirmFile = "pending-confirm";

struct PendingConfirm {
    uint64_t generation = 0;  // in force, not confirmed
    uint64_t return_to = 0;   // the last confirmed generation
    int64_t deadline_unix_ms = 0;
    uint32_t window_ms = 0;  // as the apply that set the deadline asked
    bool operator==(const PendingConfirm&) const = default;
};

// The record's text: a header line, then one "key value" line per field.
std::string formatPending(const PendingConfirm& p);
// Throws Error naming what is wrong (torn, garbage, a field missing or out of range).
PendingConfirm parsePending(const std::string& text);

}  // namespace ztseg
