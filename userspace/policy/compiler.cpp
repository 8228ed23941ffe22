#include "policy/compiler.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <set>

#include "policy/parser.hpp"
#include "policy/rule_fingerprint.hpp"

namespace ztseg::policy {
namespace {

// Identities for everything that can be named, before rules are expanded.
class IdentityTable {
  public:
    // Registers a label set; the same set registered twice is one identity.
    void add(IdentityKind kind, const LabelSet& labels, const std::vector<IpPrefix>& prefixes,
             const std::string& name) {
        Entry& e = by_key_[canonical(labels)];
        e.info.kind = kind;
        e.info.labels = labels;
        for (const auto& p : prefixes) {
            e.info.prefixes.push_back(p);
        }
        if (!name.empty()) {
            e.info.names.push_back(name);
        }
    }
    void addReserved(IdentityId id, const char* what, const std::vector<IpPrefix>& prefixes) {
        IdentityInfo& info = reserved_[id];
        info.id = id;
        info.kind = IdentityKind::Reserved;
        info.labels = {{kReservedLabel, what}};
        info.prefixes.insert(info.prefixes.end(), prefixes.begin(), prefixes.end());
    }

    // Hash each canonical label set into the user range; probe on collision
    // in canonical order so the result is the same for the same input.
    std::vector<IdentityInfo> allocate() {
        std::set<IdentityId> used;
        std::vector<IdentityInfo> out;
        for (auto& [key, e] : by_key_) {  // std::map: canonical order
            IdentityId id = identityHash(key);
            while (used.count(id)) {
                id = id + 1 >= ZTSEG_ID_ANY ? ZTSEG_ID_USER_MIN : id + 1;
            }
            used.insert(id);
            e.info.id = id;
            out.push_back(e.info);
        }
        for (auto& [id, info] : reserved_) {
            out.push_back(info);
        }
        std::sort(out.begin(), out.end(),
                  [](const IdentityInfo& a, const IdentityInfo& b) { return a.id < b.id; });
        return out;
    }

  private:
    struct Entry {
        IdentityInfo info;
    };
    std::map<std::string, Entry> by_key_;
    std::map<IdentityId, IdentityInfo> reserved_;
};

// Resolves selectors to identity sets quickly: an index from key=value to
// identities narrows matchLabels before expressions are checked.
class SelectorIndex {
  public:
    explicit SelectorIndex(const std::vector<IdentityInfo>& ids) : ids_(ids) {
        for (size_t i = 0; i < ids.size(); ++i) {
            if (ids[i].kind == IdentityKind::Workload || ids[i].kind == IdentityKind::External) {
                labeled_.push_back(i);
                for (const auto& [k, v] : ids[i].labels) {
                    index_[k + "=" + v].push_back(i);
                }
            }
        }
    }

    // Identities (workloads and externals) whose labels match; `workloads_only` for locals.
    const std::vector<IdentityId>& select(const Selector& s, bool workloads_only) {
        std::string key = cacheKey(s, workloads_only);
        auto cached = cache_.find(key);
        if (cached != cache_.end()) {
            return cached->second;
        }
        const std::vector<size_t>* candidates = &labeled_;
        static const std::vector<size_t> kNone;
        for (const auto& [k, v] : s.match_labels) {
            auto it = index_.find(k + "=" + v);
            const std::vector<size_t>* c = it == index_.end() ? &kNone : &it->second;
            if (c->size() < candidates->size()) {
                candidates = c;
            }
        }
        std::vector<IdentityId> out;
        for (size_t i : *candidates) {
            const IdentityInfo& info = ids_[i];
            if (workloads_only && info.kind != IdentityKind::Workload) {
                continue;
            }
            if (s.matches(info.labels)) {
                out.push_back(info.id);
            }
        }
        return cache_.emplace(key, std::move(out)).first->second;
    }

