// ztsegctl's fleet commands: keygen and sign (bundle signatures), and the
// controller client: fleet status, fleet reload, fleet flows.
#pragma once

namespace CLI {
class App;
}

namespace ztseg::cli {

// Registers the subcommands; each runs from its CLI11 callback and reports
// failure by throwing CLI::RuntimeError with the exit code (3).
void addFleetCommands(CLI::App& app);

}  // namespace ztseg::cli
