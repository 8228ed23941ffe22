// ztsegd end to end on the namespace lab: the real binary in the "host"
// namespace with a config, a compiled bundle, XDP on the lab interface and a
// workload cgroup discovered by pattern. Traffic verdicts, the OCSF flow file,
// /metrics, restart without a gap, --uninstall, and the gRPC API (unix
// socket, and TCP with mutual TLS authorized by SPIFFE-style URI SANs).
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "agent.grpc.pb.h"
#include "common/cgroup.hpp"
#include "integration/daemon_fixture.hpp"
#include "integration/lab_topology.hpp"
#include "integration/netns_forwarder.hpp"
#include "integration/test_pki.hpp"
#include "integration/ztseg_process.hpp"
#include "policy/bundle.hpp"
#include "policy/parser.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

using v1::Agent;

std::unique_ptr<Agent::Stub> unixClient(const fs::path& sock) {
    return Agent::NewStub(
        grpc::CreateChannel("unix:" + sock.string(), grpc::InsecureChannelCredentials()));
}

std::unique_ptr<grpc::ClientContext> callContext() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + 10s);
    return ctx;
}

grpc::Status statusVia(Agent::Stub& stub, v1::StatusReply* reply) {
    return stub.Status(callContext().get(), v1::StatusRequest{}, reply);
}

grpc::Status applyVia(Agent::Stub& stub, const std::string& bundle,
                      uint64_t* generation = nullptr) {
    v1::ApplyRequest req;
    req.set_bundle(bundle);
    v1::ApplyReply reply;
    grpc::Status st = stub.Apply(callContext().get(), req, &reply);
    if (generation != nullptr) {
        *generation = reply.generation();
    }
    return st;
}

std::vector<v1::FlowEvent> flowsOf(Agent::Stub& stub, const v1::FlowsRequest& req) {
    auto ctx = callContext();
    auto reader = stub.Flows(ctx.get(), req);
    std::vector<v1::FlowEvent> out;
    v1::FlowEvent e;
    while (reader->Read(&e)) out.push_back(e);
    EXPECT_TRUE(reader->Finish().ok());
    return out;
}

std::vector<v1::FlowEvent> flowsOf(Agent::Stub& stub, const std::vector<std::string>& verdicts) {
    v1::FlowsRequest req;
    for (const auto& v : verdicts) req.add_verdict(v);
    return flowsOf(stub, req);
}

bool hasVerdict(const std::vector<v1::FlowEvent>& evs, const std::string& verdict) {
    return std::any_of(evs.begin(), evs.end(),
                       [&](const v1::FlowEvent& e) { return e.verdict() == verdict; });
}

TEST_F(Ztsegd, EnforcesLogsFlowsServesMetricsAndSurvivesRestart) {
    startDbServer();
    daemon_ = startDaemon();
    EXPECT_EQ(webToDb(), 0) << "web -> db:5432 is allowed";
    EXPECT_EQ(intruderToDb(), ETIMEDOUT) << "unlabeled intruder is dropped";

    // Flow events: OCSF lines for the allowed connection and the XDP drop.
    waitFor([&] {
        std::string t = flowsText();
        return t.find("\"disposition_id\":1") != std::string::npos &&
               t.find("\"disposition_id\":2") != std::string::npos;
    });
    std::string flows = flowsText();
    EXPECT_NE(flows.find("\"class_uid\":4001"), std::string::npos);
    EXPECT_NE(flows.find(lab_->intruderAddr(4)), std::string::npos);
    EXPECT_NE(flows.find("lab-host"), std::string::npos);
    EXPECT_TRUE(metricsShowGeneration(1));

    // Stop: enforcement stays while the daemon is down.
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
    EXPECT_EQ(intruderToDb(), ETIMEDOUT) << "enforcement continues without the daemon";
    EXPECT_EQ(webToDb(), 0);

    // Restart adopts the pinned state; the same bundle is not re-applied (not newer).
    daemon_ = startDaemon();
    EXPECT_EQ(webToDb(), 0);
    EXPECT_EQ(intruderToDb(), ETIMEDOUT);
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
}

