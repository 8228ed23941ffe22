// rules: what each rule the local ztsegd enforces has counted in the kernel,
// the rules no traffic used (--unused [--since]), and the YAML diff that
// removes those (--suggest-removal PATHS).
#include "cli/rule_commands.hpp"

#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "cli/command.hpp"
#include "cli/completion.hpp"
#include "cli/daemon_client.hpp"
#include "cli/flow_query.hpp"
#include "cli/rule_view.hpp"
#include "cli/usage.hpp"
#include "common/error.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"
#include "policy/rule_removal.hpp"

namespace ztseg::cli {
namespace {

struct RulesArgs {
    std::string socket = kDefaultSocket;
    RuleListArgs list;
};

// The unified diff that removes `rules` from the policy files at `paths`.
// Rules are found there by fingerprint, so line numbers come from the files
// as they are now, even if they changed since the policy was applied.
int printRemoval(const std::vector<v1::RuleHits>& rules, const std::vector<std::string>& paths) {
    std::vector<policy::SourceText> texts = policy::readPolicySources(paths);
    std::map<std::string, std::string> sources;
    for (const policy::SourceText& t : texts) {
        sources[t.name] = t.text;
    }
    policy::Diagnostics diags;
    policy::CompiledPolicy cp;
    try {
        cp = policy::compile(policy::parsePolicies(std::move(texts), diags), 1, diags);
    } catch (const policy::PolicyError& e) {
        for (const auto& d : e.diagnostics()) {
            std::cerr << d.str() << "\n";
        }
        std::cerr << "ztsegctl: rules: the policy files have errors: no removal suggested\n";
        return kExitInputErrors;
    }
    std::map<uint64_t, const policy::RuleSource*> by_fingerprint;
    for (const policy::RuleSource& s : cp.sources) {
        by_fingerprint[s.fingerprint] = &s;
    }
    std::vector<policy::RuleRemoval> removals;
    for (const v1::RuleHits& r : rules) {
        auto s = by_fingerprint.find(r.fingerprint());
        if (s == by_fingerprint.end()) {
            std::cerr << "note: rule " << r.rule_id() << " of policy " << r.policy() << " ("
                      << r.file() << ":" << r.line()
                      << " when applied) is not in these files as it was: changed or removed "
                         "since; left alone\n";
            continue;
        }
        removals.push_back({s->second->loc.file, s->second->loc.line});
    }
    if (removals.empty()) {
        std::cerr << "nothing to remove\n";
        return kExitOk;
    }
    policy::RemovalResult result = policy::removeRules(sources, removals);
    std::cout << result.diff;
    for (const std::string& n : result.notes) {
        std::cerr << "note: " << n << "\n";
    }
    std::cerr << "apply in the policy directory with `patch -p1`, then check with `ztsegctl "
                 "whatif` on recorded flows that nothing observed would be dropped\n";
    return kExitOk;
}

int runRules(const RulesArgs& a) {
    checkRuleListArgs(a.list);
    DaemonClient c(a.socket);
    v1::RulesReply reply;
    c.check(c.stub().Rules(DaemonClient::context().get(), v1::RulesRequest{}, &reply), "rules");
    std::string holder = "ztsegd on " + reply.host();
    holder += reply.generation() == 0 ? " (no policy applied)"
                                      : " (generation " + std::to_string(reply.generation()) + ")";
    return printRuleListing(reply, a.list, holder);
}

}  // namespace

void checkRuleListArgs(const RuleListArgs& a) {
    if (!a.since.empty() && !a.unused) {
        throw UsageError("--since needs --unused (the window no traffic used the rules in)");
    }
    if (!a.removal_paths.empty() && !a.unused) {
        throw UsageError("--suggest-removal needs --unused (it removes the unused rules)");
    }
    if (!a.since.empty()) {
        try {
            parseSince(a.since, std::chrono::system_clock::now());
        } catch (const Error&) {
            throw UsageError("bad --since '" + a.since +
                             "': expected a window like 7d, 12h, 30m or an RFC 3339 time like "
                             "2026-12-01T00:00:00Z");
        }
    }
}

int printRuleListing(const v1::RulesReply& reply, const RuleListArgs& a,
                     const std::string& holder) {
    const auto now = std::chrono::system_clock::now();
    RuleListing l = listRules(reply, parseRuleSort(a.sort), a.unused, a.since, now);
    if (!a.removal_paths.empty()) {
        return printRemoval(l.rules, a.removal_paths);
    }
    if (a.format == "json") {
        std::cout << rulesJson(l, reply);
        return kExitOk;
    }
    std::cout << rulesText(l, holder, now);
    if (reply.uncounted() != 0) {
        std::cout << reply.uncounted()
                  << " rules are enforced but not counted: the rule counters are full (raise "
                     "datapath.rule_capacity)\n";
    }
    if (reply.unanswered_size() != 0) {
        std::cout << "not included (no answer in time):";
        for (const std::string& h : reply.unanswered()) {
            std::cout << " " << h;
        }
        std::cout << "\n";
    }
    return kExitOk;
}

void addRuleListOptions(CLI::App* cmd, RuleListArgs& a) {
    cmd->add_option("-o,--output", a.format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    cmd->add_option("--sort", a.sort, "rule, hits, bytes, last or file")
        ->check(CLI::IsMember({"rule", "hits", "bytes", "last", "file"}))
        ->capture_default_str();
    cmd->add_flag("--unused", a.unused,
                  "only rules no traffic used (since counting began, or in the --since window)");
    cmd->add_option("--since", a.since,
                    "with --unused: the window, e.g. 7d, 12h (a rule counted for less than it is "
                    "reported as too new, not as unused)");
    cmd->add_option("--suggest-removal", a.removal_paths,
                    "with --unused: print the unified diff that removes those rules from these "
                    "policy files or directories")
        ->type_name(kPathType);
}

void addRuleCommands(CLI::App& app, Commands& cmds) {
    auto a = std::make_shared<RulesArgs>();
    CLI::App* rules = app.add_subcommand(
        "rules",
        "per-rule hit counts the kernel keeps for the policy in force: packets, bytes, "
        "connections admitted or refused, last hit; --unused lists rules no traffic used");
    addSocketOption(rules, a->socket);
    addRuleListOptions(rules, a->list);
    cmds.on(rules, [a] { return runRules(*a); });
}

}  // namespace ztseg::cli
