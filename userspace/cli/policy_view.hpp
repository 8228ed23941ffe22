// The policy a host (or the controller) holds, shown to people and scripts
// (`ztsegctl policy show`, `fleet policy show`), and what a candidate would
// change against it (`ztsegctl diff`, `apply --dry-run`).
#pragma once

#include <cstdint>
#include <string>

#include "agent.pb.h"
#include "model/failsafe.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/policy_diff.hpp"

namespace ztseg::cli {

// A bundle as a running ztsegd or the controller reported it.
struct HeldPolicy {
    policy::CompiledPolicy policy;
    policy::BundleMeta meta;
    std::string holder;  // "ztsegd on web-1", "controller of fleet lab"
    std::string signer;  // key id; "" = not signed / not checked
    bool signatures_checked = false;
    int64_t in_force_since_unix_ms = 0;
    std::vector<FailsafeRule> failsafe;  // the holder's failsafe rules (ztsegd only)
};

// Decodes a PolicyReply's bundle (envelope or plain, not verified here: the
// holder verified it when it admitted it). Throws Error if it does not parse.
HeldPolicy heldPolicy(const v1::PolicyReply& reply, std::string holder, bool signatures_checked);

// What the local ztsegd on `socket` enforces now (throws Error like every
// daemon command when it cannot be asked).
HeldPolicy localPolicy(const std::string& socket);

std::string policyText(const HeldPolicy& p);
std::string policyJson(const HeldPolicy& p);

std::string diffText(const policy::PolicyDiff& d);
std::string diffJson(const policy::PolicyDiff& d);

}  // namespace ztseg::cli
