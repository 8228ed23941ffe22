// ztsegctl against the real ztsegd on the namespace lab: apply (compiled from
// policy files, or a bundle), policy show, apply --dry-run / diff and the
// apply guard, status, flows (history and --follow), rollback,
// a refused bundle reported in one line, and status once ztsegd has stopped
// (what its pins still enforce; then, uninstalled, that nothing is).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/cgroup.hpp"
#include "integration/lab_topology.hpp"
#include "integration/ztseg_process.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

class Ztsegctl : public ::testing::Test {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<DbLab>();
        tag_ = uniqueName("ztc");
        parent_ = std::make_unique<Cgroup2>(tag_);
        db_cg_ = std::make_unique<Cgroup2>(tag_ + "/db");
        dir_ = fs::temp_directory_path() / tag_;
        fs::create_directories(dir_ / "policy");
        socket_ = (dir_ / "sock").string();
        std::ofstream(dir_ / "ztsegd.yaml") << "host_name: ctl-host\n"
                                            << "state_dir: " << (dir_ / "state").string() << "\n"
                                            << "pin_dir: /sys/fs/bpf/" << tag_ << "\n"
                                            << "cgroup_root: " << parent_->path() << "\n"
                                            << "interfaces: [" << lab_->veth().nameA() << "]\n"
                                            << "flows: {file: " << (dir_ / "flows.jsonl").string()
                                            << ", drop_event_interval_ms: 0}\n"
                                            << "api: {unix_socket: " << socket_ << "}\n"
                                            << "metrics: {listen: 127.0.0.1:9963}\n";
        writePolicy("5432");
        db_server_ = lab_->startServerIn(*db_cg_, kDbPort);
        daemon_ = std::make_unique<ZtsegdProcess>(ZTSEGD_PATH, lab_->host(),
                                                  (dir_ / "ztsegd.yaml").string(), socket_);
    }
    void TearDown() override {
        daemon_.reset();
        runCommand({ZTSEGD_PATH, "--config", (dir_ / "ztsegd.yaml").string(), "--uninstall"});
        db_server_.reset();
        db_cg_.reset();
        parent_.reset();
        lab_.reset();
        fs::remove_all(dir_);
    }
    // db (its cgroup) admits web on `ports`.
    void writePolicy(const std::string& ports) {
        std::string rel = db_cg_->path().substr(Cgroup2::mountPoint().size() + 1);
        std::ofstream(dir_ / "policy" / "lab.yaml")
            << "workloads:\n"
            << "  - {name: db, labels: {app: db}, cgroup: " << rel << ", addresses: ["
            << lab_->dbAddr(4) << "]}\n"
            << "  - {name: web, labels: {app: web}, addresses: [" << lab_->webAddr(4) << "]}\n"
            << "policies:\n  - name: db\n    selector: {matchLabels: {app: db}}\n"
            << "    ingress:\n      - from: [{selector: {matchLabels: {app: web}}}]\n"
            << "        ports: [{port: \"" << ports << "\", protocol: tcp}]\n";
    }
    CommandResult ctl(const std::string& args) {
        std::vector<std::string> argv{ZTSEGCTL_PATH};
        std::istringstream in(args);
        for (std::string a; in >> a;) argv.push_back(a);
        argv.push_back("--socket");
        argv.push_back(socket_);
        return runCommand(argv, nullptr, 60s, true);
    }
    int webToDb() { return lab_->webToDb(); }
    int intruderToDb() { return lab_->intruderToDb(); }

    std::unique_ptr<DbLab> lab_;
    std::string tag_;
    std::unique_ptr<Cgroup2> parent_, db_cg_;
    std::unique_ptr<Child> db_server_;
    std::unique_ptr<ZtsegdProcess> daemon_;
    fs::path dir_;
    std::string socket_;
};