  private:
    // Length-prefixed, so no two different selectors share a key.
    static std::string cacheKey(const Selector& s, bool workloads_only) {
        std::string k = workloads_only ? "W" : "A";
        auto put = [&k](const std::string& x) { k += std::to_string(x.size()) + ":" + x; };
        for (const auto& [lk, lv] : s.match_labels) {
            put(lk);
            put(lv);
        }
        for (const auto& r : s.match_expressions) {
            k += "|" + std::to_string(int(r.op));
            put(r.key);
            for (const auto& v : r.values) {
                put(v);
            }
        }
        return k;
    }

    const std::vector<IdentityInfo>& ids_;
    std::vector<size_t> labeled_;
    std::map<std::string, std::vector<size_t>> index_;
    std::map<std::string, std::vector<IdentityId>> cache_;
};

bool lessPrefix(const IpPrefix& a, const IpPrefix& b) {
    return std::tie(a.family, a.addr, a.length) < std::tie(b.family, b.addr, b.length);
}

// A CIDR peer selects the ranges outside the workload inventory that lie
// wholly inside it and not inside one of its exceptions.
bool cidrSelects(const PeerSpec& p, const IdentityInfo& info) {
    if (info.kind == IdentityKind::Workload || info.prefixes.empty() ||
        (info.kind == IdentityKind::Reserved && info.id != kWorldIdentity)) {
        return false;
    }
    for (const IpPrefix& q : info.prefixes) {
        if (!p.cidr.contains(q)) {
            return false;
        }
        for (const IpPrefix& e : p.except) {
            if (e.contains(q)) {
                return false;
            }
        }
    }
    return true;
}

bool portsCover(const PortSpec& outer, const PortSpec& inner) {
    return (outer.protocol == ZTSEG_PROTO_ANY || outer.protocol == inner.protocol) &&
           outer.ports.first <= inner.ports.first && outer.ports.last >= inner.ports.last;
}

std::vector<PortSpec> portsOrAny(const RuleSpec& r) {
    return r.ports.empty() ? std::vector<PortSpec>{PortSpec{}} : r.ports;
}

}  // namespace

std::string_view identityKindName(IdentityKind k) {
    switch (k) {
        case IdentityKind::Reserved:
            return "reserved";
        case IdentityKind::Workload:
            return "workload";
        case IdentityKind::External:
            return "external";
        case IdentityKind::Cidr:
            return "cidr";
    }
    return "unknown";
}

IdentityId identityHash(const std::string& canonical_labels) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a 64
    for (unsigned char c : canonical_labels) {
        h = (h ^ c) * 1099511628211ull;
    }
    const uint64_t span = uint64_t(ZTSEG_ID_ANY) - ZTSEG_ID_USER_MIN;  // never ANY itself
    return IdentityId(ZTSEG_ID_USER_MIN + h % span);
}

const IdentityInfo* CompiledPolicy::identity(IdentityId id) const {
    auto it = std::lower_bound(identities.begin(), identities.end(), id,
                               [](const IdentityInfo& i, IdentityId v) { return i.id < v; });
    return it != identities.end() && it->id == id ? &*it : nullptr;
}

const RuleSource* CompiledPolicy::source(uint32_t rule_id) const {
    auto it = std::lower_bound(sources.begin(), sources.end(), rule_id,
                               [](const RuleSource& s, uint32_t v) { return s.rule_id < v; });
    return it != sources.end() && it->rule_id == rule_id ? &*it : nullptr;
}

const CompiledWorkload* CompiledPolicy::workload(std::string_view name) const {
    // Linear: a bundle's order is not trusted to be sorted, and hosts run few workloads.
    auto it = std::find_if(workloads.begin(), workloads.end(),
                           [&](const CompiledWorkload& w) { return w.name == name; });
    return it != workloads.end() ? &*it : nullptr;
}

