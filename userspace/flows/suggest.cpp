#include "flows/suggest.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>
#include <tuple>

#include "common/error.hpp"
#include "flows/flow_judge.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

namespace ztseg::flows {
namespace {

using policy::LabelSet;
using policy::Party;
using policy::Peer;

// A plain YAML scalar when that reads back as the same string, else quoted.
std::string scalar(const std::string& s) {
    static const std::set<std::string> kKeywords = {"true", "false", "yes", "no", "on",
                                                    "off",  "null",  "y",   "n",  "~"};
    std::string lower;
    for (char c : s) lower += char(std::tolower(static_cast<unsigned char>(c)));
    bool plain = !s.empty() && std::isalpha(static_cast<unsigned char>(s[0])) &&
                 !kKeywords.count(lower) && std::all_of(s.begin(), s.end(), [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
                            c == '.' || c == '/';
                 });
    if (plain) {
        return s;
    }
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

std::string labelsYaml(const LabelSet& labels) {
    std::string out = "{";
    for (const auto& [k, v] : labels) {
        out += (out.size() > 1 ? ", " : "") + scalar(k) + ": " + scalar(v);
    }
    return out + "}";
}

std::string prefixYaml(const IpPrefix& p) {
    return scalar(p.length == p.maxLength() ? addressToString(p.family, p.addr.data()) : p.str());
}

std::string prefixList(const std::vector<IpPrefix>& prefixes) {
    std::string out;
    for (const auto& p : prefixes) out += (out.empty() ? "" : ", ") + prefixYaml(p);
    return "[" + out + "]";
}

std::string isoTime(std::chrono::system_clock::time_point t) {
    std::time_t s = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

bool expressible(uint8_t proto) {
    return proto == ZTSEG_PROTO_TCP || proto == ZTSEG_PROTO_UDP || proto == ZTSEG_PROTO_SCTP ||
           proto == ZTSEG_PROTO_ICMP || proto == ZTSEG_PROTO_ICMPV6;
}

std::string portYaml(uint8_t proto, uint16_t port) {
    if (proto == ZTSEG_PROTO_ICMP || proto == ZTSEG_PROTO_ICMPV6) {
        return "{protocol: " + policy::protocolName(proto) + "}";
    }
    return "{port: " + std::to_string(port) + ", protocol: " + policy::protocolName(proto) + "}";
}

struct Evidence {
    std::set<std::tuple<std::string, uint16_t, std::string, uint16_t>> connections;
    size_t events = 0;
    std::map<std::string, size_t> verdicts;
    std::chrono::system_clock::time_point first = std::chrono::system_clock::time_point::max();
    std::chrono::system_clock::time_point last{};

    void add(const FlowRecord& r) {
        connections.insert({r.src.ip, r.src.port, r.dst.ip, r.dst.port});
        ++events;
        ++verdicts[r.verdict];
        first = std::min(first, r.time);
        last = std::max(last, r.time);
    }
    std::string comment() const {
        std::string v;
        for (const auto& [verdict, n] : verdicts) {
            v += (v.empty() ? "" : ", ") + std::to_string(n) + " " + verdict;
        }
        return std::to_string(connections.size()) + " connection" +
               (connections.size() == 1 ? "" : "s") + " seen (" + std::to_string(events) +
               " event" + (events == 1 ? "" : "s") + ": " + v + "), " + isoTime(first) +
               (isoTime(last) == isoTime(first) ? "" : " .. " + isoTime(last));
    }
};

struct RuleKey {
    std::string peer_yaml;  // the peer entry
    uint8_t proto;
    uint16_t port;
    auto operator<=>(const RuleKey&) const = default;
};

struct PolicyDraft {
    std::string name;
    LabelSet selector;
    std::map<RuleKey, std::pair<std::string, Evidence>> ingress,
        egress;  // -> (description, evidence)
};

// How a rule names the other end; empty if no rule can.
std::string peerYaml(const Party& p, const FlowJudge& judge) {
    switch (p.peer.kind) {
        case Peer::Kind::Workload:
        case Peer::Kind::External:
            return "{selector: {matchLabels: " +
                   labelsYaml(policy::minimalLabels(p.peer.labels, judge.knownLabelSets())) + "}}";
        case Peer::Kind::World:
            return "{entity: world}";
        case Peer::Kind::Host:
            return "{entity: host}";
        case Peer::Kind::Cidr:
            return p.peer.prefixes.empty() ? "" : "{cidr: " + prefixYaml(p.peer.prefixes[0]) + "}";
        case Peer::Kind::Unlabeled:
            return "";
    }
    return "";
}

// A rule-named range of the recording policy is not in any inventory: the
// flow's own identity labels say which range it was.
Party withCidrIdentity(Party p, const FlowEndpoint& ep) {
    if (p.peer.kind != Peer::Kind::Unlabeled) {
        return p;
    }
    auto it = ep.labels.find(policy::kCidrLabel);
    if (it == ep.labels.end()) {
        return p;
    }
    try {
        IpPrefix range = IpPrefix::parse(it->second);
        p.peer = Peer{Peer::Kind::Cidr, {}, {range}, "cidr " + range.str()};
        p.text = "cidr " + range.str();
    } catch (const Error&) {
    }
    return p;
}

void inventoryYaml(const policy::PolicySet& inv, bool rebuilt, std::string& out) {
    if (!inv.workloads.empty()) {
        out += "workloads:\n";
        if (rebuilt) {
            out +=
                "  # Rebuilt from the flows: the addresses seen. Add where each one runs\n"
                "  # (cgroup: or systemd:) before applying.\n";
        }
        for (const auto& w : inv.workloads) {
            out += "  - name: " + scalar(w.name) + "\n    labels: " + labelsYaml(w.labels) + "\n";
            if (!w.cgroup.empty()) {
                out += "    cgroup: " + scalar(w.cgroup) + "\n";
            }
            if (!w.systemd_unit.empty()) {
                out += "    systemd: " + scalar(w.systemd_unit) + "\n";
            }
            if (!w.addresses.empty()) {
                out += "    addresses: " + prefixList(w.addresses) + "\n";
            }
        }
    }
    if (!inv.externals.empty()) {
        out += "externals:\n";
        for (const auto& e : inv.externals) {
            out += "  - name: " + scalar(e.name) + "\n    cidrs: " + prefixList(e.cidrs) + "\n";
            if (!e.labels.empty()) {
                out += "    labels: " + labelsYaml(e.labels) + "\n";
            }
        }
    }
    if (!inv.hosts.empty()) {
        out += "hosts: " + prefixList(inv.hosts) + "\n";
    }
}

void rulesYaml(const std::map<RuleKey, std::pair<std::string, Evidence>>& rules, const char* dir,
               const char* peer_key, std::string& out) {
    if (rules.empty()) {
        return;
    }
    out += std::string("    ") + dir + ":\n";
    for (const auto& [key, rule] : rules) {
        out += "      # " + rule.second.comment() + "\n";
        out += std::string("      - ") + peer_key + ": [" + key.peer_yaml + "]\n";
        out += "        ports: [" + portYaml(key.proto, key.port) + "]\n";
        out += "        description: " + scalar(rule.first) + "\n";
    }
}

}  // namespace

policy::PolicySet inventoryFromFlows(const std::vector<FlowRecord>& flows) {
    std::set<std::string> local_names;
    for (const auto& r : flows) {
        if (!r.workload.empty()) {
            local_names.insert(r.workload.substr(0, r.workload.find(',')));
        }
    }
    // Identity -> what it is and the addresses seen; an address belongs to
    // the first identity it was seen with.
    struct Seen {
        FlowEndpoint ep;
        std::vector<IpPrefix> addresses;
    };
    std::map<IdentityId, Seen> ids;
    std::set<std::string> claimed;
    for (const auto& r : flows) {
        for (const FlowEndpoint* ep : {&r.src, &r.dst}) {
            if (ep->identity == kUnlabeled || ep->labels.count(policy::kCidrLabel)) {
                continue;
            }
            IpPrefix addr;
            try {
                addr = IpPrefix::parse(ep->ip);
            } catch (const Error&) {
                continue;
            }
            if (ep->ip == "0.0.0.0" || ep->ip == "::") {
                addr.length = 0;  // a refused connect() has no address yet: not one to claim
            }
            Seen& s = ids.try_emplace(ep->identity, Seen{*ep, {}}).first->second;
            if (addr.length != 0 && claimed.insert(addr.str()).second) {
                s.addresses.push_back(addr);
            }
        }
    }
    policy::PolicySet ps;
    std::set<std::string> names;
    for (auto& [id, s] : ids) {
        std::sort(s.addresses.begin(), s.addresses.end(), [](const IpPrefix& a, const IpPrefix& b) {
            return std::tie(a.family, a.addr, a.length) < std::tie(b.family, b.addr, b.length);
        });
        if (id == kHostIdentity) {
            ps.hosts.insert(ps.hosts.end(), s.addresses.begin(), s.addresses.end());
            continue;
        }
        if (id == kWorldIdentity) {
            ps.externals.push_back({"world", s.addresses, {}, {}});
            continue;
        }
        LabelSet labels = s.ep.labels;
        if (labels.empty() || labels.count(policy::kReservedLabel)) {
            continue;
        }
        std::string name = s.ep.name.substr(0, s.ep.name.find(','));
        if (name.empty() || !names.insert(name).second) {
            name = "identity-" + std::to_string(id);
        }
        if (local_names.count(name)) {
            ps.workloads.push_back({name, labels, "", "", s.addresses, {}});
        } else if (!s.addresses.empty()) {
            ps.externals.push_back({name, s.addresses, labels, {}});
        }
    }
    return ps;
}

Suggestion suggestPolicy(const std::vector<FlowRecord>& flows, const policy::PolicySet* inventory,
                         const SuggestOptions& opts) {
    policy::PolicySet inv = inventory ? *inventory : inventoryFromFlows(flows);
    inv.policies.clear();  // judge against the inventory alone
    FlowJudge judge(inv);

    Suggestion out;
    std::map<LabelSet, PolicyDraft> drafts;
    std::map<std::string, size_t> skipped;  // sentence -> events
    auto draftFor = [&](const LabelSet& labels) -> PolicyDraft& {
        PolicyDraft& d = drafts[labels];
        if (d.name.empty() && labels == policy::Evaluator::hostLabels()) {
            d.name = "host";
        } else if (d.name.empty()) {
            for (const auto& w : inv.workloads) {
                if (w.labels == labels) {
                    d.name += (d.name.empty() ? "" : "+") + w.name;
                }
            }
            d.selector = policy::minimalLabels(labels, judge.knownLabelSets());
        }
        return d;
    };
    for (size_t index = 0; index < flows.size(); ++index) {
        const FlowRecord& r = flows[index];
        ++out.events;
        if (!isPolicyDecision(r) || r.verdict == "dropped") {
            continue;
        }
        auto [src, dst] = judge.parties(r);
        src = withCidrIdentity(src, r.src);
        dst = withCidrIdentity(dst, r.dst);
        // a flow the host itself took part in where it was recorded: the host
        // is that side's subject (a policy with `entity: host`)
        Party& observer = r.direction == Direction::Egress ? src : dst;
        if (observer.peer.kind == Peer::Kind::Host) {
            observer.is_workload = true;
            observer.labels = policy::Evaluator::hostLabels();
        }
        std::string service = policy::serviceText(r.protocol, r.dst.port);
        std::string flow = src.text + " -> " + dst.text + " " + service;
        std::string src_peer = peerYaml(src, judge), dst_peer = peerYaml(dst, judge);
        if (src.peer.kind == Peer::Kind::Unlabeled || dst.peer.kind == Peer::Kind::Unlabeled) {
            ++skipped[flow + ": an address without identity cannot be admitted by any rule"];
            continue;
        }
        if (!expressible(r.protocol)) {
            ++skipped[flow + ": policy cannot name protocol " + std::to_string(r.protocol)];
            continue;
        }
        if (!src.is_workload && !dst.is_workload) {
            ++skipped[flow + ": neither end is a workload"];
            continue;
        }
        uint16_t port =
            r.protocol == ZTSEG_PROTO_ICMP || r.protocol == ZTSEG_PROTO_ICMPV6 ? 0 : r.dst.port;
        std::string description = "observed: " + src.text + " -> " + dst.text + " " + service;
        if (dst.is_workload) {
            auto& rule = draftFor(dst.labels).ingress[{src_peer, r.protocol, port}];
            rule.first = description;
            rule.second.add(r);
        }
        if (src.is_workload) {
            auto& rule = draftFor(src.labels).egress[{dst_peer, r.protocol, port}];
            rule.first = description;
            rule.second.add(r);
        }
        ++out.evidence;
        out.admitted.push_back(index);
    }
    for (const auto& [sentence, n] : skipped) {
        out.not_admitted.push_back(std::to_string(n) + " event" + (n == 1 ? "" : "s") + ": " +
                                   sentence);
    }

    std::string files;
    for (const auto& f : opts.flow_files) files += (files.empty() ? "" : ", ") + f;
    std::string& y = out.yaml;
    y += "# Least-privilege policy suggested by `ztsegctl suggest` from " +
         std::to_string(out.events) + " flow events" + (files.empty() ? "" : " (" + files + ")") +
         ".\n"
         "# It admits exactly the observed flows (allowed and would-drop): every\n"
         "# workload below is default deny for anything else. Review it, then replay:\n"
         "#   ztsegctl whatif --policy THIS_FILE --flows FLOWS\n";
    if (!out.not_admitted.empty()) {
        y += "# Not admitted:\n";
        for (const auto& s : out.not_admitted) y += "#   " + s + "\n";
    }
    if (!opts.policies_only) {
        inventoryYaml(inv, inventory == nullptr, y);
    }
    y += drafts.empty() ? "policies: []\n" : "policies:\n";
    for (const auto& [labels, d] : drafts) {
        y += "  - name: " + scalar(d.name) + "\n";
        y += labels == policy::Evaluator::hostLabels()
                 ? "    entity: host\n"
                 : "    selector: {matchLabels: " + labelsYaml(d.selector) + "}\n";
        if (opts.mode == "audit") {
            y += "    mode: audit\n";
        }
        rulesYaml(d.ingress, "ingress", "from", y);
        rulesYaml(d.egress, "egress", "to", y);
        ++out.policies;
        out.rules += d.ingress.size() + d.egress.size();
    }
    return out;
}

}  // namespace ztseg::flows
