// Safe start and running under systemd: every refused start leaves the host
// as it found it (nothing pinned or attached that was not before; an adopted
// datapath unchanged), readiness and watchdog notifications, /healthz,
// --version, journald-friendly log lines, and ztsegd confined to the
// capabilities dist/ztsegd.service.in grants.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/unique_fd.hpp"
#include "integration/daemon_fixture.hpp"

namespace ztseg::test {
namespace {

class ZtsegdStart : public Ztsegd {
  protected:
    // What a start could change on the host: pins, XDP on the lab interface,
    // programs on the workload cgroup tree (with their ids).
    std::string hostState() {
        std::string s;
        if (fs::exists(pin_dir_)) {
            std::vector<std::string> pins;
            for (const auto& e : fs::recursive_directory_iterator(pin_dir_)) {
                pins.push_back(e.path().string());
            }
            std::sort(pins.begin(), pins.end());
            for (const auto& p : pins) s += p + "\n";
        } else {
            s += "no pins\n";
        }
        std::istringstream link(
            lab_->host().execOut("ip -d link show dev " + lab_->veth().nameA()));
        for (std::string line; std::getline(link, line);) {
            if (line.find("xdp") != std::string::npos)
                s += line + "\n";
        }
        s += runCommand({BPFTOOL_PATH, "cgroup", "tree", parent_->path()}).output;
        return s;
    }
    // ztsegd run to completion (a start that is expected to fail).
    CommandResult runDaemon() {
        return runCommand(
            {ZTSEGD_PATH, "--config", (dir_ / "ztsegd.yaml").string(), "--log-level", "info"},
            &lab_->host(), 60s);
    }
    void appendConfig(const std::string& yaml) {
        std::ofstream(dir_ / "ztsegd.yaml", std::ios::app) << yaml;
    }
    // A process in the lab's host namespace listening on 127.0.0.1:port.
    std::unique_ptr<Child> holdPort(uint16_t port) {
        auto c = std::make_unique<Child>(&lab_->host(), nullptr, [port](Child::Ready& ready) {
            int s = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(s, 1) != 0)
                return 1;
            ready.signal();
            ::pause();
            return 0;
        });
        c->waitReady(10s);
        return c;
    }
    // ztsegd started in the lab's host namespace after `prepare` ran in the
    // child (environment, log file), optionally wrapped by `wrapper` (argv).
    std::unique_ptr<Child> startWith(std::function<void()> prepare,
                                     std::vector<std::string> wrapper = {}) {
        std::string cfg = (dir_ / "ztsegd.yaml").string();
        std::string log = (dir_ / "ztsegd.log").string();
        return std::make_unique<Child>(&lab_->host(), nullptr, [=] {
            int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
            if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
                return 126;
            }
            prepare();
            std::vector<std::string> args = wrapper;
            for (const char* a : {ZTSEGD_PATH, "--config", cfg.c_str(), "--log-level", "info"})
                args.emplace_back(a);
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            execv(argv[0], argv.data());
            return 127;
        });
    }
    bool xdpPinned() { return fs::exists(pin_dir_ + "/links/xdp-" + lab_->veth().nameA()); }
};

TEST_F(ZtsegdStart, EveryBinaryNamesItsVersionAndCommit) {
    const std::regex line(
        R"((ztsegd|ztsegctl|ztseg-controller) 0\.1\.0 \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)\n)");
    for (const char* bin : {ZTSEGD_PATH, ZTSEGCTL_PATH, ZTSEG_CONTROLLER_PATH}) {
        CommandResult r = runCommand({bin, "--version"});
        EXPECT_EQ(r.status, 0) << bin;
        EXPECT_TRUE(std::regex_match(r.output, line)) << bin << ": " << r.output;
    }
}

