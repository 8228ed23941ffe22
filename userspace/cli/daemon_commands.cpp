// status, policy show, diff, apply (--confirm-within), confirm, rollback, uninstall: the local
// ztsegd through its API socket (status, when ztsegd is stopped: its pins, stopped_status.hpp).
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>

#include "agent/config.hpp"
#include "cli/command.hpp"
#include "cli/completion.hpp"
#include "cli/daemon_client.hpp"
#include "cli/policy_view.hpp"
#include "cli/status_text.hpp"
#include "cli/stopped_status.hpp"
#include "cli/usage.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "datapath/datapath.hpp"
#include "policy/bundle.hpp"
#include "policy/bundle_delta.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"
#include "policy/policy_diff.hpp"
#include "policy/signing.hpp"
#include "shared/confirm_duration.hpp"

namespace ztseg::cli {
namespace {

constexpr const char* kDefaultConfig = "/etc/ztseg/ztsegd.yaml";

struct DaemonArgs {
    std::string socket;
    std::string format = "text";
    // apply
    std::string bundle;
    std::vector<std::string> paths;
    uint64_t generation = 0;
    std::string fleet;
    bool dry_run = false, force = false;
    unsigned max_removal = policy::kDefaultMaxRemovalPercent;
    std::string confirm_within;  // "60s": apply with a confirm window
    // confirm
    uint64_t confirm_generation = 0;
    // diff
    std::string against;
    // uninstall; status (where a stopped ztsegd left its state)
    std::string config = kDefaultConfig;
    bool config_given = false;
    std::string pin_dir, state_dir;
};

v1::StatusReply fetchStatus(DaemonClient& c) {
    v1::StatusReply st;
    c.check(c.stub().Status(DaemonClient::context().get(), v1::StatusRequest{}, &st), "status");
    return st;
}

// ztsegd stopped: what its pins still enforce, read without changing them.
int runStoppedStatus(const DaemonArgs& a, const std::string& socket,
                     const std::optional<agent::AgentConfig>& cfg) {
    // ztsegd's defaults, unless its config or an option says otherwise.
    const agent::AgentConfig defaults;
    const agent::AgentConfig& c = cfg ? *cfg : defaults;
    const std::string pin_dir = a.pin_dir.empty() ? c.datapath.pin_dir : a.pin_dir;
    const std::string state_dir = a.state_dir.empty() ? c.state_dir : a.state_dir;
    if (geteuid() != 0) {
        throw Error("ztsegd is not running (nobody answers on " + socket +
                    "); reading what its datapath pinned under " + pin_dir +
                    " still enforces needs root: run ztsegctl as root (sudo)");
    }
    StoppedStatus st = readStoppedStatus(socket, pin_dir, state_dir);
    std::cout << (a.format == "json" ? stoppedStatusJson(st) : stoppedStatusText(st));
    return st.pinned ? kExitStoppedEnforcing : kExitNothingEnforced;
}

int runStatus(const DaemonArgs& a) {
    // An explicit --config must be read; the default one is used if it exists
    // and reads (status must not fail on a file it did not ask for).
    std::optional<agent::AgentConfig> cfg;
    if (a.config_given) {
        cfg = agent::loadConfig(a.config);
    } else if (std::error_code ec; std::filesystem::exists(a.config, ec)) {
        try {
            cfg = agent::loadConfig(a.config);
        } catch (const Error& e) {
            spdlog::warn("status: ignoring {}: {}", a.config, e.what());
        }
    }
    const std::string socket = cfg && a.socket == kDefaultSocket ? cfg->unix_socket : a.socket;
    if (DaemonClient::absent(socket)) {
        return runStoppedStatus(a, socket, cfg);
    }
    DaemonClient c(socket);
    v1::StatusReply st = fetchStatus(c);
    std::cout << (a.format == "json" ? statusJson(st) : statusText(st));
    return kExitOk;
}

// A candidate: compiled here from policy paths, or a bundle file.
struct Candidate {
    std::string bytes;
    policy::CompiledPolicy policy;
};

// nullopt: the sources have errors (printed).
std::optional<Candidate> candidateOf(const DaemonArgs& a, const std::function<uint64_t()>& next) {
    Candidate cand;
    if (!a.bundle.empty()) {
        cand.bytes = readFile(a.bundle, "bundle");
        cand.policy = policy::parseBundle(policy::openEnvelope(cand.bytes).bundle);
        return cand;
    }
    policy::Diagnostics diags;
    try {
        cand.policy = policy::compile(policy::loadPolicies(a.paths, diags),
                                      a.generation ? a.generation : next(), diags);
    } catch (const policy::PolicyError& e) {
        for (const auto& d : e.diagnostics()) std::cerr << d.str() << "\n";
        std::cerr << "nothing applied: fix the errors above\n";
        return std::nullopt;
    }
    for (const auto& d : diags.warnings()) std::cerr << d.str() << "\n";
    cand.bytes = policy::serializeBundle(cand.policy, {a.fleet, 0});
    return cand;
}

// False (the error printed) without a candidate, or with two.
bool usageOfCandidate(const DaemonArgs& a, const char* cmd) {
    if (a.bundle.empty() && a.paths.empty()) {
        reportMissingInput(cmd);
        return false;
    }
    if (!a.bundle.empty() && !a.paths.empty()) {
        std::cerr << "ztsegctl: " << cmd
                  << " takes policy files (compiled here) or --bundle FILE, not both; see "
                     "ztsegctl "
                  << cmd << " --help\n";
        return false;
    }
    return true;
}

int runPolicyShow(const DaemonArgs& a) {
    HeldPolicy held = localPolicy(a.socket);
    std::cout << (a.format == "json" ? policyJson(held) : policyText(held));
    return kExitOk;
}

int runDiff(const DaemonArgs& a) {
    if (!usageOfCandidate(a, "diff")) {
        return kExitUsage;
    }
    policy::CompiledPolicy active;
    if (!a.against.empty()) {
        active = policy::parseBundle(policy::openEnvelope(readFile(a.against, "bundle")).bundle);
    } else {
        active = localPolicy(a.socket).policy;
    }
    auto cand = candidateOf(a, [&] { return active.generation + 1; });
    if (!cand) {
        return kExitInputErrors;
    }
    policy::PolicyDiff d = policy::diffPolicies(active, cand->policy);
    std::cout << (a.format == "json" ? diffJson(d) : diffText(d));
    return kExitOk;
}

// The delta from the daemon's bundle in force to `bundle`, in its envelope;
// nullopt when it holds none or the change is too large for a delta to pay.
std::optional<std::string> deltaAgainstDaemon(DaemonClient& c, const std::string& bundle) {
    v1::PolicyReply held;
    c.check(c.stub().Policy(DaemonClient::context().get(), v1::PolicyRequest{}, &held), "policy");
    if (held.bundle().empty()) {
        return std::nullopt;
    }
    auto delta = policy::makeDelta(policy::openEnvelope(held.bundle()).bundle,
                                   policy::openEnvelope(bundle).bundle);
    if (!delta) {
        return std::nullopt;
    }
    std::string env = policy::deltaEnvelope(*delta, bundle);
    if (env.size() >= bundle.size()) {
        return std::nullopt;  // a small policy: the whole bundle is smaller
    }
    return env;
}

int runApply(const DaemonArgs& a) {
    if (!usageOfCandidate(a, "apply")) {
        return kExitUsage;
    }
    uint32_t confirm_ms = 0;
    if (!a.confirm_within.empty()) {
        if (a.dry_run) {
            throw UsageError("--confirm-within applies something; --dry-run applies nothing");
        }
        try {
            confirm_ms = parseConfirmWindow(a.confirm_within);
        } catch (const Error& e) {
            throw UsageError(std::string("--confirm-within: ") + e.what());
        }
    }
    DaemonClient c(a.socket);
    // The next generation after what the daemon has, unless given.
    auto cand = candidateOf(a, [&] { return fetchStatus(c).generation() + 1; });
    if (!cand) {
        return kExitInputErrors;
    }
    if (a.dry_run || !a.force) {
        const policy::CompiledPolicy active = localPolicy(a.socket).policy;
        policy::PolicyDiff d = policy::diffPolicies(active, cand->policy);
        if (a.dry_run) {
            std::cout << (a.format == "json" ? diffJson(d) : diffText(d));
            std::cerr << "dry run: nothing applied\n";
            return kExitOk;
        }
        if (active.generation != 0) {
            if (auto why = policy::guardRefusal(d, a.max_removal)) {
                std::cerr << "ztsegctl: apply refused, enforcement unchanged: " << *why
                          << ".\nSee what would change with ztsegctl apply --dry-run; apply it "
                             "anyway with --force.\n";
                return kExitFailed;
            }
        }
    }
    // A delta against the bundle in force when there is one (DESIGN §6): the
    // daemon rebuilds the same bundle and checks its signatures as if whole.
    std::optional<std::string> delta = deltaAgainstDaemon(c, cand->bytes);
    v1::ApplyRequest req;
    req.set_bundle(delta ? *delta : cand->bytes);
    req.set_confirm_within_ms(confirm_ms);
    v1::ApplyReply reply;
    grpc::Status st =
        c.stub().Apply(DaemonClient::context(std::chrono::seconds(60)).get(), req, &reply);
    if (delta && !st.ok() &&
        st.error_message().find("the full bundle is needed") != std::string::npos) {
        // The bundle in force changed in between: send it whole.
        delta.reset();
        req.set_bundle(cand->bytes);
        st = c.stub().Apply(DaemonClient::context(std::chrono::seconds(60)).get(), req, &reply);
    }
    c.check(st, "apply");
    std::cout << "applied generation " << reply.generation();
    if (delta) {
        std::cout << " (sent as a delta: " << delta->size() << " of " << cand->bytes.size()
                  << " bytes)";
    }
    std::cout << "\n";
    if (confirm_ms != 0) {
        const uint64_t back = fetchStatus(c).confirm_pending().return_to();
        std::cout << "unless `ztsegctl confirm` reaches ztsegd within " << a.confirm_within
                  << ", it rolls back to generation " << back << " by itself\n";
    }
    return kExitOk;
}

int runConfirm(const DaemonArgs& a) {
    DaemonClient c(a.socket);
    v1::ConfirmRequest req;
    req.set_generation(a.confirm_generation);
    v1::ConfirmReply reply;
    c.check(c.stub().Confirm(DaemonClient::context().get(), req, &reply), "confirm");
    std::cout << "confirmed generation " << reply.generation() << ": it stays in force\n";
    return kExitOk;
}

int runRollback(const DaemonArgs& a) {
    DaemonClient c(a.socket);
    v1::RollbackReply reply;
    c.check(c.stub().Rollback(DaemonClient::context(std::chrono::seconds(60)).get(),
                              v1::RollbackRequest{}, &reply),
            "rollback");
    std::cout << "rolled back to generation " << reply.generation() << "\n";
    return kExitOk;
}

int runUninstall(const DaemonArgs& a) {
    if (geteuid() != 0) {
        throw Error("uninstall: detaching BPF programs needs root; run ztsegctl as root (sudo)");
    }
    agent::AgentConfig cfg = agent::loadConfig(a.config);
    std::string socket = a.socket == kDefaultSocket ? cfg.unix_socket : a.socket;
    if (DaemonClient::running(socket)) {
        if (!DaemonClient::answers(socket, std::chrono::seconds(3))) {
            // A hung ztsegd still holds its links and could wake up and apply again.
            throw Error("uninstall: ztsegd holds " + socket +
                        " but does not answer (hung?): kill it (systemctl kill --signal=KILL "
                        "ztsegd, or kill -9 its pid), then run ztsegctl uninstall again");
        }
        throw Error("uninstall: ztsegd is running (" + socket +
                    ") and would re-install enforcement: stop it first (systemctl stop ztsegd), "
                    "then run ztsegctl uninstall again");
    }
    Datapath::uninstall(cfg.datapath.pin_dir);
    std::cout << "ztseg removed: every program detached, every pin under " << cfg.datapath.pin_dir
              << " deleted; nothing is enforced on this host now\n";
    return kExitOk;
}

}  // namespace

void addDaemonCommands(CLI::App& app, Commands& cmds) {
    auto a = std::make_shared<DaemonArgs>();

    CLI::App* status = app.add_subcommand(
        "status",
        "the local ztsegd: generation, XDP interfaces, workloads, counters; when it is not "
        "running, what its pinned datapath still enforces (exit 5), or that nothing is (exit 6)");
    addSocketOption(status, a->socket);
    status->add_option("-o,--output", a->format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    CLI::Option* status_config =
        status
            ->add_option("-c,--config", a->config,
                         "ztsegd's configuration (socket, pin_dir, state_dir), read if it exists")
            ->capture_default_str();
    status->add_option("--pin-dir", a->pin_dir,
                       "where ztsegd pins the datapath (default: the config's pin_dir, else "
                       "/sys/fs/bpf/ztseg)");
    status->add_option("--state-dir", a->state_dir,
                       "ztsegd's state_dir, for workload names (default: the config's, else "
                       "/var/lib/ztseg)");
    cmds.on(status, [a, status_config] {
        a->config_given = status_config->count() > 0;
        return runStatus(*a);
    });

    // The candidate of apply and diff: policy paths compiled here, or a bundle.
    auto addCandidateOptions = [a](CLI::App* cmd) {
        cmd->add_option("paths", a->paths, "policy files or directories (*.yaml)")
            ->type_name(kPathType);
        cmd->add_option("-b,--bundle", a->bundle, "a bundle from `ztsegctl compile` instead")
            ->type_name(kFileType);
        cmd->add_option("--fleet", a->fleet, "fleet name for the compiled paths");
    };
    CLI::App* apply = app.add_subcommand(
        "apply",
        "compile policy files and apply them on the local ztsegd (next generation), or apply a "
        "compiled --bundle");
    addSocketOption(apply, a->socket);
    addCandidateOptions(apply);
    apply
        ->add_option("-g,--generation", a->generation,
                     "generation for the compiled paths (default: the daemon's + 1)")
        ->check(CLI::Range(uint64_t(1), UINT64_MAX));
    apply->add_flag("--dry-run", a->dry_run,
                    "show what would change against the generation in force; apply nothing");
    apply->add_option("-o,--output", a->format, "--dry-run output: text or json")
        ->check(CLI::IsMember({"text", "json"}));
    apply->add_flag("--force", a->force,
                    "apply even if it removes all enforcement or more than --max-removal of "
                    "the rule entries in force");
    apply
        ->add_option("--max-removal", a->max_removal,
                     "the share of rule entries in force (percent) an apply may remove without "
                     "--force")
        ->check(CLI::Range(0u, 100u))
        ->capture_default_str();
    apply->add_option("--confirm-within", a->confirm_within,
                      "apply with a confirm window (e.g. 30s, 2m, at most 24h): unless "
                      "`ztsegctl confirm` reaches ztsegd in time, it rolls back by itself to the "
                      "last confirmed generation");
    cmds.on(apply, [a] { return runApply(*a); });

    CLI::App* confirm = app.add_subcommand(
        "confirm",
        "confirm the generation applied with --confirm-within: it stays in force (no automatic "
        "rollback)");
    addSocketOption(confirm, a->socket);
    confirm->add_option("-g,--generation", a->confirm_generation,
                        "the generation you mean (refused if another one awaits confirmation); "
                        "default: whichever does");
    cmds.on(confirm, [a] { return runConfirm(*a); });

    CLI::App* diff = app.add_subcommand(
        "diff",
        "what applying policy files (or a --bundle) would change against the generation the "
        "local ztsegd enforces (or --against BUNDLE): rule entries, workloads, identities");
    addSocketOption(diff, a->socket);
    addCandidateOptions(diff);
    diff->add_option("--against", a->against,
                     "compare with this bundle instead of the one ztsegd enforces")
        ->type_name(kFileType);
    diff->add_option("-o,--output", a->format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    cmds.on(diff, [a] { return runDiff(*a); });

    CLI::App* pol = app.add_subcommand("policy", "the policy the local ztsegd enforces");
    pol->require_subcommand(1);
    CLI::App* show = pol->add_subcommand(
        "show",
        "generation, signer, when it came into force, source digest, workloads with identities "
        "and modes, rules with policy name and file:line");
    addSocketOption(show, a->socket);
    show->add_option("-o,--output", a->format, "text or json")
        ->check(CLI::IsMember({"text", "json"}));
    cmds.on(show, [a] { return runPolicyShow(*a); });

    CLI::App* rollback =
        app.add_subcommand("rollback", "switch the local ztsegd back to the previous generation");
    addSocketOption(rollback, a->socket);
    cmds.on(rollback, [a] { return runRollback(*a); });

    CLI::App* uninstall = app.add_subcommand(
        "uninstall",
        "remove ztseg from this host (every BPF program and pin); ztsegd must be stopped");
    addSocketOption(uninstall, a->socket);
    uninstall->add_option("-c,--config", a->config, "ztsegd's configuration (pin_dir, socket)")
        ->type_name(kFileType)
        ->capture_default_str();
    cmds.on(uninstall, [a] { return runUninstall(*a); });
}

}  // namespace ztseg::cli
