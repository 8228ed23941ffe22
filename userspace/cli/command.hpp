// ztsegctl's subcommands are registered by topic (policy, daemon, flows,
// analysis); main() only wires the groups together and runs the chosen one.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace ztseg::cli {

// Exit codes of every ztsegctl command (docs/ztsegctl.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitInputErrors = 1;  // policy or flow input has errors (--strict: warnings)
inline constexpr int kExitUsage = 2;        // bad option or argument
inline constexpr int kExitFailed = 3;       // I/O, daemon unreachable, request refused
inline constexpr int kExitWouldDeny = 4;    // whatif: a flow that passes today would be dropped
// status, ztsegd not running: its pinned datapath still enforces (5), or
// nothing is pinned and nothing is enforced (6).
inline constexpr int kExitStoppedEnforcing = 5;
inline constexpr int kExitNothingEnforced = 6;

// The subcommand that was chosen and what running it means.
class Commands {
  public:
    using Run = std::function<int()>;
    // Runs `run` if `sub` is the subcommand given on the command line.
    void on(CLI::App* sub, Run run) {
        sub->callback([this, run = std::move(run)] { selected_ = run; });
    }
    int run() const { return selected_ ? selected_() : kExitUsage; }
    // False for commands that ran from their own CLI11 callback (fleet ...).
    bool selected() const { return bool(selected_); }

  private:
    Run selected_;
};

// The whole of ztsegctl: description, footer and every command group below
// (app.cpp). main() and the tests build the same tree with it.
void addCommands(CLI::App& app, Commands& cmds);

void addPolicyCommands(CLI::App& app, Commands& cmds);    // compile, check, explain
void addDaemonCommands(CLI::App& app, Commands& cmds);    // status, apply, rollback, uninstall
void addFlowCommands(CLI::App& app, Commands& cmds);      // flows
void addAnalysisCommands(CLI::App& app, Commands& cmds);  // whatif, suggest
void addMapCommands(CLI::App& app, Commands& cmds);       // map
void addRuleCommands(CLI::App& app, Commands& cmds);      // rules

}  // namespace ztseg::cli