// Each failure point of a fresh start: exit 1 with the reason, nothing left.
TEST_F(ZtsegdStart, RefusedFreshStartsLeaveNothingBehind) {
    const std::string before = hostState();
    ASSERT_EQ(before.rfind("no pins\n", 0), 0u) << before;
    TestPki pki(dir_ / "pki");
    pki.ca("ca");
    pki.leaf("host", "URI:spiffe://lab/host/lab-host", "ca");
    pki.leaf("other", "URI:spiffe://lab/host/other", "ca");
    std::ofstream(dir_ / "garbage.pem") << "not a key\n";
    std::ofstream(dir_ / "a-file") << "x";
    // The TCP API with this host's certificate and `key`: needs a fleet.
    auto tcpApi = [&](const std::string& key) {
        fleet_ = "lab";
        api_ = "{unix_socket: " + (dir_ / "sock").string() +
               ", tcp: 127.0.0.1:9443, tls: {cert: " + pki.cert("host") + ", key: " + key +
               ", ca: " + pki.cert("ca") + "}}";
        writeConfig();
    };
    struct Case {
        std::string name;
        std::function<void()> arrange;
        std::string expect;  // in the output
    };
    std::unique_ptr<Child> holder;
    const std::vector<Case> cases{
        {"unknown config field", [&] { appendConfig("bogus_field: 1\n"); }, "bogus_field"},
        {"metrics port taken", [&] { holder = holdPort(9962); },
         "metrics.listen 127.0.0.1:9962: cannot listen"},
        {"API TCP port taken",
         [&] {
             holder = holdPort(9443);
             tcpApi(pki.key("host"));
         },
         "api.tcp 127.0.0.1:9443: cannot listen"},
        {"TLS key of another certificate", [&] { tcpApi(pki.key("other")); },
         "does not belong to the certificate"},
        {"trusted key is not a key",
         [&] { appendConfig("trusted_keys: [" + (dir_ / "garbage.pem").string() + "]\n"); },
         "garbage.pem"},
        {"flow log directory cannot exist",
         [&] {
             std::string text = slurp(dir_ / "ztsegd.yaml");
             std::ofstream(dir_ / "ztsegd.yaml") << std::regex_replace(
                 text, std::regex("flows: \\{file: [^,]*"),
                 "flows: {file: " + (dir_ / "a-file" / "flows.jsonl").string());
         },
         "flows.file"},
        // Fails after the datapath is loaded: the recorded bundle is unreadable.
        {"recorded bundle corrupt (after loading)",
         [&] {
             fs::create_directories(dir_ / "state");
             std::ofstream(dir_ / "state" / "bundle.pb") << "corrupt";
         },
         "removed what it loaded"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.name);
        fleet_.clear();
        api_ = "{unix_socket: " + (dir_ / "sock").string() + "}";
        writeConfig();
        holder.reset();
        fs::remove_all(dir_ / "state");
        c.arrange();
        CommandResult r = runDaemon();
        EXPECT_EQ(r.status, 1) << r.output;
        EXPECT_NE(r.output.find(c.expect), std::string::npos) << r.output;
        EXPECT_EQ(hostState(), before) << r.output;
    }
}

// A datapath pinned by an earlier run stays exactly as it was when a start is
// refused, before or after adopting it, and keeps enforcing.
TEST_F(ZtsegdStart, RefusedStartsLeaveAnAdoptedDatapathAsItWas) {
    startDbServer();
    daemon_ = startDaemon();
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    ASSERT_EQ(daemon_->wait(30s), 0);
    daemon_.reset();
    const std::string before = hostState();
    ASSERT_NE(before.find("xdp"), std::string::npos) << before;

    {
        auto holder = holdPort(9962);
        CommandResult r = runDaemon();
        EXPECT_EQ(r.status, 1);
        EXPECT_NE(r.output.find("metrics.listen 127.0.0.1:9962: cannot listen"), std::string::npos)
            << r.output;
        EXPECT_EQ(hostState(), before);
    }
    std::ofstream(dir_ / "state" / "bundle.pb") << "corrupt";
    CommandResult r = runDaemon();
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.output.find("the adopted datapath keeps enforcing as before"), std::string::npos)
        << r.output;
    EXPECT_EQ(hostState(), before);
    EXPECT_EQ(webToDb(), 0);
    EXPECT_EQ(intruderToDb(), ETIMEDOUT) << "still enforcing";
}

