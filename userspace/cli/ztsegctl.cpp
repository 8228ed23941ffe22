// ztsegctl: the operator CLI. Policy commands (compile, check, explain) and
// the flow analysis commands (whatif, suggest) work offline on files; status,
// apply, rollback and flows talk to the local ztsegd (docs/ztsegctl.md).
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/command.hpp"

int main(int argc, char** argv) {
    using namespace ztseg::cli;
    spdlog::set_level(spdlog::level::warn);
    CLI::App app{"ztsegctl: ztseg's operator CLI (policy, flows, the local ztsegd)"};
    app.require_subcommand(1);
    app.footer(
        "Exit codes: 0 ok, 1 input errors (or warnings with --strict), 2 usage, 3 failure "
        "(I/O, daemon unreachable or refusing), 4 whatif: flows would newly be denied.");
    Commands cmds;
    addPolicyCommands(app, cmds);
    addDaemonCommands(app, cmds);
    addFlowCommands(app, cmds);
    addAnalysisCommands(app, cmds);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? kExitOk : kExitUsage;  // --help is a ParseError too
    }
    try {
        return cmds.run();
    } catch (const std::exception& e) {
        std::cerr << "ztsegctl: " << e.what() << "\n";
        return kExitFailed;
    }
}
