// The flow selection of `ztsegctl flows` (hubble observe's options): the
// server-side FlowFilter (userspace/flows/filter.hpp) plus what only the
// client can judge (identities, names, --since, --last). The same query
// selects from the daemon's stream and from a flow file.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "flows/filter.hpp"

namespace ztseg::cli {

struct FlowQueryArgs {
    std::vector<std::string> verdict, from, to, from_label, to_label, from_ip, to_ip, port,
        protocol;
    std::string direction, since;
    size_t last = 0;
};
void addFlowQueryOptions(CLI::App* cmd, FlowQueryArgs& a);

struct FlowQuery {
    flows::FlowFilter filter;
    std::set<IdentityId> from_ids, to_ids;
    std::set<std::string> from_names, to_names;  // workload / external names
    std::optional<std::chrono::system_clock::time_point> since;
    size_t last = 0;  // 0 = all

    // Throws Error naming the option and the value.
    static FlowQuery parse(const FlowQueryArgs& a, std::chrono::system_clock::time_point now);
    bool matches(const flows::FlowRecord& r) const;
    // What the daemon can filter itself.
    v1::FlowsRequest request(bool follow) const;
};

// "5m", "90s", "2h", "1d", or an RFC 3339 time ("2026-12-02T03:10:00Z").
std::chrono::system_clock::time_point parseSince(const std::string& text,
                                                 std::chrono::system_clock::time_point now);

}  // namespace ztseg::cli