// Type=notify: READY=1 only once enforcement is in place; the watchdog is
// pinged; reload and stop are announced. Under journald (JOURNAL_STREAM names
// its stdout) log lines carry no timestamp of their own.
TEST_F(ZtsegdStart, TellsSystemdWhenEnforcingAndPingsTheWatchdog) {
    const std::string sock_path = (dir_ / "notify").string();
    UniqueFd sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, sock_path.c_str(), sizeof(a.sun_path) - 1);
    ASSERT_EQ(::bind(sock.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    timeval tv{30, 0};
    ::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    auto next = [&]() -> std::string {
        char buf[4096];
        ssize_t n = ::recv(sock.get(), buf, sizeof(buf), 0);
        return n > 0 ? std::string(buf, size_t(n)) : "";
    };

    startDbServer();
    daemon_ = startWith([sock_path] {
        ::setenv("NOTIFY_SOCKET", sock_path.c_str(), 1);
        ::setenv("WATCHDOG_USEC", "1000000", 1);
        struct stat st {};
        ::fstat(STDOUT_FILENO, &st);
        ::setenv("JOURNAL_STREAM",
                 (std::to_string(uint64_t(st.st_dev)) + ":" + std::to_string(uint64_t(st.st_ino)))
                     .c_str(),
                 1);
    });
    std::string ready = next();
    ASSERT_EQ(ready.rfind("READY=1\n", 0), 0u) << ready;
    // Enforcement was in place when readiness was sent.
    EXPECT_TRUE(xdpPinned());
    EXPECT_NE(ready.find("STATUS=enforcing generation 1"), std::string::npos) << ready;
    EXPECT_EQ(intruderToDb(), ETIMEDOUT);
    EXPECT_EQ(webToDb(), 0);

    int pings = 0;
    for (int i = 0; i < 10 && pings < 2; ++i) {
        pings += next() == "WATCHDOG=1";
    }
    EXPECT_EQ(pings, 2) << "two watchdog pings within a few intervals";

    ASSERT_EQ(kill(daemon_->pid(), SIGHUP), 0);
    std::string m;
    while ((m = next()) == "WATCHDOG=1") {
    }
    EXPECT_EQ(m, "RELOADING=1");
    while ((m = next()) == "WATCHDOG=1") {
    }
    EXPECT_EQ(m.rfind("READY=1\n", 0), 0u) << m;

    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    while ((m = next()) == "WATCHDOG=1") {
    }
    EXPECT_EQ(m.rfind("STOPPING=1\n", 0), 0u) << m;
    EXPECT_EQ(daemon_->wait(30s), 0);
    daemon_.reset();

    // "[info] ..." lines, no "[2026-12-05 ...]" prefix.
    std::istringstream log(logText());
    int lines = 0;
    for (std::string l; std::getline(log, l); ++lines) {
        EXPECT_TRUE(std::regex_match(l, std::regex(R"(\[(info|warning|error|critical)\] .*)")))
            << l;
    }
    EXPECT_GT(lines, 2);
}

TEST_F(ZtsegdStart, HealthzSaysReadyOrDegradedWithTheReason) {
    // No bundle: running, but enforcing no policy.
    std::string text = slurp(dir_ / "ztsegd.yaml");
    std::ofstream(dir_ / "ztsegd.yaml")
        << std::regex_replace(text, std::regex("bundle: [^\n]*\n"), "");
    daemon_ = startDaemon();
    HttpReply degraded = httpRequestIn(lab_->host(), 9962, "/healthz", dir_ / "h.txt");
    EXPECT_EQ(degraded.status, 503) << degraded.body;
    EXPECT_NE(degraded.body.find("\"status\":\"degraded\""), std::string::npos) << degraded.body;
    EXPECT_NE(degraded.body.find("no policy applied"), std::string::npos) << degraded.body;

    CommandResult applied =
        runCommand({ZTSEGCTL_PATH, "apply", "--bundle", (dir_ / "bundle.pb").string(), "--socket",
                    (dir_ / "sock").string()});
    ASSERT_EQ(applied.status, 0) << applied.output;
    HttpReply ready = httpRequestIn(lab_->host(), 9962, "/healthz", dir_ / "h.txt");
    EXPECT_EQ(ready.status, 200) << ready.body;
    EXPECT_NE(ready.body.find("\"status\":\"ready\""), std::string::npos) << ready.body;
    EXPECT_NE(ready.body.find("\"generation\":1"), std::string::npos) << ready.body;
    std::string metrics = metricsText();
    EXPECT_NE(metrics.find("ztseg_build_info{version=\"0.1.0\",commit=\""), std::string::npos);
}

// The capabilities dist/ztsegd.service.in keeps (CapabilityBoundingSet=, with
// NoNewPrivileges=) are enough to load, enforce, restart and adopt.
TEST_F(ZtsegdStart, RunsWithExactlyTheCapabilitiesTheUnitGrants) {
    std::ifstream unit(std::string(ZTSEG_SOURCE_DIR) + "/dist/ztsegd.service.in");
    std::string caps;
    for (std::string l; std::getline(unit, l);) {
        if (l.rfind("CapabilityBoundingSet=", 0) == 0) {
            std::istringstream in(l.substr(l.find('=') + 1));
            for (std::string cap; in >> cap;) {
                std::transform(cap.begin(), cap.end(), cap.begin(), ::tolower);
                caps += ",+" + cap.substr(4);  // CAP_BPF -> +bpf
            }
        }
    }
    ASSERT_FALSE(caps.empty()) << "no CapabilityBoundingSet in dist/ztsegd.service.in";
    const std::vector<std::string> confined{"/usr/bin/setpriv", "--bounding-set=-all" + caps,
                                            "--inh-caps=-all", "--no-new-privs", "--"};
    startDbServer();
    for (int run = 0; run < 2; ++run) {  // load, then adopt
        SCOPED_TRACE(run == 0 ? "fresh load" : "restart adopting the pins");
        daemon_ = startWith([] {}, confined);
        ASSERT_TRUE(waitUntil([&] { return xdpPinned() && fs::exists(dir_ / "sock"); }, 60s))
            << logText();
        std::this_thread::sleep_for(300ms);
        EXPECT_EQ(webToDb(), 0);
        EXPECT_EQ(intruderToDb(), ETIMEDOUT);
        CommandResult st =
            runCommand({ZTSEGCTL_PATH, "status", "--socket", (dir_ / "sock").string()});
        EXPECT_EQ(st.status, 0) << st.output;
        EXPECT_NE(st.output.find("policy generation 1"), std::string::npos) << st.output;
        if (run == 1) {
            // A new generation on the adopted datapath writes inner maps it found by id.
            writeBundle(2, "5430-5440", "bundle2.pb");
            CommandResult applied =
                runCommand({ZTSEGCTL_PATH, "apply", "--force", "--bundle",
                            (dir_ / "bundle2.pb").string(), "--socket", (dir_ / "sock").string()});
            EXPECT_EQ(applied.status, 0) << applied.output << logText();
            CommandResult st2 =
                runCommand({ZTSEGCTL_PATH, "status", "--socket", (dir_ / "sock").string()});
            EXPECT_NE(st2.output.find("policy generation 2"), std::string::npos) << st2.output;
            EXPECT_EQ(webToDb(), 0);
            EXPECT_EQ(intruderToDb(), ETIMEDOUT);
        }
        ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
        EXPECT_EQ(daemon_->wait(30s), 0) << logText();
    }
    const std::string log = logText();
    EXPECT_EQ(log.find("[error]"), std::string::npos) << log;
    EXPECT_EQ(log.find("Operation not permitted"), std::string::npos) << log;
}

}  // namespace
}  // namespace ztseg::test
