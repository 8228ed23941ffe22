// compile, check, explain: offline commands on policy files (and, for
// explain, a recorded flow event).
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "agent/failsafe_rules.hpp"
#include "cli/command.hpp"
#include "cli/completion.hpp"
#include "cli/daemon_client.hpp"
#include "cli/flow_text.hpp"
#include "cli/policy_view.hpp"
#include "cli/usage.hpp"
#include "common/error.hpp"
#include "flows/flow_judge.hpp"
#include "flows/ocsf_reader.hpp"
#include "policy/bundle.hpp"
#include "policy/compiled_judge.hpp"
#include "policy/compiler.hpp"
#include "policy/explain.hpp"
#include "policy/parser.hpp"

namespace ztseg::cli {
namespace {

using namespace ztseg::policy;
using json = nlohmann::json;

void printDiagnostics(const std::vector<Diagnostic>& diags) {
    for (const auto& d : diags) {
        std::cerr << d.str() << "\n";
    }
}

json diagnosticsJson(const std::vector<Diagnostic>& diags) {
    json out = json::array();
    for (const auto& d : diags) {
        out.push_back(
            {{"severity", d.severity == Diagnostic::Severity::Error ? "error" : "warning"},
             {"file", d.loc.file},
             {"line", d.loc.line},
             {"column", d.loc.column},
             {"message", d.message}});
    }
    return out;
}

struct CompileArgs {
    std::vector<std::string> paths;
    std::string output = "bundle.pb";
    uint64_t generation = 1;
    std::string fleet;
    bool strict = false;
    std::string format = "text";
};

int runCompile(const CompileArgs& a, bool write) {
    using Clock = std::chrono::steady_clock;
    auto t0 = Clock::now();
    Diagnostics diags;
    CompiledPolicy cp;
    try {
        PolicySet ps = loadPolicies(a.paths, diags);
        cp = compile(ps, a.generation, diags);
    } catch (const PolicyError& e) {
        if (a.format == "json") {
            std::cout
                << json{{"ok", false}, {"diagnostics", diagnosticsJson(e.diagnostics())}}.dump(2)
                << "\n";
        } else {
            printDiagnostics(e.diagnostics());
            std::cerr << "no bundle written: fix the errors above\n";
        }
        return kExitInputErrors;
    }
    auto warnings = diags.warnings();
    std::vector<std::string> raw_sockets;  // workloads a policy lets open raw sockets
    for (const auto& w : cp.workloads) {
        if (w.raw_sockets) {
            raw_sockets.push_back(w.name);
        }
    }
    std::string bytes = serializeBundle(cp, {a.fleet, 0});
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    bool failed = a.strict && !warnings.empty();
    if (write && !failed) {
        std::ofstream f(a.output, std::ios::binary | std::ios::trunc);
        if (!f.write(bytes.data(), std::streamsize(bytes.size())) || !f.flush()) {
            std::cerr << "ztsegctl: write " << a.output << ": " << std::strerror(errno) << "\n";
            return kExitFailed;
        }
    }
    if (a.format == "json") {
        std::cout << json{{"ok", !failed},
                          {"generation", cp.generation},
                          {"workloads", cp.workloads.size()},
                          {"identities", cp.identities.size()},
                          {"rules", cp.sources.size()},
                          {"entries", cp.rules.size()},
                          {"bundle_bytes", bytes.size()},
                          {"source_digest", cp.source_digest},
                          {"raw_sockets", raw_sockets},
                          {"compile_ms", ms},
                          {"diagnostics", diagnosticsJson(warnings)}}
                         .dump(2)
                  << "\n";
    } else {
        printDiagnostics(warnings);
        if (!raw_sockets.empty()) {
            std::string names;
            for (const auto& n : raw_sockets) {
                names += (names.empty() ? "" : ", ") + n;
            }
            std::cerr << "raw sockets allowed (raw_sockets: allow) for: " << names << "\n";
        }
        std::cerr << (failed ? "refused (--strict): " : "") << cp.workloads.size() << " workloads, "
                  << cp.identities.size() << " identities, " << cp.sources.size() << " rules -> "
                  << cp.rules.size() << " entries, " << warnings.size() << " warnings, " << ms
                  << " ms";
        if (write && !failed) {
            std::cerr << "; generation " << cp.generation << " written to " << a.output << " ("
                      << bytes.size() << " bytes)";
        }
        std::cerr << "\n";
    }
    return failed ? kExitInputErrors : kExitOk;
}

struct ExplainArgs {
    std::vector<std::string> paths{"policies"};
    std::string from, to, service;
    std::string flow_file;
    int pick = 0;  // 1-based; negative counts from the end; 0 = the only event
    std::string format = "text";
    bool live = false;  // judged against the bundle the local ztsegd holds
    std::string socket;
    std::string config;  // ztsegd.yaml: its failsafe rules decide the host's side first
};

// The failsafe rules of the ztsegd.yaml named by --config (none without it).
std::vector<FailsafeRule> configFailsafe(const ExplainArgs& a) {
    if (a.config.empty()) {
        return {};
    }
    std::vector<std::string> warnings;
    auto rules = agent::failsafeRules(agent::loadConfig(a.config), &warnings);
    for (const auto& w : warnings)
        std::cerr << "ztsegctl: explain: " << a.config << ": " << w << "\n";
    return rules;
}

const char* verdictOf(const Explanation& ex) {
    return !ex.allowed ? "dropped" : ex.would_drop ? "would-drop" : "allowed";
}

json explanationJson(const Explanation& ex) {
    json sides = json::array();
    for (const auto& s : ex.sides) {
        sides.push_back({{"direction", s.direction == Direction::Egress ? "egress" : "ingress"},
                         {"workload", s.workload},
                         {"verdict", !s.evaluation.pass        ? "dropped"
                                     : s.evaluation.would_drop ? "would-drop"
                                                               : "allowed"},
                         {"reason", std::string(evalReasonName(s.evaluation.reason))},
                         {"rules", s.evaluation.rules},
                         {"explanation", s.because}});
    }
    return {{"from", ex.from},
            {"to", ex.to},
            {"service", ex.service},
            {"verdict", verdictOf(ex)},
            {"sides", sides}};
}

// The event --pick names in the flow file.
flows::FlowRecord pickFlow(const ExplainArgs& a) {
    std::vector<flows::FlowRecord> all = flows::readFlowFile(a.flow_file);
    const long n = long(all.size());
    if (n == 0) {
        throw Error("explain: " + a.flow_file + " holds no flow events");
    }
    if (a.pick == 0 && n > 1) {
        throw UsageError("explain: " + a.flow_file + " holds " + std::to_string(n) +
                         " flow events: choose one with --pick N (1.." + std::to_string(n) +
                         ", -1 = the last)");
    }
    long i = a.pick == 0 ? 0 : a.pick > 0 ? a.pick - 1 : n + a.pick;
    if (i < 0 || i >= n) {
        throw UsageError("explain: --pick " + std::to_string(a.pick) + " is outside 1.." +
                         std::to_string(n) + " (the events in " + a.flow_file + ")");
    }
    return all[size_t(i)];
}

// --live: the same explanation, from the policy ztsegd enforces now.
int runExplainLive(const ExplainArgs& a) {
    if (a.from.empty() || a.to.empty() || a.service.empty()) {
        std::cerr << "ztsegctl: explain --live needs --from, --to and --port; see ztsegctl "
                     "explain --help\n";
        return kExitUsage;
    }
    HeldPolicy held = localPolicy(a.socket);
    if (held.policy.generation == 0) {
        throw Error("explain --live: " + held.holder + " enforces no policy yet");
    }
    Explanation ex;
    try {
        ex = explainCompiled(held.policy, a.from, a.to, a.service, held.failsafe);
    } catch (const Error& e) {
        std::cerr << "ztsegctl: explain: " << e.what() << "\n";
        return kExitUsage;
    }
    const std::string source =
        held.holder + ", generation " + std::to_string(held.policy.generation);
    if (a.format == "json") {
        json j = explanationJson(ex);
        j["judged_by"] = source;
        j["generation"] = held.policy.generation;
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << "judged by " << source << "\n" << ex.text();
    }
    return kExitOk;
}

int runExplain(const ExplainArgs& a) {
    if (a.live) {
        return runExplainLive(a);
    }
    if (a.flow_file.empty() && (a.from.empty() || a.to.empty() || a.service.empty())) {
        return reportMissingInput("explain");
    }
    Diagnostics diags;
    PolicySet ps;
    try {
        ps = loadPolicies(a.paths, diags);
    } catch (const PolicyError& e) {
        printDiagnostics(e.diagnostics());
        return kExitInputErrors;
    }
    if (a.flow_file.empty()) {
        Explanation ex;
        try {
            ex = explainFlow(ps, a.from, a.to, a.service, configFailsafe(a));
        } catch (const Error& e) {
            // Parties and service that name nothing (or too much) are bad arguments.
            std::cerr << "ztsegctl: explain: " << e.what() << "\n";
            return kExitUsage;
        }
        std::cout << (a.format == "json" ? explanationJson(ex).dump(2) + "\n" : ex.text());
        return kExitOk;
    }

    flows::FlowRecord r = pickFlow(a);
    flows::FlowJudge judge(ps);
    Explanation ex = judge.explain(r);
    flows::Judgement side = judge.judge(r);
    if (a.format == "json") {
        json j = explanationJson(ex);
        j["event"] = {{"time", isoTime(r.time)},
                      {"host", r.host},
                      {"hook", r.hook},
                      {"direction", r.direction == Direction::Egress ? "egress" : "ingress"},
                      {"verdict", r.verdict},
                      {"reason", r.reason},
                      {"generation", r.generation},
                      {"source", endpointText(r.src)},
                      {"proven", r.proven},
                      {"destination", endpointText(r.dst)}};
        j["event_side"] = {{"at", side.at},
                           {"verdict", side.verdict},
                           {"reason", side.reason},
                           {"explanation", side.because},
                           {"agrees", side.verdict == r.verdict}};
        std::cout << j.dump(2) << "\n";
        return kExitOk;
    }
    std::cout << "event: " << flowTime(r.time) << " " << r.host << " " << r.hook << ": "
              << sourceText(r) << " -> " << endpointText(r.dst) << " " << r.protocol_name << "\n"
              << (r.proven ? "  source identity: proven on the wire (the SYN's proof named it, "
                             "under the key its host shares with this one), not looked up from "
                             "the address\n"
                           : std::string())
              << "  recorded: " << r.verdict << " (" << r.reason << ")"
              << (r.rule_id ? " by rule " + std::to_string(r.rule_id) : std::string())
              << ", generation " << r.generation << "\n"
              << "  these policy files, " << side.at << ": " << side.verdict << " (" << side.reason
              << ")\n";
    if (side.verdict != r.verdict) {
        std::cout << "  note: the policy files judge this event differently than the datapath "
                     "did: were they the policy of generation "
                  << r.generation << "?\n";
    }
    std::cout << ex.text();
    return kExitOk;
}

}  // namespace

void addPolicyCommands(CLI::App& app, Commands& cmds) {
    auto compile_args = std::make_shared<CompileArgs>();
    auto addCompileOptions = [compile_args](CLI::App* c) {
        c->add_option("paths", compile_args->paths, "policy files or directories (*.yaml)")
            ->type_name(kPathType)
            ->required();
        c->add_flag("--strict", compile_args->strict, "treat warnings as errors");
        CLI::Option* format = c->add_option("-o,--output", compile_args->format, "text or json")
                                  ->check(CLI::IsMember({"text", "json"}));
        addDeprecatedAlias(c, "--output-format", format, compile_args->format);
    };
    CLI::App* compile_cmd = app.add_subcommand("compile", "compile policy into a bundle");
    addCompileOptions(compile_cmd);
    CLI::Option* out =
        compile_cmd->add_option("--out", compile_args->output, "bundle file to write")
            ->type_name(kFileType)
            ->capture_default_str();
    for (const char* old : {"-b", "--bundle"}) {
        addDeprecatedAlias(compile_cmd, old, out, compile_args->output);
    }
    compile_cmd
        ->add_option("-g,--generation", compile_args->generation,
                     "generation number (strictly increasing per fleet)")
        ->capture_default_str()
        ->check(CLI::Range(uint64_t(1), UINT64_MAX));
    compile_cmd->add_option("--fleet", compile_args->fleet, "fleet name the bundle is for");
    cmds.on(compile_cmd, [compile_args] { return runCompile(*compile_args, true); });
    CLI::App* check_cmd = app.add_subcommand("check", "validate policy, print warnings");
    addCompileOptions(check_cmd);
    cmds.on(check_cmd, [compile_args] { return runCompile(*compile_args, false); });

    auto ex = std::make_shared<ExplainArgs>();
    CLI::App* explain_cmd = app.add_subcommand(
        "explain",
        "which rule decides a flow: --from app=web --to app=db --port 5432/tcp, or a recorded "
        "flow event (--flow-file FILE --pick N; '-' reads standard input)");
    explain_cmd->add_option("-p,--policy", ex->paths, "policy files or directories")
        ->type_name(kPathType)
        ->capture_default_str();
    explain_cmd->add_option("--from", ex->from, "source: labels (k=v,...) or IP");
    explain_cmd->add_option("--to", ex->to, "destination: labels (k=v,...) or IP");
    explain_cmd->add_option("--port", ex->service, "PORT/PROTO, icmp or icmpv6");
    auto* flow_opt =
        explain_cmd
            ->add_option(
                "--flow-file", ex->flow_file,
                "OCSF flow events (the flow file, `ztsegctl flows -o json`); '-' = standard input")
            ->type_name(kFileType);
    explain_cmd->add_option("--pick", ex->pick, "which event: 1..N, -1 = the last")
        ->needs(flow_opt);
    for (const char* o : {"--from", "--to", "--port"}) {
        explain_cmd->get_option(o)->excludes(flow_opt);
    }
    explain_cmd->add_option("-o,--output", ex->format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    CLI::Option* live = explain_cmd->add_flag(
        "--live", ex->live, "judge against the policy the local ztsegd enforces now, not files");
    live->excludes(flow_opt);
    live->excludes(explain_cmd->get_option("--policy"));
    explain_cmd
        ->add_option("-c,--config", ex->config,
                     "ztsegd.yaml: its failsafe rules decide the host's side first (--live "
                     "takes them from ztsegd)")
        ->type_name(kFileType)
        ->excludes(live);
    addSocketOption(explain_cmd, ex->socket);
    cmds.on(explain_cmd, [ex] { return runExplain(*ex); });
}

}  // namespace ztseg::cli