TEST_F(Ztsegd, OneShotApplyRefusesRollbackAndUninstallLeavesNothing) {
    startDbServer();
    daemon_ = startDaemon();
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
    daemon_.reset();

    // A newer bundle that moves db to port 5433 only: 5432 is now refused.
    writeBundle(2, "5433", "next.pb");
    EXPECT_EQ(runTool({"--apply", (dir_ / "next.pb").string()}), 0);
    EXPECT_EQ(webToDb(), ETIMEDOUT);
    // Replaying generation 2 (or anything older) is refused and changes nothing.
    writeBundle(2, "5432", "replay.pb");
    EXPECT_EQ(runTool({"--apply", (dir_ / "replay.pb").string()}), 1);
    EXPECT_EQ(webToDb(), ETIMEDOUT);

    EXPECT_EQ(runTool({"--uninstall"}), 0);
    EXPECT_FALSE(fs::exists(pin_dir_));
    EXPECT_EQ(webToDb(), 0) << "no enforcement left";
}

// After a restart the kernel's other slot still holds a generation, but this
// ztsegd never applied it and cannot roll back to it: status must not offer it.
TEST_F(Ztsegd, StatusAfterRestartOffersNoRollbackItCannotDo) {
    startDbServer();
    daemon_ = startDaemon();
    const std::string sock = (dir_ / "sock").string();
    writeBundle(2, "5433", "next.pb");
    CommandResult applied = runCommand({ZTSEGCTL_PATH, "apply", "--force", "--bundle",
                                        (dir_ / "next.pb").string(), "--socket", sock});
    ASSERT_EQ(applied.status, 0) << applied.output << applied.errors;
    CommandResult st = runCommand({ZTSEGCTL_PATH, "status", "--socket", sock});
    EXPECT_NE(st.output.find("policy generation 2 (rollback goes to 1)"), std::string::npos)
        << st.output;

    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    ASSERT_EQ(daemon_->wait(30s), 0);
    daemon_ = startDaemon();
    st = runCommand({ZTSEGCTL_PATH, "status", "--socket", sock});
    EXPECT_NE(st.output.find("policy generation 2 (no previous generation since this ztsegd "
                             "started)"),
              std::string::npos)
        << st.output;
    CommandResult rb = runCommand({ZTSEGCTL_PATH, "rollback", "--socket", sock});
    EXPECT_EQ(rb.status, 3) << rb.output;
    EXPECT_NE(rb.output.find("no previous generation since this ztsegd started"), std::string::npos)
        << rb.output;
    EXPECT_EQ(webToDb(), ETIMEDOUT) << "generation 2 still enforced";
}

