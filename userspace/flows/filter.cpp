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

bool portIn(const std::set<uint16_t>& ports, uint16_t port) {
    return ports.empty() || ports.count(port);
}

bool identityIn(const std::set<IdentityId>& ids, IdentityId id) {
    return ids.empty() || ids.count(id);
}

// A shared identity's name is "a,b": any of them counts.
bool nameIn(const std::set<std::string>& names, const std::string& joined) {
    if (names.empty()) {
        return true;
    }
    size_t pos = 0;
    while (pos <= joined.size()) {
        size_t comma = joined.find(',', pos);
        if (names.count(joined.substr(pos, comma - pos))) {
            return true;
        }
        if (comma == std::string::npos) {
            break;
        }
        pos = comma + 1;
    }
    return false;
}

bool digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool isAddress(std::string_view s) {
    try {
        IpPrefix::parse(s);
        return true;
    } catch (const Error&) {
        return false;
    }
}

// --from / --to: labels, an address or CIDR, an identity number, or a name.
void addParty(std::string_view v, std::vector<policy::Selector>& labels, std::vector<IpPrefix>& ips,
              std::set<IdentityId>& ids, std::set<std::string>& names) {
    if (v.find('=') != std::string_view::npos) {
        labels.push_back(FlowFilter::parseSelector(v));
    } else if (digits(v)) {
        unsigned long id = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), id);
        if (ec != std::errc() || id > 0xffffffffUL) {
            bad("identity", v, "expected a number below 2^32");
        }
        ids.insert(IdentityId(id));
    } else if (isAddress(v)) {
        ips.push_back(FlowFilter::parseCidr(v));
    } else {
        names.insert(std::string(v));
    }
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
    if (!portIn(from_ports, r.src.port) || !portIn(to_ports, r.dst.port)) {
        return false;
    }
    if (!ports.empty() && !ports.count(r.src.port) && !ports.count(r.dst.port)) {
        return false;
    }
    if (!nodes.empty() && !nodes.count(r.host)) {
        return false;
    }
    if (!identityIn(from_identities, r.src.identity) ||
        !identityIn(to_identities, r.dst.identity) || !nameIn(from_names, r.src.name) ||
        !nameIn(to_names, r.dst.name)) {
        return false;
    }
    if (!labels.empty() && !(labelsMatch(labels, r.src) || labelsMatch(labels, r.dst))) {
        return false;
    }
    if (!ips.empty() && !(addressIn(ips, r.src) || addressIn(ips, r.dst))) {
        return false;
    }
    return labelsMatch(from_labels, r.src) && labelsMatch(to_labels, r.dst) &&
           addressIn(from_ip, r.src) && addressIn(to_ip, r.dst);
}

bool FlowFilter::empty() const {
    return verdicts.empty() && from_labels.empty() && to_labels.empty() && labels.empty() &&
           from_ip.empty() && to_ip.empty() && ips.empty() && from_ports.empty() &&
           to_ports.empty() && ports.empty() && protocols.empty() && !direction &&
           from_identities.empty() && to_identities.empty() && from_names.empty() &&
           to_names.empty() && nodes.empty();
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
    const char* kExpected = "expected key=value or key, comma-separated";
    if (text.empty()) {
        bad("label selector", text, kExpected);
    }
    policy::Selector s;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t comma = text.find(',', pos);
        std::string item(
            text.substr(pos, comma == std::string_view::npos ? text.npos : comma - pos));
        if (item.find('=') != std::string::npos) {
            try {
                for (auto& [k, v] : policy::parseLabels(item)) s.match_labels[k] = v;
            } catch (const Error& e) {
                bad("label selector", text, e.what());
            }
        } else if (policy::validLabelText(item, true)) {
            s.match_expressions.push_back({item, policy::LabelRequirement::Op::Exists, {}});
        } else {
            bad("label selector", text, kExpected);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        pos = comma + 1;
    }
    return s;
}

