#include "flows/filter.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

#include "common/error.hpp"
#include "model/names.hpp"
#include "policy/parser.hpp"

namespace ztseg::flows {
namespace {

[[noreturn]] void bad(std::string_view option, std::string_view text, const std::string& why) {
    throw Error("flow filter: bad " + std::string(option) + " '" + std::string(text) + "': " + why);
}

bool numeric(std::string_view s, unsigned& out) {
    if (s.empty()) {
        return false;
    }
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

bool addressIn(const std::vector<IpPrefix>& prefixes, const FlowEndpoint& ep) {
    if (prefixes.empty()) {
        return true;
    }
    IpPrefix addr;
    try {
        addr = IpPrefix::parse(ep.ip);
    } catch (const Error&) {
        return false;
    }
    return std::any_of(prefixes.begin(), prefixes.end(),
                       [&](const IpPrefix& p) { return p.contains(addr); });
}

bool labelsMatch(const std::vector<policy::Selector>& sels, const FlowEndpoint& ep) {
    return sels.empty() || std::any_of(sels.begin(), sels.end(), [&](const policy::Selector& s) {
               return s.matches(ep.labels);
           });
}

}  // namespace

bool FlowFilter::matches(const FlowRecord& r) const {
    if (!verdicts.empty() && !verdicts.count(r.verdict)) {
        return false;
    }
    if (direction && *direction != r.direction) {
        return false;
    }
    if (!protocols.empty() && !protocols.count(r.protocol_name)) {
        return false;
    }
    if (!ports.empty() && !ports.count(r.dst.port)) {
        return false;
    }
    return labelsMatch(from_labels, r.src) && labelsMatch(to_labels, r.dst) &&
           addressIn(from_ip, r.src) && addressIn(to_ip, r.dst);
}

bool FlowFilter::empty() const {
    return verdicts.empty() && from_labels.empty() && to_labels.empty() && from_ip.empty() &&
           to_ip.empty() && ports.empty() && protocols.empty() && !direction;
}

std::string FlowFilter::parseVerdict(std::string_view text) {
    std::string v = asciiLower(text);
    if (v == "allowed" || v == "forwarded") {
        return "allowed";
    }
    if (v == "dropped") {
        return "dropped";
    }
    if (v == "would-drop" || v == "audit") {
        return "would-drop";
    }
    bad("--verdict", text, "expected allowed, dropped or would-drop");
}

policy::Selector FlowFilter::parseSelector(std::string_view text) {
    if (text.empty()) {
        bad("label selector", text, "expected key=value[,key=value...]");
    }
    policy::Selector s;
    try {
        s.match_labels = policy::parseLabels(std::string(text));
    } catch (const Error& e) {
        bad("label selector", text, e.what());
    }
    if (s.match_labels.empty()) {
        bad("label selector", text, "expected key=value[,key=value...]");
    }
    return s;
}

IpPrefix FlowFilter::parseCidr(std::string_view text) {
    try {
        return IpPrefix::parse(text);
    } catch (const Error& e) {
        bad("CIDR", text, e.what());
    }
}

uint16_t FlowFilter::parsePort(std::string_view text) {
    unsigned n = 0;
    if (!numeric(text, n) || n == 0 || n > 65535) {
        bad("--port", text, "expected a number from 1 to 65535");
    }
    return uint16_t(n);
}

std::string FlowFilter::parseProtocol(std::string_view text) {
    std::string p = asciiLower(text);
    unsigned n = 0;
    if (numeric(p, n)) {
        if (n == 0 || n > 255) {
            bad("--protocol", text, "expected a protocol number from 1 to 255");
        }
        return policy::protocolName(uint8_t(n));
    }
    for (const char* known : {"tcp", "udp", "icmp", "icmpv6", "sctp", "udplite", "dccp"}) {
        if (p == known) {
            return p;
        }
    }
    bad("--protocol", text,
        "expected tcp, udp, icmp, icmpv6, sctp, udplite, dccp or a protocol number");
}

Direction FlowFilter::parseDirection(std::string_view text) {
    std::string d = asciiLower(text);
    if (d == "ingress" || d == "inbound") {
        return Direction::Ingress;
    }
    if (d == "egress" || d == "outbound") {
        return Direction::Egress;
    }
    bad("--direction", text, "expected ingress or egress");
}

FlowFilter FlowFilter::parse(const std::vector<std::string>& args) {
    FlowFilter f;
    for (size_t i = 0; i < args.size(); ++i) {
        std::string opt = args[i];
        std::string value;
        if (auto eq = opt.find('='); opt.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = opt.substr(eq + 1);
            opt = opt.substr(0, eq);
        } else {
            if (i + 1 >= args.size()) {
                throw Error("flow filter: option '" + opt + "' needs a value");
            }
            value = args[++i];
        }
        if (opt == "--verdict") {
            f.verdicts.insert(parseVerdict(value));
        } else if (opt == "--from-label") {
            f.from_labels.push_back(parseSelector(value));
        } else if (opt == "--to-label") {
            f.to_labels.push_back(parseSelector(value));
        } else if (opt == "--from-ip") {
            f.from_ip.push_back(parseCidr(value));
        } else if (opt == "--to-ip") {
            f.to_ip.push_back(parseCidr(value));
        } else if (opt == "--port") {
            f.ports.insert(parsePort(value));
        } else if (opt == "--protocol") {
            f.protocols.insert(parseProtocol(value));
        } else if (opt == "--direction" || opt == "--traffic-direction") {
            Direction d = parseDirection(value);
            if (f.direction && *f.direction != d) {
                throw Error("flow filter: conflicting directions: give --direction once");
            }
            f.direction = d;
        } else {
            throw Error("flow filter: unknown option '" + opt +
                        "' (expected --verdict, --from-label, --to-label, --from-ip, --to-ip, "
                        "--port, --protocol or --direction)");
        }
    }
    return f;
}

}  // namespace ztseg::flows
