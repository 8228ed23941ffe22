// ztsegctl: the operator CLI. Policy commands (compile, check, explain) work
// offline on policy files; daemon commands arrive with ztsegd.
//
// Exit codes: 0 success; 1 the input has errors (or, with --strict, warnings);
// 2 usage error; 3 an operation failed (I/O, bad bundle).
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/fleet_commands.hpp"
#include "policy/bundle.hpp"
#include "policy/compiler.hpp"
#include "policy/explain.hpp"
#include "policy/parser.hpp"

using namespace ztseg;
using namespace ztseg::policy;
using json = nlohmann::json;

namespace {

constexpr int kExitInputErrors = 1;
constexpr int kExitFailed = 3;

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
                          {"compile_ms", ms},
                          {"diagnostics", diagnosticsJson(warnings)}}
                         .dump(2)
                  << "\n";
    } else {
        printDiagnostics(warnings);
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
    return failed ? kExitInputErrors : 0;
}

struct ExplainArgs {
    std::vector<std::string> paths{"policies"};
    std::string from, to, service;
    std::string format = "text";
};

int runExplain(const ExplainArgs& a) {
    Diagnostics diags;
    PolicySet ps;
    try {
        ps = loadPolicies(a.paths, diags);
    } catch (const PolicyError& e) {
        printDiagnostics(e.diagnostics());
        return kExitInputErrors;
    }
    Explanation ex = explainFlow(ps, a.from, a.to, a.service);
    if (a.format == "json") {
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
        std::cout << json{{"from", ex.from},
                          {"to", ex.to},
                          {"service", ex.service},
                          {"verdict", !ex.allowed     ? "dropped"
                                      : ex.would_drop ? "would-drop"
                                                      : "allowed"},
                          {"sides", sides}}
                         .dump(2)
                  << "\n";
    } else {
        std::cout << ex.text();
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    spdlog::set_level(spdlog::level::warn);
    CLI::App app{"ztsegctl: compile, check and explain ztseg segmentation policy"};
    app.require_subcommand(1);
    app.footer("Exit codes: 0 ok, 1 input errors (or warnings with --strict), 2 usage, 3 failure.");

    CompileArgs compile_args;
    auto addCompileOptions = [&](CLI::App* c) {
        c->add_option("paths", compile_args.paths, "policy files or directories (*.yaml)")
            ->required();
        c->add_flag("--strict", compile_args.strict, "treat warnings as errors");
        c->add_option("-o,--output-format", compile_args.format, "text or json")
            ->check(CLI::IsMember({"text", "json"}));
    };
    CLI::App* compile_cmd = app.add_subcommand("compile", "compile policy into a bundle");
    addCompileOptions(compile_cmd);
    compile_cmd->add_option("-b,--bundle", compile_args.output, "bundle file to write")
        ->capture_default_str();
    compile_cmd
        ->add_option("-g,--generation", compile_args.generation,
                     "generation number (strictly increasing per fleet)")
        ->capture_default_str()
        ->check(CLI::Range(uint64_t(1), UINT64_MAX));
    compile_cmd->add_option("--fleet", compile_args.fleet, "fleet name the bundle is for");
    CLI::App* check_cmd = app.add_subcommand("check", "validate policy, print warnings");
    addCompileOptions(check_cmd);

    ExplainArgs explain_args;
    CLI::App* explain_cmd = app.add_subcommand(
        "explain", "which rule decides a flow, e.g. --from app=web --to app=db --port 5432/tcp");
    explain_cmd->add_option("-p,--policy", explain_args.paths, "policy files or directories")
        ->capture_default_str();
    explain_cmd->add_option("--from", explain_args.from, "source: labels (k=v,...) or IP")
        ->required();
    explain_cmd->add_option("--to", explain_args.to, "destination: labels (k=v,...) or IP")
        ->required();
    explain_cmd->add_option("--port", explain_args.service, "PORT/PROTO, icmp or icmpv6")
        ->required();
    explain_cmd->add_option("-o,--output", explain_args.format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));

    cli::addFleetCommands(app);

    try {
        app.parse(argc, argv);
    } catch (const CLI::RuntimeError& e) {
        return e.get_exit_code();  // a command that ran from its callback failed
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;  // --help is a ParseError too
    }
    try {
        if (*compile_cmd) {
            return runCompile(compile_args, true);
        }
        if (*check_cmd) {
            return runCompile(compile_args, false);
        }
        if (*explain_cmd) {
            return runExplain(explain_args);
        }
    } catch (const std::exception& e) {
        std::cerr << "ztsegctl: " << e.what() << "\n";
        return kExitFailed;
    }
    return 0;
}
