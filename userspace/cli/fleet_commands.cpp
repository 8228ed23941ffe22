#include "cli/fleet_commands.hpp"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <memory>

#include "cli/command.hpp"
#include "cli/completion.hpp"
#include "cli/flow_output.hpp"
#include "cli/flow_query.hpp"
#include "cli/map_commands.hpp"
#include "cli/policy_view.hpp"
#include "cli/rule_commands.hpp"
#include "cli/usage.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "controller.grpc.pb.h"
#include "policy/bundle.hpp"
#include "policy/signing.hpp"
#include "shared/flow_stream.hpp"

namespace ztseg::cli {
namespace {
[[noreturn]] void fail(const std::string& msg) {
    std::cerr << "ztsegctl: " << msg << "\n";
    throw CLI::RuntimeError(kExitFailed);
}

void writeFile(const std::string& path, const std::string& data, mode_t mode) {
    ::umask(0077);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f.write(data.data(), std::streamsize(data.size())) || !f.flush()) {
        fail("write " + path + ": " + std::strerror(errno));
    }
    ::chmod(path.c_str(), mode);
}

// ---- keys and signatures ----

struct KeygenArgs {
    std::string out = "ztseg-signing";
    bool force = false;
};

void runKeygen(const KeygenArgs& a) {
    std::string priv = a.out + ".key", pub = a.out + ".pub";
    struct stat st {};
    if (!a.force && (::stat(priv.c_str(), &st) == 0 || ::stat(pub.c_str(), &st) == 0)) {
        fail(priv + " or " + pub + " exists (use --force to overwrite)");
    }
    policy::Ed25519Key k = policy::Ed25519Key::generate();
    writeFile(priv, k.privatePem(), 0600);
    writeFile(pub, k.publicPem(), 0644);
    std::cout << k.keyId() << "\n";
    std::cerr << "private key " << priv << " (keep it on the controller only), public key " << pub
              << " (list it in every agent's trusted_keys)\n";
}

struct SignArgs {
    std::string bundle, output;
    std::vector<std::string> keys;
};

void runSign(const SignArgs& a) {
    std::string bytes = readFile(a.bundle, "bundle");
    policy::Envelope env = policy::openEnvelope(bytes);
    policy::BundleMeta meta;
    policy::CompiledPolicy cp = policy::parseBundle(env.bundle, &meta);  // refuse to sign junk
    std::vector<policy::Ed25519Key> keys;
    for (const auto& k : a.keys) keys.push_back(policy::Ed25519Key::load(k));
    std::string out = policy::signBundle(env.bundle, keys);
    writeFile(a.output.empty() ? a.bundle : a.output, out, 0644);
    std::cerr << "generation " << cp.generation << " (fleet '" << meta.fleet << "') signed by";
    for (const auto& k : keys) std::cerr << " " << k.keyId();
    std::cerr << "\n";
}

struct VerifyArgs {
    std::string bundle;
    std::vector<std::string> keys;
};

void runVerify(const VerifyArgs& a) {
    std::vector<policy::Ed25519Key> keys;
    for (const auto& k : a.keys) keys.push_back(policy::Ed25519Key::loadTrusted(k));
    policy::VerifiedBundle v;
    try {
        v = policy::verifyBundle(readFile(a.bundle, "bundle"), keys);
    } catch (const Error& e) {
        fail(a.bundle + ": " + e.what());
    }
    policy::BundleMeta meta;
    policy::CompiledPolicy cp = policy::parseBundle(v.bundle, &meta);
    std::cout << a.bundle << ": generation " << cp.generation << ", fleet '" << meta.fleet
              << "', signed by " << v.key_id << "\n";
}

// ---- the controller client ----

std::unique_ptr<v1::Controller::Stub> controllerStub(const std::string& address) {
    return v1::Controller::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

std::string jsonOf(const google::protobuf::Message& m) {
    std::string out;
    google::protobuf::util::JsonPrintOptions o;
    o.add_whitespace = false;
    o.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(m, &out, o);
    return out;
}

std::string ago(int64_t unix_ms) {
    if (unix_ms == 0)
        return "never";
    int64_t now = int64_t(std::time(nullptr)) * 1000;
    int64_t s = std::max<int64_t>(0, (now - unix_ms) / 1000);
    return s < 120 ? std::to_string(s) + "s ago" : std::to_string(s / 60) + "m ago";
}

void checkCall(const grpc::Status& st, const std::string& what, const std::string& address) {
    if (!st.ok()) {
        fail(what + " via " + address + ": " + st.error_message() +
             (st.error_code() == grpc::StatusCode::UNAVAILABLE ? " (is ztseg-controller running?)"
                                                               : ""));
    }
}

struct ControllerArgs {
    std::string address = "unix:/run/ztseg/controller.sock";
    std::string format = "table";
    bool force = false;  // reload: past the rollout guard
};

void printRollout(const v1::RolloutStatus& r) {
    std::cout << "rollout: " << (r.state().empty() ? "idle" : r.state());
    if (r.generation() != 0) {
        std::cout << " generation " << r.generation() << ", wave " << r.wave() << "/" << r.waves();
    }
    if (!r.reason().empty())
        std::cout << ", halted: " << r.reason();
    if (r.rollback_generation() != 0) {
        std::cout << " (rolled back as generation " << r.rollback_generation() << ")";
    }
    std::cout << "\n";
}

void runStatus(const ControllerArgs& a) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::FleetStatusReply r;
    checkCall(controllerStub(a.address)->FleetStatus(&ctx, {}, &r), "fleet status", a.address);
    if (a.format == "json") {
        std::cout << jsonOf(r) << "\n";
        return;
    }
    std::cout << "fleet " << r.fleet() << " (" << r.mode() << "), stable generation "
              << r.stable_generation() << "\n";
    printRollout(r.rollout());
    std::cout << std::left << std::setw(20) << "HOST" << std::setw(8) << "STATE" << std::setw(12)
              << "GENERATION" << std::setw(10) << "VERSION" << std::setw(14) << "LAST-CONTACT"
              << std::setw(14) << "DEFAULT-DENY" << std::setw(10) << "DROPS"
              << "LAST-ERROR\n";
    for (const auto& h : r.hosts()) {
        std::cout << std::setw(20) << h.host() << std::setw(8) << (h.connected() ? "up" : "down")
                  << std::setw(12) << h.generation() << std::setw(10)
                  << (h.version().empty() ? "-" : h.version()) << std::setw(14)
                  << ago(h.last_contact_unix_ms()) << std::setw(14) << h.default_deny_drops()
                  << std::setw(10) << h.drops() << h.last_error() << "\n";
    }
}

void runReload(const ControllerArgs& a) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
    v1::ReloadRequest req;
    req.set_force(a.force);
    v1::ReloadReply r;
    checkCall(controllerStub(a.address)->Reload(&ctx, req, &r), "fleet reload", a.address);
    if (a.format == "json") {
        std::cout << jsonOf(r) << "\n";
    } else if (!r.refused().empty()) {
        std::cerr << "ztsegctl: rollout refused, generation " << r.generation()
                  << " stays in force: " << r.refused()
                  << ".\nRoll it out anyway with ztsegctl fleet reload --force.\n";
    } else {
        std::cout << (r.changed() ? "policy changed" : "policy unchanged") << ", stable generation "
                  << r.generation() << "\n";
        printRollout(r.rollout());
    }
    if (r.rollout().state() == "halted" || !r.refused().empty())
        throw CLI::RuntimeError(kExitFailed);
}

