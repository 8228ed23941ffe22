#include "policy/document_reader.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "common/yaml_fields.hpp"
#include "model/names.hpp"
#include "policy/labels.hpp"

namespace ztseg::policy {
namespace {

// Reads one document, reporting every problem with its location.
class DocReader {
  public:
    DocReader(std::string file, Diagnostics& diags) : file_(std::move(file)), diags_(diags) {}

    void read(const yaml::Node& root, PolicySet& out) {
        if (root.isNull()) {
            return;  // an empty file is fine
        }
        if (!mapping(root, "a policy document")) {
            return;
        }
        keys(root, "policy document", {"workloads", "externals", "hosts", "policies"});
        if (const yaml::Node* n_ptr = root.get("workloads")) {
            const yaml::Node& n = *n_ptr;
            for (const yaml::Node& w : list(n, "workloads")) {
                workload(w, out);
            }
        }
        if (const yaml::Node* n_ptr = root.get("externals")) {
            const yaml::Node& n = *n_ptr;
            for (const yaml::Node& e : list(n, "externals")) {
                external(e, out);
            }
        }
        if (const yaml::Node* n_ptr = root.get("hosts")) {
            const yaml::Node& n = *n_ptr;
            for (const yaml::Node& h : list(n, "hosts")) {
                if (auto p = prefix(h, "host address")) {
                    out.hosts.push_back(*p);
                    out.host_locations.push_back(loc(h));
                }
            }
        }
        if (const yaml::Node* n_ptr = root.get("policies")) {
            const yaml::Node& n = *n_ptr;
            for (const yaml::Node& p : list(n, "policies")) {
                policy(p, out);
            }
        }
    }

  private:
    SourceLocation loc(const yaml::Node& n) const {
        return {file_, n.mark().line, n.mark().column};
    }
    void error(const yaml::Node& n, const std::string& msg) { diags_.error(loc(n), msg); }

    bool mapping(const yaml::Node& n, const std::string& what) {
        if (!n.isMap()) {
            error(n, "expected " + what + " (a mapping)");
            return false;
        }
        return true;
    }

    std::vector<std::reference_wrapper<const yaml::Node>> list(const yaml::Node& n,
                                                               const std::string& what) {
        std::vector<std::reference_wrapper<const yaml::Node>> out;
        if (n.isNull()) {
            return out;
        }
        if (!n.isSequence()) {
            error(n, "expected '" + what + "' to be a list");
            return out;
        }
        for (const auto& item : n.items()) {
            out.push_back(std::cref(item));
        }
        return out;
    }

    // Unknown and repeated fields are errors: a typo must never silently
    // drop a rule, and a repeated key must not pick a winner behind the user's back.
    void keys(const yaml::Node& n, const std::string& what, const std::set<std::string>& allowed) {
        yaml::checkFields(
            n, what, allowed, file_,
            [this](const yaml::Node& key, const std::string& msg) { error(key, msg); });
    }

    std::optional<std::string> scalar(const yaml::Node& n, const std::string& what) {
        if (!n.isScalar()) {
            error(n, "expected " + what + " to be a single value");
            return std::nullopt;
        }
        return n.scalar();
    }

    std::optional<std::string> requiredString(const yaml::Node& parent, const char* key,
                                              const std::string& what) {
        const yaml::Node* n = parent.get(key);
        if (!n) {
            error(parent, what + " needs '" + key + "'");
            return std::nullopt;
        }
        auto s = scalar(*n, "'" + std::string(key) + "'");
        if (s && s->empty()) {
            error(*n, "'" + std::string(key) + "' must not be empty");
            return std::nullopt;
        }
        return s;
    }

    std::optional<IpPrefix> prefix(const yaml::Node& n, const std::string& what) {
        auto s = scalar(n, what);
        if (!s) {
            return std::nullopt;
        }
        try {
            return IpPrefix::parse(*s);
        } catch (const Error& e) {
            error(n, std::string(e.what()) + ": expected an IPv4/IPv6 address or CIDR");
            return std::nullopt;
        }
    }