TEST_F(Ztsegctl, AppliesShowsStatusStreamsFlowsAndRollsBack) {
    CommandResult r = ctl("apply " + (dir_ / "policy").string());
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    EXPECT_EQ(r.output, "applied generation 1\n");

    r = ctl("status -o json");
    ASSERT_EQ(r.status, 0) << r.errors;
    auto st = nlohmann::json::parse(r.output);
    EXPECT_EQ(st.at("generation"), "1");
    EXPECT_EQ(st.at("host"), "ctl-host");
    ASSERT_EQ(st.at("endpoints").size(), 1u);
    EXPECT_EQ(st.at("endpoints")[0].at("name"), "db");
    EXPECT_EQ(st.at("endpoints")[0].at("mode"), "enforce");
    EXPECT_EQ(st.at("interfaces")[0].at("name"), lab_->veth().nameA());

    // --follow: a stream that shows what happens after it started.
    int fds[2];
    ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
    UniqueFd rd(fds[0]), wr(fds[1]);
    std::string sock = socket_;
    Child follow(nullptr, nullptr, [w = wr.get(), sock] {
        dup2(w, STDOUT_FILENO);
        execl(ZTSEGCTL_PATH, "ztsegctl", "flows", "-f", "-o", "json", "--verdict", "dropped",
              "--socket", sock.c_str(), static_cast<char*>(nullptr));
        return 127;
    });
    wr.reset();
    std::this_thread::sleep_for(500ms);  // the stream is open
    EXPECT_EQ(webToDb(), 0);
    EXPECT_EQ(intruderToDb(), ETIMEDOUT);
    std::string streamed;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (streamed.find('\n') == std::string::npos &&
           std::chrono::steady_clock::now() < deadline) {
        pollfd p{rd.get(), POLLIN, 0};
        if (poll(&p, 1, 200) == 1) {
            char buf[4096];
            ssize_t n = read(rd.get(), buf, sizeof(buf));
            if (n <= 0)
                break;
            streamed.append(buf, size_t(n));
        }
    }
    ASSERT_NE(streamed.find('\n'), std::string::npos) << "nothing streamed";
    auto first = nlohmann::json::parse(streamed.substr(0, streamed.find('\n')));
    EXPECT_EQ(first.at("class_uid"), 4001);
    EXPECT_EQ(first.at("src_endpoint").at("ip"), lab_->intruderAddr(4));
    EXPECT_EQ(first.at("unmapped").at("ztseg").at("verdict"), "dropped");
    EXPECT_TRUE(follow.running()) << "--follow keeps streaming";

    // History, filtered like hubble: the allowed connection from web.
    r = ctl("flows --verdict allowed --from app=web --port 5432");
    ASSERT_EQ(r.status, 0) << r.errors;
    EXPECT_NE(r.output.find("TIME"), std::string::npos);
    EXPECT_NE(r.output.find(lab_->webAddr(4)), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("ALLOWED"), std::string::npos);
    EXPECT_EQ(r.output.find("DROPPED"), std::string::npos) << r.output;
    r = ctl("flows --verdict dropped --from 0 -o jsonpb --last 1");
    ASSERT_EQ(r.status, 0) << r.errors;
    auto pb = nlohmann::json::parse(r.output);
    EXPECT_EQ(pb.at("verdict"), "dropped");
    EXPECT_EQ(pb.at("hook"), "xdp");

    // policy show: what ztsegd enforces, from ztsegd.
    r = ctl("policy show -o json");
    ASSERT_EQ(r.status, 0) << r.errors;
    auto shown = nlohmann::json::parse(r.output);
    EXPECT_EQ(shown.at("generation"), 1);
    EXPECT_EQ(shown.at("signer"), "") << "standalone: no trusted keys";
    EXPECT_EQ(shown.at("source_digest").get<std::string>().size(), 64u);
    EXPECT_FALSE(shown.at("in_force_since").get<std::string>().empty());
    ASSERT_EQ(shown.at("workloads").size(), 2u);
    EXPECT_EQ(shown.at("workloads")[0].at("name"), "db");
    EXPECT_EQ(shown.at("workloads")[0].at("mode"), "enforce");
    EXPECT_EQ(shown.at("workloads")[0].at("labels"), "app=db");
    ASSERT_EQ(shown.at("rules").size(), 1u);
    EXPECT_EQ(shown.at("rules")[0].at("policy"), "db");
    EXPECT_EQ(shown.at("rules")[0].at("location"), "lab.yaml:8");
    EXPECT_EQ(shown.at("rules")[0].at("entries"),
              nlohmann::json::array({"app=db <- app=web tcp/5432 allow"}));
    r = ctl("policy show");
    ASSERT_EQ(r.status, 0) << r.errors;
    EXPECT_NE(r.output.find("ztsegd on ctl-host (" + socket_ + "): policy generation 1"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("not checked (standalone ztsegd"), std::string::npos) << r.output;
    // explain --live: judged from the bundle ztsegd holds, not from files.
    r = ctl("explain --live --from app=web --to app=db --port 5432/tcp");
    ASSERT_EQ(r.status, 0) << r.errors;
    EXPECT_NE(r.output.find("judged by ztsegd on ctl-host (" + socket_ + "), generation 1"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("app=web -> app=db 5432/tcp: ALLOWED"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("allowed by rule 1 of policy 'db' (lab.yaml:8:9)"), std::string::npos)
        << r.output;

    // Generation 2 moves db to 5433: --dry-run shows it and applies nothing...
    writePolicy("5433");
    r = ctl("apply --dry-run " + (dir_ / "policy").string());
    ASSERT_EQ(r.status, 0) << r.errors;
    EXPECT_NE(r.output.find("+ app=db <- app=web tcp/5433 allow"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("- app=db <- app=web tcp/5432 allow"), std::string::npos) << r.output;
    EXPECT_NE(r.errors.find("dry run: nothing applied"), std::string::npos) << r.errors;
    r = ctl("diff -o json " + (dir_ / "policy").string());
    ASSERT_EQ(r.status, 0) << r.errors;
    EXPECT_EQ(nlohmann::json::parse(r.output).at("rules_removed").size(), 1u) << r.output;
    EXPECT_EQ(webToDb(), 0) << "nothing applied";
    // ...the guard refuses it (every rule entry in force removed)...
    r = ctl("apply " + (dir_ / "policy").string());
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("apply refused, enforcement unchanged: it would remove 1 of the 1 "
                            "rule entries of generation 1 (100%, more than 50%)"),
              std::string::npos)
        << r.errors;
    EXPECT_EQ(webToDb(), 0) << "nothing applied";
    // ...and --force applies it; rollback brings 5432 back.
    r = ctl("apply --force " + (dir_ / "policy").string());
    ASSERT_EQ(r.status, 0) << r.errors;
    // Sent as a delta against generation 1 (DESIGN §6), enforced below.
    EXPECT_TRUE(r.output.starts_with("applied generation 2 (sent as a delta: ")) << r.output;
    r = ctl("explain --live -o json --from " + lab_->webAddr(4) + " --to app=db --port 5432/tcp");
    ASSERT_EQ(r.status, 0) << r.errors;
    auto live = nlohmann::json::parse(r.output);
    EXPECT_EQ(live.at("generation"), 2);
    EXPECT_EQ(live.at("verdict"), "dropped") << r.output;
    EXPECT_EQ(live.at("sides").back().at("reason"), "default-deny") << r.output;
    EXPECT_EQ(webToDb(), ETIMEDOUT);
    r = ctl("rollback");
    ASSERT_EQ(r.status, 0) << r.errors;
    EXPECT_EQ(r.output, "rolled back to generation 1\n");
    EXPECT_EQ(webToDb(), 0);

    // An old generation is refused in one line with the daemon's reason.
    r = ctl("apply --force -g 2 " + (dir_ / "policy").string());
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("apply: refused by ztsegd:"), std::string::npos) << r.errors;
    EXPECT_NE(r.errors.find("rollback refused"), std::string::npos) << r.errors;
    EXPECT_EQ(std::count(r.errors.begin(), r.errors.end(), '\n'), 1) << r.errors;
    EXPECT_EQ(webToDb(), 0) << "nothing changed";

    // A compiled bundle file works too.
    r = runCommand({ZTSEGCTL_PATH, "compile", (dir_ / "policy").string(), "-g", "3", "--out",
                    (dir_ / "b.pb").string()});
    ASSERT_EQ(r.status, 0) << r.output;
    r = ctl("apply --force --bundle " + (dir_ / "b.pb").string());
    EXPECT_TRUE(r.output.starts_with("applied generation 3 (sent as a delta: "))
        << r.output << r.errors;
    EXPECT_EQ(webToDb(), ETIMEDOUT);
}

// ztsegd stopped (SIGTERM: its pins stay and keep enforcing): status reads the
// pins and says what is still enforced, with exit 5; uninstalled, exit 6.
TEST_F(Ztsegctl, StoppedStatusSaysWhatThePinsStillEnforce) {
    CommandResult r = ctl("apply " + (dir_ / "policy").string());
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    ASSERT_EQ(daemon_->stop(), 0);
    EXPECT_EQ(webToDb(), 0) << "still enforcing: web may reach db";
    EXPECT_EQ(intruderToDb(), ETIMEDOUT) << "still enforcing: the intruder is dropped";

    const std::string pin_dir = "/sys/fs/bpf/" + tag_;
    const std::string db_rel = db_cg_->path().substr(Cgroup2::mountPoint().size() + 1);
    // In the lab's host namespace, where ztsegd ran (XDP modes are per namespace).
    auto status = [&](const std::string& args) {
        std::vector<std::string> argv{ZTSEGCTL_PATH, "status", "--socket", socket_};
        std::istringstream in(args);
        for (std::string a; in >> a;) argv.push_back(a);
        return runCommand(argv, &lab_->host(), 60s, true);
    };
    const std::string dirs = "--pin-dir " + pin_dir + " --state-dir " + (dir_ / "state").string();
    r = status(dirs);
    EXPECT_EQ(r.status, 5) << r.output << r.errors;
    EXPECT_EQ(r.errors, "");
    EXPECT_EQ(r.output.rfind("ztsegd is not running (nobody answers on " + socket_ +
                                 "): this host still enforces what is pinned under " + pin_dir,
                             0),
              0u)
        << r.output;
    EXPECT_NE(r.output.find("\npolicy generation 1 (no previous generation"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("  " + lab_->veth().nameA() + "  tcx\n"), std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("workloads: 1 local cgroups\n"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("  db        "), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("enforce  " + db_rel), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("cgroup hooks: 1 cgroups"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("ingress,egress,connect4,connect6,sendmsg4,sendmsg6"),
              std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("raw sockets of enforced workloads: "), std::string::npos);
    EXPECT_EQ(r.output.find("names unavailable"), std::string::npos) << r.output;

    r = status(dirs + " -o json");
    EXPECT_EQ(r.status, 5) << r.errors;
    auto st = nlohmann::json::parse(r.output);
    EXPECT_EQ(st.at("daemon"), "stopped");
    EXPECT_EQ(st.at("enforcing"), true);
    EXPECT_EQ(st.at("generation"), "1");
    ASSERT_EQ(st.at("interfaces").size(), 1u);
    EXPECT_EQ(st.at("interfaces")[0].at("name"), lab_->veth().nameA());
    EXPECT_EQ(st.at("interfaces")[0].at("mode"), "tcx");
    ASSERT_EQ(st.at("endpoints").size(), 1u);
    EXPECT_EQ(st.at("endpoints")[0].at("name"), "db");
    EXPECT_EQ(st.at("endpoints")[0].at("mode"), "enforce");
    EXPECT_EQ(st.at("endpoints")[0].at("cgroup_path"), db_rel);
    EXPECT_EQ(st.at("endpoints")[0].at("cgroup_id"), std::to_string(cgroupIdOf(db_cg_->path())));
    EXPECT_EQ(st.at("names_unavailable"), "");

    // The same from ztsegd's config alone (its socket, pin_dir, state_dir).
    r = runCommand({ZTSEGCTL_PATH, "status", "-c", (dir_ / "ztsegd.yaml").string()}, &lab_->host(),
                   60s, true);
    EXPECT_EQ(r.status, 5) << r.output << r.errors;
    EXPECT_NE(r.output.find("under " + pin_dir), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("  db        "), std::string::npos) << r.output;

    // Without the recorded bundle the workloads keep their identities, not names.
    r = status("--pin-dir " + pin_dir + " --state-dir " + (dir_ / "nowhere").string());
    EXPECT_EQ(r.status, 5) << r.errors;
    EXPECT_NE(r.output.find("workload names unavailable: no bundle recorded in " +
                            (dir_ / "nowhere").string()),
              std::string::npos)
        << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "nowhere")) << "status creates nothing";

    r = runCommand({ZTSEGD_PATH, "--config", (dir_ / "ztsegd.yaml").string(), "--uninstall"},
                   &lab_->host());
    ASSERT_EQ(r.status, 0) << r.output;
    r = status(dirs);
    EXPECT_EQ(r.status, 6) << r.output << r.errors;
    EXPECT_EQ(r.output, "ztsegd is not running and nothing is pinned under " + pin_dir +
                            ": this host enforces nothing\n");
    r = status(dirs + " -o json");
    EXPECT_EQ(r.status, 6) << r.errors;
    EXPECT_EQ(nlohmann::json::parse(r.output).at("enforcing"), false);
    EXPECT_FALSE(fs::exists(pin_dir)) << "status creates nothing";
}

}  // namespace
}  // namespace ztseg::test