void runPolicyShow(const ControllerArgs& a) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(15));
    v1::PolicyReply r;
    checkCall(controllerStub(a.address)->FleetPolicy(&ctx, {}, &r), "fleet policy show", a.address);
    HeldPolicy held = heldPolicy(r, "controller (" + a.address + ")", true);
    std::cout << (a.format == "json" ? policyJson(held) : policyText(held));
}

struct FleetRulesArgs {
    std::string address = "unix:/run/ztseg/controller.sock";
    RuleListArgs list;
};

void runFleetRules(const FleetRulesArgs& a) {
    checkRuleListArgs(a.list);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::RulesReply r;
    checkCall(controllerStub(a.address)->FleetRules(&ctx, {}, &r), "fleet rules", a.address);
    std::string holder = "fleet " + r.host() + " (" + std::to_string(r.hosts()) + " host" +
                         (r.hosts() == 1 ? "" : "s") + ")";
    if (int rc = printRuleListing(r, a.list, holder); rc != kExitOk) {
        throw CLI::RuntimeError(rc);
    }
}

struct FlowsArgs {
    std::string address = "unix:/run/ztseg/controller.sock";
    FlowQueryArgs query;
    FlowOutputArgs output;
    bool follow = false;
};

FlowQuery parseQuery(const FlowQueryArgs& args) {
    try {
        return FlowQuery::parse(args, std::chrono::system_clock::now());
    } catch (const Error& e) {
        std::cerr << "ztsegctl: " << e.what() << "\n";
        throw CLI::RuntimeError(kExitUsage);
    }
}