TEST_F(Ztsegd, ApiOnUnixSocketAppliesRollsBackAndStreamsFlows) {
    startDbServer();
    daemon_ = startDaemon();
    auto stub = unixClient(dir_ / "sock");
    EXPECT_EQ(fs::status(dir_ / "sock").permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);

    v1::StatusReply st;
    ASSERT_TRUE(statusVia(*stub, &st).ok());
    EXPECT_EQ(st.generation(), 1u);
    EXPECT_EQ(st.host(), "lab-host");
    ASSERT_EQ(st.interfaces_size(), 1);
    EXPECT_EQ(st.interfaces(0).name(), lab_->veth().nameA());
    EXPECT_EQ(st.interfaces(0).mode(), "tcx") << "ztsegd's default on a veth: tcx ingress";
    ASSERT_EQ(st.endpoints_size(), 1);
    EXPECT_EQ(st.endpoints(0).name(), "db");
    EXPECT_EQ(st.endpoints(0).cgroup_id(), cgroupIdOf(db_cg_->path()));
    EXPECT_EQ(st.endpoints(0).mode(), "enforce");

    // Flows: the allowed connection and the intruder's drop, filtered server-side.
    EXPECT_EQ(webToDb(), 0);
    EXPECT_EQ(intruderToDb(), ETIMEDOUT);
    waitFor([&] {
        auto evs = flowsOf(*stub, v1::FlowsRequest{});
        return hasVerdict(evs, "allowed") && hasVerdict(evs, "dropped");
    });
    auto dropped = flowsOf(*stub, {"dropped"});
    ASSERT_FALSE(dropped.empty());
    for (const auto& e : dropped) {
        EXPECT_EQ(e.verdict(), "dropped");
        EXPECT_EQ(e.src().ip(), lab_->intruderAddr(4));
        EXPECT_NE(e.ocsf_json().find("\"class_uid\":4001"), std::string::npos);
    }
    {
        v1::FlowsRequest bad;
        bad.add_verdict("maybe");
        auto ctx = callContext();
        auto reader = stub->Flows(ctx.get(), bad);
        v1::FlowEvent e;
        while (reader->Read(&e)) {
        }
        EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    }

    // follow=true: the history first, then new flows as they happen.
    {
        v1::FlowsRequest req;
        req.set_follow(true);
        req.add_verdict("allowed");
        req.add_from_ip(lab_->webAddr(4) + "/32");
        req.add_port(kDbPort);
        v1::FlowsRequest once = req;
        once.set_follow(false);
        size_t history = flowsOf(*stub, once).size();
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 20s);
        auto reader = stub->Flows(&ctx, req);
        ASSERT_GT(history, 0u);
        v1::FlowEvent e;
        for (size_t i = 0; i < history; ++i) {
            ASSERT_TRUE(reader->Read(&e));
        }
        auto t0 = std::chrono::system_clock::now();
        EXPECT_EQ(webToDb(), 0);
        ASSERT_TRUE(reader->Read(&e)) << "the new connection arrives on the open stream";
        EXPECT_EQ(e.verdict(), "allowed");
        EXPECT_EQ(e.dst().port(), kDbPort);
        EXPECT_GE(e.time_unix_nanos(),
                  std::chrono::duration_cast<std::chrono::nanoseconds>((t0 - 1s).time_since_epoch())
                      .count());
        ctx.TryCancel();
        while (reader->Read(&e)) {
        }
        EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
    }

    // A newer bundle moves db to 5433 only; older ones are refused and change nothing.
    writeBundle(2, "5433", "next.pb");
    uint64_t gen = 0;
    ASSERT_TRUE(applyVia(*stub, readBundle("next.pb"), &gen).ok());
    EXPECT_EQ(gen, 2u);
    EXPECT_EQ(webToDb(), ETIMEDOUT);
    writeBundle(2, "5432", "replay.pb");
    grpc::Status refused = applyVia(*stub, readBundle("replay.pb"));
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(refused.error_message().find("rollback refused"), std::string::npos)
        << refused.error_message();
    EXPECT_NE(applyVia(*stub, readBundle("bundle.pb")).error_message().find("rollback refused"),
              std::string::npos);
    EXPECT_EQ(webToDb(), ETIMEDOUT);

    // Garbage is refused with the reason.
    grpc::Status garbage = applyVia(*stub, "\x01\x02not a bundle at all\xff");
    EXPECT_EQ(garbage.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(garbage.error_message().find("not a valid ztseg bundle"), std::string::npos)
        << garbage.error_message();

    // Rollback: back to generation 1 (5432 allowed again); the state keeps highest 2.
    v1::RollbackReply rb;
    ASSERT_TRUE(stub->Rollback(callContext().get(), v1::RollbackRequest{}, &rb).ok());
    EXPECT_EQ(rb.generation(), 1u);
    EXPECT_EQ(webToDb(), 0);
    ASSERT_TRUE(statusVia(*stub, &st).ok());
    EXPECT_EQ(st.generation(), 1u);
    EXPECT_EQ(st.previous_generation(), 2u);
    EXPECT_NE(applyVia(*stub, readBundle("replay.pb")).error_message().find("rollback refused"),
              std::string::npos);

    // Not HTTP/2 at all on the socket: the daemon shrugs it off.
    {
        UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::string path = (dir_ / "sock").string();
        std::memcpy(a.sun_path, path.c_str(), path.size());
        ASSERT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
        std::string junk = "GET / HTTP/1.1\r\n\r\n";
        for (int i = 0; i < 4096; ++i) junk.push_back(char(i * 7919));
        EXPECT_GT(write(fd.get(), junk.data(), junk.size()), 0);
    }
    ASSERT_TRUE(statusVia(*stub, &st).ok());
    EXPECT_EQ(st.generation(), 1u);
    EXPECT_TRUE(daemon_->running());

    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
}

// Throwaway PKI: a lab CA, the daemon's server cert, the controller, another
// fleet member, and a look-alike controller from a different CA.
void makePki(const fs::path& d) {
    TestPki pki(d);
    pki.ca("ca");
    pki.ca("otherca");
    pki.leaf("server", "DNS:ztsegd.lab,URI:spiffe://lab/host/lab-host", "ca");
    pki.leaf("controller", "URI:spiffe://lab/controller", "ca");
    pki.leaf("other", "URI:spiffe://lab/host/other", "ca");
    pki.leaf("fake", "URI:spiffe://lab/controller", "otherca");
}

