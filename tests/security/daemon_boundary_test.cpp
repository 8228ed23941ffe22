// Findings 1 (c, d) and 4, against the real ztsegd: workload cgroups that
// ztsegd has not classified (yet) must not pass unjudged, and `interfaces:
// ["*"]` must never put XDP on the loopback device.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "integration/ztseg_process.hpp"
#include "policy/bundle.hpp"
#include "policy/parser.hpp"
#include "security/attack_lab.hpp"

namespace ztseg::test {
namespace {

namespace fs = std::filesystem;

// ztsegd with its own pin dir, state, api socket and flow file, running in `ns` with
// cgroup_root `cgroup_root`, a bundle whose workload db has `cgroup: <db_glob>` (relative to
// the cgroup2 mount) and the addresses given, and XDP on `interfaces` (a YAML list).
// db: ingress from web tcp 5432, egress to web tcp 8080; everything else default deny.
class Daemon {
  public:
    Daemon(NetNs& ns, const std::string& cgroup_root, const std::string& db_glob,
           const std::vector<std::string>& db_addrs, const std::vector<std::string>& web_addrs,
           const std::string& interfaces = "[]");
    ~Daemon();  // stops ztsegd and uninstalls its pinned state
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    void start();  // returns once the API answers and the bundle is applied
    void stop();   // SIGTERM: the pinned programs keep enforcing
    const std::string& pinDir() const { return pin_dir_; }

  private:
    NetNs& ns_;
    std::filesystem::path dir_;
    std::string pin_dir_;
    std::unique_ptr<ZtsegdProcess> proc_;
};

Daemon::Daemon(NetNs& ns, const std::string& cgroup_root, const std::string& db_glob,
               const std::vector<std::string>& db_addrs, const std::vector<std::string>& web_addrs,
               const std::string& interfaces)
    : ns_(ns) {
    const std::string tag = uniqueName("ztsd");
    dir_ = fs::temp_directory_path() / tag;
    fs::create_directories(dir_);
    pin_dir_ = "/sys/fs/bpf/" + tag;
    auto list = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& a : v) {
            s += (s.empty() ? "\"" : ", \"") + a + "\"";
        }
        return "[" + s + "]";
    };
    const std::string yaml =
        "workloads:\n"
        "  - name: db\n    labels: {app: db}\n    cgroup: \"" +
        db_glob + "\"\n    addresses: " + list(db_addrs) +
        "\n"
        "  - name: web\n    labels: {app: web}\n    addresses: " +
        list(web_addrs) +
        "\n"
        "policies:\n  - name: db\n    selector: {matchLabels: {app: db}}\n"
        "    ingress:\n      - from: [{selector: {matchLabels: {app: web}}}]\n"
        "        ports: [{port: 5432, protocol: tcp}]\n"
        "    egress:\n      - to: [{selector: {matchLabels: {app: web}}}]\n"
        "        ports: [{port: 8080, protocol: tcp}]\n";
    policy::Diagnostics d;
    auto cp = policy::compile(policy::parsePolicies({{"sec.yaml", yaml}}, d), 1, d);
    std::ofstream(dir_ / "bundle.pb", std::ios::binary) << policy::serializeBundle(cp);
    std::ofstream(dir_ / "ztsegd.yaml")
        << "host_name: sec-host\n"
        << "state_dir: " << (dir_ / "state").string() << "\n"
        << "pin_dir: " << pin_dir_ << "\n"
        << "cgroup_root: " << cgroup_root << "\n"
        << "interfaces: " << interfaces << "\n"
        << (interfaces == "[]" ? "cgroup_only: true\n" : "")
        << "bundle: " << (dir_ / "bundle.pb").string() << "\n"
        << "flows: {file: " << (dir_ / "flows.jsonl").string() << "}\n"
        << "api: {unix_socket: " << (dir_ / "api.sock").string() << "}\n"
        << "metrics: {listen: \"127.0.0.1:9962\"}\n";
}

Daemon::~Daemon() {
    try {
        stop();
    } catch (...) {
    }
    try {
        Datapath::uninstall(pin_dir_);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "warning: uninstall %s: %s\n", pin_dir_.c_str(), e.what());
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
}

void Daemon::start() {
    proc_ = std::make_unique<ZtsegdProcess>(ZTSEGD_PATH, ns_, (dir_ / "ztsegd.yaml").string(),
                                            (dir_ / "api.sock").string());
}

void Daemon::stop() {
    if (proc_) {
        proc_->stop();
        proc_.reset();
    }
}

// From a process in cgroup `cg` of the host namespace: connect to dst:port.
int connectFromCgroup(AttackLab& lab, Cgroup2& cg, const std::string& dst, uint16_t port) {
    return lab.inHost(&cg, [=] { return connectFrom("", dst, port); });
}

Daemon daemonFor(AttackLab& lab, const std::string& interfaces = "[]") {
    return Daemon(lab.host(), lab.root().path(), relativeCgroupPath(lab.root()) + "/db*",
                  {lab.addr(Role::Db, 4), lab.addr(Role::Db, 6)},
                  {lab.addr(Role::Web, 4), lab.addr(Role::Web, 6)}, interfaces);
}

