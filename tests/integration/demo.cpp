// `make demo`: an operator's day with ztseg, narrated. The real ztsegd and
// ztsegctl run on a lab of network namespaces and cgroups (demo_lab.hpp)
// that matches policies/three-tier.yaml: apply the policy in audit mode,
// watch the flows, ask `whatif` what enforcing would break, fix the policy,
// enforce, then see the drops and ask `explain` why.
//
// Every step checks what it shows; the exit code is non-zero if anything
// behaved differently, so CI runs the demo as a test. Interactive runs (a
// terminal on stdin and stdout) pause between steps; --non-interactive or
// ZTSEG_DEMO_NONINTERACTIVE=1 never pause. Ctrl-C tears everything down
// (daemon, BPF programs and pins, namespaces, cgroups, files).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

#include "integration/demo_lab.hpp"
#include "integration/ztseg_process.hpp"

using namespace std::chrono_literals;
using namespace ztseg::test;
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_interrupted{false};
struct Interrupted {};
bool g_interactive = false;
int g_failures = 0;

void checkpoint() {
    if (g_interrupted) {
        throw Interrupted{};
    }
}

void step(const std::string& title, const std::string& why) {
    checkpoint();
    if (g_interactive) {
        std::cout << "\n[press Enter to continue, Ctrl-C to stop] " << std::flush;
        std::string line;
        std::getline(std::cin, line);
        checkpoint();
    }
    std::cout << "\n\033[1m== " << title << "\033[0m\n" << why << "\n";
}

void say(const std::string& text) {
    std::cout << text << "\n";
}

void expect(bool ok, const std::string& what) {
    std::cout << (ok ? "  [ok]   " : "  [FAIL] ") << what << "\n";
    g_failures += !ok;
}

std::string indent(const std::string& text) {
    std::string out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out += "    " + line + "\n";
    return out;
}

// `ztsegctl ARGS`: shown as typed, run, its output shown indented.
CommandResult ztsegctl(const std::string& args, bool show = true) {
    checkpoint();
    std::vector<std::string> argv{ZTSEGCTL_PATH};
    std::istringstream in(args);
    for (std::string a; in >> a;) argv.push_back(a);
    if (show) {
        std::cout << "  $ ztsegctl " << args << "\n";
    }
    CommandResult r = runCommand(argv);
    if (show) {
        std::cout << indent(r.output);
    }
    checkpoint();
    return r;
}

bool contains(const std::string& text, const std::string& what) {
    return text.find(what) != std::string::npos;
}

// Whether one line of `text` contains every one of `parts`.
bool lineWith(const std::string& text, const std::vector<std::string>& parts) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        bool all = true;
        for (const auto& p : parts) all = all && contains(line, p);
        if (all) {
            return true;
        }
    }
    return false;
}

std::string errName(int err) {
    switch (err) {
        case 0:
            return "connected";
        case ETIMEDOUT:
            return "timed out (packets dropped)";
        case EPERM:
            return "EPERM (refused at connect)";
        default:
            return std::strerror(err);
    }
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write(const fs::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::trunc);
    f << text;
    if (!f.flush()) {
        throw std::runtime_error("write " + p.string() + " failed");
    }
}

// What the demo leaves behind, removed in reverse order even when a step
// throws or Ctrl-C arrives.
struct Cleanup {
    std::vector<std::function<void()>> actions;
    ~Cleanup() {
        for (auto it = actions.rbegin(); it != actions.rend(); ++it) {
            try {
                (*it)();
            } catch (const std::exception& e) {
                std::cerr << "cleanup: " << e.what() << "\n";
            }
        }
    }
};

struct Attempt {
    const char* from;
    const char* to;
    uint16_t port;
    int expect_audit;         // errno in phase 1 (audit): everything connects
    int expect_enforce;       // errno in phase 2
    const char* why_audit;    // what phase 1 shows
    const char* why_enforce;  // what phase 2 shows
};

