// The flow selection of `ztsegctl flows` and `ztsegctl fleet flows` (hubble
// observe's options): the filter (userspace/flows/filter.hpp, with --not)
// plus the time window and --first/--last. The same query selects from the
// daemon's stream, the controller's fleet log and a flow file.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "agent.pb.h"
#include "flows/filter.hpp"

namespace ztseg::cli {

struct FlowQueryArgs {
    // The filter options in command-line order ("--not", "--ip", "10.0.0.9",
    // ...): read from `cmd` when set (addFlowQueryOptions), else `filters`.
    const CLI::App* cmd = nullptr;
    std::vector<std::string> filters;
    std::string since, until;
    size_t first = 0, last = 0;
};
// Registers the filter options, --not, --since, --until, --first, --last.
void addFlowQueryOptions(CLI::App* cmd, FlowQueryArgs& a);

struct FlowQuery {
    flows::FlowSelection selection;
    std::optional<std::chrono::system_clock::time_point> since, until;
    size_t first = 0;  // 0 = all
    size_t last = 0;   // 0 = all

    // Throws Error naming the option and the value.
    static FlowQuery parse(const FlowQueryArgs& a, std::chrono::system_clock::time_point now);
    bool matches(const flows::FlowRecord& r) const;
    // What the daemon or controller can filter itself (the rest is filtered here).
    v1::FlowsRequest request(bool follow) const;
};

// "5m", "90s", "2h", "1d", or an RFC 3339 time ("2026-12-02T03:10:00Z").
// `option` names the flag in errors.
std::chrono::system_clock::time_point parseSince(const std::string& text,
                                                 std::chrono::system_clock::time_point now,
                                                 const std::string& option = "--since");

}  // namespace ztseg::cli
