#include "agent/failsafe_config.hpp"

#include "common/error.hpp"
#include "model/names.hpp"

namespace ztseg::agent {
namespace {

std::string where(const std::string& file, const yaml::Node& n) {
    return file + ":" + std::to_string(n.mark().line) + ":" + std::to_string(n.mark().column);
}

// A list of addresses or prefixes ("10.0.0.0/8", "10.0.0.2", "fd00::/8").
ConfigReader::Handler prefixList(ConfigReader& r, const std::string& file, const std::string& what,
                                 std::vector<LocatedPrefix>& out) {
    return [&r, &file, what, &out](const yaml::Node& n) {
        if (!n.isSequence()) {
            r.error(n, what + " must be a list of addresses or prefixes");
            return;
        }
        for (const yaml::Node& item : n.items()) {
            if (!item.isScalar()) {
                r.error(item, what + ": expected an address or prefix");
                continue;
            }
            try {
                out.push_back({IpPrefix::parse(item.scalar()), where(file, item)});
            } catch (const Error& e) {
                r.error(item, what + ": " + e.what());
            }
        }
    };
}

// failsafe.rules[i]: {name, direction, protocol, port, peers}
void parseRule(ConfigReader& r, const std::string& file, const yaml::Node& n,
               std::vector<FailsafeRule>& out) {
    FailsafeRule proto_rule;
    std::string direction, protocol = "tcp";
    uint16_t port = 0;
    std::vector<LocatedPrefix> peers;
    r.fields(n, "failsafe.rules",
             {{"name", r.str(proto_rule.name)},
              {"direction", r.str(direction)},
              {"protocol", r.str(protocol)},
              {"port", r.num(port, 1, 65535)},
              {"peers", prefixList(r, file, "failsafe.rules.peers", peers)}});
    bool ok = true;
    auto need = [&](bool cond, const std::string& msg) {
        if (!cond) {
            r.error(n, "failsafe.rules: " + msg);
            ok = false;
        }
    };
    need(!proto_rule.name.empty(), "a rule needs a name (it appears in flow events and explain)");
    need(direction == "ingress" || direction == "egress",
         "direction must be ingress (the host serves) or egress (the host connects)");
    auto number = protocolNumber(protocol);
    need(number && (*number == ZTSEG_PROTO_TCP || *number == ZTSEG_PROTO_UDP),
         "protocol must be tcp or udp");
    need(port != 0,
         "a rule needs a port (the service port: the host's for ingress, the "
         "server's for egress)");
    need(n.get("peers") != nullptr,
         "a rule needs peers (addresses or prefixes; 0.0.0.0/0 and ::/0 for any)");
    if (!ok) {
        return;
    }
    proto_rule.direction = direction == "ingress" ? Direction::Ingress : Direction::Egress;
    proto_rule.protocol = *number;
    proto_rule.port = port;
    for (const LocatedPrefix& p : peers) {
        FailsafeRule rule = proto_rule;
        rule.peer = p.prefix;
        rule.origin = p.where;
        out.push_back(rule);
    }
}

}  // namespace

ConfigReader::Handler failsafeField(ConfigReader& r, const std::string& file_name,
                                    FailsafeSettings& out) {
    return [&r, &file_name, &out](const yaml::Node& n) {
        r.fields(n, "failsafe",
                 {{"enabled", r.flag(out.enabled)},
                  {"management", prefixList(r, file_name, "failsafe.management", out.management)},
                  {"ssh_port", r.num(out.ssh_port, 1, 65535)},
                  {"dns", prefixList(r, file_name, "failsafe.dns", out.dns)},
                  {"ntp", prefixList(r, file_name, "failsafe.ntp", out.ntp)},
                  {"dhcp", r.flag(out.dhcp)},
                  {"rules", [&](const yaml::Node& list) {
                       if (!list.isSequence()) {
                           r.error(list, "failsafe.rules must be a list");
                           return;
                       }
                       for (const yaml::Node& item : list.items()) {
                           parseRule(r, file_name, item, out.rules);
                       }
                   }}});
    };
}

}  // namespace ztseg::agent
