// `raw_sockets: allow|deny` on a policy: parsed with its place, compiled into
// the identities allowed raw sockets (any selecting policy's allow grants
// them), carried by the bundle (and absent from older ones: refused), and
// into the datapath generation.
#include <gtest/gtest.h>

#include <algorithm>

#include "bundle.pb.h"
#include "datapath/slot_content.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

namespace ztseg::policy {
namespace {

// Lines 1-7: two workloads.
const std::string kWorkloads =
    "workloads:\n"
    "  - name: sniffer\n"
    "    labels: {app: sniffer}\n"
    "    addresses: [10.9.0.1]\n"
    "  - name: web\n"
    "    labels: {app: web}\n"
    "    addresses: [10.9.0.2]\n";

// A policy selecting app=`app`, with `extra` lines (indented 4) after its selector.
std::string policy(const std::string& name, const std::string& app, const std::string& extra) {
    return "  - name: " + name + "\n    selector: {matchLabels: {app: " + app + "}}\n" + extra;
}

PolicySet parse(const std::string& text, Diagnostics& diags) {
    return parsePolicies({{"test.yaml", text}}, diags);
}

CompiledPolicy compileText(const std::string& text, Diagnostics& diags) {
    PolicySet ps = parse(text, diags);
    return compile(ps, 7, diags);
}

const CompiledWorkload& workload(const CompiledPolicy& cp, const std::string& name) {
    auto it = std::find_if(cp.workloads.begin(), cp.workloads.end(),
                           [&](const CompiledWorkload& w) { return w.name == name; });
    if (it == cp.workloads.end()) {
        throw Error("no workload " + name);
    }
    return *it;
}

// The one error of `text`: its place and message.
void expectError(const std::string& text, const std::string& loc, const std::string& msg) {
    Diagnostics diags;
    try {
        parse(text, diags);
        ADD_FAILURE() << "no error for:\n" << text;
    } catch (const PolicyError& e) {
        ASSERT_EQ(e.diagnostics().size(), 1u) << e.what();
        const Diagnostic& d = e.diagnostics().front();
        EXPECT_EQ(d.loc.str(), loc) << d.str();
        EXPECT_NE(d.message.find(msg), std::string::npos) << d.str();
    }
}

TEST(RawSocketsField, AllowDenyAndAbsent) {
    Diagnostics diags;
    PolicySet ps =
        parse(kWorkloads + "policies:\n" + policy("a", "sniffer", "    raw_sockets: allow\n") +
                  policy("b", "web", "    raw_sockets: deny\n") + policy("c", "web", ""),
              diags);
    ASSERT_EQ(ps.policies.size(), 3u);
    EXPECT_EQ(ps.policies[0].raw_sockets, std::optional<bool>(true));
    EXPECT_EQ(ps.policies[1].raw_sockets, std::optional<bool>(false));
    EXPECT_EQ(ps.policies[2].raw_sockets, std::nullopt);
}

TEST(RawSocketsField, InvalidValueIsALocatedError) {
    // policies: at line 8, the policy at 9, its raw_sockets value at 11:18.
    expectError(kWorkloads + "policies:\n" + policy("a", "sniffer", "    raw_sockets: yes\n"),
                "test.yaml:11:18", "unknown raw_sockets value 'yes' (expected allow or deny)");
    expectError(kWorkloads + "policies:\n" + policy("a", "sniffer", "    raw_sockets: [allow]\n"),
                "test.yaml:11:18", "expected 'raw_sockets' to be a single value");
    expectError(kWorkloads + "policies:\n" +
                    policy("a", "sniffer", "    raw_sockets: allow\n    raw_sockets: deny\n"),
                "test.yaml:12:5",
                "duplicate field 'raw_sockets' in policy (first at test.yaml:11:5)");
}

TEST(RawSocketsField, OnlyWorkloadsOfAnAllowingPolicyGetRawSockets) {
    Diagnostics diags;
    CompiledPolicy cp =
        compileText(kWorkloads + "policies:\n" +
                        policy("a", "sniffer", "    raw_sockets: allow\n") + policy("b", "web", ""),
                    diags);
    EXPECT_FALSE(diags.hasErrors()) << diags.str();
    const CompiledWorkload& sniffer = workload(cp, "sniffer");
    const CompiledWorkload& web = workload(cp, "web");
    EXPECT_TRUE(sniffer.raw_sockets);
    EXPECT_FALSE(web.raw_sockets);
    EXPECT_EQ(cp.raw_sockets, std::set<IdentityId>{sniffer.identity});

    // Into the generation, and from there into the endpoint's identity flags.
    Generation g = cp.toGeneration({{11, sniffer.identity}, {12, web.identity}});
    EXPECT_EQ(g.raw_sockets, cp.raw_sockets);
    SlotContent slot = buildSlotContent(g, {});
    ASSERT_EQ(slot.endpoints.size(), 2u);
    EXPECT_EQ(slot.endpoints[0].value.flags, ZTSEG_IDF_ENFORCE | ZTSEG_IDF_RAW_SOCKETS);
    EXPECT_EQ(slot.endpoints[1].value.flags, ZTSEG_IDF_ENFORCE);
}

TEST(RawSocketsField, AuditModeWorkloadsKeepTheirGrant) {
    Diagnostics diags;
    CompiledPolicy cp =
        compileText(kWorkloads + "policies:\n" +
                        policy("a", "sniffer", "    mode: audit\n    raw_sockets: allow\n"),
                    diags);
    const CompiledWorkload& sniffer = workload(cp, "sniffer");
    EXPECT_EQ(sniffer.mode, WorkloadMode::Audit);
    EXPECT_TRUE(sniffer.raw_sockets);
    EXPECT_EQ(identityFlags(cp.toGeneration(), sniffer.identity),
              ZTSEG_IDF_AUDIT | ZTSEG_IDF_RAW_SOCKETS);
}

TEST(RawSocketsField, AllowWinsOverAnotherPolicysDenyWithAWarning) {
    Diagnostics diags;
    CompiledPolicy cp = compileText(kWorkloads + "policies:\n" +
                                        policy("allows", "sniffer", "    raw_sockets: allow\n") +
                                        policy("denies", "sniffer", "    raw_sockets: deny\n"),
                                    diags);
    EXPECT_TRUE(workload(cp, "sniffer").raw_sockets);
    ASSERT_EQ(diags.all().size(), 1u) << diags.str();
    const Diagnostic& w = diags.all().front();
    EXPECT_EQ(w.severity, Diagnostic::Severity::Warning);
    EXPECT_EQ(w.loc.str(), "test.yaml:12:5");
    EXPECT_NE(w.message.find("policy 'denies' says raw_sockets: deny, but policy 'allows' "
                             "(test.yaml:9:5) allows raw sockets"),
              std::string::npos)
        << w.message;
}

TEST(RawSocketsField, BundleRoundTripAndOlderBundles) {
    Diagnostics diags;
    CompiledPolicy cp =
        compileText(kWorkloads + "policies:\n" +
                        policy("a", "sniffer", "    raw_sockets: allow\n") + policy("b", "web", ""),
                    diags);
    std::string bytes = serializeBundle(cp);
    CompiledPolicy back = parseBundle(bytes);
    EXPECT_EQ(back.raw_sockets, cp.raw_sockets);
    EXPECT_TRUE(workload(back, "sniffer").raw_sockets);
    EXPECT_FALSE(workload(back, "web").raw_sockets);
    EXPECT_EQ(serializeBundle(back), bytes);

    // A bundle from before the field: nobody gets raw sockets.
    v1::Bundle older;
    ASSERT_TRUE(older.ParseFromString(bytes));
    for (auto& w : *older.mutable_workloads()) {
        w.clear_raw_sockets();
    }
    CompiledPolicy old = parseBundle(deterministicBytes(older));
    EXPECT_TRUE(old.raw_sockets.empty());
    EXPECT_FALSE(workload(old, "sniffer").raw_sockets);

    // Raw sockets on an unmanaged workload mean nothing and grant nothing.
    v1::Bundle odd = older;
    for (auto& w : *odd.mutable_workloads()) {
        if (w.name() == "web") {
            w.set_mode(v1::MODE_UNMANAGED);
            w.set_raw_sockets(true);
        }
    }
    CompiledPolicy o = parseBundle(deterministicBytes(odd));
    EXPECT_TRUE(o.raw_sockets.empty());
    EXPECT_FALSE(workload(o, "web").raw_sockets);
}

}  // namespace
}  // namespace ztseg::policy
