// `ztsegctl status` while ztsegd is stopped: enforcement outlives the daemon
// (everything is pinned), so status says what the pinned datapath still
// enforces, read without changing it (inspectPinned), and names workloads
// from the bundle ztsegd recorded in its state directory.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "datapath/datapath_inspect.hpp"
#include "shared/confirm_record.hpp"

namespace ztseg::cli {

struct StoppedStatus {
    std::string socket;     // where ztsegd did not answer
    std::string pin_dir;    // what was inspected
    std::string state_dir;  // where the recorded bundle was looked for
    // nullopt: nothing pinned, nothing enforced. Cgroup paths relative to
    // the cgroup2 mount, as the running status has them ("" if gone).
    std::optional<PinnedDatapath> pinned;
    // Workload names by identity, from the recorded bundle when it is the
    // active generation's; otherwise empty and names_unavailable says why.
    std::map<IdentityId, std::string> names;
    std::string names_unavailable;
    // A confirm window ztsegd left open: nobody rolls back while it is
    // stopped; it does so when it starts (at once if the deadline passed).
    std::optional<PendingConfirm> confirm_pending;
    std::string confirm_unreadable;  // the record exists but does not parse: why
};

// Reads the pins and the recorded bundle; writes nothing. Throws Error if the
// pins exist but cannot be read.
StoppedStatus readStoppedStatus(const std::string& socket, const std::string& pin_dir,
                                const std::string& state_dir);

std::string stoppedStatusText(const StoppedStatus& s);
// One JSON object; the fields it shares with the running status's JSON have
// the same names and types (64-bit numbers as strings).
std::string stoppedStatusJson(const StoppedStatus& s);

}  // namespace ztseg::cli
