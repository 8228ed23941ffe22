// The flows a query selects from flow files or from the local ztsegd's
// recent history (not following): what `ztsegctl flows` lists and `ztsegctl
// map` draws. The fleet log's counterpart is in fleet_commands.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/daemon_client.hpp"
#include "cli/flow_output.hpp"
#include "cli/flow_query.hpp"

namespace ztseg::cli {

// --file FILE... and --strict: where a command reads flows instead of the daemon.
void addFlowFileOptions(CLI::App* cmd, std::vector<std::string>& files, bool& strict);

// The matching events of the files, --first/--last applied.
FlowWindow flowsFromFiles(const std::vector<std::string>& files, bool strict, const FlowQuery& q);
// The daemon's history, filtered there and here, --first/--last applied.
// `seen_until`: the newest history event's time (ns), for a follow-up stream.
FlowWindow flowsFromDaemon(DaemonClient& c, const FlowQuery& q, int64_t* seen_until = nullptr);

}  // namespace ztseg::cli
