// `ztsegctl explain --live`: the explanation `explain` gives from policy
// files, judged instead from a compiled bundle (the one a running ztsegd
// holds) the way the datapath judges: parties resolved to identities (labels,
// or an address by longest prefix in the bundle's inventory), compiled rule
// entries matched by identity, protocol and port, deny beats allow, default
// deny, audit mode reported as would-drop. Checked against the reference
// evaluator on the example policies (tests/policy/compiled_judge_test.cpp).
#pragma once

#include <string>

#include "policy/compiler.hpp"
#include "policy/explain.hpp"

namespace ztseg::policy {

class CompiledJudge final : public SideJudge {
  public:
    explicit CompiledJudge(const CompiledPolicy& cp) : cp_(cp) {}  // keeps a reference

    // "key=value[,...]" (the one workload or external identity carrying
    // them) or an address / range. Throws Error like explainFlow does.
    Party resolve(const std::string& text) const;

    Evaluation evaluate(const Party& local, const Party& peer, Direction dir, uint8_t protocol,
                        uint16_t port) const override;
    std::string ruleRef(uint32_t id) const override;

  private:
    const IdentityInfo* identityOf(const Party& p) const;
    Party partyOf(const IdentityInfo& id, std::string text) const;
    std::string ownerText(IdentityId id) const;
    const CompiledPolicy& cp_;
};

// explainFlow's answer from a compiled policy.
Explanation explainCompiled(const CompiledPolicy& cp, const std::string& from,
                            const std::string& to, const std::string& service,
                            const std::vector<FailsafeRule>& failsafe = {});

}  // namespace ztseg::policy
