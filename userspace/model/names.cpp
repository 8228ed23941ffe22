#include "model/names.hpp"

#include <array>

#include "maps.h"

namespace ztseg {

std::string_view reasonName(uint32_t reason) {
    static constexpr std::array<std::string_view, ZTSEG_REASON_MAX> kNames = {
        "allow-policy", "allow-conntrack", "allow-related", "pass-to-stack", "not-subject",
        "no-endpoint",  "audit",           "unlabeled",     "policy-deny",   "default-deny",
        "malformed",    "fragment",        "raw-socket",    "unclassified",  "martian",
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

}  // namespace ztseg