// A TLS client of the forwarded daemon; `who` empty = no client certificate.
std::unique_ptr<Agent::Stub> tlsClient(const fs::path& pki, uint16_t port, const std::string& who) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = slurp(pki / "ca.pem");
    if (!who.empty()) {
        o.pem_private_key = slurp(pki / (who + ".key"));
        o.pem_cert_chain = slurp(pki / (who + ".pem"));
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("ztsegd.lab");
    return Agent::NewStub(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                                    grpc::SslCredentials(o), args));
}

TEST_F(Ztsegd, TcpApiRequiresMutualTlsAndAuthorizesBySpiffeName) {
    constexpr uint16_t kApiPort = 19443;
    fs::path pki = dir_ / "pki";
    makePki(pki);
    fleet_ = "lab";
    api_ = "{unix_socket: " + (dir_ / "sock").string() +
           ", tcp: 127.0.0.1:" + std::to_string(kApiPort) +
           ", tls: {cert: " + (pki / "server.pem").string() +
           ", key: " + (pki / "server.key").string() + ", ca: " + (pki / "ca.pem").string() + "}}";
    writeConfig();
    writeBundle(1, "5432");
    startDbServer();
    daemon_ = startDaemon();
    NetnsForwarder fwd(lab_->host(), kApiPort);
    v1::StatusReply st;
    v1::RollbackReply rb;

    EXPECT_EQ(statusVia(*tlsClient(pki, fwd.port(), ""), &st).error_code(),
              grpc::StatusCode::UNAVAILABLE)
        << "no client certificate";
    EXPECT_EQ(statusVia(*tlsClient(pki, fwd.port(), "fake"), &st).error_code(),
              grpc::StatusCode::UNAVAILABLE)
        << "client certificate from another CA";

    auto other = tlsClient(pki, fwd.port(), "other");
    ASSERT_TRUE(statusVia(*other, &st).ok());
    EXPECT_EQ(st.generation(), 1u);
    writeBundle(2, "5433", "next.pb");
    grpc::Status denied = applyVia(*other, readBundle("next.pb"));
    EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(denied.error_message().find("spiffe://lab/host/other"), std::string::npos)
        << denied.error_message();
    EXPECT_EQ(other->Rollback(callContext().get(), v1::RollbackRequest{}, &rb).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(webToDb(), 0) << "nothing changed";

    auto controller = tlsClient(pki, fwd.port(), "controller");
    uint64_t gen = 0;
    grpc::Status ok = applyVia(*controller, readBundle("next.pb"), &gen);
    ASSERT_TRUE(ok.ok()) << ok.error_message();
    EXPECT_EQ(gen, 2u);
    EXPECT_EQ(webToDb(), ETIMEDOUT) << "generation 2 allows 5433 only";

    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
}

}  // namespace
}  // namespace ztseg::test

