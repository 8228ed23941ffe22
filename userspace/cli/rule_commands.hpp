// `rules` and `fleet rules` share their options and output.
#pragma once

#include <string>
#include <vector>

#include "agent.pb.h"

namespace CLI {
class App;
}

namespace ztseg::cli {

struct RuleListArgs {
    std::string format = "text";
    std::string sort = "rule";
    bool unused = false;
    std::string since;
    std::vector<std::string> removal_paths;
};
void addRuleListOptions(CLI::App* cmd, RuleListArgs& a);
// Throws UsageError for option combinations that make no sense.
void checkRuleListArgs(const RuleListArgs& a);
// Prints the listing (or, with --suggest-removal, the diff); the exit code.
int printRuleListing(const v1::RulesReply& reply, const RuleListArgs& a, const std::string& holder);

}  // namespace ztseg::cli
