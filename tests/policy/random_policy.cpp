#include "policy/random_policy.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

namespace ztseg::policy::test {
namespace {

using Rng = std::mt19937_64;

// Address universes. Small on purpose, so declared prefixes, rule CIDRs and
// random addresses collide and nest often.
const IpPrefix kWork4 = IpPrefix::parse("10.1.0.0/22");          // workloads, hosts
const IpPrefix kExt4 = IpPrefix::parse("203.0.113.0/24");        // externals
const IpPrefix kOther4 = IpPrefix::parse("198.18.0.0/15");       // nobody, unless a short CIDR
const IpPrefix kWork6 = IpPrefix::parse("fd00:1::/118");         // workloads, hosts
const IpPrefix kExt6 = IpPrefix::parse("2001:db8:1::/118");      // externals
const IpPrefix kOther6 = IpPrefix::parse("2001:db8:ffff::/48");  // nobody, unless a short CIDR

const std::vector<std::string> kKeys = {"app", "tier", "env", "team"};
const std::map<std::string, std::vector<std::string>> kValues = {
    {"app", {"web", "api", "db", "cache"}},
    {"tier", {"front", "back", "data"}},
    {"env", {"prod", "dev"}},
    {"team", {"red", "blue"}},
    {"zone", {"dmz", "partner"}},  // externals only
    {"owner", {"ops"}},            // nobody: selectors on a missing key
};
const std::vector<uint16_t> kPortPool = {1, 22, 53, 80, 443, 1023, 1024, 5432, 8080, 8443, 65535};

int uniform(Rng& rng, int lo, int hi) {  // inclusive
    return std::uniform_int_distribution<int>(lo, hi)(rng);
}
bool chance(Rng& rng, double p) {
    return std::bernoulli_distribution(p)(rng);
}
template <typename T>
T pick(Rng& rng, const std::vector<T>& v) {  // by value: callers pass temporaries
    return v[size_t(uniform(rng, 0, int(v.size()) - 1))];
}
// Index by weights.
size_t weighted(Rng& rng, std::initializer_list<double> w) {
    std::discrete_distribution<size_t> d(w);
    return d(rng);
}

IpPrefix withLength(const IpPrefix& p, int length) {
    IpPrefix out = p;
    out.length = uint8_t(length);
    for (int bit = length; bit < out.maxLength(); ++bit) {
        out.addr[bit / 8] &= uint8_t(~(0x80u >> (bit % 8)));
    }
    return out;
}

// A random prefix of `length` inside `within` (length >= within.length).
IpPrefix randomPrefixIn(Rng& rng, const IpPrefix& within, int length) {
    IpPrefix a = randomAddressIn(rng, within);
    return withLength(a, std::max<int>(length, within.length));
}

IpPrefix lastAddressOf(const IpPrefix& p) {
    IpPrefix out = p;
    for (int bit = p.length; bit < p.maxLength(); ++bit) {
        out.addr[bit / 8] |= uint8_t(0x80u >> (bit % 8));
    }
    out.length = out.maxLength();
    return out;
}

IpPrefix firstAddressOf(const IpPrefix& p) {
    IpPrefix out = p;
    out.length = out.maxLength();
    return out;
}

LabelSet randomLabels(Rng& rng) {
    LabelSet l;
    for (const auto& k : kKeys) {
        if (chance(rng, 0.55)) {
            l[k] = pick(rng, kValues.at(k));
        }
    }
    if (l.empty()) {
        const std::string k = pick(rng, kKeys);
        l[k] = pick(rng, kValues.at(k));
    }
    return l;
}

// Labels of everything declared, so selectors often name values in use.
std::vector<LabelSet> declaredLabels(const PolicySet& ps) {
    std::vector<LabelSet> out;
    for (const auto& w : ps.workloads) {
        out.push_back(w.labels);
    }
    for (const auto& e : ps.externals) {
        if (!e.labels.empty()) {
            out.push_back(e.labels);
        }
    }
    return out;
}

Selector randomSelector(Rng& rng, const std::vector<LabelSet>& declared) {
    Selector s;
    if (chance(rng, 0.12)) {
        return s;  // empty: every labeled workload/external
    }
    int n_labels = uniform(rng, 0, 2);
    for (int i = 0; i < n_labels; ++i) {
        if (!declared.empty() && chance(rng, 0.75)) {
            const LabelSet l = pick(rng, declared);
            auto it = l.begin();
            std::advance(it, uniform(rng, 0, int(l.size()) - 1));
            s.match_labels[it->first] = it->second;
        } else {
            const std::string k = pick(rng, kKeys);
            s.match_labels[k] = pick(rng, kValues.at(k));
        }
    }
    int n_expr = uniform(rng, s.match_labels.empty() ? 1 : 0, 2);
    static const std::vector<std::string> kExprKeys = {"app",  "tier", "env",
                                                       "team", "zone", "owner"};
    for (int i = 0; i < n_expr; ++i) {
        LabelRequirement r;
        r.key = pick(rng, kExprKeys);
        r.op = LabelRequirement::Op(uniform(rng, 0, 3));
        if (r.op == LabelRequirement::Op::In || r.op == LabelRequirement::Op::NotIn) {
            const auto& vals = kValues.at(r.key);
            int n = uniform(rng, 1, std::min<int>(3, int(vals.size())));
            std::vector<std::string> pool = vals;
            std::shuffle(pool.begin(), pool.end(), rng);
            r.values.assign(pool.begin(), pool.begin() + n);
        }
        s.match_expressions.push_back(std::move(r));
    }
    return s;
}

// A rule CIDR: anywhere from /0 to a host prefix, mostly around the universes.
IpPrefix randomRuleCidr(Rng& rng, int family) {
    bool v4 = family == 4;
    const IpPrefix base = pick(
        rng, std::vector<IpPrefix>{v4 ? kWork4 : kWork6, v4 ? kExt4 : kExt6, v4 ? kWork4 : kWork6});
    int max = v4 ? 32 : 128;
    switch (weighted(rng, {1, 2, 10, 4})) {
        case 0:
            return withLength(base, 0);  // everything of the family
        case 1:
            return withLength(base, v4 ? 8 : 32);
        case 2:
            return randomPrefixIn(rng, base, uniform(rng, base.length, max - 1));
        default:
            return randomPrefixIn(rng, base, uniform(rng, max - 3, max));
    }
}

PeerSpec randomPeer(Rng& rng, const std::vector<LabelSet>& declared) {
    PeerSpec p;
    switch (weighted(rng, {40, 25, 10, 10, 15})) {
        case 0:
            p.kind = PeerSpec::Kind::Selector;
            p.selector = randomSelector(rng, declared);
            break;
        case 1: {
            p.kind = PeerSpec::Kind::Cidr;
            p.cidr = randomRuleCidr(rng, chance(rng, 0.6) ? 4 : 6);
            int n_except = p.cidr.length < p.cidr.maxLength() ? uniform(rng, 0, 2) : 0;
            for (int i = 0; i < n_except; ++i) {
                int len = uniform(rng, p.cidr.length + 1,
                                  std::min<int>(p.cidr.maxLength(), p.cidr.length + 12));
                // Short CIDRs: put the exception where declared things live.
                IpPrefix within = p.cidr;
                for (const IpPrefix& u : {kWork4, kExt4, kWork6, kExt6}) {
                    if (p.cidr.contains(u) && chance(rng, 0.7)) {
                        within = u;
                        len = std::max<int>(len, u.length);
                        break;
                    }
                }
                p.except.push_back(randomPrefixIn(rng, within, len));
            }
            break;
        }
        case 2:
            p.kind = PeerSpec::Kind::Any;
            break;
        case 3:
            p.kind = PeerSpec::Kind::Host;
            break;
        default:
            p.kind = PeerSpec::Kind::World;
            break;
    }
    return p;
}

PortSpec randomPort(Rng& rng) {
    PortSpec ps;
    static const std::vector<uint8_t> kProtos = {ZTSEG_PROTO_TCP,    ZTSEG_PROTO_UDP,
                                                 ZTSEG_PROTO_SCTP,   ZTSEG_PROTO_ICMP,
                                                 ZTSEG_PROTO_ICMPV6, ZTSEG_PROTO_ANY};
    ps.protocol = kProtos[weighted(rng, {30, 20, 10, 10, 10, 20})];
    if (ps.protocol == ZTSEG_PROTO_ICMP || ps.protocol == ZTSEG_PROTO_ICMPV6) {
        return ps;  // ICMP takes no ports
    }
    auto randomPortNumber = [&]() -> uint16_t {
        return chance(rng, 0.6) ? pick(rng, kPortPool) : uint16_t(uniform(rng, 1, 65535));
    };
    switch (weighted(rng, {20, 50, 30})) {
        case 0:
            break;  // any port
        case 1: {
            uint16_t p = randomPortNumber();
            ps.ports = {p, p};
            break;
        }
        default: {
            uint16_t first = randomPortNumber();
            static const std::vector<int> kSpans = {1, 7, 15, 100, 1000, 4096, 30000};
            int span = chance(rng, 0.7) ? pick(rng, kSpans) : uniform(rng, 1, 65535);
            ps.ports = {first, uint16_t(std::min(65535, first + span))};
            break;
        }
    }
    return ps;
}

// Claims a prefix for one declaration; false if it is taken.
bool claim(std::set<std::string>& claimed, const IpPrefix& p) {
    return claimed.insert(p.str()).second;
}

std::string quote(const std::string& s) {
    return "\"" + s + "\"";
}

std::string yamlLabels(const LabelSet& l) {
    std::string out = "{";
    for (const auto& [k, v] : l) {
        out += (out.size() > 1 ? ", " : "") + quote(k) + ": " + quote(v);
    }
    return out + "}";
}

std::string yamlPrefixes(const std::vector<IpPrefix>& ps) {
    std::string out = "[";
    for (const auto& p : ps) {
        out += (out.size() > 1 ? ", " : "") + quote(p.str());
    }
    return out + "]";
}

std::string yamlSelector(const Selector& s) {
    std::string out = "{";
    if (!s.match_labels.empty()) {
        out += "matchLabels: " + yamlLabels(s.match_labels);
    }
    if (!s.match_expressions.empty()) {
        out += std::string(out.size() > 1 ? ", " : "") + "matchExpressions: [";
        bool first = true;
        for (const auto& r : s.match_expressions) {
            static const char* kOps[] = {"In", "NotIn", "Exists", "DoesNotExist"};
            out += std::string(first ? "" : ", ") + "{key: " + quote(r.key) +
                   ", operator: " + quote(kOps[int(r.op)]);
            if (r.op == LabelRequirement::Op::In || r.op == LabelRequirement::Op::NotIn) {
                out += ", values: [";
                for (size_t i = 0; i < r.values.size(); ++i) {
                    out += (i ? ", " : "") + quote(r.values[i]);
                }
                out += "]";
            }
            out += "}";
            first = false;
        }
        out += "]";
    }
    return out + "}";
}

std::string protoText(uint8_t p) {
    switch (p) {
        case ZTSEG_PROTO_TCP:
            return "tcp";
        case ZTSEG_PROTO_UDP:
            return "udp";
        case ZTSEG_PROTO_SCTP:
            return "sctp";
        case ZTSEG_PROTO_ICMP:
            return "icmp";
        case ZTSEG_PROTO_ICMPV6:
            return "icmpv6";
        default:
            return "any";
    }
}

// Declared ranges of one family, each with where it comes from (for messages).
using Candidates = std::vector<std::pair<IpPrefix, std::string>>;

// A peer address: inside a workload's address, an external's range, a rule's
// CIDR or except, or a host address (random inside, or its first or last
// address), or a random address with most likely no owner.
IpPrefix randomPeerAddress(Rng& rng, int family, const Candidates& workloads,
                           const Candidates& externals, const Candidates& cidrs,
                           const Candidates& hosts, std::string& origin) {
    const Candidates* from = nullptr;
    switch (weighted(rng, {30, 15, 20, 8, 27})) {
        case 0:
            from = &workloads;
            break;
        case 1:
            from = &externals;
            break;
        case 2:
            from = &cidrs;
            break;
        case 3:
            from = &hosts;
            break;
        default:
            break;
    }
    if (from && !from->empty()) {
        const auto [prefix, where] = pick(rng, *from);
        origin = where;
        switch (weighted(rng, {70, 15, 15})) {
            case 0:
                return randomAddressIn(rng, prefix);
            case 1:
                return firstAddressOf(prefix);
            default:
                return lastAddressOf(prefix);
        }
    }
    bool v4 = family == 4;
    const IpPrefix base = pick(rng, std::vector<IpPrefix>{v4 ? kWork4 : kWork6, v4 ? kExt4 : kExt6,
                                                          v4 ? kOther4 : kOther6});
    origin = "random in " + base.str();
    return randomAddressIn(rng, base);
}

bool isLoopback(const IpPrefix& a) {
    static const IpPrefix kLoop4 = IpPrefix::parse("127.0.0.0/8");
    static const IpPrefix kLoop6 = IpPrefix::parse("::1/128");
    return kLoop4.contains(a) || kLoop6.contains(a);
}

}  // namespace

IpPrefix randomAddressIn(Rng& rng, const IpPrefix& p) {
    IpPrefix out = p;
    for (int bit = p.length; bit < p.maxLength(); ++bit) {
        if (chance(rng, 0.5)) {
            out.addr[bit / 8] |= uint8_t(0x80u >> (bit % 8));
        }
    }
    out.length = out.maxLength();
    return out;
}

PolicySet randomPolicySet(Rng& rng, const RandomPolicyOptions& opts) {
    PolicySet ps;
    std::set<std::string> claimed;

    // Workloads: labels from a small vocabulary, some sharing a label set;
    // IPv4 and/or IPv6 host addresses (now and then a small subnet, or none).
    int n_work = uniform(rng, opts.min_workloads, opts.max_workloads);
    for (int i = 0; i < n_work; ++i) {
        WorkloadSpec w;
        w.name = "w" + std::to_string(i);
        w.labels = !ps.workloads.empty() && chance(rng, 0.25) ? pick(rng, ps.workloads).labels
                                                              : randomLabels(rng);
        w.cgroup = "ztseg-random/" + w.name;
        w.loc = {"random.yaml", i + 1, 1};
        int n_addr = chance(rng, 0.15) ? 0 : uniform(rng, 1, 2);
        for (int a = 0; a < n_addr; ++a) {
            bool v4 = chance(rng, 0.6);
            const IpPrefix& base = v4 ? kWork4 : kWork6;
            int len = base.maxLength() - (chance(rng, 0.1) ? uniform(rng, 1, 2) : 0);
            for (int attempt = 0; attempt < 20; ++attempt) {
                IpPrefix p = randomPrefixIn(rng, base, len);
                if (claim(claimed, p)) {
                    w.addresses.push_back(p);
                    break;
                }
            }
        }
        ps.workloads.push_back(std::move(w));
    }

    // Externals: 0-3, some unlabeled (world), labels never a workload's.
    int n_ext = uniform(rng, 0, opts.max_externals);
    for (int i = 0; i < n_ext; ++i) {
        ExternalSpec e;
        e.name = "e" + std::to_string(i);
        e.loc = {"random.yaml", 100 + i, 1};
        if (!chance(rng, 0.35)) {
            for (int attempt = 0; attempt < 20 && e.labels.empty(); ++attempt) {
                LabelSet l =
                    chance(rng, 0.3) && !ps.externals.empty() && !ps.externals.back().labels.empty()
                        ? ps.externals.back().labels  // two externals, one identity
                        : randomLabels(rng);
                if (chance(rng, 0.3)) {
                    l["zone"] = pick(rng, kValues.at("zone"));
                }
                bool is_workload =
                    std::any_of(ps.workloads.begin(), ps.workloads.end(),
                                [&](const WorkloadSpec& w) { return w.labels == l; });
                if (!is_workload) {
                    e.labels = l;
                }
            }
        }
        int n_cidr = uniform(rng, 1, 2);
        for (int c = 0; c < n_cidr; ++c) {
            bool v4 = chance(rng, 0.6);
            const IpPrefix& base = chance(rng, 0.6) ? (v4 ? kExt4 : kExt6) : (v4 ? kWork4 : kWork6);
            int max = base.maxLength();
            for (int attempt = 0; attempt < 20; ++attempt) {
                IpPrefix p = randomPrefixIn(rng, base, uniform(rng, base.length, max - 1));
                if (claim(claimed, p)) {
                    e.cidrs.push_back(p);
                    break;
                }
            }
        }
        if (!e.cidrs.empty()) {
            ps.externals.push_back(std::move(e));
        }
    }

    // Hosts: the reserved "host" identity, sometimes absent.
    if (chance(rng, 0.5)) {
        int n_hosts = uniform(rng, 1, 2);
        for (int i = 0; i < n_hosts; ++i) {
            const IpPrefix& base = chance(rng, 0.6) ? kWork4 : kWork6;
            for (int attempt = 0; attempt < 20; ++attempt) {
                IpPrefix p = randomPrefixIn(rng, base, base.maxLength());
                // never inside a workload's range: a workload's socket on such
                // an address would be judged as the host (by its address)
                bool in_workload = std::any_of(
                    ps.workloads.begin(), ps.workloads.end(), [&](const WorkloadSpec& w) {
                        return std::any_of(w.addresses.begin(), w.addresses.end(),
                                           [&](const IpPrefix& a) { return a.contains(p); });
                    });
                if (!in_workload && claim(claimed, p)) {
                    ps.hosts.push_back(p);
                    break;
                }
            }
        }
    }

    // Policies: selectors, modes, ingress then egress rules (source order).
    std::vector<LabelSet> declared = declaredLabels(ps);
    std::vector<LabelSet> workload_labels;
    for (const auto& w : ps.workloads) {
        workload_labels.push_back(w.labels);
    }
    int n_pol = uniform(rng, opts.min_policies, opts.max_policies);
    uint32_t next_id = 1;
    for (int i = 0; i < n_pol; ++i) {
        PolicySpec p;
        p.name = "p" + std::to_string(i);
        p.loc = {"random.yaml", 200 + i * 20, 1};
        p.selector = randomSelector(rng, workload_labels);
        if (chance(rng, opts.host_policy_chance)) {
            p.subject = PolicySubject::Host;  // `entity: host`
            p.selector = {};
        }
        p.mode = chance(rng, 0.25) ? WorkloadMode::Audit : WorkloadMode::Enforce;
        int n_rules = uniform(rng, 1, opts.max_rules_per_policy);
        for (int r = 0; r < n_rules; ++r) {
            RuleSpec rule;
            rule.policy = p.name;
            rule.direction = chance(rng, 0.5) ? Direction::Ingress : Direction::Egress;
            rule.action = chance(rng, 0.3) ? Action::Deny : Action::Allow;
            int n_peers = uniform(rng, 1, 3);
            for (int k = 0; k < n_peers; ++k) {
                rule.peers.push_back(randomPeer(rng, declared));
            }
            if (!chance(rng, 0.3)) {
                int n_ports = uniform(rng, 1, 3);
                for (int k = 0; k < n_ports; ++k) {
                    rule.ports.push_back(randomPort(rng));
                }
            }
            p.rules.push_back(std::move(rule));
        }
        std::stable_sort(p.rules.begin(), p.rules.end(), [](const RuleSpec& a, const RuleSpec& b) {
            return a.direction == Direction::Ingress && b.direction == Direction::Egress;
        });
        for (auto& rule : p.rules) {
            rule.id = next_id++;
            rule.loc = {"random.yaml", p.loc.line + int(rule.id), 1};
        }
        ps.policies.push_back(std::move(p));
    }
    ps.files = {"random.yaml"};
    return ps;
}

std::string toYaml(const PolicySet& ps) {
    std::ostringstream y;
    y << "workloads:\n";
    for (const auto& w : ps.workloads) {
        y << "  - name: " << quote(w.name) << "\n    labels: " << yamlLabels(w.labels) << "\n";
        if (!w.cgroup.empty()) {
            y << "    cgroup: " << quote(w.cgroup) << "\n";
        }
        if (!w.addresses.empty()) {
            y << "    addresses: " << yamlPrefixes(w.addresses) << "\n";
        }
    }
    if (!ps.externals.empty()) {
        y << "externals:\n";
        for (const auto& e : ps.externals) {
            y << "  - name: " << quote(e.name) << "\n    cidrs: " << yamlPrefixes(e.cidrs) << "\n";
            if (!e.labels.empty()) {
                y << "    labels: " << yamlLabels(e.labels) << "\n";
            }
        }
    }
    if (!ps.hosts.empty()) {
        y << "hosts: " << yamlPrefixes(ps.hosts) << "\n";
    }
    if (!ps.policies.empty()) {
        y << "policies:\n";
    }
    for (const auto& p : ps.policies) {
        y << "  - name: " << quote(p.name) << "\n    "
          << (p.subject == PolicySubject::Host ? "entity: host"
                                               : "selector: " + yamlSelector(p.selector))
          << "\n    mode: " << (p.mode == WorkloadMode::Audit ? "\"audit\"" : "\"enforce\"")
          << "\n";
        for (Direction dir : {Direction::Ingress, Direction::Egress}) {
            bool header = false;
            for (const auto& r : p.rules) {
                if (r.direction != dir) {
                    continue;
                }
                if (!header) {
                    y << (dir == Direction::Ingress ? "    ingress:\n" : "    egress:\n");
                    header = true;
                }
                y << "      - action: " << (r.action == Action::Deny ? "\"deny\"" : "\"allow\"")
                  << "  # rule " << r.id << "\n";
                y << "        " << (dir == Direction::Ingress ? "from" : "to") << ":\n";
                for (const auto& peer : r.peers) {
                    switch (peer.kind) {
                        case PeerSpec::Kind::Selector:
                            y << "          - selector: " << yamlSelector(peer.selector) << "\n";
                            break;
                        case PeerSpec::Kind::Cidr:
                            y << "          - cidr: " << quote(peer.cidr.str()) << "\n";
                            if (!peer.except.empty()) {
                                y << "            except: " << yamlPrefixes(peer.except) << "\n";
                            }
                            break;
                        case PeerSpec::Kind::Any:
                            y << "          - entity: \"any\"\n";
                            break;
                        case PeerSpec::Kind::Host:
                            y << "          - entity: \"host\"\n";
                            break;
                        case PeerSpec::Kind::World:
                            y << "          - entity: \"world\"\n";
                            break;
                    }
                }
                if (!r.ports.empty()) {
                    y << "        ports:\n";
                    for (const auto& port : r.ports) {
                        y << "          - {protocol: " << quote(protoText(port.protocol));
                        if (!port.ports.isAny()) {
                            y << ", port: "
                              << quote(port.ports.first == port.ports.last
                                           ? std::to_string(port.ports.first)
                                           : std::to_string(port.ports.first) + "-" +
                                                 std::to_string(port.ports.last));
                        }
                        y << "}\n";
                    }
                }
            }
        }
    }
    return y.str();
}

RandomFlow randomFlow(Rng& rng, const PolicySet& ps) {
    RandomFlow f;
    // Mostly workloads some policy selects: unmanaged locals all pass alike.
    std::vector<size_t> managed;
    for (size_t i = 0; i < ps.workloads.size(); ++i) {
        if (std::any_of(ps.policies.begin(), ps.policies.end(), [&](const PolicySpec& p) {
                return p.subject == PolicySubject::Workloads &&
                       p.selector.matches(ps.workloads[i].labels);
            })) {
            managed.push_back(i);
        }
    }
    f.local = !managed.empty() && chance(rng, 0.8)
                  ? pick(rng, managed)
                  : size_t(uniform(rng, 0, int(ps.workloads.size()) - 1));
    const WorkloadSpec& local = ps.workloads[f.local];
    if (selectsHost(ps) && chance(rng, 0.3)) {
        // the host itself: at one of its declared addresses, or at one no
        // workload owns (a host process uses whatever address it has)
        f.host_local = true;
        if (!ps.hosts.empty() && chance(rng, 0.5)) {
            f.local_address = randomAddressIn(rng, pick(rng, ps.hosts));
            f.local_declared = true;
        } else {
            f.local_address = randomAddressIn(rng, chance(rng, 0.5) ? kOther4 : kOther6);
        }
    } else if (!local.addresses.empty()) {
        // An address inside the local's range that a more specific prefix of
        // another identity owns is that identity's: the datapath judges a
        // socket on it as its owner (docs/datapath.md, "sockets made
        // elsewhere"), so draw again.
        for (int attempt = 0; attempt < 10; ++attempt) {
            const IpPrefix& range = pick(rng, local.addresses);
            f.local_address = randomAddressIn(rng, range);
            auto inside = [&](const IpPrefix& q) {
                return q.length > range.length && q.contains(f.local_address);
            };
            bool owned =
                std::any_of(ps.hosts.begin(), ps.hosts.end(), inside) ||
                std::any_of(ps.workloads.begin(), ps.workloads.end(), [&](const WorkloadSpec& w) {
                    return std::any_of(w.addresses.begin(), w.addresses.end(), inside);
                });
            f.local_declared = !owned;
            if (!owned) {
                break;
            }
        }
        if (!f.local_declared) {
            f.local_address = randomAddressIn(rng, chance(rng, 0.5) ? kOther4 : kOther6);
        }
    } else {
        f.local_address = randomAddressIn(rng, chance(rng, 0.5) ? kOther4 : kOther6);
    }
    const int family = f.local_address.family;

    // Peer address: candidates of the local's family, by where they come from.
    auto sameFamily = [&](const std::vector<IpPrefix>& in) {
        std::vector<IpPrefix> out;
        std::copy_if(in.begin(), in.end(), std::back_inserter(out),
                     [&](const IpPrefix& p) { return p.family == family; });
        return out;
    };
    Candidates workloads, externals, cidrs, hosts;
    for (const auto& w : ps.workloads) {
        for (const auto& a : sameFamily(w.addresses)) {
            workloads.push_back({a, "workload " + w.name});
        }
    }
    for (const auto& e : ps.externals) {
        for (const auto& c : sameFamily(e.cidrs)) {
            externals.push_back({c, "external " + e.name + " " + c.str()});
        }
    }
    for (const auto& p : ps.policies) {
        for (const auto& r : p.rules) {
            for (const auto& peer : r.peers) {
                if (peer.kind != PeerSpec::Kind::Cidr || peer.cidr.family != family) {
                    continue;
                }
                cidrs.push_back(
                    {peer.cidr, "rule " + std::to_string(r.id) + " cidr " + peer.cidr.str()});
                for (const auto& e : peer.except) {
                    cidrs.push_back({e, "rule " + std::to_string(r.id) + " except " + e.str()});
                }
            }
        }
    }
    for (const auto& h : sameFamily(ps.hosts)) {
        hosts.push_back({h, "host " + h.str()});
    }
    f.peer_address =
        randomPeerAddress(rng, family, workloads, externals, cidrs, hosts, f.peer_origin);
    for (int attempt = 0; attempt < 10 && isLoopback(f.peer_address); ++attempt) {
        // 127/8 and ::1 are not subject to policy (a short rule CIDR can contain them)
        f.peer_address =
            randomPeerAddress(rng, family, workloads, externals, cidrs, hosts, f.peer_origin);
    }
    if (isLoopback(f.peer_address)) {
        f.peer_address = randomAddressIn(rng, family == 4 ? kOther4 : kOther6);
        f.peer_origin = "random";
    }

    f.direction = chance(rng, 0.5) ? Direction::Ingress : Direction::Egress;
    switch (weighted(rng, {35, 25, 15, 25})) {
        case 0:
            f.protocol = ZTSEG_PROTO_TCP;
            break;
        case 1:
            f.protocol = ZTSEG_PROTO_UDP;
            break;
        case 2:
            f.protocol = ZTSEG_PROTO_SCTP;
            break;
        default:
            f.protocol = family == 4 ? ZTSEG_PROTO_ICMP : ZTSEG_PROTO_ICMPV6;
            break;
    }
    f.sport = uint16_t(uniform(rng, 1024, 65535));
    if (f.protocol == ZTSEG_PROTO_ICMP || f.protocol == ZTSEG_PROTO_ICMPV6) {
        f.port = 0;  // the echo identifier is in sport; ICMP has no service port
        return f;
    }
    std::vector<PortRange> ranges;
    for (const auto& p : ps.policies) {
        for (const auto& r : p.rules) {
            for (const auto& port : r.ports) {
                if (!port.ports.isAny()) {
                    ranges.push_back(port.ports);
                }
            }
        }
    }
    size_t how = weighted(rng, {ranges.empty() ? 0.0 : 60.0, 15, 25});
    if (how == 0) {
        const PortRange r = pick(rng, ranges);
        switch (uniform(rng, 0, 4)) {
            case 0:
                f.port = r.first;
                break;
            case 1:
                f.port = r.last;
                break;
            case 2:
                f.port = uint16_t(r.first - 1);  // ranges start at 1: at worst port 0
                break;
            case 3:
                f.port = r.last == 65535 ? r.last : uint16_t(r.last + 1);
                break;
            default:
                f.port = uint16_t(uniform(rng, r.first, r.last));
                break;
        }
    } else if (how == 1) {
        f.port = pick(rng, kPortPool);
    } else {
        f.port = uint16_t(uniform(rng, 0, 65535));
    }
    return f;
}

std::string RandomFlow::str(const PolicySet& ps) const {
    static const std::map<uint8_t, std::string> kNames = {{ZTSEG_PROTO_TCP, "tcp"},
                                                          {ZTSEG_PROTO_UDP, "udp"},
                                                          {ZTSEG_PROTO_SCTP, "sctp"},
                                                          {ZTSEG_PROTO_ICMP, "icmp"},
                                                          {ZTSEG_PROTO_ICMPV6, "icmpv6"}};
    const WorkloadSpec& w = ps.workloads[local];
    std::string l = (host_local ? std::string("local host ")
                                : "local " + w.name + " {" + canonical(w.labels) + "} ") +
                    addressToString(local_address.family, local_address.addr.data());
    std::string p = "peer " + addressToString(peer_address.family, peer_address.addr.data()) +
                    " (" + peer_origin + ")";
    std::string ports = protocol == ZTSEG_PROTO_ICMP || protocol == ZTSEG_PROTO_ICMPV6
                            ? " echo id " + std::to_string(sport)
                            : " " + std::to_string(sport) + " -> " + std::to_string(port);
    return std::string(direction == Direction::Ingress ? "ingress " : "egress ") +
           kNames.at(protocol) + ports + ": " +
           (direction == Direction::Ingress ? p + " -> " + l : l + " -> " + p);
}

}  // namespace ztseg::policy::test
