#include "cli/flow_history.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "cli/completion.hpp"
#include "cli/flow_files.hpp"
#include "shared/flow_stream.hpp"

namespace ztseg::cli {

void addFlowFileOptions(CLI::App* cmd, std::vector<std::string>& files, bool& strict) {
    cmd->add_option("--file", files,
                    "read OCSF flow files instead of the daemon ('-' = standard input)")
        ->type_name(kFileType);
    cmd->add_flag("--strict", strict, kStrictFlowsHelp);
}

FlowWindow flowsFromFiles(const std::vector<std::string>& files, bool strict, const FlowQuery& q) {
    FlowWindow kept(q);
    forEachFlowInFiles(files, strict, [&](const flows::FlowRecord& r, const std::string& line) {
        if (q.matches(r)) {
            kept.add({r, line, std::nullopt});
        }
    });
    return kept;
}

FlowWindow flowsFromDaemon(DaemonClient& c, const FlowQuery& q, int64_t* seen_until) {
    FlowWindow kept(q);
    auto ctx = DaemonClient::context();
    auto reader = c.stub().Flows(ctx.get(), q.request(false));
    v1::FlowEvent e;
    while (reader->Read(&e)) {
        if (seen_until) {
            *seen_until = std::max(*seen_until, e.time_unix_nanos());
        }
        flows::FlowRecord r = fromFlowEvent(e);
        if (q.matches(r) && !kept.add({r, e.ocsf_json(), e})) {
            ctx->TryCancel();  // --first N: the rest is not needed
            break;
        }
    }
    if (!(q.first && kept.kept().size() >= q.first)) {
        c.check(reader->Finish(), "flows");
    }
    return kept;
}

}  // namespace ztseg::cli
