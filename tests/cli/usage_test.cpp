// ztsegctl's usage helpers (userspace/cli/usage.cpp): the distance behind
// "did you mean", which words it suggests, and the "needs" table against the
// real command tree.
#include "cli/usage.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cli/command.hpp"
#include "cli/completion.hpp"

namespace ztseg::cli {
namespace {

using Words = std::vector<std::string>;

TEST(UsageDistance, SwappedNeighboursAreOneEdit) {
    EXPECT_EQ(editDistance("flwos", "flows"), 1u);
    EXPECT_EQ(editDistance("stauts", "status"), 1u);
    EXPECT_EQ(editDistance("lables", "label"), 2u);
    EXPECT_EQ(editDistance("", "abc"), 3u);
    EXPECT_EQ(editDistance("same", "same"), 0u);
}

TEST(UsageClosest, NearestWithinTheLimitAndTies) {
    EXPECT_EQ(closestWords("--lables", {"--label", "--ip", "--port"}), Words{"--label"});
    EXPECT_EQ(closestWords("flwos", {"status", "reload", "flows"}), Words{"flows"});
    // Too far off to be a typo.
    EXPECT_TRUE(closestWords("frobnicate", {"compile", "check", "explain"}).empty());
    // Up to four letters: one edit at most.
    EXPECT_TRUE(closestWords("flo", {"status"}).empty());
    EXPECT_EQ(closestWords("stat", {"status", "start"}), Words{"start"});
    // One letter: only its other case, never any other letter.
    EXPECT_TRUE(closestWords("-x", {"-o", "-h"}).empty());
    EXPECT_EQ(closestWords("-O", {"-o", "-h"}), Words{"-o"});
    // Ties are all named.
    EXPECT_EQ(closestWords("--fron", {"--from", "--fro", "--to"}), (Words{"--from", "--fro"}));
}

// Every command with a required input has a "needs" line, and each line
// names its command and how to call it.
TEST(UsageNeeds, EveryCommandWithRequiredInputSaysWhatItNeeds) {
    CLI::App app;
    Commands cmds;
    addCommands(app, cmds);
    for (const std::string& path : commandPaths(app)) {
        const CLI::App* cmd = &app;
        std::string rest = path;
        for (size_t at; !rest.empty(); rest = at == std::string::npos ? "" : rest.substr(at + 1)) {
            at = rest.find(' ');
            cmd = cmd->get_subcommand(rest.substr(0, at));
        }
        bool required =
            !cmd->get_options([](const CLI::Option* o) { return o->get_required(); }).empty();
        std::string need = whatItNeeds(path);
        if (required) {
            EXPECT_FALSE(need.empty()) << path << " has a required input but no needs line";
        }
        if (!need.empty()) {
            EXPECT_EQ(need.rfind(path + " needs ", 0), 0u) << need;
            EXPECT_NE(need.find("ztsegctl " + path + " "), std::string::npos) << need;
        }
    }
    for (const char* p : {"apply", "explain"}) {  // required in code, not by CLI11
        EXPECT_FALSE(whatItNeeds(p).empty()) << p;
    }
}

}  // namespace
}  // namespace ztseg::cli
