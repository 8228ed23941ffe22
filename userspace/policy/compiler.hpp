// PolicySet -> compiled policy: numeric identities for every label set and
// address range, the address inventory, per-workload modes, and rules with
// identities resolved (what Datapath::apply consumes).
//
// Identities are deterministic and stable: an identity is a hash of its
// canonical label set, so the same labels get the same number on every
// compile and host, whatever the file order, and changing one workload's labels
// renumbers nobody else (collisions are probed in canonical-label order).
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "model/types.hpp"
#include "policy/diagnostics.hpp"
#include "policy/model.hpp"

namespace ztseg::policy {

enum class IdentityKind { Reserved, Workload, External, Cidr };
std::string_view identityKindName(IdentityKind k);

struct IdentityInfo {
    IdentityId id = 0;
    IdentityKind kind = IdentityKind::Workload;
    LabelSet labels;
    std::vector<IpPrefix> prefixes;  // addresses that resolve to it
    std::vector<std::string> names;  // workloads/externals that carry it
};

struct CompiledWorkload {
    std::string name;
    IdentityId identity = 0;
    std::string cgroup;
    std::string systemd_unit;
    WorkloadMode mode = WorkloadMode::Unmanaged;
    bool raw_sockets = false;  // a policy selecting it says raw_sockets: allow
};

// Where a rule id comes from: for explain, events and the flow log.
struct RuleSource {
    uint32_t rule_id = 0;
    std::string policy;
    Direction direction = Direction::Ingress;
    Action action = Action::Allow;
    SourceLocation loc;
    std::string description;
    uint64_t fingerprint = 0;  // policy/rule_fingerprint.hpp; 0: unknown (older bundle)
};

struct CompiledPolicy {
    uint64_t generation = 0;
    std::vector<IdentityInfo> identities;      // sorted by id
    std::vector<IdentityPrefix> inventory;     // sorted by prefix
    std::map<IdentityId, WorkloadMode> modes;  // managed workload identities
    std::set<IdentityId> raw_sockets;          // managed identities allowed raw sockets
    std::vector<CompiledWorkload> workloads;   // sorted by name
    std::vector<Rule> rules;                   // sorted
    std::vector<RuleSource> sources;           // sorted by rule id
    std::vector<std::string> files;
    std::string source_digest;

    const IdentityInfo* identity(IdentityId id) const;
    const RuleSource* source(uint32_t rule_id) const;
    const CompiledWorkload* workload(std::string_view name) const;  // nullptr if none
    // The datapath generation for a host whose local workloads are `endpoints`.
    Generation toGeneration(std::vector<Endpoint> endpoints = {}) const;
};

// Compiles a validated PolicySet; warnings (selectors matching nothing,
// allow rules that a deny always overrides, mixed modes, raw_sockets: deny
// overridden by another policy's allow) go to `diags`.
CompiledPolicy compile(const PolicySet& ps, uint64_t generation, Diagnostics& diags);

// Identity number for a canonical label string, before collision probing.
IdentityId identityHash(const std::string& canonical_labels);

// Label keys the compiler uses for identities users did not label.
inline constexpr const char* kCidrLabel = "ztseg.io/cidr";
inline constexpr const char* kReservedLabel = "ztseg.io/reserved";

}  // namespace ztseg::policy
