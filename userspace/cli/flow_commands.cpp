// flows: what talks to what, from the local ztsegd (history or --follow) or
// from a flow file, as a table, OCSF JSON lines or protobuf JSON.
#include <grpcpp/grpcpp.h>

#include <deque>
#include <iostream>
#include <memory>

#include "agent/api_server.hpp"
#include "cli/command.hpp"
#include "cli/completion.hpp"
#include "cli/daemon_client.hpp"
#include "cli/flow_files.hpp"
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
    std::vector<std::string> files;
    bool strict = false;
    bool follow = false;
    std::string format = "table";
    std::string socket;
};

// One flow as given (a file's OCSF line, or the daemon's event).
struct Shown {
    flows::FlowRecord record;
    std::string ocsf;  // the OCSF line
    std::optional<v1::FlowEvent> event;
};

class FlowPrinter {
  public:
    FlowPrinter(std::string format, bool streaming)
        : format_(std::move(format)), table_(std::cout, streaming) {}

    void print(const Shown& s) {
        if (format_ == "table") {
            table_.add(s.record);
        } else if (format_ == "json") {
            std::cout << s.ocsf << "\n" << std::flush;
        } else {
            v1::FlowEvent ev = s.event ? *s.event : toFlowEvent(s.record);
            std::cout << protoJson(ev, false) << "\n" << std::flush;
        }
    }
    void finish() {
        if (format_ == "table") {
            table_.finish();
        }
    }

  private:
    std::string format_;
    FlowTable table_;
};

// Keeps the last N (or all, N = 0).
class LastN {
  public:
    explicit LastN(size_t n) : n_(n) {}
    void add(Shown s) {
        kept_.push_back(std::move(s));
        if (n_ && kept_.size() > n_) {
            kept_.pop_front();
        }
    }
    std::deque<Shown>& kept() { return kept_; }

  private:
    size_t n_;
    std::deque<Shown> kept_;
};

int fromFiles(const FlowsArgs& a, const FlowQuery& q) {
    if (a.follow) {
        std::cerr << "ztsegctl: --follow streams from ztsegd; it does not apply to --file\n";
        return kExitUsage;
    }
    LastN kept(q.last);
    forEachFlowInFiles(a.files, a.strict, [&](const flows::FlowRecord& r, const std::string& line) {
        if (q.matches(r)) {
            kept.add({r, line, std::nullopt});
        }
    });
    FlowPrinter out(a.format, false);
    for (const auto& s : kept.kept()) out.print(s);
    out.finish();
    return kExitOk;
}

int fromDaemon(const FlowsArgs& a, const FlowQuery& q) {
    DaemonClient c(a.socket);
    // The daemon's recent history (filtered there and here), last N of it.
    LastN kept(q.last);
    int64_t seen_until = 0;  // newest history event, ns
    {
        auto ctx = DaemonClient::context();
        auto reader = c.stub().Flows(ctx.get(), q.request(false));
        v1::FlowEvent e;
        while (reader->Read(&e)) {
            seen_until = std::max(seen_until, e.time_unix_nanos());
            flows::FlowRecord r = fromFlowEvent(e);
            if (q.matches(r)) {
                kept.add({r, e.ocsf_json(), e});
            }
        }
        c.check(reader->Finish(), "flows");
    }
    FlowPrinter out(a.format, a.follow);
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
    cmd->add_option("--file", a->files,
                    "read OCSF flow files instead of the daemon ('-' = standard input)")
        ->type_name(kFileType);
    cmd->add_flag("--strict", a->strict, kStrictFlowsHelp);
    cmd->add_flag("-f,--follow", a->follow, "keep streaming new flows from the daemon");
    cmd->add_option("-o,--output", a->format,
                    "table (for people), json (OCSF lines, as in the flow file), jsonpb "
                    "(the API's FlowEvent as protobuf JSON)")
        ->check(CLI::IsMember({"table", "json", "jsonpb"}))
        ->capture_default_str();
    addSocketOption(cmd, a->socket);
    cmds.on(cmd, [a] {
        FlowQuery q;
        try {
            q = FlowQuery::parse(a->query, std::chrono::system_clock::now());
        } catch (const Error& e) {
            std::cerr << "ztsegctl: " << e.what() << "\n";
            return kExitUsage;
        }
        return a->files.empty() ? fromDaemon(*a, q) : fromFiles(*a, q);
    });
}

}  // namespace ztseg::cli
