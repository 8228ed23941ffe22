// ztsegctl: the operator CLI. Policy commands (compile, check, explain) and
// the flow analysis commands (whatif, suggest) work offline on files; status,
// apply, rollback and flows talk to the local ztsegd; keygen/sign/verify work
// on keys and bundles; fleet talks to ztseg-controller (docs/ztsegctl.md).
#include <spdlog/spdlog.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/command.hpp"
#include "cli/usage.hpp"
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
        // --help is a ParseError too; usage errors say what was meant (usage.hpp).
        return reportParseError(app, e, std::vector<std::string>(argv + 1, argv + argc));
    }
    if (!cmds.selected()) {
        return kExitOk;  // a callback-run command finished (failures throw above)
    }
    try {
        return cmds.run();
    } catch (const UsageError& e) {
        std::cerr << "ztsegctl: " << e.what() << "\n";
        return kExitUsage;
    } catch (const std::exception& e) {
        std::cerr << "ztsegctl: " << e.what() << "\n";
        return kExitFailed;
    }
}
