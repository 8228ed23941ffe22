// Stable, user-facing names for datapath enums (metrics labels, logs, events).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/types.hpp"

namespace ztseg {

std::string_view reasonName(uint32_t reason);    // enum ztseg_reason, e.g. "default-deny"
std::string_view hookName(uint32_t hook);        // enum ztseg_hook, e.g. "xdp"
std::string_view verdictName(uint32_t verdict);  // ZTSEG_VERDICT_*, e.g. "would-drop"
bool reasonIsDrop(uint32_t reason);

// Protocol names in policy text, filters and output: "tcp", "udp", "icmp",
// "icmpv6", "sctp", "udplite", "dccp", "any"; other numbers as digits.
std::string protocolName(uint8_t proto);
// The number of a protocol name, in any case ("TCP" as Kubernetes writes it;
// "any" is ZTSEG_PROTO_ANY); nullopt if unknown.
std::optional<uint8_t> protocolNumber(std::string_view name);

// The name of a reserved identity the datapath assigns without an inventory
// entry: "unlabeled" (0), "host" (1), "world" (2); "" for any other id.
std::string_view reservedIdentityName(IdentityId id);

// "enforce", "audit", "unmanaged".
std::string_view modeName(WorkloadMode mode);

// ASCII lower case: how the parsers of these names compare what users type.
std::string asciiLower(std::string_view s);

}  // namespace ztseg
