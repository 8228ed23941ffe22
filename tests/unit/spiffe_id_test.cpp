// The SPIFFE ID parser (userspace/common/spiffe_id.hpp): valid IDs, one case
// per malformed class, and the impostors of the attack review that prefix
// and substring matching let through.
#include "common/spiffe_id.hpp"

#include <gtest/gtest.h>

#include "common/error.hpp"

namespace ztseg {
namespace {

std::string whyNot(const std::string& text) {
    try {
        parseSpiffeId(text);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(SpiffeId, ValidIdsParseIntoTrustDomainAndSegments) {
    SpiffeId id = parseSpiffeId("spiffe://lab/host/agent-1");
    EXPECT_EQ(id.trust_domain, "lab");
    EXPECT_EQ(id.segments, (std::vector<std::string>{"host", "agent-1"}));
    EXPECT_EQ(id.str(), "spiffe://lab/host/agent-1");
    EXPECT_TRUE(parseSpiffeId("spiffe://lab").segments.empty()) << "the trust domain's own ID";
    EXPECT_EQ(parseSpiffeId("SPIFFE://lab/controller").str(), "spiffe://lab/controller")
        << "the scheme is case-insensitive";
    EXPECT_EQ(parseSpiffeId("spiffe://prod-eu.example_1/Svc/a.b-c_D").segments.size(), 2u)
        << "segments may use upper case, '.', '-', '_'";
    EXPECT_TRUE(isValidTrustDomain("prod-eu.example_1"));
    EXPECT_FALSE(isValidTrustDomain("Prod"));
    EXPECT_FALSE(isValidTrustDomain(""));
}

TEST(SpiffeId, EveryMalformedClassIsRefusedWithItsReason) {
    struct Case {
        const char* text;
        const char* reason;
    } cases[] = {
        {"", "the scheme must be spiffe://"},
        {"https://lab/controller", "the scheme must be spiffe://"},
        {"spiffe:/lab/controller", "the scheme must be spiffe://"},
        {"spiffe://", "the trust domain is empty"},
        {"spiffe:///controller", "the trust domain is empty"},
        {"spiffe://LAB/controller", "the trust domain must be lowercase"},
        {"spiffe://ctl@lab/controller", "userinfo ('@') is not allowed"},
        {"spiffe://lab:8443/controller", "a port (':') is not allowed"},
        {"spiffe://lab/controller?x=1", "a query ('?') is not allowed"},
        {"spiffe://lab?x=1", "a query ('?') is not allowed"},
        {"spiffe://lab/controller#top", "a fragment ('#') is not allowed"},
        {"spiffe://lab/contr%6Fller", "percent-encoding ('%') is not allowed"},
        {"spiffe://l%61b/controller", "percent-encoding ('%') is not allowed"},
        {"spiffe://lab/", "a trailing '/' is not allowed"},
        {"spiffe://lab/controller/", "a trailing '/' is not allowed"},
        {"spiffe://lab//controller", "empty path segment"},
        {"spiffe://lab/./controller", "path segment '.' is not allowed"},
        {"spiffe://lab/host/../controller", "path segment '..' is not allowed"},
        {"spiffe://lab/a b", "character '\\x20' is not allowed in the path"},
        {"spiffe://lab/\xc3\xa9", "character '\\xc3' is not allowed in the path"},
        {"spiffe://la*b/x", "character '*' is not allowed in the trust domain"},
    };
    for (const auto& c : cases) {
        std::string why = whyNot(c.text);
        EXPECT_NE(why.find("is not a SPIFFE ID"), std::string::npos) << c.text << ": " << why;
        EXPECT_NE(why.find(c.reason), std::string::npos) << c.text << ": " << why;
    }
    EXPECT_NE(whyNot("spiffe://lab/" + std::string(2100, 'a')).find("longer than 2048 bytes"),
              std::string::npos);
    EXPECT_NE(whyNot("spiffe://" + std::string(256, 'a')).find("longer than 255 bytes"),
              std::string::npos);
}

TEST(SpiffeId, ImpostorsOfTheControllerAreNotTheController) {
    // Accepted by the old substring check; a valid ID, but another workload.
    SpiffeId dashboard = parseSpiffeId("spiffe://lab/controller-readonly-dashboard");
    EXPECT_TRUE(inFleet(dashboard, "lab"));
    EXPECT_FALSE(isFleetController(dashboard, "lab"));
    // Also accepted by the old check: not even a SPIFFE ID (a query).
    EXPECT_NE(whyNot("spiffe://other-fleet/svc?x=spiffe://lab/controller").find("query"),
              std::string::npos);
    for (const char* text : {"spiffe://lab/controller/x", "spiffe://lab.evil/controller",
                             "spiffe://evil.lab/controller", "spiffe://lab/Controller",
                             "spiffe://lab/host/controller", "spiffe://lab"}) {
        EXPECT_FALSE(isFleetController(parseSpiffeId(text), "lab")) << text;
    }
    EXPECT_TRUE(isFleetController(parseSpiffeId("spiffe://lab/controller"), "lab"));
    EXPECT_FALSE(isFleetController(parseSpiffeId("spiffe://lab/controller"), "la"));
    EXPECT_FALSE(inFleet(parseSpiffeId("spiffe://lab/controller"), "")) << "no fleet, no member";
}

TEST(SpiffeId, HostsHaveExactlyOneNameSegment) {
    EXPECT_EQ(fleetHost(parseSpiffeId("spiffe://lab/host/agent0"), "lab"), "agent0");
    for (const char* text : {"spiffe://lab/host", "spiffe://lab/host/a/b", "spiffe://lab/hosts/a",
                             "spiffe://labx/host/a", "spiffe://lab/controller"}) {
        EXPECT_EQ(fleetHost(parseSpiffeId(text), "lab"), std::nullopt) << text;
    }
}

}  // namespace
}  // namespace ztseg
