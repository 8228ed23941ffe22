#include "bpf/scenario.hpp"

namespace ztseg::test {

Net netFor(Family f) {
    if (f == Family::V4) {
        return {false,       "10.1.0.10", "10.1.0.20", "10.1.0.30", "10.1.0.40",
                "10.1.0.50", "10.9.9.9",  "10.1.0.1",  "127.0.0.1"};
    }
    return {true,         "fd00:1::10", "fd00:1::20", "fd00:1::30", "fd00:1::40",
            "fd00:1::50", "fd00:9::9",  "fd00:1::1",  "::1"};
}

std::string familyName(const ::testing::TestParamInfo<Family>& info) {
    return info.param == Family::V4 ? "IPv4" : "IPv6";
}

void FamilyTest::SetUp() {
    DatapathTest::SetUp();
    n_ = netFor(GetParam());
}

std::string FamilyTest::host(const std::string& addr) const {
    return addr + (n_.v6 ? "/128" : "/32");
}

void FamilyTest::addHosts(const std::vector<std::pair<std::string, IdentityId>>& hosts) {
    for (const auto& [addr, id] : hosts) {
        addIdentity(host(addr), id);
    }
}

PacketBuilder FamilyTest::pkt(const std::string& src, const std::string& dst) const {
    return n_.v6 ? PacketBuilder::ipv6(src, dst) : PacketBuilder::ipv4(src, dst);
}

uint8_t FamilyTest::icmpProto() const {
    return n_.v6 ? ZTSEG_PROTO_ICMPV6 : ZTSEG_PROTO_ICMP;
}

std::vector<uint8_t> FamilyTest::unreachable(const std::string& src, const std::string& dst,
                                             const PacketBuilder& about) const {
    return pkt(src, dst).icmpError(n_.v6 ? 1 : 3, n_.v6 ? 3 : 1, about.icmpQuote()).build();
}

std::vector<uint8_t> FamilyTest::pathMtu(const std::string& src, const std::string& dst,
                                         const PacketBuilder& about) const {
    return pkt(src, dst).icmpError(n_.v6 ? 2 : 3, n_.v6 ? 0 : 4, about.icmpQuote()).build();
}

}  // namespace ztseg::test
