#include "cli/policy_view.hpp"

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/daemon_client.hpp"
#include "cli/flow_text.hpp"
#include "cli/status_text.hpp"
#include "model/names.hpp"
#include "policy/labels.hpp"
#include "policy/signing.hpp"

namespace ztseg::cli {
namespace {

using Json = nlohmann::ordered_json;

std::string msTime(int64_t unix_ms) {
    return unix_ms == 0
               ? ""
               : isoTime(std::chrono::system_clock::time_point(std::chrono::milliseconds(unix_ms)));
}

std::string labelsOf(const policy::CompiledPolicy& cp, IdentityId id) {
    const policy::IdentityInfo* info = cp.identity(id);
    return info ? policy::canonical(info->labels) : "";
}

std::string signerText(const HeldPolicy& p) {
    if (!p.signer.empty()) {
        return p.signer;
    }
    return p.signatures_checked ? "unsigned"
                                : "not checked (standalone ztsegd: no trusted keys configured)";
}

// The compiled entries of each source rule, in label terms.
std::map<uint32_t, std::vector<std::string>> entriesByRule(const policy::CompiledPolicy& cp) {
    std::map<uint32_t, std::vector<std::string>> out;
    for (const Rule& r : cp.rules) {
        out[r.rule_id].push_back(policy::ruleEntryText(cp, r));
    }
    return out;
}

std::string where(const policy::RuleSource& s) {
    return s.loc.file + ":" + std::to_string(s.loc.line);
}

std::string_view directionName(Direction d) {
    return d == Direction::Ingress ? "ingress" : "egress";
}
std::string_view actionName(Action a) {
    return a == Action::Allow ? "allow" : "deny";
}

}  // namespace

HeldPolicy heldPolicy(const v1::PolicyReply& reply, std::string holder, bool signatures_checked) {
    HeldPolicy p;
    p.holder = std::move(holder);
    p.signer = reply.signer();
    p.signatures_checked = signatures_checked;
    p.in_force_since_unix_ms = reply.in_force_since_unix_ms();
    if (!reply.bundle().empty()) {
        p.policy = policy::parseBundle(policy::openEnvelope(reply.bundle()).bundle, &p.meta);
    }
    return p;
}

HeldPolicy localPolicy(const std::string& socket) {
    DaemonClient c(socket);
    v1::PolicyReply reply;
    c.check(c.stub().Policy(DaemonClient::context().get(), v1::PolicyRequest{}, &reply), "policy");
    v1::StatusReply st;
    c.check(c.stub().Status(DaemonClient::context().get(), v1::StatusRequest{}, &st), "status");
    // ztsegd checks signatures when it has trusted keys; a signer says it did.
    HeldPolicy held =
        heldPolicy(reply, "ztsegd on " + st.host() + " (" + socket + ")", !reply.signer().empty());
    for (const v1::FailsafeRule& f : st.failsafe()) {
        FailsafeRule r;
        r.name = f.name();
        r.origin = f.origin();
        r.direction = f.direction() == "egress" ? Direction::Egress : Direction::Ingress;
        r.protocol = protocolNumber(f.protocol()).value_or(ZTSEG_PROTO_TCP);
        r.port = static_cast<uint16_t>(f.port());
        r.peer = IpPrefix::parse(f.peer());
        held.failsafe.push_back(std::move(r));
    }
    return held;
}

std::string policyText(const HeldPolicy& p) {
    const policy::CompiledPolicy& cp = p.policy;
    if (cp.generation == 0) {
        return p.holder + ": no policy applied\n";
    }
    std::string out = p.holder + ": policy generation " + std::to_string(cp.generation) +
                      (p.meta.fleet.empty() ? "" : " of fleet " + p.meta.fleet) + "\n";
    std::vector<std::vector<std::string>> head{
        {"signed by", signerText(p)},
        {"in force since", p.in_force_since_unix_ms ? msTime(p.in_force_since_unix_ms) : "-"},
        {"compiled by", p.meta.compiler_version},
        {"source digest", cp.source_digest},
        {"source files", std::to_string(cp.files.size())},
        {"expires", p.meta.not_after_unix ? msTime(p.meta.not_after_unix * 1000) : "never"}};
    out += statusTable(head);

    out += "\nworkloads:\n";
    std::vector<std::vector<std::string>> rows{{"NAME", "IDENTITY", "MODE", "LABELS", "CGROUP"}};
    for (const policy::CompiledWorkload& w : cp.workloads) {
        rows.push_back({w.name, std::to_string(w.identity), std::string(modeName(w.mode)),
                        labelsOf(cp, w.identity), w.cgroup.empty() ? w.systemd_unit : w.cgroup});
    }
    out += statusTable(rows);

    out += "\nrules:\n";
    const auto entries = entriesByRule(cp);
    rows = {{"ID", "POLICY", "DIRECTION", "ACTION", "WHERE", "ENTRIES"}};
    for (const policy::RuleSource& s : cp.sources) {
        auto it = entries.find(s.rule_id);
        const std::vector<std::string> none;
        const auto& list = it == entries.end() ? none : it->second;
        rows.push_back({std::to_string(s.rule_id), s.policy,
                        std::string(directionName(s.direction)), std::string(actionName(s.action)),
                        where(s), list.empty() ? "(matches nothing)" : list.front()});
        for (size_t i = 1; i < list.size(); ++i) {
            rows.push_back({"", "", "", "", "", list[i]});
        }
    }
    out += statusTable(rows);
    return out;
}

std::string policyJson(const HeldPolicy& p) {
    const policy::CompiledPolicy& cp = p.policy;
    Json j;
    j["holder"] = p.holder;
    j["generation"] = cp.generation;
    j["fleet"] = p.meta.fleet;
    j["signer"] = p.signer;
    j["signatures_checked"] = p.signatures_checked;
    j["in_force_since"] = msTime(p.in_force_since_unix_ms);
    j["compiler_version"] = p.meta.compiler_version;
    j["source_digest"] = cp.source_digest;
    j["source_files"] = cp.files;
    j["not_after"] = p.meta.not_after_unix ? msTime(p.meta.not_after_unix * 1000) : "";
    j["workloads"] = Json::array();
    for (const policy::CompiledWorkload& w : cp.workloads) {
        j["workloads"].push_back({{"name", w.name},
                                  {"identity", w.identity},
                                  {"labels", labelsOf(cp, w.identity)},
                                  {"mode", modeName(w.mode)},
                                  {"cgroup", w.cgroup},
                                  {"systemd_unit", w.systemd_unit},
                                  {"raw_sockets", w.raw_sockets}});
    }
    j["identities"] = Json::array();
    for (const policy::IdentityInfo& i : cp.identities) {
        j["identities"].push_back({{"id", i.id},
                                   {"kind", policy::identityKindName(i.kind)},
                                   {"labels", policy::canonical(i.labels)},
                                   {"names", i.names}});
    }
    const auto entries = entriesByRule(cp);
    j["rules"] = Json::array();
    for (const policy::RuleSource& s : cp.sources) {
        auto it = entries.find(s.rule_id);
        j["rules"].push_back(
            {{"id", s.rule_id},
             {"policy", s.policy},
             {"direction", directionName(s.direction)},
             {"action", actionName(s.action)},
             {"location", where(s)},
             {"description", s.description},
             {"entries", it == entries.end() ? std::vector<std::string>{} : it->second}});
    }
    return j.dump(2) + "\n";
}

std::string diffText(const policy::PolicyDiff& d) {
    std::string out = "generation " + std::to_string(d.active_generation) + " -> candidate";
    if (d.candidate_generation != 0) {
        out += " generation " + std::to_string(d.candidate_generation);
    }
    out += ": ";
    if (d.empty()) {
        return out + "no change\n";
    }
    auto entries = [](size_t n) {
        return std::to_string(n) + (n == 1 ? " rule entry" : " rule entries");
    };
    out += entries(d.rules_added.size()) + " added, " + std::to_string(d.rules_removed.size()) +
           " removed (of " + entries(d.active_rules) + " in force); workloads in enforce mode " +
           std::to_string(d.active_enforced) + " -> " + std::to_string(d.candidate_enforced) + "\n";
    auto rules = [&](const char* title, const char* mark,
                     const std::vector<policy::RuleChange>& list) {
        if (list.empty()) {
            return;
        }
        out += std::string("\n") + title + ":\n";
        std::vector<std::vector<std::string>> rows;
        for (const auto& c : list) {
            rows.push_back({std::string(mark) + " " + c.entry, c.policy, c.location});
        }
        out += statusTable(rows);
    };
    auto lines = [&](const char* title, const char* mark, const std::vector<std::string>& list) {
        if (list.empty()) {
            return;
        }
        out += std::string("\n") + title + ":\n";
        for (const auto& s : list) out += "   " + std::string(mark) + " " + s + "\n";
    };
    rules("rules added", "+", d.rules_added);
    rules("rules removed", "-", d.rules_removed);
    lines("workloads added", "+", d.workloads_added);
    lines("workloads removed", "-", d.workloads_removed);
    if (!d.workloads_changed.empty()) {
        out += "\nworkloads changed:\n";
        for (const auto& c : d.workloads_changed) out += "   ~ " + c.name + ": " + c.what + "\n";
    }
    lines("identities added", "+", d.identities_added);
    lines("identities removed", "-", d.identities_removed);
    return out;
}

std::string diffJson(const policy::PolicyDiff& d) {
    auto rules = [](const std::vector<policy::RuleChange>& list) {
        Json a = Json::array();
        for (const auto& c : list) {
            a.push_back({{"entry", c.entry}, {"policy", c.policy}, {"location", c.location}});
        }
        return a;
    };
    Json changed = Json::array();
    for (const auto& c : d.workloads_changed) {
        changed.push_back({{"name", c.name}, {"change", c.what}});
    }
    Json j{{"active_generation", d.active_generation},
           {"candidate_generation", d.candidate_generation},
           {"changed", !d.empty()},
           {"active_rule_entries", d.active_rules},
           {"candidate_rule_entries", d.candidate_rules},
           {"active_enforced_workloads", d.active_enforced},
           {"candidate_enforced_workloads", d.candidate_enforced},
           {"rules_added", rules(d.rules_added)},
           {"rules_removed", rules(d.rules_removed)},
           {"workloads_added", d.workloads_added},
           {"workloads_removed", d.workloads_removed},
           {"workloads_changed", changed},
           {"identities_added", d.identities_added},
           {"identities_removed", d.identities_removed}};
    return j.dump(2) + "\n";
}

}  // namespace ztseg::cli
