// ztsegctl's usage errors (exit 2, docs/ztsegctl.md): an unknown command or
// option is named with the closest known one ("did you mean"), a command run
// without what it needs says what it needs, and old flag spellings keep
// working as hidden, deprecated aliases (docs/ztsegctl.md#flag-conventions).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace ztseg::cli {

// A usage error found after CLI11 parsed the command line (a deprecated and
// a current spelling together, --pick outside the file): main() prints
// "ztsegctl: <what>" and exits 2.
class UsageError : public CLI::ParseError {
  public:
    explicit UsageError(std::string what);
};

// Edits between two words: insertions, deletions, substitutions and swaps of
// two neighbouring letters (optimal string alignment distance).
size_t editDistance(std::string_view a, std::string_view b);

// The candidates a mistyped `word` most likely meant: the nearest by
// editDistance (case and leading dashes not counted) when that is at most 1
// for words up to 4 letters, 2 for longer ones, 0 for one or two letters;
// several when they tie (none when more than three do).
std::vector<std::string> closestWords(const std::string& word,
                                      const std::vector<std::string>& candidates);

// What command `path` ("apply", "fleet flows") needs to run, as one line with
// its synopsis; empty for commands that need nothing.
std::string whatItNeeds(const std::string& path);

// Prints "ztsegctl: <whatItNeeds(path)>" and returns the usage exit code.
int reportMissingInput(const std::string& path);

// `old_name` (one spelling: "-b" or "--bundle") on `cmd`: a hidden,
// deprecated spelling of `current` that sets the same `target` and is
// checked like it. Using it warns on stderr; giving both is a usage error.
void addDeprecatedAlias(CLI::App* cmd, const std::string& old_name, CLI::Option* current,
                        std::string& target);

// Runs on the whole tree once the command line is parsed, before any
// command: warns about the deprecated spellings used, throws UsageError when
// one is given together with its current spelling. addCommands() installs it.
void checkDeprecatedAliases(const CLI::App& app);

// What main() does with a failed parse: --help and --version print and exit
// 0; everything else is one line on stderr (an unknown word with its nearest
// known one, a missing input with what the command needs, else CLI11's
// message) and exit 2. `args` is argv without the program name.
int reportParseError(const CLI::App& app, const CLI::ParseError& e,
                     const std::vector<std::string>& args);

}  // namespace ztseg::cli
