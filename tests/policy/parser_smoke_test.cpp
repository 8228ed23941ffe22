// The shipped examples compile cleanly; policy files are found the same way everywhere.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/error.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"
#include "policy/sources.hpp"

namespace ztseg::policy {
namespace {

TEST(Examples, ShippedPoliciesCompileWithoutErrors) {
    Diagnostics diags;
    PolicySet ps = loadPolicies({std::string(ZTSEG_SOURCE_DIR) + "/policies"}, diags);
    CompiledPolicy cp = compile(ps, 1, diags);
    EXPECT_FALSE(cp.workloads.empty());
    EXPECT_FALSE(cp.rules.empty());
    EXPECT_FALSE(diags.hasErrors()) << diags.str();
}

// The one definition of a policy file under a directory (ztsegctl, ztsegd and
// the controller's change detection all use it): *.yaml and *.yml at any
// depth, nothing else, in path order.
TEST(PolicyFiles, RecursiveYamlOnlySorted) {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("ztseg-policyfiles-" + std::to_string(::getpid()));
    struct Cleanup {
        fs::path p;
        ~Cleanup() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } cleanup{dir};
    fs::create_directories(dir / "b" / "deep");
    for (const char* f : {"z.yaml", "a.yml", "b/deep/c.yaml", "notes.txt", "b/x.yaml.bak"}) {
        std::ofstream(dir / f) << "workloads: []\n";
    }
    std::vector<fs::path> want = {dir / "a.yml", dir / "b/deep/c.yaml", dir / "z.yaml"};
    EXPECT_EQ(policyFilesIn(dir), want);
    EXPECT_THROW(policyFilesIn(dir / "missing"), Error);
}

}  // namespace
}  // namespace ztseg::policy
