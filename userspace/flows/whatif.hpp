// `ztsegctl whatif`: replays recorded flows against a candidate policy and
// reports every flow whose verdict would change, grouped by who talks to whom
// on which service — the check before switching a workload to enforce.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "flows/flow_record.hpp"
#include "policy/model.hpp"

namespace ztseg::flows {

// What a change does to the traffic, in report order.
enum class Change {
    NewlyDenied,     // passes today (allowed or would-drop), the candidate drops it
    NewlyWouldDrop,  // allowed today, the candidate passes it only in audit mode
    NewlyAllowed,    // dropped or would-drop today, the candidate allows it
    NewlyAudited,    // dropped today, the candidate passes it in audit mode
};
std::string_view changeName(Change c);  // "newly-denied", "newly-would-drop", ...

struct WhatifGroup {
    Change change = Change::NewlyDenied;
    std::string from, to, service;  // "app=web", "app=db", "5432/tcp"
    std::string at;                 // the judged end: "ingress at app=db"
    std::string before, after;      // recorded verdict, candidate verdict
    std::string reason;             // the candidate's reason, e.g. "default-deny"
    std::string because;            // the candidate's explanation, with file:line
    size_t flows = 0;               // flow events in the group
    std::chrono::system_clock::time_point first{}, last{};
};

struct WhatifReport {
    size_t events = 0;      // recorded events read
    size_t judged = 0;      // of them, policy decisions (new flows)
    size_t unchanged = 0;   // judged events with the same verdict
    size_t not_judged = 0;  // replies, related ICMP, malformed ...: follow their flow
    size_t covered = 0;     // judged events with a workload of the candidate at either end
    std::vector<WhatifGroup> changes;  // newly denied first; within, most flows first

    size_t count(Change c) const;  // flow events with this change
};

WhatifReport whatif(const policy::PolicySet& candidate, const std::vector<FlowRecord>& flows);

}  // namespace ztseg::flows
