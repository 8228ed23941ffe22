// map: the workload graph of a flow file or of the local ztsegd's recent
// flows, filtered like `flows`, as DOT, SVG or PNG.
#include "cli/map_commands.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/completion.hpp"
#include "cli/daemon_client.hpp"
#include "cli/flow_files.hpp"
#include "cli/flow_history.hpp"
#include "cli/flow_query.hpp"
#include "common/error.hpp"
#include "flows/flow_map.hpp"

extern char** environ;

namespace ztseg::cli {
namespace {

int failed(const std::string& msg) {
    std::cerr << "ztsegctl: map: " << msg << "\n";
    return kExitFailed;
}

// `dot -T<format> -o <out>`, the DOT text on its standard input.
int runDot(const std::string& format, const std::string& out, const std::string& dot) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return failed(std::string("pipe: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[0], STDIN_FILENO);
    std::string type = "-T" + format;
    std::vector<char*> argv{const_cast<char*>("dot"), type.data(), const_cast<char*>("-o"),
                            const_cast<char*>(out.c_str()), nullptr};
    pid_t pid = 0;
    int err = posix_spawnp(&pid, "dot", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[0]);
    if (err != 0) {
        ::close(fds[1]);
        if (err == ENOENT) {
            return failed("-o " + format +
                          " needs Graphviz's `dot`, which is not installed (Debian package "
                          "graphviz: apt-get install graphviz); -o dot writes the DOT text "
                          "without it");
        }
        return failed(std::string("run dot: ") + std::strerror(err));
    }
    std::signal(SIGPIPE, SIG_IGN);  // dot exiting early is reported by its status
    size_t done = 0;
    while (done < dot.size()) {
        ssize_t n = ::write(fds[1], dot.data() + done, dot.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        done += size_t(n);
    }
    ::close(fds[1]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return failed("dot -T" + format + " -o " + out + " failed (" +
                      (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                         : std::string("killed")) +
                      ")");
    }
    return kExitOk;
}

struct MapArgs {
    FlowQueryArgs query;
    MapOutputArgs output;
    std::vector<std::string> files;
    bool strict = false;
    std::string socket;
};

std::string filesTitle(const std::vector<std::string>& files) {
    std::string t = "flow file" + std::string(files.size() > 1 ? "s" : "");
    for (const auto& f : files) t += " " + f;
    return t;
}

}  // namespace

void addMapOutputOptions(CLI::App* cmd, MapOutputArgs& a) {
    cmd->add_option("--group-by", a.group_by,
                    "one node per value of this label key (tier: tier=frontend, ...); "
                    "endpoints without it keep their own node")
        ->type_name("KEY");
    cmd->add_option("-o,--output", a.format,
                    "dot (Graphviz source), svg or png (rendered by Graphviz's dot; need --out)")
        ->check(CLI::IsMember({"dot", "svg", "png"}))
        ->capture_default_str();
    cmd->add_option("--out", a.out, "write the map to this file (default for dot: stdout)")
        ->type_name(kFileType);
}

bool mapOutputUsable(const MapOutputArgs& a) {
    if (a.format != "dot" && a.out.empty()) {
        std::cerr << "ztsegctl: map: -o " << a.format
                  << " writes a file: give --out FILE (or -o dot for the DOT text on stdout)\n";
        return false;
    }
    return true;
}

int writeMap(const MapOutputArgs& a, const std::deque<ShownFlow>& shown, const std::string& title) {
    std::vector<flows::FlowRecord> records;
    records.reserve(shown.size());
    for (const auto& s : shown) records.push_back(s.record);
    flows::FlowMapOptions opts;
    opts.group_by = a.group_by;
    std::string dot = flows::flowMapDot(flows::buildFlowMap(records, opts), title);
    if (a.format != "dot") {
        return runDot(a.format, a.out, dot);
    }
    if (a.out.empty()) {
        std::cout << dot;
        return kExitOk;
    }
    std::ofstream f(a.out, std::ios::binary | std::ios::trunc);
    if (!f.write(dot.data(), std::streamsize(dot.size())) || !f.flush()) {
        return failed("write " + a.out + ": " + std::strerror(errno));
    }
    return kExitOk;
}

void addMapCommands(CLI::App& app, Commands& cmds) {
    auto a = std::make_shared<MapArgs>();
    CLI::App* cmd = app.add_subcommand(
        "map",
        "who talks to whom: the workload graph of the local ztsegd's recent flows or of flow "
        "files (--file), filtered like flows, as DOT, SVG or PNG");
    addFlowQueryOptions(cmd, a->query);
    addFlowFileOptions(cmd, a->files, a->strict);
    addMapOutputOptions(cmd, a->output);
    addSocketOption(cmd, a->socket);
    cmds.on(cmd, [a] {
        FlowQuery q;
        try {
            q = FlowQuery::parse(a->query, std::chrono::system_clock::now());
        } catch (const Error& e) {
            std::cerr << "ztsegctl: " << e.what() << "\n";
            return kExitUsage;
        }
        if (!mapOutputUsable(a->output)) {
            return kExitUsage;
        }
        if (!a->files.empty()) {
            return writeMap(a->output, flowsFromFiles(a->files, a->strict, q).kept(),
                            filesTitle(a->files));
        }
        DaemonClient c(a->socket);
        return writeMap(a->output, flowsFromDaemon(c, q).kept(),
                        "recent flows of the local ztsegd");
    });
}

}  // namespace ztseg::cli
