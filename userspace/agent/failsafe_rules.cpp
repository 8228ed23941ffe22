#include "agent/failsafe_rules.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>
#include <optional>

#include "common/error.hpp"

namespace ztseg::agent {
namespace {

struct HostPort {
    std::string host;
    uint16_t port = 0;
};

// "host:port", "[v6]:port", "http://host:port/..." (default_port if none)
std::optional<HostPort> splitHostPort(std::string text, uint16_t default_port) {
    if (auto scheme = text.find("://"); scheme != std::string::npos) {
        text = text.substr(scheme + 3);
    }
    if (auto slash = text.find('/'); slash != std::string::npos) {
        text = text.substr(0, slash);
    }
    HostPort hp;
    std::string port_text;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string::npos) {
            return std::nullopt;
        }
        hp.host = text.substr(1, close - 1);
        if (close + 1 < text.size() && text[close + 1] == ':') {
            port_text = text.substr(close + 2);
        }
    } else if (auto colon = text.rfind(':');
               colon != std::string::npos && text.find(':') == colon) {
        hp.host = text.substr(0, colon);
        port_text = text.substr(colon + 1);
    } else {
        hp.host = text;
    }
    hp.port = default_port;
    if (!port_text.empty()) {
        unsigned v = 0;
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
        if (ec != std::errc() || end != port_text.data() + port_text.size() || v == 0 ||
            v > 65535) {
            return std::nullopt;
        }
        hp.port = static_cast<uint16_t>(v);
    }
    if (hp.host.empty() || hp.port == 0) {
        return std::nullopt;
    }
    return hp;
}

// The host's addresses: an IP literal, else what the resolver says now.
std::vector<IpPrefix> addressesOf(const std::string& host, std::string* problem) {
    try {
        return {IpPrefix::parse(host)};
    } catch (const Error&) {
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (rc != 0) {
        *problem = gai_strerror(rc);
        return {};
    }
    std::vector<IpPrefix> out;
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
        IpPrefix p;
        if (a->ai_family == AF_INET) {
            p.family = 4;
            p.length = 32;
            std::memcpy(p.addr.data(), &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, 4);
        } else if (a->ai_family == AF_INET6) {
            p.family = 6;
            p.length = 128;
            std::memcpy(p.addr.data(), &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        bool seen = false;
        for (const auto& o : out) seen = seen || o == p;
        if (!seen) {
            out.push_back(p);
        }
    }
    freeaddrinfo(res);
    return out;
}

class RuleList {
  public:
    explicit RuleList(std::vector<std::string>* warnings) : warnings_(warnings) {}
    void add(const std::string& name, const std::string& origin, Direction d, uint8_t proto,
             uint16_t port, const IpPrefix& peer) {
        rules_.push_back({name, origin, d, proto, port, peer});
    }
    // A link to `endpoint` (host:port) that the host opens over TCP.
    void link(const std::string& name, const std::string& origin, const std::string& endpoint,
              uint16_t default_port) {
        auto hp = splitHostPort(endpoint, default_port);
        if (!hp) {
            warn(name + ": cannot read host and port from '" + endpoint + "'");
            return;
        }
        std::string problem;
        auto addrs = addressesOf(hp->host, &problem);
        if (addrs.empty()) {
            warn(name + ": '" + hp->host + "' does not resolve (" + problem +
                 "); no failsafe rule for it until ztsegd starts again");
        }
        for (const IpPrefix& a : addrs)
            add(name, origin, Direction::Egress, ZTSEG_PROTO_TCP, hp->port, a);
    }
    void warn(const std::string& w) {
        if (warnings_ != nullptr) {
            warnings_->push_back("failsafe rule " + w);
        }
    }
    std::vector<FailsafeRule> take() { return std::move(rules_); }

  private:
    std::vector<FailsafeRule> rules_;
    std::vector<std::string>* warnings_;
};

IpPrefix anyOf(int family) {
    IpPrefix p;
    p.family = family;
    p.length = 0;
    return p;
}

}  // namespace

std::vector<FailsafeRule> failsafeRules(const AgentConfig& c, std::vector<std::string>* warnings) {
    const FailsafeSettings& f = c.failsafe;
    if (!f.enabled) {
        return {};
    }
    RuleList out(warnings);
    for (const LocatedPrefix& m : f.management) {
        out.add("ssh", m.where, Direction::Ingress, ZTSEG_PROTO_TCP, f.ssh_port, m.prefix);
    }
    if (!c.tcp_listen.empty()) {
        if (auto hp = splitHostPort(c.tcp_listen, 0)) {
            for (const LocatedPrefix& m : f.management) {
                out.add("agent-api", m.where, Direction::Ingress, ZTSEG_PROTO_TCP, hp->port,
                        m.prefix);
            }
        }
    }
    if (!c.controller.address.empty()) {
        out.link("controller", "controller.address", c.controller.address, 0);
    }
    for (const std::string& e : c.etcd.endpoints) out.link("etcd", "etcd.endpoints", e, 2379);
    for (const LocatedPrefix& d : f.dns) {
        out.add("dns", d.where, Direction::Egress, ZTSEG_PROTO_UDP, 53, d.prefix);
        out.add("dns", d.where, Direction::Egress, ZTSEG_PROTO_TCP, 53, d.prefix);
    }
    for (const LocatedPrefix& n : f.ntp) {
        out.add("ntp", n.where, Direction::Egress, ZTSEG_PROTO_UDP, 123, n.prefix);
    }
    if (f.dhcp) {
        // The client's requests go to any server (broadcast at first), the
        // answers come from one the host does not know yet.
        out.add("dhcp", "built-in (failsafe.dhcp)", Direction::Egress, ZTSEG_PROTO_UDP, 67,
                anyOf(4));
        out.add("dhcp", "built-in (failsafe.dhcp)", Direction::Ingress, ZTSEG_PROTO_UDP, 68,
                anyOf(4));
        out.add("dhcpv6", "built-in (failsafe.dhcp)", Direction::Egress, ZTSEG_PROTO_UDP, 547,
                anyOf(6));
        out.add("dhcpv6", "built-in (failsafe.dhcp)", Direction::Ingress, ZTSEG_PROTO_UDP, 546,
                anyOf(6));
    }
    std::vector<FailsafeRule> rules = out.take();
    rules.insert(rules.end(), f.rules.begin(), f.rules.end());
    return rules;
}

}  // namespace ztseg::agent