    LabelSet labels(const yaml::Node& n, const std::string& what) {
        LabelSet out;
        if (!mapping(n, what + " (key: value pairs)")) {
            return out;
        }
        for (const auto& [key, value] : n.entries()) {
            auto k = scalar(key, "a label key");
            auto v = scalar(value, "a label value");
            if (!k || !v) {
                continue;
            }
            if (!validLabelText(*k, true)) {
                error(key, "invalid label key '" + *k +
                               "': expected letters, digits, '-', '_', '.', '/'");
            } else if (k->rfind("ztseg.io/", 0) == 0) {
                error(key, "label key '" + *k + "' uses the reserved prefix ztseg.io/");
            } else if (!validLabelText(*v, false)) {
                error(value, "invalid label value '" + *v +
                                 "': expected at most 63 letters, digits, '-', '_', '.'");
            } else if (!out.emplace(*k, *v).second) {
                error(key, "duplicate label key '" + *k + "'");
            }
        }
        return out;
    }

    Selector selector(const yaml::Node& n) {
        Selector s;
        if (!mapping(n, "a selector")) {
            return s;
        }
        keys(n, "selector", {"matchLabels", "matchExpressions"});
        if (const yaml::Node* m_ptr = n.get("matchLabels")) {
            const yaml::Node& m = *m_ptr;
            s.match_labels = labels(m, "matchLabels");
        }
        if (const yaml::Node* m_ptr = n.get("matchExpressions")) {
            const yaml::Node& m = *m_ptr;
            for (const yaml::Node& e : list(m, "matchExpressions")) {
                if (!mapping(e, "a match expression")) {
                    continue;
                }
                keys(e, "match expression", {"key", "operator", "values"});
                LabelRequirement r;
                auto key = requiredString(e, "key", "a match expression");
                auto op = requiredString(e, "operator", "a match expression");
                if (!key || !op) {
                    continue;
                }
                if (!validLabelText(*key, true)) {
                    error(*e.get("key"), "invalid label key '" + *key +
                                             "': expected letters, digits, '-', '_', '.', '/'");
                    continue;
                }
                r.key = *key;
                static const std::map<std::string, LabelRequirement::Op> kOps = {
                    {"In", LabelRequirement::Op::In},
                    {"NotIn", LabelRequirement::Op::NotIn},
                    {"Exists", LabelRequirement::Op::Exists},
                    {"DoesNotExist", LabelRequirement::Op::DoesNotExist}};
                auto it = kOps.find(*op);
                if (it == kOps.end()) {
                    error(*e.get("operator"), "unknown operator '" + *op +
                                                  "' (expected In, NotIn, Exists, DoesNotExist)");
                    continue;
                }
                r.op = it->second;
                bool wants_values =
                    r.op == LabelRequirement::Op::In || r.op == LabelRequirement::Op::NotIn;
                if (const yaml::Node* v_ptr = e.get("values")) {
                    const yaml::Node& v = *v_ptr;
                    if (!wants_values) {
                        error(v, "operator " + *op + " takes no values");
                    }
                    for (const yaml::Node& x : list(v, "values")) {
                        auto sx = scalar(x, "a value");
                        if (sx && !validLabelText(*sx, false)) {
                            error(x, "invalid label value '" + *sx +
                                         "': expected at most 63 letters, digits, '-', '_', '.'");
                        } else if (sx) {
                            r.values.push_back(*sx);
                        }
                    }
                    if (wants_values && (v.isNull() || (v.isSequence() && v.items().empty()))) {
                        error(v, "operator " + *op + " needs at least one value");
                    }
                } else if (wants_values) {
                    error(e, "operator " + *op + " needs 'values'");
                }
                s.match_expressions.push_back(std::move(r));
            }
        }
        return s;
    }