namespace ztseg::test {
namespace {

// Stop and restart ztsegd while traffic flows: the pinned programs keep
// enforcing throughout, so no allowed connection fails and no intruder gets in.
TEST_F(Ztsegd, RestartUnderContinuousTrafficNoMisverdict) {
    startDbServer();
    daemon_ = startDaemon();
    std::string dst = lab_->dbAddr(4), web = lab_->webAddr(4), intruder = lab_->intruderAddr(4);
    Child traffic(&lab_->peer(), nullptr, [&] {
        int attempts = 0, allowed_failed = 0, denied_passed = 0;
        auto end = std::chrono::steady_clock::now() + 4s;
        while (std::chrono::steady_clock::now() < end) {
            allowed_failed += tcpEchoRoundTrip(dst, kDbPort, "x", 1s, web) != 0;
            denied_passed += tcpConnect(dst, kDbPort, 50ms, intruder).err == 0;
            ++attempts;
        }
        return (allowed_failed ? 1 : 0) | (denied_passed ? 2 : 0) | (attempts < 20 ? 4 : 0);
    });
    std::this_thread::sleep_for(1s);
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
    std::this_thread::sleep_for(500ms);  // traffic while no daemon runs at all
    daemon_ = startDaemon();
    EXPECT_EQ(traffic.wait(60s), 0) << "1: an allowed connection failed, 2: an intruder got in, "
                                       "4: too few attempts";
}

// Workload cgroups are followed while running: a re-created workload cgroup
// is enforced under its new id; SIGHUP applies a newer bundle from the config.
TEST_F(Ztsegd, FollowsWorkloadCgroupsAndReloadsOnSighup) {
    daemon_ = startDaemon();
    std::string web = lab_->webAddr(4);
    auto dbEgress = [&](Cgroup2* cg) {
        Child c(&lab_->host(), cg, [&] { return tcpConnect(web, kOtherPort, 1s).err; });
        return c.wait(30s);
    };
    EXPECT_EQ(dbEgress(db_cg_.get()), EPERM) << "db has no egress rules: refused at connect";

    std::string path = db_cg_->path();
    db_cg_.reset();  // the workload goes away ...
    std::this_thread::sleep_for(300ms);
    db_cg_ = std::make_unique<Cgroup2>(path.substr(Cgroup2::mountPoint().size() + 1));
    std::this_thread::sleep_for(500ms);  // ... and comes back with a new cgroup id
    EXPECT_EQ(dbEgress(db_cg_.get()), EPERM) << "the new cgroup is the db workload again";

    startDbServer();
    EXPECT_EQ(webToDb(), 0);
    writeBundle(2, "5433");  // the config's bundle file, newer: db moves to 5433
    ASSERT_EQ(kill(daemon_->pid(), SIGHUP), 0);
    waitFor([&] { return webToDb() == ETIMEDOUT; });
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
}

// The flow file's disk fills up: enforcement does not notice, every record
// that cannot be written is counted as lost (stage sink_file) with one clear
// log line, and writing resumes once there is room again.
TEST_F(Ztsegd, FullDiskLosesFlowRecordsCountedEnforcementUnaffected) {
    fs::path mnt = dir_ / "small";
    fs::create_directories(mnt);
    ASSERT_EQ(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k"), 0) << std::strerror(errno);
    struct Unmount {
        fs::path p;
        ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } unmount{mnt};
    {  // fill the file system to the last byte
        std::ofstream filler(mnt / "filler", std::ios::binary);
        std::string block(4096, 'x');
        while (filler.write(block.data(), std::streamsize(block.size())) && filler.flush()) {
        }
    }
    std::string flows = (mnt / "flows.jsonl").string();
    std::string cfg = (dir_ / "ztsegd.yaml").string();
    {
        std::string text = slurp(cfg);
        std::string old = (dir_ / "flows.jsonl").string();
        text.replace(text.find(old), old.size(), flows);
        std::ofstream(cfg) << text;
    }
    startDbServer();
    daemon_ = startDaemon();
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(webToDb(), 0) << "allowed traffic unaffected by the full disk";
        EXPECT_EQ(intruderToDb(), ETIMEDOUT) << "drops unaffected by the full disk";
    }
    waitFor([&] { return metric("ztseg_flow_events_lost_total{stage=\"sink_file\"}") > 0; });
    EXPECT_NE(logText().find("flow records are being lost"), std::string::npos) << logText();

    // Room again: records are written again.
    fs::remove(mnt / "filler");
    EXPECT_EQ(intruderToDb(), ETIMEDOUT);
    waitFor([&] { return fs::exists(flows) && fs::file_size(flows) > 0; });
    EXPECT_TRUE(daemon_->running());
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
}

// A configured interface that does not exist (yet) is named in a warning,
// gets XDP as soon as it appears, and is cleaned up when it goes away.
TEST_F(Ztsegd, MissingInterfaceIsReportedThenAttachedWhenItAppears) {
    std::string late = uniqueName("ztl");
    std::string cfg = (dir_ / "ztsegd.yaml").string();
    {
        std::string text = slurp(cfg);
        std::string old = "interfaces: [" + lab_->veth().nameA() + "]";
        text.replace(text.find(old), old.size(),
                     "interfaces: [" + lab_->veth().nameA() + ", " + late + "]");
        std::ofstream(cfg) << text;
    }
    daemon_ = startDaemon();
    waitFor([&] { return logText().find("'" + late + "'") != std::string::npos; });
    EXPECT_NE(logText().find("no interface named '" + late + "' exists now"), std::string::npos)
        << logText();
    std::string pin = pin_dir_ + "/links/xdp-" + late;
    EXPECT_FALSE(fs::exists(pin));
    {
        VethPair appears(late, &lab_->host(), uniqueName("ztp"), &lab_->host());
        waitFor([&] { return fs::exists(pin); });
    }
    waitFor([&] { return !fs::exists(pin); });
    EXPECT_TRUE(daemon_->running());
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(30s), 0);
}

}  // namespace
}  // namespace ztseg::test