// 1c: rmdir + mkdir of the workload cgroup while ztsegd is stopped gives it a new cgroup id
// the pinned endpoint map does not know.
TEST(DaemonBoundary, WorkloadCgroupRecreatedWhileDaemonDownIsEnforced) {
    AttackLab lab({}, /*with_datapath=*/false);
    auto web8080 = lab.serveInPeer(kWebPort);
    auto web9999 = lab.serveInPeer(kOtherPort);
    Daemon d(lab.host(), lab.root().path(), relativeCgroupPath(lab.db()),
             {lab.addr(Role::Db, 4), lab.addr(Role::Db, 6)},
             {lab.addr(Role::Web, 4), lab.addr(Role::Web, 6)});
    d.start();
    for (int f : {4, 6}) {
        SCOPED_TRACE("IPv" + std::to_string(f));
        const std::string web = lab.addr(Role::Web, f);
        ASSERT_EQ(connectFromCgroup(lab, lab.db(), web, kOtherPort), EPERM)
            << "setup: ztsegd running must refuse db -> web:9999";
    }

    d.stop();
    const std::string path = lab.db().path();
    ASSERT_EQ(rmdir(path.c_str()), 0) << "rmdir " << path << ": " << errName(errno);
    ASSERT_EQ(mkdir(path.c_str(), 0755), 0) << "mkdir " << path << ": " << errName(errno);
    for (int f : {4, 6}) {
        SCOPED_TRACE("IPv" + std::to_string(f));
        int refused = connectFromCgroup(lab, lab.db(), lab.addr(Role::Web, f), kOtherPort);
        EXPECT_NE(refused, 0) << "bypass while ztsegd is down: a process in the re-created db "
                                 "cgroup connected to web:9999, which db's policy refuses";
    }

    d.start();
    for (int f : {4, 6}) {
        SCOPED_TRACE("IPv" + std::to_string(f));
        const std::string web = lab.addr(Role::Web, f);
        EXPECT_EQ(lab.inHost(&lab.db(), [=] { return tcpEchoRoundTrip(web, kWebPort, "hi", 2s); }),
                  0)
            << "after restart: db -> web:8080 (allowed) must work";
        EXPECT_EQ(connectFromCgroup(lab, lab.db(), web, kOtherPort), EPERM)
            << "after restart: db -> web:9999 must be refused";
    }
}

// 1d: new cgroups matching the workload pattern, joined and used at once, race ztsegd's cgroup
// watcher. Each round makes a burst of kBurst such cgroups (so the watcher has a backlog, as on
// a busy host starting containers), writes its own pid into the last one's cgroup.procs and
// sends at once. Without the burst the watcher usually wins (joining a cgroup takes an RCU grace
// period), so a test of one cgroup per round would pass by luck.
TEST(DaemonBoundary, NewWorkloadCgroupIsEnforcedFromFirstPacket) {
    AttackLab lab({}, /*with_datapath=*/false);
    Daemon d = daemonFor(lab);
    d.start();

    UniqueFd rx;
    {
        NetnsScope in(lab.peer());
        rx = udpBind("::", kOtherPort);  // dual-stack: counts both families
    }
    int big = 32 << 20;
    setsockopt(rx.get(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));

    constexpr int kRounds = 10, kBurst = 64, kPerRound = 200;
    struct Tally {
        int sent[kRounds], eperm, other_err;
    };
    Shared<Tally> tally;
    const std::string root = lab.root().path();
    const std::string web4 = lab.addr(Role::Web, 4), web6 = lab.addr(Role::Web, 6);
    int status = lab.inHost(nullptr, [&] {
        for (int i = 0; i < kRounds; ++i) {
            std::string dir;
            for (int b = 0; b < kBurst; ++b) {
                dir = root + "/db-race-" + std::to_string(i) + "-" + std::to_string(b);
                if (mkdir(dir.c_str(), 0755) != 0) {
                    return 2;
                }
            }
            moveIntoCgroup(dir);
            const SockAddress to = sockAddress(i % 2 ? web6 : web4, kOtherPort);
            UniqueFd fd(socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
            for (int k = 0; k < kPerRound; ++k) {
                if (sendto(fd.get(), "race", 4, 0, to.sa(), to.len) == 4) {
                    ++tally->sent[i];
                } else if (errno == EPERM) {
                    ++tally->eperm;
                } else {
                    ++tally->other_err;
                }
            }
        }
        return 0;
    });
    ASSERT_EQ(status, 0) << "race child failed";
    const int received = countDatagrams(rx.get(), 300ms);
    std::string per_round;
    for (int n : tally->sent) {
        per_round += " " + std::to_string(n);
    }
    EXPECT_EQ(received, 0) << "start race: " << received << " of " << kRounds * kPerRound
                           << " datagrams to web:9999 (refused by db's policy) arrived from "
                              "fresh db-* cgroups; sendto returned EPERM "
                           << tally->eperm << " times, other errors " << tally->other_err
                           << ", succeeded per round (IPv4, IPv6 alternating):" << per_round;
    RecordProperty("datagrams_received", received);
    RecordProperty("sendto_eperm", tally->eperm);
}

// 4: "*" matches lo too; XDP there judges 127.0.0.1 as an unlabeled source.
TEST(DaemonBoundary, WildcardInterfacesNeverAttachToLoopback) {
    AttackLab lab({}, /*with_datapath=*/false);
    Daemon d = daemonFor(lab, "[\"*\"]");
    d.start();

    const std::string lo = lab.host().execOut("ip -d link show lo");
    EXPECT_EQ(lo.find("xdp"), std::string::npos) << "interfaces [\"*\"] attached XDP to lo:\n"
                                                 << lo;
    auto server = lab.serveInHost(nullptr, 7777);
    for (const char* addr : {"127.0.0.1", "::1"}) {
        std::string a = addr;
        EXPECT_EQ(lab.inHost(nullptr, [=] { return tcpEchoRoundTrip(a, 7777, "lo", 2s); }), 0)
            << "loopback traffic to " << addr << " broken with interfaces [\"*\"]";
    }
}

}  // namespace
}  // namespace ztseg::test