    void workload(const yaml::Node& n, PolicySet& out) {
        if (!mapping(n, "a workload")) {
            return;
        }
        keys(n, "workload", {"name", "labels", "cgroup", "systemd", "addresses"});
        WorkloadSpec w;
        w.loc = loc(n);
        auto name = requiredString(n, "name", "a workload");
        if (!n.get("labels")) {
            error(n, "a workload needs 'labels' (its identity)");
        } else {
            w.labels = labels(*n.get("labels"), "labels");
            if (w.labels.empty()) {
                error(*n.get("labels"), "a workload needs at least one label");
            }
        }
        if (const yaml::Node* c_ptr = n.get("cgroup")) {
            const yaml::Node& c = *c_ptr;
            w.cgroup = scalar(c, "'cgroup'").value_or("");
        }
        if (const yaml::Node* s_ptr = n.get("systemd")) {
            const yaml::Node& s = *s_ptr;
            w.systemd_unit = scalar(s, "'systemd'").value_or("");
        }
        if (!w.cgroup.empty() && !w.systemd_unit.empty()) {
            error(n, "a workload is found by 'cgroup' or by 'systemd', not both");
        }
        if (const yaml::Node* a_ptr = n.get("addresses")) {
            const yaml::Node& a = *a_ptr;
            for (const yaml::Node& x : list(a, "addresses")) {
                if (auto p = prefix(x, "an address")) {
                    w.addresses.push_back(*p);
                }
            }
        }
        if (name) {
            w.name = *name;
            out.workloads.push_back(std::move(w));
        }
    }

    void external(const yaml::Node& n, PolicySet& out) {
        if (!mapping(n, "an external")) {
            return;
        }
        keys(n, "external", {"name", "cidrs", "labels"});
        ExternalSpec e;
        e.loc = loc(n);
        auto name = requiredString(n, "name", "an external");
        if (const yaml::Node* c_ptr = n.get("cidrs")) {
            const yaml::Node& c = *c_ptr;
            for (const yaml::Node& x : list(c, "cidrs")) {
                if (auto p = prefix(x, "a CIDR")) {
                    e.cidrs.push_back(*p);
                }
            }
        }
        if (e.cidrs.empty()) {
            error(n, "an external needs 'cidrs' (at least one range)");
        }
        if (const yaml::Node* l_ptr = n.get("labels")) {
            const yaml::Node& l = *l_ptr;
            e.labels = labels(l, "labels");
        }
        if (name) {
            e.name = *name;
            out.externals.push_back(std::move(e));
        }
    }

    void policy(const yaml::Node& n, PolicySet& out) {
        if (!mapping(n, "a policy")) {
            return;
        }
        keys(n, "policy",
             {"name", "selector", "entity", "mode", "raw_sockets", "ingress", "egress"});
        PolicySpec p;
        p.loc = loc(n);
        auto name = requiredString(n, "name", "a policy");
        p.name = name.value_or("");
        if (n.get("selector") && n.get("entity")) {
            error(n, "a policy has 'selector' (workloads) or 'entity: host' (the host), not both");
        } else if (const yaml::Node* e = n.get("entity")) {
            auto s = scalar(*e, "'entity'");
            if (s == "host") {
                p.subject = PolicySubject::Host;
            } else if (s) {
                error(*e, "a policy's entity can only be 'host' (the host itself), not '" + *s +
                              "'; workloads are chosen by 'selector'");
            }
        } else if (!n.get("selector")) {
            error(n,
                  "a policy needs 'selector' (the workloads it applies to) or 'entity: host' "
                  "(the host itself)");
        } else {
            p.selector = selector(*n.get("selector"));
        }
        if (const yaml::Node* m_ptr = n.get("mode")) {
            const yaml::Node& m = *m_ptr;
            auto s = scalar(m, "'mode'");
            if (s == "enforce") {
                p.mode = WorkloadMode::Enforce;
            } else if (s == "audit") {
                p.mode = WorkloadMode::Audit;
            } else if (s) {
                error(m, "unknown mode '" + *s + "' (expected enforce or audit)");
            }
        }
        if (const yaml::Node* r_ptr = n.get("raw_sockets")) {
            const yaml::Node& r = *r_ptr;
            auto s = scalar(r, "'raw_sockets'");
            if (p.subject == PolicySubject::Host) {
                error(r,
                      "'raw_sockets' applies to workloads; the host's own raw sockets are not "
                      "confined by ztseg");
            } else if (s == "allow" || s == "deny") {
                p.raw_sockets = *s == "allow";
            } else if (s) {
                error(r, "unknown raw_sockets value '" + *s + "' (expected allow or deny)");
            }
        }
        for (auto [key, dir, peer_key] : {std::tuple{"ingress", Direction::Ingress, "from"},
                                          std::tuple{"egress", Direction::Egress, "to"}}) {
            if (const yaml::Node* rules = n.get(key)) {
                for (const yaml::Node& r : list(*rules, key)) {
                    rule(r, dir, peer_key, p);
                }
            }
        }
        if (name) {
            out.policies.push_back(std::move(p));
        }
    }

