// The bash completion script and the command list that packaging generates
// from ztsegctl's CLI11 tree (userspace/cli/completion.cpp): every subcommand
// is in the script, bash accepts it, and completing in a real bash gives the
// expected words.
#include "cli/completion.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace ztseg::cli {
namespace {

// Every visible subcommand of the tree as (parent path, name), walked here
// with CLI11 directly rather than with the code under test.
std::vector<std::pair<std::string, std::string>> subcommandsOf(const CLI::App& app) {
    std::vector<std::pair<std::string, std::string>> all;
    std::function<void(const std::string&, const CLI::App*)> visit = [&](const std::string& path,
                                                                         const CLI::App* a) {
        for (const CLI::App* s :
             a->get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); })) {
            all.emplace_back(path, s->get_name());
            visit(path.empty() ? s->get_name() : path + " " + s->get_name(), s);
        }
    };
    visit("", &app);
    return all;
}

std::set<std::string> words(const std::string& s) {
    std::istringstream in(s);
    std::set<std::string> w;
    for (std::string x; in >> x;) w.insert(x);
    return w;
}

std::string run(const std::string& cmd, int* status) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) {
        *status = -1;
        return out;
    }
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
    *status = ::pclose(p);
    return out;
}

class Completion : public ::testing::Test {
  protected:
    void SetUp() override {
        addCommands(app_, cmds_);
        script_ = bashCompletion(app_, "ztsegctl");
        std::string tmpl = (fs::temp_directory_path() / "ztseg-completion-XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        std::ofstream(dir_ / "ztsegctl.bash") << script_;
    }
    void TearDown() override { fs::remove_all(dir_); }

    // COMPREPLY of bash with the script sourced, completing the last word of
    // `line` (a trailing space completes an empty word).
    std::set<std::string> complete(const std::string& line) {
        std::vector<std::string> w;
        std::istringstream in(line);
        for (std::string x; in >> x;) w.push_back(x);
        if (line.empty() || line.back() == ' ') {
            w.emplace_back();
        }
        std::string array;
        for (const auto& x : w) array += " '" + x + "'";
        std::string cmd = "cd '" + dir_.string() + "' && bash --norc --noprofile -c \"source '" +
                          (dir_ / "ztsegctl.bash").string() + "'; COMP_WORDS=(" + array +
                          "); COMP_CWORD=" + std::to_string(w.size() - 1) +
                          "; _ztsegctl; printf '%s\\n' \\\"\\${COMPREPLY[@]}\\\"\" 2>&1";
        int status = 0;
        std::string out = run(cmd, &status);
        EXPECT_EQ(status, 0) << cmd << "\n" << out;
        std::set<std::string> got;
        std::istringstream lines(out);
        for (std::string l; std::getline(lines, l);) {
            if (!l.empty()) {
                got.insert(l);
            }
        }
        return got;
    }

    CLI::App app_;
    Commands cmds_;
    std::string script_;
    fs::path dir_;
};

TEST_F(Completion, EverySubcommandIsOfferedUnderItsParent) {
    auto subs = subcommandsOf(app_);
    ASSERT_GE(subs.size(), 15u) << "the walk found too few subcommands to mean anything";
    for (const auto& [parent, name] : subs) {
        std::string key = "        \"" + parent + "\") REPLY=\"";
        size_t at = script_.find(key);
        ASSERT_NE(at, std::string::npos) << "no subcommand list for '" << parent << "'";
        std::string list = script_.substr(at + key.size());
        list = list.substr(0, list.find('"'));
        EXPECT_TRUE(words(list).count(name)) << "'" << name << "' missing under '" << parent << "'";
    }
    // The paths the man page documents are the same tree.
    std::vector<std::string> paths = commandPaths(app_);
    EXPECT_EQ(paths.size(), subs.size());
    for (const char* p :
         {"status", "apply", "flows", "map", "fleet", "fleet flows", "fleet map", "uninstall"}) {
        EXPECT_NE(std::find(paths.begin(), paths.end(), p), paths.end()) << p;
    }
}

TEST_F(Completion, HiddenCompletionCommandIsNotOffered) {
    auto paths = commandPaths(app_);
    EXPECT_EQ(std::find(paths.begin(), paths.end(), "completion"), paths.end());
    EXPECT_EQ(complete("ztsegctl com"), (std::set<std::string>{"compile"}));
}

TEST_F(Completion, BashAcceptsTheScriptAndRegistersIt) {
    int status = 0;
    std::string out = run("bash -n '" + (dir_ / "ztsegctl.bash").string() + "' 2>&1", &status);
    EXPECT_EQ(status, 0) << out;
    out = run("bash --norc -c \"source '" + (dir_ / "ztsegctl.bash").string() +
                  "' && complete -p ztsegctl\" 2>&1",
              &status);
    EXPECT_EQ(status, 0) << out;
    EXPECT_NE(out.find("complete -F _ztsegctl ztsegctl"), std::string::npos) << out;
}

TEST_F(Completion, SubcommandsByPrefix) {
    EXPECT_EQ(complete("ztsegctl fl"), (std::set<std::string>{"fleet", "flows"}));
    EXPECT_EQ(complete("ztsegctl flo"), (std::set<std::string>{"flows"}));
    EXPECT_EQ(complete("ztsegctl fleet st"), (std::set<std::string>{"status"}));
    EXPECT_EQ(complete("ztsegctl fleet "),
              (std::set<std::string>{"flows", "map", "policy", "reload", "rules", "status"}));
    EXPECT_EQ(complete("ztsegctl pol"), (std::set<std::string>{"policy"}));
    EXPECT_EQ(complete("ztsegctl policy "), (std::set<std::string>{"show"}));
    EXPECT_EQ(complete("ztsegctl apply --dr"), (std::set<std::string>{"--dry-run"}));
}

TEST_F(Completion, OptionsOfTheSubcommand) {
    EXPECT_EQ(complete("ztsegctl status --o"), (std::set<std::string>{"--output"}));
    EXPECT_EQ(complete("ztsegctl whatif --fl"), (std::set<std::string>{"--flows"}));
    // An option's value is skipped; a flag takes none.
    EXPECT_EQ(complete("ztsegctl apply -g 7 --fl"), (std::set<std::string>{"--fleet"}));
    EXPECT_EQ(complete("ztsegctl keygen --force --ou"), (std::set<std::string>{"--out"}));
    EXPECT_EQ(complete("ztsegctl fleet flows --fol"), (std::set<std::string>{"--follow"}));
}

// Deprecated spellings (compile -b/--bundle/--output-format, keygen -o,
// sign -b/--bundle-out) still parse but are never offered.
TEST_F(Completion, DeprecatedSpellingsAreNotOffered) {
    EXPECT_EQ(complete("ztsegctl compile --o"), (std::set<std::string>{"--out", "--output"}));
    EXPECT_TRUE(complete("ztsegctl compile --b").empty());
    EXPECT_EQ(complete("ztsegctl check --o"), (std::set<std::string>{"--output"}));
    EXPECT_EQ(complete("ztsegctl sign --"), (std::set<std::string>{"--help", "--key", "--out"}));
    EXPECT_EQ(complete("ztsegctl keygen --"),
              (std::set<std::string>{"--help", "--out", "--force"}));
    std::set<std::string> keygen_short = complete("ztsegctl keygen -");
    EXPECT_EQ(keygen_short.count("-o"), 0u);
    EXPECT_EQ(script_.find("--bundle-out"), std::string::npos);
    EXPECT_EQ(script_.find("--output-format"), std::string::npos);
}

TEST_F(Completion, ChoicesOfIsMemberOptions) {
    EXPECT_EQ(complete("ztsegctl status -o "), (std::set<std::string>{"text", "json"}));
    EXPECT_EQ(complete("ztsegctl flows --output js"), (std::set<std::string>{"json", "jsonpb"}));
}

TEST_F(Completion, FileNamesForPathOptionsAndPositionals) {
    std::ofstream(dir_ / "bundle.pb") << "x";
    fs::create_directories(dir_ / "policies");
    EXPECT_EQ(complete("ztsegctl apply --bundle bu"), (std::set<std::string>{"bundle.pb"}));
    EXPECT_EQ(complete("ztsegctl compile po"), (std::set<std::string>{"policies"}));
    EXPECT_EQ(complete("ztsegctl whatif --flows bun"), (std::set<std::string>{"bundle.pb"}));
    // Not a path: no file names.
    EXPECT_TRUE(complete("ztsegctl explain --from bu").empty());
}

}  // namespace
}  // namespace ztseg::cli