Generation CompiledPolicy::toGeneration(std::vector<Endpoint> endpoints) const {
    Generation g;
    g.number = generation;
    g.identities = inventory;
    g.modes = modes;
    g.raw_sockets = raw_sockets;
    g.endpoints = std::move(endpoints);
    g.rules = rules;
    g.rule_fingerprints.reserve(sources.size());
    for (const RuleSource& s : sources) {
        g.rule_fingerprints.push_back({s.rule_id, s.fingerprint});
    }
    auto byId = [](const RuleFingerprint& a, const RuleFingerprint& b) {
        return a.rule_id < b.rule_id;
    };
    if (!std::is_sorted(g.rule_fingerprints.begin(), g.rule_fingerprints.end(), byId)) {
        std::stable_sort(g.rule_fingerprints.begin(), g.rule_fingerprints.end(), byId);
    }
    return g;
}

CompiledPolicy compile(const PolicySet& ps, uint64_t generation, Diagnostics& diags) {
    CompiledPolicy out;
    out.generation = generation;
    out.files = ps.files;
    out.source_digest = ps.source_digest;

    // 1. Identities: workloads and externals by labels, bare CIDRs named in
    //    rules, reserved host/world.
    IdentityTable table;
    std::set<std::string> claimed;  // exact prefixes that already have an owner
    std::vector<IpPrefix> world_prefixes;
    for (const auto& w : ps.workloads) {
        table.add(IdentityKind::Workload, w.labels, w.addresses, w.name);
        for (const auto& a : w.addresses) {
            claimed.insert(a.str());
        }
    }
    for (const auto& e : ps.externals) {
        if (e.labels.empty()) {
            world_prefixes.insert(world_prefixes.end(), e.cidrs.begin(), e.cidrs.end());
        } else {
            table.add(IdentityKind::External, e.labels, e.cidrs, e.name);
        }
        for (const auto& c : e.cidrs) {
            claimed.insert(c.str());
        }
    }
    for (const auto& h : ps.hosts) {
        claimed.insert(h.str());
    }
    for (const auto& p : ps.policies) {
        for (const auto& r : p.rules) {
            for (const auto& peer : r.peers) {
                if (peer.kind != PeerSpec::Kind::Cidr) {
                    continue;
                }
                std::vector<IpPrefix> ranges = peer.except;
                ranges.push_back(peer.cidr);
                for (const auto& q : ranges) {
                    if (claimed.insert(q.str()).second) {
                        table.add(IdentityKind::Cidr, {{kCidrLabel, q.str()}}, {q}, "");
                    }
                }
            }
        }
    }
    if (!ps.hosts.empty() || selectsHost(ps)) {
        // a host policy needs the identity even where no host address is declared
        table.addReserved(kHostIdentity, "host", ps.hosts);
    }
    if (!world_prefixes.empty()) {
        table.addReserved(kWorldIdentity, "world", world_prefixes);
    }
    out.identities = table.allocate();
    for (const auto& info : out.identities) {
        for (const auto& p : info.prefixes) {
            out.inventory.push_back({p, info.id});
        }
    }
    std::sort(out.inventory.begin(), out.inventory.end(),
              [](const IdentityPrefix& a, const IdentityPrefix& b) {
                  return lessPrefix(a.prefix, b.prefix);
              });

    // 2. Which policies select which workloads; modes.
    SelectorIndex index(out.identities);
    std::map<IdentityId, std::vector<const PolicySpec*>> selected_by;
    std::vector<std::vector<IdentityId>> locals_of(ps.policies.size());
    for (size_t i = 0; i < ps.policies.size(); ++i) {
        const PolicySpec& p = ps.policies[i];
        if (p.subject == PolicySubject::Host) {
            locals_of[i] = {kHostIdentity};
        } else {
            locals_of[i] = index.select(p.selector, true);
        }
        if (locals_of[i].empty()) {
            diags.warning(p.loc, "policy '" + p.name + "': selector " + p.selector.str() +
                                     " matches no workload");
        }
        for (IdentityId id : locals_of[i]) {
            selected_by[id].push_back(&p);
        }
    }
    // Audit wins: one warning per enforce policy whose workloads an audit policy also selects.
    std::set<const PolicySpec*> warned;
    for (const auto& [id, policies] : selected_by) {
        const PolicySpec* audit = nullptr;
        for (const PolicySpec* p : policies) {
            if (p->mode == WorkloadMode::Audit && !audit) {
                audit = p;
            }
        }
        out.modes[id] = audit ? WorkloadMode::Audit : WorkloadMode::Enforce;
        for (const PolicySpec* p : policies) {
            if (audit && p->mode == WorkloadMode::Enforce && warned.insert(p).second) {
                diags.warning(p->loc, "policy '" + p->name + "' is enforce, but policy '" +
                                          audit->name + "' (" + audit->loc.str() +
                                          ") selects some of its workloads in audit mode: "
                                          "they stay in audit");
            }
        }
    }
    // Raw sockets: granted by any policy that selects the workload and allows them.
    std::set<const PolicySpec*> warned_raw;
    for (const auto& [id, policies] : selected_by) {
        const PolicySpec* allow = nullptr;
        for (const PolicySpec* p : policies) {
            if (p->raw_sockets == true && !allow) {
                allow = p;
            }
        }
        if (!allow) {
            continue;
        }
        out.raw_sockets.insert(id);
        for (const PolicySpec* p : policies) {
            if (p->raw_sockets == false && warned_raw.insert(p).second) {
                diags.warning(p->loc, "policy '" + p->name +
                                          "' says raw_sockets: deny, but policy '" + allow->name +
                                          "' (" + allow->loc.str() +
                                          ") allows raw sockets for some of its workloads: they "
                                          "get them");
            }
        }
    }
    std::map<std::string, IdentityId> workload_ids;  // canonical labels -> identity
    for (const auto& info : out.identities) {
        if (info.kind == IdentityKind::Workload) {
            workload_ids[canonical(info.labels)] = info.id;
        }
    }
    for (const auto& w : ps.workloads) {
        IdentityId id = workload_ids.at(canonical(w.labels));
        auto m = out.modes.find(id);
        out.workloads.push_back({w.name, id, w.cgroup, w.systemd_unit,
                                 m == out.modes.end() ? WorkloadMode::Unmanaged : m->second,
                                 out.raw_sockets.count(id) != 0});
    }
    std::sort(out.workloads.begin(), out.workloads.end(),
              [](const CompiledWorkload& a, const CompiledWorkload& b) { return a.name < b.name; });

    // 3. Rules: locals x peers x ports.
    auto peersOf = [&](const RuleSpec& r) -> std::optional<std::vector<IdentityId>> {
        std::set<IdentityId> ids;
        for (const PeerSpec& p : r.peers) {
            switch (p.kind) {
                case PeerSpec::Kind::Any:
                    return std::nullopt;
                case PeerSpec::Kind::Host:
                    ids.insert(kHostIdentity);
                    break;
                case PeerSpec::Kind::World:
                    for (const auto& info : out.identities) {
                        if (info.kind == IdentityKind::External ||
                            info.kind == IdentityKind::Cidr || info.id == kWorldIdentity) {
                            ids.insert(info.id);
                        }
                    }
                    break;
                case PeerSpec::Kind::Selector: {
                    const auto& sel = index.select(p.selector, false);
                    if (sel.empty()) {
                        diags.warning(p.loc, "peer selector " + p.selector.str() +
                                                 " matches no workload or external");
                    }
                    ids.insert(sel.begin(), sel.end());
                    break;
                }
                case PeerSpec::Kind::Cidr:
                    for (const auto& info : out.identities) {
                        if (cidrSelects(p, info)) {
                            ids.insert(info.id);
                        }
                    }
                    break;
            }
        }
        return std::vector<IdentityId>(ids.begin(), ids.end());
    };

    struct Resolved {
        const RuleSpec* rule;
        const std::vector<IdentityId>* locals;
        std::optional<std::vector<IdentityId>> peers;  // nullopt = any
    };
    std::vector<Resolved> resolved;
    for (size_t i = 0; i < ps.policies.size(); ++i) {
        std::map<uint64_t, unsigned> seen;  // fingerprint -> identical rules so far
        for (const RuleSpec& r : ps.policies[i].rules) {
            resolved.push_back({&r, &locals_of[i], peersOf(r)});
            uint64_t fp = ruleFingerprint(ps.policies[i], r, 0);
            if (unsigned n = seen[fp]++; n != 0) {
                fp = ruleFingerprint(ps.policies[i], r, n);
            }
            out.sources.push_back(
                {r.id, r.policy, r.direction, r.action, r.loc, r.description, fp});
            for (IdentityId local : locals_of[i]) {
                for (const PortSpec& port : portsOrAny(r)) {
                    auto emit = [&](IdentityId peer) {
                        out.rules.push_back(
                            {local, peer, r.direction, port.protocol, port.ports, r.action, r.id});
                    };
                    if (!resolved.back().peers) {
                        emit(kAnyIdentity);
                    } else {
                        for (IdentityId peer : *resolved.back().peers) {
                            emit(peer);
                        }
                    }
                }
            }
        }
    }
    std::sort(out.rules.begin(), out.rules.end(), [](const Rule& a, const Rule& b) {
        return std::tie(a.local, a.direction, a.peer, a.protocol, a.ports.first, a.ports.last,
                        a.action, a.rule_id) < std::tie(b.local, b.direction, b.peer, b.protocol,
                                                        b.ports.first, b.ports.last, b.action,
                                                        b.rule_id);
    });
    std::sort(out.sources.begin(), out.sources.end(),
              [](const RuleSource& a, const RuleSource& b) { return a.rule_id < b.rule_id; });

    // 4. Allow rules that a deny always overrides: say so, with both places.
    auto subset = [](const std::vector<IdentityId>& a, const std::vector<IdentityId>& b) {
        return std::includes(b.begin(), b.end(), a.begin(), a.end());
    };
    // A deny can only cover an allow whose locals it all selects, so index
    // denies by (direction, local): each allow meets only the denies on its
    // own workloads, not every deny in the fleet.
    std::map<std::pair<Direction, IdentityId>, std::vector<const Resolved*>> denies_on;
    for (const auto& r : resolved) {
        if (r.rule->action == Action::Deny) {
            for (IdentityId local : *r.locals) {
                denies_on[{r.rule->direction, local}].push_back(&r);
            }
        }
    }
    for (const auto& a : resolved) {
        if (a.rule->action != Action::Allow || a.locals->empty()) {
            continue;
        }
        auto it = denies_on.find({a.rule->direction, a.locals->front()});
        if (it == denies_on.end()) {
            continue;
        }
        const std::vector<PortSpec> aports = portsOrAny(*a.rule);
        for (const Resolved* d : it->second) {
            if (!subset(*a.locals, *d->locals)) {
                continue;
            }
            bool peers_covered = !d->peers || (a.peers && subset(*a.peers, *d->peers));
            const std::vector<PortSpec> dports = portsOrAny(*d->rule);
            bool ports_covered = std::all_of(aports.begin(), aports.end(), [&](const PortSpec& ap) {
                return std::any_of(dports.begin(), dports.end(),
                                   [&](const PortSpec& x) { return portsCover(x, ap); });
            });
            if (peers_covered && ports_covered) {
                diags.warning(a.rule->loc, "allow rule in policy '" + a.rule->policy +
                                               "' never takes effect: the deny rule at " +
                                               d->rule->loc.str() +
                                               " covers it (deny beats allow)");
                break;
            }
        }
    }
    return out;
}

}  // namespace ztseg::policy