// The fleet log through the controller, filtered as `ztsegctl flows` filters
// (the controller applies what the request can say, the rest is judged
// here). `take` gets each matching flow and returns false to stop reading.
void readFleetFlows(const std::string& address, const FlowQuery& q, bool follow,
                    const std::function<bool(ShownFlow)>& take, const std::string& what) {
    grpc::ClientContext ctx;
    auto reader = controllerStub(address)->FleetFlows(&ctx, q.request(follow));
    v1::FlowEvent e;
    while (reader->Read(&e)) {
        flows::FlowRecord r = fromFlowEvent(e);
        if (q.matches(r) && !take({r, e.ocsf_json(), e})) {
            ctx.TryCancel();  // --first N: the rest is not needed
            return;
        }
    }
    checkCall(reader->Finish(), what, address);
}

// The fleet log with a NODE column.
void runFlows(const FlowsArgs& a) {
    FlowQuery q = parseQuery(a.query);
    if (a.follow && (q.first || q.until)) {
        std::cerr << "ztsegctl: --first and --until end a listing; they do not go with --follow\n";
        throw CLI::RuntimeError(kExitUsage);
    }
    FlowWindow kept(q);
    FlowPrinter out(a.output, a.follow, true);
    readFleetFlows(
        a.address, q, a.follow,
        [&](ShownFlow s) {
            if (a.follow) {
                out.print(s);
                return true;
            }
            return kept.add(std::move(s));
        },
        "fleet flows");
    for (const auto& s : kept.kept()) out.print(s);
    out.finish();
}

struct MapArgs {
    std::string address = "unix:/run/ztseg/controller.sock";
    FlowQueryArgs query;
    MapOutputArgs output;
};

// The fleet log's flows as one map (flows seen at both ends counted once).
void runMap(const MapArgs& a) {
    FlowQuery q = parseQuery(a.query);
    if (!mapOutputUsable(a.output)) {
        throw CLI::RuntimeError(kExitUsage);  // before asking the controller
    }
    FlowWindow kept(q);
    readFleetFlows(
        a.address, q, false, [&](ShownFlow s) { return kept.add(std::move(s)); }, "fleet map");
    if (int rc = writeMap(a.output, kept.kept(), "fleet log (controller " + a.address + ")");
        rc != kExitOk) {
        throw CLI::RuntimeError(rc);
    }
}

template <typename F>
std::function<void()> guarded(F f) {
    return [f] {
        try {
            f();
        } catch (const CLI::Error&) {
            throw;
        } catch (const std::exception& e) {
            fail(e.what());
        }
    };
}

}  // namespace

