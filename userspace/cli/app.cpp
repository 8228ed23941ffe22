// ztsegctl's command tree, shared by main() (ztsegctl.cpp) and the tests.
#include "cli/command.hpp"
#include "cli/completion.hpp"
#include "cli/fleet_commands.hpp"
#include "cli/usage.hpp"

namespace ztseg::cli {

void addCommands(CLI::App& app, Commands& cmds) {
    app.description("ztsegctl: ztseg's operator CLI (policy, flows, the local ztsegd)");
    app.require_subcommand(1);
    app.footer(
        "Exit codes: 0 ok, 1 input errors (or warnings with --strict), 2 usage, 3 failure "
        "(I/O, daemon unreachable or refusing), 4 whatif: flows would newly be denied, 5 status: "
        "ztsegd stopped but its pinned datapath still enforces, 6 status: ztsegd stopped and "
        "nothing enforced.");
    addPolicyCommands(app, cmds);
    addDaemonCommands(app, cmds);
    addFlowCommands(app, cmds);
    addAnalysisCommands(app, cmds);
    addMapCommands(app, cmds);
    addRuleCommands(app, cmds);
    addFleetCommands(app);  // keygen, sign, verify, fleet ...: run from their callbacks
    addCompletionCommand(app, cmds, "ztsegctl");
    // Before any command runs: warn about deprecated flag spellings, refuse
    // one together with its current spelling (usage.hpp).
    app.parse_complete_callback([&app] { checkDeprecatedAliases(app); });
}

}  // namespace ztseg::cli
