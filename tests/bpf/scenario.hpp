// The cast of the packet scenarios: identities, their addresses in each
// address family, and a fixture run once per family whose packet builders
// follow the family under test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bpf/datapath_fixture.hpp"
#include "common/packet_builder.hpp"

namespace ztseg::test {

// Identities; all but other have an address in Net.
inline constexpr IdentityId kWeb = 300, kDb = 301, kApi = 302, kAud = 303, kExt = 304, kOther = 305;

enum class Family { V4, V6 };

// Addresses of one family. web, db, api, aud and ext are the addresses of the
// identities of the same name; stranger and router carry no identity; loop is
// loopback. Each fixture says which of them are workloads, and in which mode.
struct Net {
    bool v6;
    std::string web, db, api, aud, ext, stranger, router, loop;
};

Net netFor(Family f);

// "IPv4" / "IPv6": the test name suffix for INSTANTIATE_TEST_SUITE_P.
std::string familyName(const ::testing::TestParamInfo<Family>& info);

// A fixture run for each family, instantiated as
//   INSTANTIATE_TEST_SUITE_P(Families, Suite, ::testing::Values(Family::V4, Family::V6),
//                            familyName);
class FamilyTest : public DatapathTest, public ::testing::WithParamInterface<Family> {
  protected:
    void SetUp() override;  // also sets n_ for GetParam()

    // `addr` as a /32 or /128 prefix.
    std::string host(const std::string& addr) const;
    // Each address, as its host prefix, labeled with its identity.
    void addHosts(const std::vector<std::pair<std::string, IdentityId>>& hosts);
    PacketBuilder pkt(const std::string& src, const std::string& dst) const;
    uint8_t icmpProto() const;  // ICMP or ICMPv6
    // Destination unreachable (v4 3/1 host, v6 1/3 address) from src to dst quoting `about`.
    std::vector<uint8_t> unreachable(const std::string& src, const std::string& dst,
                                     const PacketBuilder& about) const;
    // "Fragmentation needed" (IPv4) / "packet too big" (IPv6): path MTU discovery.
    std::vector<uint8_t> pathMtu(const std::string& src, const std::string& dst,
                                 const PacketBuilder& about) const;

    Net n_;
};

}  // namespace ztseg::test
