#include "model/names.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include "abi.h"

namespace ztseg {
namespace {

// Sorted by name.
constexpr std::array<std::pair<std::string_view, uint8_t>, 8> kProtocols = {{
    {"any", ZTSEG_PROTO_ANY},
    {"dccp", ZTSEG_PROTO_DCCP},
    {"icmp", ZTSEG_PROTO_ICMP},
    {"icmpv6", ZTSEG_PROTO_ICMPV6},
    {"sctp", ZTSEG_PROTO_SCTP},
    {"tcp", ZTSEG_PROTO_TCP},
    {"udp", ZTSEG_PROTO_UDP},
    {"udplite", ZTSEG_PROTO_UDPLITE},
}};

}  // namespace

std::string protocolName(uint8_t proto) {
    for (const auto& [name, num] : kProtocols) {
        if (num == proto) {
            return std::string(name);
        }
    }
    return std::to_string(proto);
}

std::string asciiLower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::optional<uint8_t> protocolNumber(std::string_view name) {
    const std::string lower = asciiLower(name);
    for (const auto& [n, num] : kProtocols) {
        if (n == lower) {
            return num;
        }
    }
    return std::nullopt;
}

std::string_view reasonName(uint32_t reason) {
    static constexpr std::array<std::string_view, ZTSEG_REASON_MAX> kNames = {
        "allow-policy", "allow-conntrack", "allow-related",  "pass-to-stack", "not-subject",
        "no-endpoint",  "audit",           "allow-failsafe", "unlabeled",     "policy-deny",
        "default-deny", "malformed",       "fragment",       "raw-socket",    "unclassified",
        "martian",      "unproven",
    };
    return reason < kNames.size() ? kNames[reason] : "unknown";
}

std::string_view hookName(uint32_t hook) {
    static constexpr std::array<std::string_view, ZTSEG_HOOK_MAX> kNames = {
        "xdp", "cgroup-ingress", "cgroup-egress", "sock-connect", "sock-sendmsg", "sock-create"};
    return hook < kNames.size() ? kNames[hook] : "unknown";
}

std::string_view verdictName(uint32_t verdict) {
    switch (verdict) {
        case ZTSEG_VERDICT_ALLOWED:
            return "allowed";
        case ZTSEG_VERDICT_DROPPED:
            return "dropped";
        case ZTSEG_VERDICT_WOULD_DROP:
            return "would-drop";
        default:
            return "unknown";
    }
}

bool reasonIsDrop(uint32_t reason) {
    return reason >= ZTSEG_REASON_FIRST_DROP && reason < ZTSEG_REASON_MAX;
}

std::string_view reservedIdentityName(IdentityId id) {
    switch (id) {
        case kUnlabeled:
            return "unlabeled";
        case kHostIdentity:
            return "host";
        case kWorldIdentity:
            return "world";
        default:
            return "";
    }
}

std::string_view modeName(WorkloadMode mode) {
    switch (mode) {
        case WorkloadMode::Enforce:
            return "enforce";
        case WorkloadMode::Audit:
            return "audit";
        case WorkloadMode::Unmanaged:
            break;
    }
    return "unmanaged";
}

}  // namespace ztseg