    void rule(const yaml::Node& n, Direction dir, const char* peer_key, PolicySpec& p) {
        std::string what =
            std::string(dir == Direction::Ingress ? "an ingress" : "an egress") + " rule";
        if (!mapping(n, what)) {
            return;
        }
        keys(n, what.substr(what.find(' ') + 1), {peer_key, "ports", "action", "description"});
        RuleSpec r;
        r.loc = loc(n);
        r.policy = p.name;
        r.direction = dir;
        if (const yaml::Node* a_ptr = n.get("action")) {
            const yaml::Node& a = *a_ptr;
            auto s = scalar(a, "'action'");
            if (s == "allow") {
                r.action = Action::Allow;
            } else if (s == "deny") {
                r.action = Action::Deny;
            } else if (s) {
                error(a, "unknown action '" + *s + "' (expected allow or deny)");
            }
        }
        if (const yaml::Node* d_ptr = n.get("description")) {
            const yaml::Node& d = *d_ptr;
            r.description = scalar(d, "'description'").value_or("");
        }
        if (!n.get(peer_key)) {
            error(n,
                  what + " needs '" + peer_key + "' (its peers; use '- entity: any' for everyone)");
        } else {
            const yaml::Node& peers = *n.get(peer_key);
            if (peers.isNull() || (peers.isSequence() && peers.items().empty())) {
                error(peers, "'" + std::string(peer_key) +
                                 "' lists no peers (a rule for nobody; use '- entity: any' for "
                                 "everyone)");
            }
            for (const yaml::Node& x : list(peers, peer_key)) {
                peer(x, r);
            }
        }
        if (const yaml::Node* ports_ptr = n.get("ports")) {
            const yaml::Node& ports = *ports_ptr;
            for (const yaml::Node& x : list(ports, "ports")) {
                port(x, r);
            }
        }
        p.rules.push_back(std::move(r));
    }

    void peer(const yaml::Node& n, RuleSpec& r) {
        if (!mapping(n, "a peer (selector, cidr or entity)")) {
            return;
        }
        keys(n, "peer", {"selector", "cidr", "except", "entity"});
        PeerSpec s;
        s.loc = loc(n);
        int kinds = bool(n.get("selector")) + bool(n.get("cidr")) + bool(n.get("entity"));
        if (kinds != 1) {
            error(n, "a peer is exactly one of 'selector', 'cidr' or 'entity'");
            return;
        }
        if (n.get("except") && !n.get("cidr")) {
            error(*n.get("except"), "'except' goes with 'cidr'");
        }
        if (const yaml::Node* sel_ptr = n.get("selector")) {
            const yaml::Node& sel = *sel_ptr;
            s.kind = PeerSpec::Kind::Selector;
            s.selector = selector(sel);
        } else if (const yaml::Node* c_ptr = n.get("cidr")) {
            const yaml::Node& c = *c_ptr;
            s.kind = PeerSpec::Kind::Cidr;
            auto p = prefix(c, "'cidr'");
            if (!p) {
                return;
            }
            s.cidr = *p;
            if (const yaml::Node* ex_ptr = n.get("except")) {
                const yaml::Node& ex = *ex_ptr;
                for (const yaml::Node& x : list(ex, "except")) {
                    auto e = prefix(x, "an 'except' CIDR");
                    if (!e) {
                        continue;
                    }
                    if (!p->contains(*e)) {
                        error(x, "except " + e->str() + " is not inside " + p->str());
                        continue;
                    }
                    s.except.push_back(*e);
                }
            }
        } else {
            auto e = scalar(*n.get("entity"), "'entity'");
            if (e == "any") {
                s.kind = PeerSpec::Kind::Any;
            } else if (e == "host") {
                s.kind = PeerSpec::Kind::Host;
            } else if (e == "world") {
                s.kind = PeerSpec::Kind::World;
            } else {
                if (e) {
                    error(*n.get("entity"),
                          "unknown entity '" + *e + "' (expected any, host, world)");
                }
                return;
            }
        }
        r.peers.push_back(std::move(s));
    }

