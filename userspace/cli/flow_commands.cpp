// flows: what talks to what, from the local ztsegd (history or --follow) or
// from a flow file, as a table, OCSF JSON lines or protobuf JSON.
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <memory>

#include "agent/api_server.hpp"
#include "cli/command.hpp"
#include "cli/completion.hpp"
#include "cli/daemon_client.hpp"
#include "cli/flow_files.hpp"
#include "cli/flow_history.hpp"
#include "cli/flow_output.hpp"
#include "cli/flow_query.hpp"
#include "cli/flow_text.hpp"
#include "cli/status_text.hpp"
#include "common/error.hpp"
#include "flows/ocsf_reader.hpp"
#include "shared/flow_stream.hpp"

namespace ztseg::cli {
namespace {

struct FlowsArgs {
    FlowQueryArgs query;
    FlowOutputArgs output;
    std::vector<std::string> files;
    bool strict = false;
    bool follow = false;
    std::string socket;
};

int fromFiles(const FlowsArgs& a, const FlowQuery& q) {
    if (a.follow) {
        std::cerr << "ztsegctl: --follow streams from ztsegd; it does not apply to --file\n";
        return kExitUsage;
    }
    FlowWindow kept = flowsFromFiles(a.files, a.strict, q);
    FlowPrinter out(a.output, false, false);
    for (const auto& s : kept.kept()) out.print(s);
    out.finish();
    return kExitOk;
}

int fromDaemon(const FlowsArgs& a, const FlowQuery& q) {
    DaemonClient c(a.socket);
    // The daemon's recent history (filtered there and here), last N of it.
    int64_t seen_until = 0;  // newest history event, ns
    FlowWindow kept = flowsFromDaemon(c, q, &seen_until);
    FlowPrinter out(a.output, a.follow, false);
    // Following without --last shows only what happens from now on.
    if (!a.follow || q.last) {
        for (const auto& s : kept.kept()) out.print(s);
    }
    if (!a.follow) {
        out.finish();
        return kExitOk;
    }
    auto ctx = DaemonClient::context(std::chrono::seconds(0));
    auto reader = c.stub().Flows(ctx.get(), q.request(true));
    v1::FlowEvent e;
    while (reader->Read(&e)) {
        if (e.time_unix_nanos() <= seen_until) {
            continue;  // history already shown
        }
        flows::FlowRecord r = fromFlowEvent(e);
        if (q.matches(r)) {
            out.print({r, e.ocsf_json(), e});
        }
    }
    c.check(reader->Finish(), "flows --follow");
    return kExitOk;
}

}  // namespace

void addFlowCommands(CLI::App& app, Commands& cmds) {
    auto a = std::make_shared<FlowsArgs>();
    CLI::App* cmd = app.add_subcommand(
        "flows",
        "flow events from the local ztsegd (-f to follow) or from flow files (--file), filtered "
        "like hubble observe");
    addFlowQueryOptions(cmd, a->query);
    addFlowFileOptions(cmd, a->files, a->strict);
    cmd->add_flag("-f,--follow", a->follow, "keep streaming new flows from the daemon");
    addFlowOutputOptions(cmd, a->output);
    addSocketOption(cmd, a->socket);
    cmds.on(cmd, [a] {
        FlowQuery q;
        try {
            q = FlowQuery::parse(a->query, std::chrono::system_clock::now());
        } catch (const Error& e) {
            std::cerr << "ztsegctl: " << e.what() << "\n";
            return kExitUsage;
        }
        if (a->follow && (q.first || q.until)) {
            std::cerr << "ztsegctl: --first and --until end a listing; they do not go with "
                         "--follow\n";
            return kExitUsage;
        }
        return a->files.empty() ? fromDaemon(*a, q) : fromFiles(*a, q);
    });
}

}  // namespace ztseg::cli
