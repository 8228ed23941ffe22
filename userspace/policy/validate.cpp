#include "policy/validate.hpp"

#include <map>
#include <string>

namespace ztseg::policy {

void validatePolicySet(PolicySet& ps, Diagnostics& diags) {
    std::map<std::string, const WorkloadSpec*> wnames;
    std::map<std::string, const WorkloadSpec*> wlabels;
    for (const auto& w : ps.workloads) {
        if (auto [it, ok] = wnames.emplace(w.name, &w); !ok) {
            diags.error(w.loc,
                        "workload '" + w.name + "' is already defined at " + it->second->loc.str());
        }
    }
    std::map<std::string, const ExternalSpec*> enames;
    for (const auto& e : ps.externals) {
        if (auto [it, ok] = enames.emplace(e.name, &e); !ok) {
            diags.error(e.loc,
                        "external '" + e.name + "' is already defined at " + it->second->loc.str());
        }
        for (const auto& w : ps.workloads) {
            if (!e.labels.empty() && e.labels == w.labels) {
                diags.error(e.loc, "external '" + e.name + "' has the same labels as workload '" +
                                       w.name + "' (" + w.loc.str() +
                                       "): one label set is one identity");
            }
        }
    }
    // One owner per exact address prefix, so identity lookup is unambiguous.
    std::map<std::string, std::string> owner;
    auto claim = [&](const IpPrefix& p, const std::string& who, const SourceLocation& loc) {
        if (auto [it, ok] = owner.emplace(p.str(), who); !ok && it->second != who) {
            diags.error(
                loc, "address " + p.str() + " of " + who + " is already claimed by " + it->second);
        }
    };
    for (const auto& w : ps.workloads) {
        for (const auto& a : w.addresses) {
            claim(a, "workload '" + w.name + "'", w.loc);
        }
    }
    for (const auto& e : ps.externals) {
        for (const auto& c : e.cidrs) {
            claim(c, "external '" + e.name + "'", e.loc);
        }
    }
    for (size_t i = 0; i < ps.hosts.size(); ++i) {
        claim(ps.hosts[i], "hosts",
              i < ps.host_locations.size() ? ps.host_locations[i] : SourceLocation{});
    }
    std::map<std::string, const PolicySpec*> pnames;
    for (const auto& p : ps.policies) {
        if (auto [it, ok] = pnames.emplace(p.name, &p); !ok) {
            diags.error(p.loc,
                        "policy '" + p.name + "' is already defined at " + it->second->loc.str());
        }
    }
}

}  // namespace ztseg::policy
