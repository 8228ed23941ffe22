// Shell completion and the command list, generated from ztsegctl's own CLI11
// tree so they cannot drift from it: `ztsegctl completion bash` prints the
// bash completion script the package installs, `ztsegctl completion commands`
// every subcommand path (the man page includes each one's --help).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli/command.hpp"

namespace ztseg::cli {

// Option values and positionals that are paths say so with their type name;
// the completion script completes file names for them.
inline constexpr const char* kFileType = "FILE";  // a file (or a prefix of files)
inline constexpr const char* kPathType = "PATH";  // a file or a directory

// Every visible subcommand as its path from the top ("status", "fleet flows"),
// depth first in definition order. Hidden subcommands (empty group) are left out.
std::vector<std::string> commandPaths(const CLI::App& app);

// A bash completion script for `program`: subcommands, options, the choices
// of IsMember options, file names for FILE and PATH values and positionals.
std::string bashCompletion(const CLI::App& app, const std::string& program);

// The hidden `completion` subcommand (bash | commands) of `program`.
void addCompletionCommand(CLI::App& app, Commands& cmds, const std::string& program);

}  // namespace ztseg::cli
