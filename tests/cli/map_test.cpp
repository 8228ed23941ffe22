// ztsegctl map rendered by the real Graphviz (`dot`, Debian package
// graphviz, which `make deps` installs), and its error when dot is missing.
// The DOT text itself: golden_test.cpp (map-*.dot) and tests/flows/flow_map_test.cpp.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "integration/ztseg_process.hpp"

namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

const fs::path kSource = ZTSEG_SOURCE_DIR;

bool dotInstalled() {
    return runCommand({"/bin/sh", "-c", "command -v dot"}).status == 0;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

class CliMap : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / uniqueName("ztmap");
        fs::create_directories(dir_);
        fs::current_path(kSource);
    }
    void TearDown() override { fs::remove_all(dir_); }
    fs::path dir_;
};

TEST_F(CliMap, SvgThroughGraphviz) {
    if (!dotInstalled()) {
        GTEST_SKIP() << "Graphviz's dot is not installed (apt-get install graphviz)";
    }
    fs::path svg = dir_ / "map.svg";
    CommandResult r = runCommand({ZTSEGCTL_PATH, "map", "--file", "tests/cli/data/enforce.jsonl",
                                  "-o", "svg", "--out", svg.string()},
                                 nullptr, std::chrono::seconds(60), true);
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    EXPECT_EQ(r.output, "");
    std::string text = slurp(svg);
    EXPECT_EQ(text.rfind("<?xml", 0), 0u) << text.substr(0, 200);
    EXPECT_NE(text.find("<svg"), std::string::npos);
    EXPECT_NE(text.find("</svg>"), std::string::npos);
    // Graphviz titles each edge "src->dst" (escaped) and prints the labels.
    EXPECT_NE(text.find("<title>web&#45;&gt;api</title>"), std::string::npos);
    EXPECT_NE(text.find("<title>unlabeled&#45;&gt;db</title>"), std::string::npos);
    EXPECT_NE(text.find("tcp/8080 ×1"), std::string::npos);

    fs::path png = dir_ / "map.png";
    r = runCommand({ZTSEGCTL_PATH, "map", "--file", "tests/cli/data/enforce.jsonl", "-o", "png",
                    "--out", png.string()},
                   nullptr, std::chrono::seconds(60), true);
    ASSERT_EQ(r.status, 0) << r.errors;
    EXPECT_EQ(slurp(png).substr(1, 3), "PNG");
}

TEST_F(CliMap, DotToAFile) {
    fs::path out = dir_ / "map.dot";
    CommandResult r = runCommand(
        {ZTSEGCTL_PATH, "map", "--file", "tests/cli/data/enforce.jsonl", "--out", out.string()},
        nullptr, std::chrono::seconds(60), true);
    ASSERT_EQ(r.status, 0) << r.errors;
    EXPECT_EQ(r.output, "");
    EXPECT_EQ(slurp(out), slurp(kSource / "tests/cli/golden/map-enforce.dot"));
}

TEST_F(CliMap, WithoutGraphvizSaysWhichPackage) {
    CommandResult r = runCommand(
        {"/usr/bin/env", "PATH=" + dir_.string(), ZTSEGCTL_PATH, "map", "--file",
         "tests/cli/data/enforce.jsonl", "-o", "svg", "--out", (dir_ / "map.svg").string()},
        nullptr, std::chrono::seconds(60), true);
    EXPECT_EQ(r.status, 3) << r.errors;
    EXPECT_NE(r.errors.find("not installed (Debian package graphviz"), std::string::npos)
        << r.errors;
    EXPECT_FALSE(fs::exists(dir_ / "map.svg"));
}

}  // namespace
}  // namespace ztseg::test
