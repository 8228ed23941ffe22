// whatif and suggest: offline analysis of recorded flows against policy.
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/completion.hpp"
#include "cli/flow_files.hpp"
#include "cli/flow_text.hpp"
#include "common/error.hpp"
#include "flows/ocsf_reader.hpp"
#include "flows/suggest.hpp"
#include "flows/whatif.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

namespace ztseg::cli {
namespace {

using json = nlohmann::json;

struct AnalysisArgs {
    std::vector<std::string> policy;
    std::vector<std::string> flows;
    std::string format = "text";
    // suggest
    std::string mode = "enforce";
    bool policies_only = false;
    std::string out;
    bool strict = false;
};

// Policy files, or nullopt after printing their errors.
std::optional<policy::PolicySet> loadOrReport(const std::vector<std::string>& paths) {
    policy::Diagnostics diags;
    try {
        return policy::loadPolicies(paths, diags);
    } catch (const policy::PolicyError& e) {
        for (const auto& d : e.diagnostics()) std::cerr << d.str() << "\n";
        return std::nullopt;
    }
}

std::string headline(flows::Change c) {
    switch (c) {
        case flows::Change::NewlyDenied:
            return "NEWLY DENIED (passes today, would be dropped)";
        case flows::Change::NewlyWouldDrop:
            return "NEWLY WOULD-DROP (allowed today, only audit mode would let it pass)";
        case flows::Change::NewlyAllowed:
            return "NEWLY ALLOWED (dropped or audit-only today, would be allowed)";
        case flows::Change::NewlyAudited:
            return "NEWLY AUDITED (dropped today, audit mode would let it pass)";
    }
    return "";
}

void printWhatifText(const flows::WhatifReport& rep) {
    size_t changed = rep.judged - rep.unchanged;
    std::cout << "whatif: " << rep.events << " flow events, " << rep.judged << " judged by policy ("
              << rep.not_judged << " replies/related follow their connection), " << rep.unchanged
              << " unchanged, " << changed << " would change\n";
    for (flows::Change c : {flows::Change::NewlyDenied, flows::Change::NewlyWouldDrop,
                            flows::Change::NewlyAllowed, flows::Change::NewlyAudited}) {
        std::vector<std::vector<std::string>> rows{
            {"FROM", "TO", "SERVICE", "JUDGED", "RECORDED", "CANDIDATE", "EVENTS", "BECAUSE"}};
        for (const auto& g : rep.changes) {
            if (g.change == c) {
                rows.push_back({g.from, g.to, g.service, g.at, g.before, g.after,
                                std::to_string(g.flows), g.because});
            }
        }
        if (rows.size() == 1) {
            continue;
        }
        size_t n = rep.count(c);
        std::cout << "\n" << headline(c) << ": " << n << (n == 1 ? " event\n" : " events\n");
        std::vector<size_t> w(rows[0].size(), 0);
        for (const auto& r : rows)
            for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
        for (const auto& r : rows) {
            std::string line = " ";
            for (size_t i = 0; i < r.size(); ++i) {
                line +=
                    " " + r[i] + (i + 1 < r.size() ? std::string(w[i] - r[i].size() + 1, ' ') : "");
            }
            std::cout << line << "\n";
        }
    }
    if (rep.count(flows::Change::NewlyDenied) == 0) {
        std::cout << "\nno recorded flow that passes today would be dropped\n";
    }
}

json whatifJson(const flows::WhatifReport& rep) {
    json changes = json::array();
    for (const auto& g : rep.changes) {
        changes.push_back({{"change", std::string(flows::changeName(g.change))},
                           {"from", g.from},
                           {"to", g.to},
                           {"service", g.service},
                           {"judged_at", g.at},
                           {"recorded", g.before},
                           {"candidate", g.after},
                           {"reason", g.reason},
                           {"explanation", g.because},
                           {"events", g.flows},
                           {"first", isoTime(g.first)},
                           {"last", isoTime(g.last)}});
    }
    return {{"events", rep.events},
            {"judged", rep.judged},
            {"not_judged", rep.not_judged},
            {"unchanged", rep.unchanged},
            {"newly_denied", rep.count(flows::Change::NewlyDenied)},
            {"newly_would_drop", rep.count(flows::Change::NewlyWouldDrop)},
            {"newly_allowed", rep.count(flows::Change::NewlyAllowed)},
            {"newly_audited", rep.count(flows::Change::NewlyAudited)},
            {"changes", changes}};
}

int runWhatif(const AnalysisArgs& a) {
    std::optional<policy::PolicySet> ps = loadOrReport(a.policy);
    if (!ps) {
        return kExitInputErrors;
    }
    flows::WhatifReport rep = flows::whatif(*ps, readFlowFiles(a.flows, a.strict));
    if (rep.covered == 0) {
        // A gate pointed at an empty, unrelated or reply-only file must not pass.
        std::cerr << "ztsegctl: whatif: nothing to judge: " << rep.events << " flow events read, "
                  << rep.judged << " new flows, none of them to or from a workload of the "
                  << "candidate policy; point --flows at a flow log of the traffic it covers\n";
        return kExitFailed;
    }
    if (a.format == "json") {
        std::cout << whatifJson(rep).dump(2) << "\n";
    } else {
        printWhatifText(rep);
    }
    return rep.count(flows::Change::NewlyDenied) > 0 ? kExitWouldDeny : kExitOk;
}

int runSuggest(const AnalysisArgs& a) {
    std::optional<policy::PolicySet> inventory;
    if (!a.policy.empty()) {
        inventory = loadOrReport(a.policy);
        if (!inventory) {
            return kExitInputErrors;
        }
    }
    std::vector<flows::FlowRecord> recorded = readFlowFiles(a.flows, a.strict);
    flows::SuggestOptions opts{a.mode, a.policies_only, a.flows};
    flows::Suggestion s = flows::suggestPolicy(recorded, inventory ? &*inventory : nullptr, opts);

    // Hold the output to its promise before anyone applies it: it compiles,
    // and replaying the flows changes no flow it admits.
    std::string check;
    if (!a.policies_only) {
        policy::Diagnostics diags;
        policy::PolicySet mine;
        try {
            mine = policy::parsePolicies({{"suggested.yaml", s.yaml}}, diags);
            policy::compile(mine, 1, diags);
        } catch (const policy::PolicyError& e) {
            std::string first = e.diagnostics().empty() ? "" : e.diagnostics().front().str();
            throw Error("suggest: the suggested policy does not compile (a bug): " + first);
        }
        std::vector<flows::FlowRecord> admitted;
        for (size_t i : s.admitted) admitted.push_back(recorded[i]);
        flows::WhatifReport rep = flows::whatif(mine, admitted);
        size_t broken =
            rep.count(flows::Change::NewlyDenied) + rep.count(flows::Change::NewlyWouldDrop);
        if (broken != 0) {
            throw Error("suggest: replaying the admitted flows against the suggestion changes " +
                        std::to_string(broken) + " of them (a bug); nothing written");
        }
        check = "; replayed, every admitted event passes";
    }
    if (a.out.empty()) {
        std::cout << s.yaml;
    } else {
        std::ofstream f(a.out, std::ios::trunc);
        if (!(f << s.yaml) || !f.flush()) {
            throwErrno("suggest: write " + a.out, errno);
        }
    }
    std::cerr << "suggest: " << s.policies << " policies, " << s.rules << " rules from "
              << s.evidence << " of " << s.events << " flow events";
    size_t not_admitted = 0;
    for (const auto& line : s.not_admitted) not_admitted += std::stoul(line);
    if (not_admitted) {
        std::cerr << "; " << not_admitted << " event" << (not_admitted == 1 ? "" : "s")
                  << " not admitted (listed in the header)";
    }
    std::cerr << check << (a.out.empty() ? "" : "; written to " + a.out) << "\n";
    return kExitOk;
}

}  // namespace

void addAnalysisCommands(CLI::App& app, Commands& cmds) {
    auto w = std::make_shared<AnalysisArgs>();
    CLI::App* whatif = app.add_subcommand(
        "whatif",
        "replay recorded flows against candidate policy: which verdicts would change (exit 4 if "
        "a flow that passes today would be dropped)");
    whatif->add_option("-p,--policy", w->policy, "candidate policy files or directories")
        ->type_name(kPathType)
        ->required();
    whatif->add_option("--flows", w->flows, "OCSF flow files ('-' = standard input)")
        ->type_name(kFileType)
        ->required();
    whatif->add_flag("--strict", w->strict, kStrictFlowsHelp);
    whatif->add_option("-o,--output", w->format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    cmds.on(whatif, [w] { return runWhatif(*w); });

    auto s = std::make_shared<AnalysisArgs>();
    CLI::App* suggest = app.add_subcommand(
        "suggest",
        "least-privilege policy (YAML, label-based) admitting exactly the observed flows");
    suggest->add_option("--flows", s->flows, "OCSF flow files ('-' = standard input)")
        ->type_name(kFileType)
        ->required();
    suggest->add_flag("--strict", s->strict, kStrictFlowsHelp);
    suggest
        ->add_option("-p,--policy", s->policy,
                     "take workloads, externals and hosts from these policy files (their "
                     "policies are ignored); default: rebuilt from the flows")
        ->type_name(kPathType);
    suggest->add_option("--mode", s->mode, "mode of the suggested policies: enforce or audit")
        ->check(CLI::IsMember({"enforce", "audit"}))
        ->capture_default_str();
    suggest->add_flag("--policies-only", s->policies_only,
                      "write only policies: (to add to an existing inventory)");
    suggest->add_option("--out", s->out, "write the YAML here instead of standard output")
        ->type_name(kFileType);
    cmds.on(suggest, [s] { return runSuggest(*s); });
}

}  // namespace ztseg::cli
