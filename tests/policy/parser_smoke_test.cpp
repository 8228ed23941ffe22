// The shipped examples compile cleanly.
#include <gtest/gtest.h>

#include "policy/compiler.hpp"
#include "policy/parser.hpp"

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

}  // namespace
}  // namespace ztseg::policy