std::string selectorText(const policy::Selector& s) {
    std::string out = policy::canonical(s.match_labels);
    for (const auto& r : s.match_expressions) out += (out.empty() ? "" : ",") + r.key;
    return out;
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

bool FlowFilter::add(std::string_view opt, std::string_view value) {
    if (opt == "--verdict") {
        verdicts.insert(parseVerdict(value));
    } else if (opt == "--from") {
        addParty(value, from_labels, from_ip, from_identities, from_names);
    } else if (opt == "--to") {
        addParty(value, to_labels, to_ip, to_identities, to_names);
    } else if (opt == "--from-label") {
        from_labels.push_back(parseSelector(value));
    } else if (opt == "--to-label") {
        to_labels.push_back(parseSelector(value));
    } else if (opt == "--label") {
        labels.push_back(parseSelector(value));
    } else if (opt == "--from-ip") {
        from_ip.push_back(parseCidr(value));
    } else if (opt == "--to-ip") {
        to_ip.push_back(parseCidr(value));
    } else if (opt == "--ip") {
        ips.push_back(parseCidr(value));
    } else if (opt == "--from-port") {
        from_ports.insert(parsePort(value));
    } else if (opt == "--to-port") {
        to_ports.insert(parsePort(value));
    } else if (opt == "--port") {
        ports.insert(parsePort(value));
    } else if (opt == "--protocol") {
        protocols.insert(parseProtocol(value));
    } else if (opt == "--node") {
        if (value.empty()) {
            bad("--node", value, "expected a host name");
        }
        nodes.insert(std::string(value));
    } else if (opt == "--direction" || opt == "--traffic-direction") {
        Direction d = parseDirection(value);
        if (direction && *direction != d) {
            throw Error("flow filter: conflicting directions: give --direction once");
        }
        direction = d;
    } else {
        return false;
    }
    return true;
}

namespace {

// Calls f(option, value) for "--opt value" and "--opt=value"; "--not" has no value.
template <typename F>
void forEachOption(const std::vector<std::string>& args, F f) {
    for (size_t i = 0; i < args.size(); ++i) {
        std::string opt = args[i];
        std::string value;
        if (opt == "--not") {
            f(opt, value);
            continue;
        }
        if (auto eq = opt.find('='); opt.rfind("--", 0) == 0 && eq != std::string::npos) {
            value = opt.substr(eq + 1);
            opt = opt.substr(0, eq);
        } else {
            if (i + 1 >= args.size()) {
                throw Error("flow filter: option '" + opt + "' needs a value");
            }
            value = args[++i];
        }
        f(opt, value);
    }
}

[[noreturn]] void unknownOption(const std::string& opt) {
    throw Error("flow filter: unknown option '" + opt +
                "' (expected --verdict, --from, --to, --from-label, --to-label, --label, "
                "--from-ip, --to-ip, --ip, --from-port, --to-port, --port, --protocol, "
                "--direction, --node or --not)");
}

}  // namespace

FlowFilter FlowFilter::parse(const std::vector<std::string>& args) {
    FlowFilter f;
    forEachOption(args, [&](const std::string& opt, const std::string& value) {
        if (opt == "--not" || !f.add(opt, value)) {
            unknownOption(opt);
        }
    });
    return f;
}

bool FlowSelection::matches(const FlowRecord& r) const {
    return include.matches(r) && std::none_of(exclude.begin(), exclude.end(),
                                              [&](const FlowFilter& f) { return f.matches(r); });
}

FlowSelection FlowSelection::parse(const std::vector<std::string>& args) {
    FlowSelection s;
    bool negate = false;
    forEachOption(args, [&](const std::string& opt, const std::string& value) {
        if (opt == "--not") {
            if (negate) {
                throw Error(
                    "flow filter: --not --not: give --not once before the filter it negates");
            }
            negate = true;
            return;
        }
        FlowFilter& target = negate ? s.exclude.emplace_back() : s.include;
        if (!target.add(opt, value)) {
            unknownOption(opt);
        }
        negate = false;
    });
    if (negate) {
        throw Error(
            "flow filter: --not must come before the filter it negates, e.g. --not --verdict "
            "allowed");
    }
    return s;
}

}  // namespace ztseg::flows
