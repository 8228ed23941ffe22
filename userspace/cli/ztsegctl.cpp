// ztsegctl: the operator CLI. Policy commands (compile, check, explain) and
// the flow analysis commands (whatif, suggest) work offline on files; status,
// apply, rollback and flows talk to the local ztsegd; keygen/sign/verify work
// on keys and bundles; fleet talks to ztseg-controller (docs/ztsegctl.md).
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/command.hpp"
#include "common/version.hpp"

int main(int argc, char** argv) {
    using namespace ztseg::cli;
    spdlog::set_level(spdlog::level::warn);
    CLI::App app;
    app.set_version_flag("--version", ztseg::versionLine("ztsegctl"));
    Commands cmds;
    addCommands(app, cmds);
    try {
        app.parse(argc, argv);
    } catch (const CLI::RuntimeError& e) {
        return e.get_exit_code();  // a command run from its callback failed
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? kExitOk : kExitUsage;  // --help is a ParseError too
    }
    if (!cmds.selected()) {
        return kExitOk;  // a callback-run command finished (failures throw above)
    }
    try {
        return cmds.run();
    } catch (const std::exception& e) {
        std::cerr << "ztsegctl: " << e.what() << "\n";
        return kExitFailed;
    }
}
