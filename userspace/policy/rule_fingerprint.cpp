#include "policy/rule_fingerprint.hpp"

#include <openssl/sha.h>

#include <string>

#include "policy/labels.hpp"

namespace ztseg::policy {
namespace {

// Length-prefixed, so no two different field lists give the same text.
void field(std::string& out, const std::string& s) {
    out += std::to_string(s.size());
    out += ':';
    out += s;
}

std::string peerText(const PeerSpec& p) {
    std::string out;
    field(out, std::to_string(int(p.kind)));
    switch (p.kind) {
        case PeerSpec::Kind::Selector:
            field(out, p.selector.str());
            break;
        case PeerSpec::Kind::Cidr:
            field(out, p.cidr.str());
            for (const IpPrefix& e : p.except) {
                field(out, e.str());
            }
            break;
        default:
            break;
    }
    return out;
}

}  // namespace

uint64_t ruleFingerprint(const PolicySpec& policy, const RuleSpec& rule, unsigned occurrence) {
    std::string text;
    field(text, "ztseg-rule-v1");
    field(text, policy.name);
    // a host policy is not the workload policy `selector: {}` of the same name
    field(text, policy.subject == PolicySubject::Host ? "entity:host" : policy.selector.str());
    field(text, std::to_string(int(rule.direction)));
    field(text, std::to_string(int(rule.action)));
    for (const PeerSpec& p : rule.peers) {
        field(text, peerText(p));
    }
    field(text, "ports");
    for (const PortSpec& p : rule.ports) {
        field(text, std::to_string(p.protocol) + "/" + std::to_string(p.ports.first) + "-" +
                        std::to_string(p.ports.last));
    }
    field(text, std::to_string(occurrence));
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
    uint64_t fp = 0;
    for (int i = 0; i < 8; ++i) {
        fp = (fp << 8) | md[i];
    }
    fp &= ~(1ull << 63);
    return fp == 0 ? 1 : fp;
}

}  // namespace ztseg::policy