// The lab's traffic: what each party tries, and what should happen in each phase.
const Attempt kTraffic[] = {
    {"web", "api", 8080, 0, 0, "web -> api:8080, allowed on both ends",
     "web -> api:8080, allowed on both ends"},
    {"api", "db", 5432, 0, 0, "api -> db:5432, allowed on both ends",
     "api -> db:5432, allowed on both ends"},
    {"bastion", "db", 22, 0, 0, "bastion -> db:22, the DBAs' SSH: would-drop, audit lets it pass",
     "bastion -> db:22, the DBAs' SSH (allowed once we add a rule)"},
    {"web", "db", 5432, 0, EPERM,
     "web -> db:5432, skipping the api tier: would-drop, audit lets it pass",
     "web -> db:5432, skipping the api tier: web has no such egress"},
    {"intruder", "db", 5432, 0, ETIMEDOUT,
     "intruder -> db:5432, an address with no identity: would-drop, audit lets it pass",
     "intruder -> db:5432, an address with no identity: dropped at XDP"},
};

void traffic(DemoLab& lab, bool enforce) {
    for (const Attempt& a : kTraffic) {
        checkpoint();
        std::string dst = lab.address(a.to);
        uint16_t port = a.port;
        int err =
            lab.in(a.from, [dst, port] { return tcpEchoRoundTrip(dst, port, "hello", 1500ms); });
        int want = enforce ? a.expect_enforce : a.expect_audit;
        expect(err == want,
               std::string(enforce ? a.why_enforce : a.why_audit) + ": " + errName(err));
    }
}

