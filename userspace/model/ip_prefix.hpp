// An IPv4 or IPv6 prefix in network byte order, parsed from "a.b.c.d/len" or
// "x::y/len" (no length = host prefix).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ztseg {

struct IpPrefix {
    int family = 4;  // 4 or 6
    std::array<uint8_t, 16> addr{};
    uint8_t length = 32;

    static IpPrefix parse(std::string_view text);  // throws Error naming the text
    std::string str() const;
    uint8_t maxLength() const { return family == 4 ? 32 : 128; }
    // Same family, and every address of `inner` is inside this prefix.
    bool contains(const IpPrefix& inner) const;
    // The address-only form (family + bytes) of `addr` is inside this prefix.
    bool containsAddress(int addr_family, const uint8_t* addr) const;
    bool operator==(const IpPrefix&) const = default;
};

// Text form of a raw address as the datapath stores it (IPv4 in the first 4 bytes).
std::string addressToString(int family, const void* addr);

}  // namespace ztseg