    std::optional<PortRange> portRange(const yaml::Node& n) {
        auto s = scalar(n, "'port'");
        if (!s) {
            return std::nullopt;
        }
        auto num = [&](std::string_view t, unsigned& v) {
            auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
            return ec == std::errc() && end == t.data() + t.size() && !t.empty();
        };
        unsigned lo = 0, hi = 0;
        size_t dash = s->find('-');
        bool ok = dash == std::string::npos ? num(*s, lo) && (hi = lo, true)
                                            : num(std::string_view(*s).substr(0, dash), lo) &&
                                                  num(std::string_view(*s).substr(dash + 1), hi);
        if (!ok) {
            error(n, "invalid port '" + *s + "': expected a number or a range like 8000-8100");
            return std::nullopt;
        }
        if (lo < 1 || hi > 65535 || lo > hi) {
            error(n, "port '" + *s + "' out of range: ports are 1-65535, first <= last");
            return std::nullopt;
        }
        return PortRange{uint16_t(lo), uint16_t(hi)};
    }

    void port(const yaml::Node& n, RuleSpec& r) {
        if (!mapping(n, "a port entry ({port, protocol})")) {
            return;
        }
        keys(n, "port entry", {"port", "protocol"});
        std::vector<std::pair<uint8_t, const yaml::Node*>> protos;
        if (const yaml::Node* p_ptr = n.get("protocol")) {
            const yaml::Node& p = *p_ptr;
            if (p.isNull() || (p.isSequence() && p.items().empty())) {
                error(p, "'protocol' lists no protocol (omit it for any protocol)");
                return;
            }
            auto items = p.isSequence()
                             ? list(p, "protocol")
                             : std::vector<std::reference_wrapper<const yaml::Node>>{std::cref(p)};
            for (const yaml::Node& x : items) {
                auto s = scalar(x, "a protocol");
                if (!s) {
                    continue;
                }
                std::optional<uint8_t> number = protocolNumber(*s);
                if (!number) {
                    error(x, "unknown protocol '" + *s +
                                 "' (expected tcp, udp, icmp, icmpv6, sctp, udplite, dccp, any)");
                    continue;
                }
                protos.emplace_back(*number, &x);
            }
        } else {
            protos.emplace_back(ZTSEG_PROTO_ANY, &n);
        }
        std::optional<PortRange> range;
        if (const yaml::Node* pn_ptr = n.get("port")) {
            const yaml::Node& pn = *pn_ptr;
            range = portRange(pn);
            if (!range) {
                return;
            }
        }
        for (const auto& [proto, node] : protos) {
            if (range && (proto == ZTSEG_PROTO_ICMP || proto == ZTSEG_PROTO_ICMPV6)) {
                error(*n.get("port"), "ports do not apply to " + protocolName(proto));
                continue;
            }
            PortSpec ps;
            ps.protocol = proto;
            ps.ports = range.value_or(PortRange{});
            ps.loc = loc(*node);
            r.ports.push_back(ps);
        }
    }

    std::string file_;
    Diagnostics& diags_;
};

}  // namespace

void readPolicyDocument(const std::string& file, const yaml::Node& doc, Diagnostics& diags,
                        PolicySet& into) {
    DocReader(file, diags).read(doc, into);
}

}  // namespace ztseg::policy