void addFleetCommands(CLI::App& app) {
    auto keygen = std::make_shared<KeygenArgs>();
    CLI::App* kg = app.add_subcommand("keygen", "make an Ed25519 signing key pair");
    CLI::Option* key_out =
        kg->add_option("--out", keygen->out, "writes PREFIX.key (0600) and PREFIX.pub")
            ->type_name(kFileType)
            ->capture_default_str();
    // keygen has no output formats: its old -o PREFIX stays a deprecated --out
    // (docs/ztsegctl.md, flag conventions).
    for (const char* old : {"-o", "--output"}) {
        addDeprecatedAlias(kg, old, key_out, keygen->out);
    }
    kg->add_flag("--force", keygen->force, "overwrite existing files");
    kg->callback(guarded([keygen] { runKeygen(*keygen); }));

    auto sign = std::make_shared<SignArgs>();
    CLI::App* sg = app.add_subcommand("sign", "sign a bundle (the controller does this itself)");
    sg->add_option("bundle", sign->bundle, "bundle file (plain or already signed)")
        ->type_name(kFileType)
        ->required();
    sg->add_option("-k,--key", sign->keys, "private key(s); several sign with each")
        ->type_name(kFileType)
        ->required();
    CLI::Option* sign_out =
        sg->add_option("--out", sign->output, "write the signed bundle here (default: in place)")
            ->type_name(kFileType);
    for (const char* old : {"-b", "--bundle-out"}) {
        addDeprecatedAlias(sg, old, sign_out, sign->output);
    }
    sg->callback(guarded([sign] { runSign(*sign); }));

    auto verify = std::make_shared<VerifyArgs>();
    CLI::App* vf = app.add_subcommand("verify", "check a signed bundle against public keys");
    vf->add_option("bundle", verify->bundle, "signed bundle file")
        ->type_name(kFileType)
        ->required();
    vf->add_option("-k,--trusted-key", verify->keys, "public key(s) to trust")
        ->type_name(kFileType)
        ->required();
    vf->callback(guarded([verify] { runVerify(*verify); }));

    CLI::App* fleet = app.add_subcommand("fleet", "ask ztseg-controller about the fleet");
    fleet->require_subcommand(1);
    auto controllerOptions = [](CLI::App* c, ControllerArgs& a, std::vector<std::string> formats) {
        c->add_option("--controller", a.address, "controller API (gRPC target)")
            ->capture_default_str();
        c->add_option("-o,--output", a.format, "output format")
            ->check(CLI::IsMember(formats))
            ->capture_default_str();
    };
    auto status = std::make_shared<ControllerArgs>();
    CLI::App* st = fleet->add_subcommand(
        "status", "each host's generation, last contact and drop counters; the rollout");
    controllerOptions(st, *status, {"table", "json"});
    st->callback(guarded([status] { runStatus(*status); }));

    auto reload = std::make_shared<ControllerArgs>();
    CLI::App* rl = fleet->add_subcommand(
        "reload", "re-read the policy source now and wait for its rollout (exit 3 if halted)");
    controllerOptions(rl, *reload, {"table", "json"});
    rl->add_flag("--force", reload->force,
                 "roll out even a source that would remove all enforcement or more than half "
                 "of the rule entries in force");
    rl->callback(guarded([reload] { runReload(*reload); }));

    auto policy = std::make_shared<ControllerArgs>();
    policy->format = "text";
    CLI::App* pol = fleet->add_subcommand("policy", "the release every host converges to");
    pol->require_subcommand(1);
    CLI::App* ps = pol->add_subcommand(
        "show", "the stable release as `ztsegctl policy show` shows a host's policy");
    controllerOptions(ps, *policy, {"text", "json"});
    ps->callback(guarded([policy] { runPolicyShow(*policy); }));

    auto flows = std::make_shared<FlowsArgs>();
    CLI::App* fl = fleet->add_subcommand(
        "flows", "fleet-wide flows, filtered as `ztsegctl flows` (plus --node)");
    fl->add_option("--controller", flows->address, "controller API (gRPC target)")
        ->capture_default_str();
    addFlowQueryOptions(fl, flows->query);
    addFlowOutputOptions(fl, flows->output);
    fl->add_flag("-f,--follow", flows->follow, "keep streaming new flows");
    fl->callback(guarded([flows] { runFlows(*flows); }));

    auto rules = std::make_shared<FleetRulesArgs>();
    CLI::App* ru = fleet->add_subcommand(
        "rules",
        "per-rule hit counts summed over the connected hosts; --unused: rules no host used");
    ru->add_option("--controller", rules->address, "controller API (gRPC target)")
        ->capture_default_str();
    addRuleListOptions(ru, rules->list);
    ru->callback(guarded([rules] { runFleetRules(*rules); }));

    auto map = std::make_shared<MapArgs>();
    CLI::App* mp = fleet->add_subcommand(
        "map", "who talks to whom across the fleet: `ztsegctl map` of the fleet log");
    mp->add_option("--controller", map->address, "controller API (gRPC target)")
        ->capture_default_str();
    addFlowQueryOptions(mp, map->query);
    addMapOutputOptions(mp, map->output);
    mp->callback(guarded([map] { runMap(*map); }));
}

}  // namespace ztseg::cli