int run() {
    const fs::path policies_src = fs::path(ZTSEG_SOURCE_DIR) / "policies";

    step("1. The lab",
         "Five parties, each in its own network namespace; ztsegd runs in a 'host' namespace that\n"
         "routes between them. web, api and db are the workloads of policies/three-tier.yaml, at\n"
         "its addresses; the bastion is declared by the lab; the intruder has an address nobody\n"
         "declared, so it has no identity.");
    DemoLab lab;
    Cleanup cleanup;
    fs::path work = fs::temp_directory_path() / lab.tag();
    fs::create_directories(work / "audit");
    fs::create_directories(work / "enforce");
    cleanup.actions.push_back([work] { fs::remove_all(work); });
    fs::current_path(work);
    std::printf("  %-9s %-12s %s\n", "party", "address", "cgroup (processes of the workload)");
    for (const auto& p : lab.parties()) {
        std::printf("  %-9s %-12s %s\n", p->name.c_str(), p->address.c_str(),
                    p->cgroup_rel.empty() ? "-" : (lab.tag() + "/" + p->cgroup_rel).c_str());
    }
    lab.serve("api", 8080);
    lab.serve("db", 5432);
    lab.serve("db", 22);
    say("  servers: api on 8080, db on 5432 (PostgreSQL's port) and 22 (SSH)");
    say("  working directory: " + work.string());

    step("2. The policy",
         "policies/three-tier.yaml as shipped (internet -> web -> api -> db), policies/fleet.yaml\n"
         "(what 'the internet' is), and lab.yaml, which declares the bastion. Two edits for the\n"
         "lab: db's cgroup lives below the lab's cgroup instead of system.slice, and phase 1 adds\n"
         "'mode: audit' to every policy: observe, drop nothing.");
    std::string three_tier = slurp(policies_src / "three-tier.yaml");
    std::string lab_tier = std::regex_replace(three_tier, std::regex("cgroup: system\\.slice/"),
                                              "cgroup: " + lab.tag() + "/system.slice/");
    std::string audit_tier = std::regex_replace(lab_tier, std::regex("\n    selector: "),
                                                "\n    mode: audit\n    selector: ");
    std::string lab_yaml =
        "# The lab's bastion host: a labeled workload no policy selects (yet).\n"
        "workloads:\n"
        "  - name: bastion\n"
        "    labels: {app: bastion, team: platform}\n"
        "    systemd: bastion.service\n"
        "    addresses: [10.10.5.10]\n";
    for (const char* dir : {"audit", "enforce"}) {
        fs::copy_file(policies_src / "fleet.yaml", work / dir / "fleet.yaml");
        write(work / dir / "lab.yaml", lab_yaml);
    }
    write(work / "audit" / "three-tier.yaml", audit_tier);
    write(work / "enforce" / "three-tier.yaml", lab_tier);
    expect(ztsegctl("check audit").status == 0, "audit/ compiles without warnings");

    step("3. Start ztsegd",
         "The daemon loads the BPF programs, attaches XDP to the host's interfaces and cgroup\n"
         "hooks, and serves its API on a root-only unix socket. No policy yet.");
    std::string socket = (work / "ztsegd.sock").string();
    std::string pin_dir = "/sys/fs/bpf/" + lab.tag();
    std::string ifaces;
    for (const auto& i : lab.hostInterfaces()) ifaces += (ifaces.empty() ? "" : ", ") + i;
    std::ostringstream cfg;
    cfg << "host_name: demo-host\n"
        << "state_dir: " << (work / "state").string() << "\n"
        << "pin_dir: " << pin_dir << "\n"
        << "cgroup_root: " << lab.cgroupRoot() << "\n"
        << "interfaces: [" << ifaces << "]\n"
        << "flows: {file: " << (work / "flows.jsonl").string() << ", drop_event_interval_ms: 0}\n"
        << "api: {unix_socket: " << socket << "}\n"
        << "metrics: {listen: 127.0.0.1:9962}\n";
    write(work / "ztsegd.yaml", cfg.str());
    setenv("ZTSEG_SOCKET", socket.c_str(), 1);
    cleanup.actions.push_back([work] {
        runCommand({ZTSEGD_PATH, "--config", (work / "ztsegd.yaml").string(), "--uninstall",
                    "--log-level", "error"});
    });
    auto daemon = std::make_unique<ZtsegdProcess>(ZTSEGD_PATH, lab.host(),
                                                  (work / "ztsegd.yaml").string(), socket);
    CommandResult st = ztsegctl("status");
    expect(st.status == 0 && contains(st.output, "no policy applied"),
           "ztsegd runs, no policy yet");

    step("4. Phase 1: apply the policy in AUDIT mode",
         "`ztsegctl apply` compiles the files and hands the bundle to ztsegd, which switches the\n"
         "whole generation in one atomic map update. Audit mode: nothing is dropped, every flow\n"
         "the policy would drop is reported as would-drop.");
    CommandResult ap = ztsegctl("apply audit");
    expect(ap.status == 0 && contains(ap.output, "applied generation 1"), "generation 1 applied");
    st = ztsegctl("status");
    expect(lineWith(st.output, {"db", "audit", "postgresql.service"}) &&
               lineWith(st.output, {"web", "audit"}) && lineWith(st.output, {"api", "audit"}),
           "web, api and db are enforced workloads in audit mode");

    step("5. Traffic in audit mode", "Everyone tries what they would try on a normal day:");
    traffic(lab, false);
    waitUntil([&] { return lineWith(slurp("flows.jsonl"), {"10.10.9.66", "would-drop"}); });

    step("6. What talks to what: `ztsegctl flows`",
         "The flow events of the daemon (also in its OCSF flow file). In audit mode the policy's\n"
         "drops show as WOULD-DROP: the web -> db shortcut, the bastion's SSH, the intruder.");
    CommandResult fl = ztsegctl("flows --verdict would-drop");
    expect(lineWith(fl.output, {"10.10.1.10", "10.10.3.10:5432", "WOULD-DROP", "default-deny"}),
           "web -> db would be dropped (default deny)");
    expect(lineWith(fl.output, {"10.10.9.66", "WOULD-DROP", "unlabeled"}),
           "the intruder would be dropped (no identity)");
    expect(lineWith(fl.output, {"10.10.5.10", "10.10.3.10:22", "WOULD-DROP"}),
           "the bastion's SSH to db would be dropped");
    fl = ztsegctl("flows --verdict allowed --to app=api");
    expect(lineWith(fl.output, {"10.10.1.10", "10.10.2.10:8080", "ALLOWED", "allow-policy"}),
           "web -> api is allowed by a rule");
    fs::copy_file("flows.jsonl", "recorded.jsonl");

    step("7. Before enforcing: `ztsegctl whatif`",
         "Replays the recorded flows against the enforce version of the policy and lists what\n"
         "would change, newly denied first. Exit code 4 means: something that works today would\n"
         "break.");
    CommandResult wi = ztsegctl("whatif --policy enforce --flows recorded.jsonl");
    expect(wi.status == 4, "whatif exits 4: flows that pass today would be dropped");
    expect(lineWith(wi.output, {"app=bastion", "app=db", "22/tcp", "dropped"}),
           "it shows the bastion's SSH would break");
    say("\n  The bastion is how the DBAs reach db: that one must keep working. Add a rule for it\n"
        "  (enforce/bastion-ssh.yaml) and ask again:");
    std::string bastion_ssh =
        "# The DBAs reach db over SSH through the bastion.\n"
        "policies:\n"
        "  - name: db-ssh-from-bastion\n"
        "    selector: {matchLabels: {app: db}}\n"
        "    ingress:\n"
        "      - from: [{selector: {matchLabels: {app: bastion}}}]\n"
        "        ports: [{port: 22, protocol: tcp}]\n"
        "        description: DBAs via the bastion\n";
    write(work / "enforce" / "bastion-ssh.yaml", bastion_ssh);
    std::cout << indent(bastion_ssh);
    wi = ztsegctl("whatif --policy enforce --flows recorded.jsonl");
    expect(!lineWith(wi.output, {"app=bastion", "22/tcp", "dropped"}),
           "the bastion's SSH is no longer in the list");
    expect(lineWith(wi.output, {"app=web", "app=db", "5432/tcp", "dropped"}) &&
               lineWith(wi.output, {"10.10.9.66", "dropped"}),
           "what remains is exactly what we want to stop: web -> db and the intruder");
    say("\n  `ztsegctl suggest` drafts a least-privilege policy from the same flows instead:\n"
        "  it admits everything observed, so here it would also admit web -> db (review it!).");
    CommandResult sg = ztsegctl("suggest --flows recorded.jsonl -p audit --out suggested.yaml");
    expect(sg.status == 0 && contains(sg.output, "every admitted event passes"),
           "suggest wrote suggested.yaml; replayed, it denies none of the admitted flows");

    step("8. Phase 2: ENFORCE",
         "First `apply --dry-run`: what the enforce version changes against the generation ztsegd\n"
         "runs (it would refuse, without --force, a change that removes all enforcement or most\n"
         "rules). Then apply it: generation 2, again one atomic switch; `policy show` reads back\n"
         "what ztsegd enforces.");
    CommandResult dry = ztsegctl("apply --dry-run enforce");
    expect(dry.status == 0 && lineWith(dry.output, {"~ db:", "mode audit -> enforce"}) &&
               lineWith(dry.output, {"+ ", "app=bastion", "tcp/22 allow", "bastion-ssh.yaml"}),
           "the dry run lists the mode changes and the bastion's SSH rule; nothing applied");
    ap = ztsegctl("apply enforce");
    expect(ap.status == 0 && contains(ap.output, "applied generation 2"), "generation 2 applied");
    const size_t enforce_events_from = slurp("flows.jsonl").size();  // phase 2's flows follow
    CommandResult shown = ztsegctl("policy show");
    expect(contains(shown.output, "policy generation 2") &&
               lineWith(shown.output, {"db", "enforce", "postgresql.service"}) &&
               lineWith(shown.output,
                        {"db-ssh-from-bastion", "ingress", "allow", "bastion-ssh.yaml:"}),
           "policy show: generation 2, db enforced, the bastion rule with its file:line");
    traffic(lab, true);
    waitUntil([&] { return lineWith(slurp("flows.jsonl"), {"10.10.9.66", "\"dropped\""}); });

    step("9. The drops, and why",
         "`flows --verdict dropped` lists them with the reason and the hook that dropped them;\n"
         "`explain` takes one event from the log and names the rule (or the missing rule).");
    fl = ztsegctl("flows --verdict dropped --since 1m");
    expect(lineWith(fl.output,
                    {"(web)", "10.10.3.10:5432", "DROPPED", "default-deny", "sock-connect"}),
           "web -> db dropped: default deny, at web's connect()");
    expect(lineWith(fl.output, {"10.10.9.66", "DROPPED", "unlabeled", "xdp"}),
           "the intruder dropped at XDP: unlabeled");
    CommandResult one = ztsegctl("flows --verdict dropped --from app=web --last 1 -o json", false);
    write("web-db.json", one.output);
    std::cout
        << "  $ ztsegctl flows --verdict dropped --from app=web --last 1 -o json > web-db.json\n";
    CommandResult ex = ztsegctl("explain --flow-file web-db.json -p enforce");
    expect(contains(ex.output, "default deny: no rule admits app=web -> app=db on 5432/tcp"),
           "explain: no rule admits app=web -> app=db on 5432/tcp");
    CommandResult ok = ztsegctl("explain --from app=api --to app=db --port 5432/tcp -p enforce");
    expect(contains(ok.output, "ALLOWED") && contains(ok.output, "three-tier.yaml:"),
           "explain names the rules (file:line) that admit api -> db");

    step("10. Counters", "Per hook and reason, as /metrics exports them.");
    st = ztsegctl("status");
    expect(lineWith(st.output, {"xdp", "unlabeled"}),
           "the intruder's packets were dropped at XDP, before the network stack");
    expect(lineWith(st.output, {"db", "enforce"}), "db is enforced");

    step("11. The map",
         "Who talks to whom, from the same flow file: one node per workload, all unlabeled\n"
         "sources one node, an edge per service and verdict (green allowed, red dropped, orange\n"
         "would-drop), each connection counted once although both ends report it.");
    CommandResult mp = ztsegctl("map --file flows.jsonl --out map.dot");
    std::string dot = slurp("map.dot");
    std::cout << indent(dot);
    auto edge = [&](const std::string& src, const std::string& dst, const std::string& service,
                    const std::string& verdict) {
        return lineWith(dot, {"\"" + src + "\" -> \"" + dst + "\"", "\"" + service + " ",
                              "tooltip=\"" + verdict + "\""});
    };
    expect(mp.status == 0 && edge("web", "api", "tcp/8080", "allowed"),
           "map: web -> api tcp/8080 allowed");
    expect(edge("unlabeled", "db", "tcp/5432", "dropped"), "map: unlabeled -> db dropped");
    expect(edge("web", "db", "tcp/5432", "dropped"), "map: web -> db dropped");
    expect(edge("bastion", "db", "tcp/22", "allowed"), "map: bastion -> db tcp/22 allowed");
    CommandResult svg = ztsegctl("map --file flows.jsonl -o svg --out map.svg");
    expect(svg.status == 0 && contains(slurp("map.svg"), "<svg"),
           "map -o svg: rendered by Graphviz");
    // The work directory goes with the lab; the map stays in one fixed place
    // (overwritten by the next run).
    fs::path keep = fs::temp_directory_path() / "ztseg-demo-map";
    fs::create_directories(keep);
    for (const char* f : {"map.dot", "map.svg"}) {
        if (fs::exists(f)) {
            fs::copy_file(f, keep / f, fs::copy_options::overwrite_existing);
        }
    }
    say("  the map stays after the demo: " + (keep / "map.dot").string() + " and " +
        (keep / "map.svg").string());

    step("12. Least privilege: which rules does the traffic use?",
         "The kernel counts every rule's packets, bytes, admitted and refused connections and\n"
         "its last hit; counts follow the rule, not its line, so audit -> enforce kept them.\n"
         "`rules --unused` is the cleanup list; `--suggest-removal` writes the YAML diff.");
    CommandResult ru = ztsegctl("rules --sort hits");
    expect(ru.status == 0 &&
               lineWith(ru.output, {" db ", "ingress", "allow", "three-tier.yaml:"}) &&
               !lineWith(ru.output, {" db ", "ingress", "allow", "three-tier.yaml:", "never"}),
           "rules: db's ingress rule (api -> db) was hit");
    CommandResult unused = ztsegctl("rules --unused");
    expect(unused.status == 0 &&
               lineWith(unused.output, {"web", "ingress", "allow", "three-tier"}) &&
               contains(unused.output, "1 rule no traffic used"),
           "rules --unused: exactly web's public ingress (no internet in the lab)");
    std::cout << "  $ ztsegctl rules --unused --suggest-removal enforce > unused.diff\n";
    CommandResult diff =
        runCommand({ZTSEGCTL_PATH, "rules", "--unused", "--suggest-removal", "enforce"}, nullptr,
                   std::chrono::seconds(60), true);
    std::cout << indent(diff.output) << indent(diff.errors);
    expect(diff.status == 0 && contains(diff.output, "-      - from: [{entity: world}]") &&
               contains(diff.output, "+    ingress: []"),
           "the suggested diff removes that rule");
    write("unused.diff", diff.output);
    fs::create_directories("pruned");
    for (const auto& f : fs::directory_iterator("enforce")) {
        fs::copy_file(f.path(), fs::path("pruned") / f.path().filename());
    }
    CommandResult patched = runCommand({"/usr/bin/env", "patch", "-p1", "-s", "-d", "pruned", "-i",
                                        fs::absolute("unused.diff").string()});
    std::string all = slurp("flows.jsonl");
    write("enforced.jsonl", all.substr(std::min(enforce_events_from, all.size())));
    say("  $ patch -p1 -d pruned < unused.diff   # a copy of enforce/");
    CommandResult safe = ztsegctl("whatif --policy pruned --flows enforced.jsonl");
    expect(patched.status == 0, "the diff applies with patch -p1" + patched.output);
    expect(safe.status == 0 && !contains(slurp("pruned/three-tier.yaml"), "entity: world"),
           "whatif on the enforce phase's flows: the pruned policy breaks nothing observed");

    step("13. Tear down", "Stop ztsegd (enforcement would stay pinned), then uninstall ztseg.");
    expect(daemon->stop() == 0, "ztsegd stopped cleanly");
    daemon.reset();
    CommandResult un = ztsegctl("uninstall --config ztsegd.yaml");
    expect(un.status == 0 && !fs::exists(pin_dir), "uninstalled: no BPF program or pin left");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    bool non_interactive = false;
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--non-interactive") {
            non_interactive = true;
        } else {
            std::cerr << "usage: " << argv[0] << " [--non-interactive]\n";
            return 2;
        }
    }
    const char* env = std::getenv("ZTSEG_DEMO_NONINTERACTIVE");
    non_interactive = non_interactive || (env && *env && std::string(env) != "0");
    g_interactive = !non_interactive && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);

    // No SA_RESTART: a pending read (the Enter prompt) returns on Ctrl-C.
    struct sigaction sa {};
    sa.sa_handler = [](int) { g_interrupted = true; };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    try {
        run();
    } catch (const Interrupted&) {
        std::cout << "\ninterrupted: daemon stopped, BPF state, lab and files removed\n";
        return 130;
    } catch (const std::exception& ex) {
        if (g_interrupted) {  // Ctrl-C reached a child first (e.g. ztsegd while starting)
            std::cout << "\ninterrupted: daemon stopped, BPF state, lab and files removed\n";
            return 130;
        }
        std::cerr << "demo failed: " << ex.what() << "\n";
        return 1;
    }
    std::cout << (g_failures ? "\ndemo: " + std::to_string(g_failures) + " check(s) FAILED\n"
                             : "\ndemo: everything behaved as expected; lab removed\n");
    return g_failures ? 1 : 0;
}
