#include "policy/policy_diff.hpp"

#include <map>

#include "model/names.hpp"
#include "policy/labels.hpp"

namespace ztseg::policy {
namespace {

std::string identityText(const CompiledPolicy& cp, IdentityId id) {
    if (id == kAnyIdentity) {
        return "any";
    }
    const IdentityInfo* info = cp.identity(id);
    return info ? canonical(info->labels) : "identity " + std::to_string(id);
}

std::string serviceOf(const Rule& r) {
    if (r.protocol == kAnyProtocol) {
        return "any";
    }
    std::string s = protocolName(r.protocol);
    if (protocolHasPorts(r.protocol) && !r.ports.isAny()) {
        s += "/" + std::to_string(r.ports.first);
        if (r.ports.last != r.ports.first) {
            s += "-" + std::to_string(r.ports.last);
        }
    }
    return s;
}

}  // namespace

std::string ruleEntryText(const CompiledPolicy& cp, const Rule& r) {
    const std::string local = identityText(cp, r.local);
    const std::string peer = identityText(cp, r.peer);
    const bool ingress = r.direction == Direction::Ingress;
    return local + (ingress ? " <- " : " -> ") + peer + " " + serviceOf(r) + " " +
           (r.action == Action::Allow ? "allow" : "deny");
}

namespace {

// Distinct entries, each with the first source rule that produced it.
std::map<std::string, RuleChange> entriesOf(const CompiledPolicy& cp) {
    std::map<std::string, RuleChange> out;
    for (const Rule& r : cp.rules) {
        std::string text = ruleEntryText(cp, r);
        if (out.count(text)) {
            continue;
        }
        RuleChange c{text, "", ""};
        if (const RuleSource* src = cp.source(r.rule_id)) {
            c.policy = src->policy;
            c.location = src->loc.file + ":" + std::to_string(src->loc.line);
        }
        out.emplace(std::move(text), std::move(c));
    }
    return out;
}

std::string identityLine(const IdentityInfo& id) {
    std::string s = canonical(id.labels);
    if (!id.names.empty()) {
        s += " (";
        for (size_t i = 0; i < id.names.size(); ++i) {
            s += (i ? ", " : "") + id.names[i];
        }
        s += ")";
    }
    return s;
}

size_t enforced(const CompiledPolicy& cp) {
    size_t n = 0;
    for (const CompiledWorkload& w : cp.workloads) {
        n += w.mode == WorkloadMode::Enforce;
    }
    return n;
}

// Entries of `a` whose key `b` lacks.
template <typename Map, typename Out, typename Fn>
void missingFrom(const Map& a, const Map& b, Out& out, Fn fn) {
    for (const auto& [key, value] : a) {
        if (!b.count(key)) {
            out.push_back(fn(value));
        }
    }
}

}  // namespace

PolicyDiff diffPolicies(const CompiledPolicy& active, const CompiledPolicy& candidate) {
    PolicyDiff d;
    d.active_generation = active.generation;
    d.candidate_generation = candidate.generation;

    const auto before = entriesOf(active);
    const auto after = entriesOf(candidate);
    d.active_rules = before.size();
    d.candidate_rules = after.size();
    auto same = [](const RuleChange& c) { return c; };
    missingFrom(after, before, d.rules_added, same);
    missingFrom(before, after, d.rules_removed, same);

    std::map<std::string, const CompiledWorkload*> wa, wb;
    for (const auto& w : active.workloads) wa[w.name] = &w;
    for (const auto& w : candidate.workloads) wb[w.name] = &w;
    auto named = [](const CompiledWorkload* w) {
        return w->name + " (" + std::string(modeName(w->mode)) + ")";
    };
    missingFrom(wb, wa, d.workloads_added, named);
    missingFrom(wa, wb, d.workloads_removed, named);
    for (const auto& [name, old] : wa) {
        auto it = wb.find(name);
        if (it == wb.end()) {
            continue;
        }
        const CompiledWorkload* now = it->second;
        if (old->mode != now->mode) {
            d.workloads_changed.push_back({name, "mode " + std::string(modeName(old->mode)) +
                                                     " -> " + std::string(modeName(now->mode))});
        }
        const std::string la = identityText(active, old->identity);
        const std::string lb = identityText(candidate, now->identity);
        if (la != lb) {
            d.workloads_changed.push_back({name, "labels " + la + " -> " + lb});
        }
        if (old->raw_sockets != now->raw_sockets) {
            d.workloads_changed.push_back(
                {name, std::string("raw sockets ") + (now->raw_sockets ? "allowed" : "refused")});
        }
    }

    std::map<std::string, const IdentityInfo*> ia, ib;
    for (const auto& i : active.identities) ia[canonical(i.labels)] = &i;
    for (const auto& i : candidate.identities) ib[canonical(i.labels)] = &i;
    auto line = [](const IdentityInfo* i) { return identityLine(*i); };
    missingFrom(ib, ia, d.identities_added, line);
    missingFrom(ia, ib, d.identities_removed, line);

    d.active_enforced = enforced(active);
    d.candidate_enforced = enforced(candidate);
    return d;
}

std::optional<std::string> guardRefusal(const PolicyDiff& d, unsigned max_removal_percent) {
    if (d.active_enforced > 0 && d.candidate_enforced == 0) {
        return "it would remove all enforcement: generation " +
               std::to_string(d.active_generation) + " enforces " +
               std::to_string(d.active_enforced) +
               " workload(s), the candidate puts none in enforce mode";
    }
    const size_t removed = d.rules_removed.size();
    if (d.active_rules > 0 && removed * 100 > size_t(max_removal_percent) * d.active_rules) {
        return "it would remove " + std::to_string(removed) + " of the " +
               std::to_string(d.active_rules) + " rule entries of generation " +
               std::to_string(d.active_generation) + " (" +
               std::to_string(removed * 100 / d.active_rules) + "%, more than " +
               std::to_string(max_removal_percent) + "%)";
    }
    return std::nullopt;
}

}  // namespace ztseg::policy
