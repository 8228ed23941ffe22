// The controller and a fleet of five real ztsegd agents on one machine
// (tests/fleet/fleet_lab.hpp): push to all, staged rollout with a failing
// canary that halts and rolls back, tampered / unsigned / unknown-key /
// replayed bundles refused everywhere, agents without a valid certificate
// refused, an agent restarted offline catching up, key rotation, and etcd
// mode end to end. The suite shares one fleet; tests run in order and each
// leaves the fleet converged. Measurements (convergence time, the canary
// timeline) are printed for the record.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iostream>
#include <thread>

#include "bundle.pb.h"
#include "common/etcd_client.hpp"
#include "fleet/fleet_lab.hpp"
#include "integration/netns_forwarder.hpp"
#include "policy/signing.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace ztseg::test {
namespace {

constexpr int kAgents = 5;

class Fleet : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        lab_ = new FleetLab(kAgents);
        lab_->writePolicy({kProbePort}, "rev 1");
        lab_->writeControllerConfig(FleetLab::Mode::Direct, {"A"});
        lab_->startController();
        for (int i = 0; i < kAgents; ++i) {
            lab_->writeAgentConfig(i, FleetLab::Mode::Direct);
            lab_->startAgent(i);
        }
        ASSERT_TRUE(converged(1, 60s)) << "the fleet did not reach generation 1";
        first_bundle_ = slurp(lab_->controllerState() / "bundle.pb");
    }
    static void TearDownTestSuite() {
        delete lab_;
        lab_ = nullptr;
    }
    void SetUp() override { ASSERT_NE(lab_, nullptr); }

    // Every agent (but `except`) runs `generation`, by its own API.
    static bool converged(uint64_t generation, std::chrono::milliseconds timeout, int except = -1) {
        return FleetLab::waitFor(
            [&] {
                for (int i = 0; i < kAgents; ++i) {
                    if (i != except && lab_->agentGeneration(i) != generation)
                        return false;
                }
                return true;
            },
            timeout);
    }
    static bool allConnected(int expected, std::chrono::milliseconds timeout) {
        return FleetLab::waitFor(
            [&] {
                auto st = lab_->fleetStatus();
                return std::count_if(st.hosts().begin(), st.hosts().end(),
                                     [](const auto& h) { return h.connected(); }) == expected;
            },
            timeout);
    }
    static uint64_t stableGeneration() { return lab_->fleetStatus().stable_generation(); }

    // A process in agent i's probe workload connecting to the hub over and over.
    static std::unique_ptr<Child> startProber(int i, uint16_t port) {
        std::string hub = hubAddr(i);
        return std::make_unique<Child>(lab_->agents[size_t(i)].ns.get(),
                                       lab_->agents[size_t(i)].probe.get(), [hub, port] {
                                           for (;;) {
                                               tcpConnect(hub, port, 200ms);
                                               std::this_thread::sleep_for(20ms);
                                           }
                                           return 0;
                                       });
    }
    static int probeOnce(int i, uint16_t port) {
        std::string hub = hubAddr(i);
        Child c(lab_->agents[size_t(i)].ns.get(), lab_->agents[size_t(i)].probe.get(),
                [hub, port] { return tcpConnect(hub, port, 1s).err; });
        return c.wait(10s);
    }

    static FleetLab* lab_;
    static std::string first_bundle_;  // generation 1, signed: for the replay test
};

FleetLab* Fleet::lab_ = nullptr;
std::string Fleet::first_bundle_;

std::vector<json> eventsOf(const std::vector<json>& log, uint64_t generation) {
    std::vector<json> out;
    for (const auto& e : log) {
        if (e.value("generation", 0ull) == generation)
            out.push_back(e);
    }
    return out;
}

TEST_F(Fleet, NewGenerationConvergesOnEveryAgentInWaves) {
    ASSERT_TRUE(allConnected(kAgents, 30s));
    uint64_t g = stableGeneration() + 1;
    lab_->writePolicy({kProbePort, 7001}, "rev 2");
    auto t0 = std::chrono::steady_clock::now();
    v1::ReloadReply reply;
    std::thread reloader([&] { reply = lab_->reload(); });
    std::vector<double> reached(kAgents, -1);
    FleetLab::waitFor(
        [&] {
            for (int i = 0; i < kAgents; ++i) {
                if (reached[size_t(i)] < 0 && lab_->agentGeneration(i) == g) {
                    reached[size_t(i)] =
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                            .count();
                }
            }
            return std::none_of(reached.begin(), reached.end(), [](double t) { return t < 0; });
        },
        60s);
    reloader.join();
    EXPECT_TRUE(reply.changed());
    EXPECT_EQ(reply.rollout().state(), "done") << reply.rollout().reason();
    EXPECT_EQ(reply.generation(), g);
    for (int i = 0; i < kAgents; ++i) {
        EXPECT_GE(reached[size_t(i)], 0) << "agent" << i << " never reached generation " << g;
    }
    double slowest = *std::max_element(reached.begin(), reached.end());
    std::cout << "[measure] 5 agents converged on generation " << g << " in " << slowest
              << " s (staged: canary + 2 waves, 1.5 s soak each); per agent:";
    for (int i = 0; i < kAgents; ++i) std::cout << " agent" << i << "=" << reached[size_t(i)];
    std::cout << "\n";

    // Waves: the canary (agent0, by label) first, then 50 %, then the rest.
    std::vector<std::vector<std::string>> waves;
    for (const auto& e : eventsOf(lab_->rolloutLog(), g)) {
        if (e["event"] == "wave-start")
            waves.push_back(e["hosts"]);
    }
    ASSERT_EQ(waves.size(), 3u);
    // Every host was one generation behind: each got the signed delta, not
    // the full bundle (DESIGN §6), and applied it.
    size_t pushes = 0;
    for (const auto& e : eventsOf(lab_->rolloutLog(), g)) {
        if (e["event"] == "push") {
            ++pushes;
            EXPECT_EQ(e["as"], "delta") << e.dump();
            EXPECT_EQ(e["from"], g - 1) << e.dump();
            std::cout << "[measure] push to " << e["host"] << ": " << e["bytes"] << " bytes as "
                      << e["as"] << "\n";
        }
    }
    EXPECT_EQ(pushes, size_t(kAgents));
    // ...and holds byte for byte the bundle the controller compiled, which
    // verifies under the trusted key through the delta that produced it.
    {
        v1::PolicyReply fleet;
        grpc::ClientContext fctx;
        fctx.set_deadline(std::chrono::system_clock::now() + 5s);
        ASSERT_TRUE(lab_->controller()->FleetPolicy(&fctx, {}, &fleet).ok());
        for (int i = 0; i < kAgents; ++i) {
            v1::PolicyReply mine;
            grpc::ClientContext ctx;
            ctx.set_deadline(std::chrono::system_clock::now() + 5s);
            ASSERT_TRUE(lab_->agentApi(i)->Policy(&ctx, {}, &mine).ok());
            EXPECT_EQ(policy::openEnvelope(mine.bundle()).bundle,
                      policy::openEnvelope(fleet.bundle()).bundle)
                << "agent" << i;
            EXPECT_FALSE(mine.signer().empty()) << "agent" << i;
            EXPECT_NE(fleet.signer().find(mine.signer()), std::string::npos)
                << "agent" << i << ": " << mine.signer();
            EXPECT_EQ(mine.generation(), g);
        }
    }
    EXPECT_EQ(waves[0], std::vector<std::string>{"agent0"});
    EXPECT_EQ(waves[1], (std::vector<std::string>{"agent1", "agent2"}));
    EXPECT_EQ(waves[2], (std::vector<std::string>{"agent3", "agent4"}));

    // ztsegctl fleet status: every host, up, on g.
    auto [rc, out] = lab_->ztsegctl("fleet status --controller unix:" +
                                    (lab_->dir / "controller.sock").string());
    EXPECT_EQ(rc, 0);
    EXPECT_NE(out.find("stable generation " + std::to_string(g)), std::string::npos) << out;
    for (int i = 0; i < kAgents; ++i) {
        EXPECT_NE(out.find("agent" + std::to_string(i)), std::string::npos) << out;
    }
    auto st = lab_->fleetStatus();
    for (const auto& h : st.hosts()) {
        EXPECT_TRUE(h.connected()) << h.host();
        EXPECT_EQ(h.generation(), g) << h.host();
        EXPECT_GT(h.last_contact_unix_ms(), 0) << h.host();
    }
}

TEST_F(Fleet, FlowsOfEveryHostLandInOneFleetLog) {
    for (int i : {0, 3}) {
        EXPECT_EQ(probeOnce(i, kProbePort), ECONNREFUSED) << "allowed (nothing listens there)";
        EXPECT_EQ(probeOnce(i, 7002), EPERM) << "not allowed: refused at connect";
    }
    // Both hosts' allowed and dropped connects, one OCSF line each, naming the host.
    auto linesOf = [&](const std::string& host, int disposition) {
        int n = 0;
        for (const json& j : FleetLab::jsonLines(lab_->flowFile())) {
            EXPECT_EQ(j["class_uid"], 4001);
            n += j.dump().find(host) != std::string::npos && j["disposition_id"] == disposition;
        }
        return n;
    };
    EXPECT_TRUE(FleetLab::waitFor(
        [&] {
            return linesOf("agent0", 1) > 0 && linesOf("agent0", 2) > 0 &&
                   linesOf("agent3", 1) > 0 && linesOf("agent3", 2) > 0;
        },
        15s))
        << slurp(lab_->flowFile());

    std::string sock = (lab_->dir / "controller.sock").string();
    auto [rc, out] = lab_->ztsegctl("fleet flows --controller unix:" + sock +
                                    " --verdict dropped --port 7002 -o json");
    EXPECT_EQ(rc, 0);
    EXPECT_NE(out.find("agent0"), std::string::npos) << out;
    EXPECT_NE(out.find("agent3"), std::string::npos) << out;
    EXPECT_EQ(out.find(":7000"), std::string::npos) << "the filter keeps only port 7002 drops";
    auto [rc2, table] = lab_->ztsegctl("fleet flows --controller unix:" + sock +
                                       " --verdict allowed --from-ip " + agentAddr(3));
    EXPECT_EQ(rc2, 0);
    EXPECT_NE(table.find("agent3"), std::string::npos) << table;
    EXPECT_EQ(table.find("agent0"), std::string::npos) << table;
    // The same filters as `ztsegctl flows`, plus --node; compact lines name the node.
    auto [rc3, compact] = lab_->ztsegctl("fleet flows --controller unix:" + sock +
                                         " --node agent3 --not --verdict allowed -o compact");
    EXPECT_EQ(rc3, 0);
    EXPECT_NE(compact.find("[agent3]: "), std::string::npos) << compact;
    EXPECT_EQ(compact.find("agent0"), std::string::npos) << compact;
    EXPECT_EQ(compact.find("ALLOWED"), std::string::npos) << compact;
    auto [rc4, first] = lab_->ztsegctl("fleet flows --controller unix:" + sock +
                                       " --not --node agent3 --first 1 -o compact");
    EXPECT_EQ(rc4, 0);
    EXPECT_EQ(std::count(first.begin(), first.end(), '\n'), 1) << first;
    EXPECT_EQ(first.find("agent3"), std::string::npos) << first;
    // fleet map: the fleet log as one graph, probe -> hub allowed on 7000, dropped on 7002.
    auto [rc5, dot] = lab_->ztsegctl("fleet map --controller unix:" + sock);
    EXPECT_EQ(rc5, 0);
    EXPECT_NE(dot.find("digraph ztseg"), std::string::npos) << dot;
    EXPECT_NE(dot.find("\"probe\" -> \"hub\" [label=\"tcp/7000 ×"), std::string::npos) << dot;
    EXPECT_NE(dot.find("\"probe\" -> \"hub\" [label=\"tcp/7002 ×"), std::string::npos) << dot;
    EXPECT_NE(dot.find("tooltip=\"dropped\""), std::string::npos) << dot;
    // fleet rules: every connected host's rule counts, summed; the probes used the one rule.
    auto [rc6, rules] = lab_->ztsegctl("fleet rules -o json --controller unix:" + sock);
    ASSERT_EQ(rc6, 0) << rules;
    json r = json::parse(rules);
    EXPECT_EQ(r["rules"].size(), 1u) << rules;
    EXPECT_EQ(r["hosts"].get<size_t>(), lab_->agents.size()) << rules;
    EXPECT_TRUE(r["unanswered"].empty()) << rules;
    EXPECT_GE(r["rules"][0]["admitted"].get<int>(), 2) << "agent0's and agent3's probes";
    EXPECT_GE(r["rules"][0]["packets"].get<int>(), 2) << rules;
    EXPECT_EQ(r["rules"][0]["policy"], "probe");
    auto [rc7, unused] = lab_->ztsegctl("fleet rules --unused --controller unix:" + sock);
    EXPECT_EQ(rc7, 0);
    EXPECT_NE(unused.find("hosts): 0 rules no traffic used since counting began"),
              std::string::npos)
        << unused;
    EXPECT_EQ(unused.find("not included"), std::string::npos) << "every host answered";
}

TEST_F(Fleet, FailingCanaryHaltsTheRolloutAndRollsBack) {
    uint64_t good = stableGeneration();
    uint64_t bad = good + 1;
    // The canary runs a workload that needs the hub on 7000; the new policy drops it.
    auto prober = startProber(0, kProbePort);
    std::this_thread::sleep_for(300ms);
    lab_->writePolicy({7001}, "rev 3 (breaks the probe)");
    v1::ReloadReply reply = lab_->reload();
    EXPECT_EQ(reply.rollout().state(), "halted");
    EXPECT_EQ(reply.rollout().generation(), bad);
    EXPECT_EQ(reply.rollout().wave(), 0u) << "halted at the canary wave";
    EXPECT_NE(reply.rollout().reason().find("agent0: default-deny drops grew"), std::string::npos)
        << reply.rollout().reason();
    uint64_t rollback = reply.rollout().rollback_generation();
    EXPECT_EQ(rollback, bad + 1) << "rolled back forward, as a new generation";
    ASSERT_TRUE(converged(rollback, 30s));
    EXPECT_EQ(probeOnce(0, kProbePort), ECONNREFUSED) << "the canary's workload works again";
    prober.reset();

    // Only the canary ever got the bad generation; everyone else went from good to rollback.
    auto log = lab_->rolloutLog();
    for (const auto& e : eventsOf(log, bad)) {
        if (e["event"] == "push") {
            EXPECT_EQ(e["host"], "agent0") << e.dump();
        }
    }
    int rollback_pushes = 0;
    for (const auto& e : eventsOf(log, rollback)) rollback_pushes += e["event"] == "push";
    EXPECT_EQ(rollback_pushes, kAgents);

    // The timeline, for the record.
    int64_t t0 = 0;
    std::cout << "[measure] failing-canary timeline (ms since rollout-start):\n";
    for (const auto& e : log) {
        uint64_t g = e.value("generation", 0ull);
        if (g != bad && g != rollback)
            continue;
        if (t0 == 0)
            t0 = e["time_ms"];
        json rest = e;
        rest.erase("time_ms");
        std::cout << "  +" << (e["time_ms"].get<int64_t>() - t0) << " " << rest.dump() << "\n";
    }
    EXPECT_NE(std::find_if(log.begin(), log.end(),
                           [&](const json& e) { return e["event"] == "rollback-done"; }),
              log.end());
}

TEST_F(Fleet, TamperedUnsignedUnknownKeyAndReplayedBundlesAreRefusedEverywhere) {
    uint64_t g = stableGeneration();
    ASSERT_TRUE(converged(g, 10s));
    policy::Envelope env = policy::openEnvelope(slurp(lab_->controllerState() / "bundle.pb"));
    ASSERT_FALSE(env.signatures.empty());
    v1::Bundle inner;
    ASSERT_TRUE(inner.ParseFromString(env.bundle));
    inner.set_generation(g + 100);  // a tempting, newer generation ...
    std::string forged = inner.SerializeAsString();
    v1::SignedBundle tampered;  // ... under the controller's genuine signature
    tampered.set_bundle(forged);
    for (const auto& s : env.signatures) {
        auto* o = tampered.add_signatures();
        o->set_key_id(s.key_id);
        o->set_sig(s.sig);
    }
    std::string unknown_key =
        policy::signBundle(forged, {policy::Ed25519Key::load(lab_->keyPath("C", ".key"))});
    struct Case {
        const char* what;
        std::string bytes;
        const char* reason;
    } cases[] = {
        {"tampered", tampered.SerializeAsString(), "does not verify"},
        {"unsigned", forged, "not signed"},
        {"unknown key", unknown_key, "unknown key"},
        {"replayed generation 1", first_bundle_, "rollback refused"},
    };
    for (const auto& c : cases) {
        for (int i = 0; i < kAgents; ++i) {
            grpc::Status st = lab_->applyTo(i, c.bytes);
            EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
                << c.what << " agent" << i;
            EXPECT_NE(st.error_message().find(c.reason), std::string::npos)
                << c.what << " agent" << i << ": " << st.error_message();
        }
    }
    for (int i = 0; i < kAgents; ++i) {
        EXPECT_EQ(lab_->agentGeneration(i), g) << "nothing changed on agent" << i;
        std::string log = slurp(lab_->agents[size_t(i)].dir / "ztsegd.log");
        EXPECT_NE(log.find("bundle refused, enforcement unchanged"), std::string::npos);
    }
}

TEST_F(Fleet, AgentsWithoutAValidCertificateAreRefused) {
    NetnsForwarder fwd(lab_->hub, kControllerPort);
    // Connect as an agent with `cert`, saying hello as `hello_host`.
    auto connectAs = [&](const std::string& cert, const std::string& hello_host) {
        grpc::SslCredentialsOptions o;
        o.pem_root_certs = slurp(lab_->pki.cert("ca"));
        o.pem_private_key = slurp(lab_->pki.key(cert));
        o.pem_cert_chain = slurp(lab_->pki.cert(cert));
        grpc::ChannelArguments args;
        args.SetSslTargetNameOverride("controller.lab");
        auto stub = v1::Controller::NewStub(grpc::CreateCustomChannel(
            "127.0.0.1:" + std::to_string(fwd.port()), grpc::SslCredentials(o), args));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 10s);
        auto stream = stub->Connect(&ctx);
        v1::AgentMessage hello;
        hello.mutable_hello()->set_host(hello_host);
        stream->Write(hello);
        stream->WritesDone();
        v1::ControllerMessage m;
        while (stream->Read(&m)) {
        }
        return stream->Finish();
    };
    grpc::Status rogue = connectAs("rogue", "rogue");
    EXPECT_EQ(rogue.error_code(), grpc::StatusCode::UNAVAILABLE) << "not issued by the fleet CA";
    grpc::Status revoked = connectAs("revoked", "revoked");
    EXPECT_EQ(revoked.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(revoked.error_message().find("revoked"), std::string::npos)
        << revoked.error_message();
    grpc::Status not_a_host = connectAs("controller", "controller");
    EXPECT_EQ(not_a_host.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    grpc::Status impostor = connectAs("agent1", "agent2");
    EXPECT_EQ(impostor.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(impostor.error_message().find("certificate names 'agent1'"), std::string::npos)
        << impostor.error_message();
    v1::FleetStatusReply st = lab_->fleetStatus();
    for (const auto& h : st.hosts()) {
        EXPECT_TRUE(h.host().rfind("agent", 0) == 0) << h.host() << " must not have joined";
    }
    EXPECT_TRUE(allConnected(kAgents, 10s)) << "the real agents are unaffected";
}

TEST_F(Fleet, AgentRestartedOfflineCatchesUp) {
    lab_->stopAgent(3);
    ASSERT_TRUE(allConnected(kAgents - 1, 15s));
    uint64_t before = lab_->fleetStatus().stable_generation();
    lab_->writePolicy({kProbePort, 7003}, "rev 4");
    v1::ReloadReply reply = lab_->reload();
    ASSERT_EQ(reply.rollout().state(), "done") << reply.rollout().reason();
    uint64_t g = reply.generation();
    EXPECT_GT(g, before);
    ASSERT_TRUE(converged(g, 10s, /*except=*/3));
    EXPECT_EQ(std::stoull(slurp(lab_->agents[3].dir / "state" / "highest-generation")), before)
        << "agent3 was offline";
    auto t0 = std::chrono::steady_clock::now();
    lab_->startAgent(3);
    ASSERT_TRUE(FleetLab::waitFor([&] { return lab_->agentGeneration(3) == g; }, 30s));
    std::cout << "[measure] agent3 restarted and caught up with generation " << g << " in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
              << " s\n";
}

TEST_F(Fleet, KeyRotationAndAnUntrustedKeyReportedByTheCanary) {
    auto restartController = [&](std::vector<std::string> keys) {
        lab_->stopController();
        lab_->writeControllerConfig(FleetLab::Mode::Direct, keys);
        lab_->startController();
        ASSERT_TRUE(allConnected(kAgents, 30s));
    };
    auto signerOfStable = [&] {
        auto env = policy::openEnvelope(slurp(lab_->controllerState() / "bundle.pb"));
        std::string ids;
        for (const auto& s : env.signatures) ids += s.key_id + " ";
        return ids;
    };
    std::string id_a = policy::Ed25519Key::load(lab_->keyPath("A", ".key")).keyId();
    std::string id_b = policy::Ed25519Key::load(lab_->keyPath("B", ".key")).keyId();

    // Rotation: agents trust A and B; the controller moves from A to B.
    restartController({"B"});
    lab_->writePolicy({kProbePort, 7004}, "rev 5 (signed by B)");
    v1::ReloadReply reply = lab_->reload();
    ASSERT_EQ(reply.rollout().state(), "done") << reply.rollout().reason();
    uint64_t g = reply.generation();
    ASSERT_TRUE(converged(g, 10s));
    EXPECT_EQ(signerOfStable(), id_b + " ");

    // A key the agents do not trust: the canary refuses, says why, nothing changes.
    restartController({"C"});
    lab_->writePolicy({kProbePort, 7005}, "rev 6 (signed by C)");
    reply = lab_->reload();
    EXPECT_EQ(reply.rollout().state(), "halted");
    EXPECT_NE(reply.rollout().reason().find("agent0 refused: bundle is signed by unknown key"),
              std::string::npos)
        << reply.rollout().reason();
    std::this_thread::sleep_for(500ms);
    for (int i = 0; i < kAgents; ++i) EXPECT_EQ(lab_->agentGeneration(i), g) << "agent" << i;
    v1::FleetStatusReply st = lab_->fleetStatus();
    for (const auto& h : st.hosts()) {
        if (h.host() == "agent0") {
            EXPECT_NE(h.last_error().find("unknown key"), std::string::npos) << h.last_error();
        }
    }

    // Back to trusted keys, both at once: every agent moves on.
    restartController({"A", "B"});
    lab_->writePolicy({kProbePort, 7006}, "rev 7 (signed by A and B)");
    reply = lab_->reload();
    ASSERT_EQ(reply.rollout().state(), "done") << reply.rollout().reason();
    ASSERT_TRUE(converged(reply.generation(), 10s));
    EXPECT_EQ(signerOfStable(), id_a + " " + id_b + " ");
}

TEST_F(Fleet, RolloutGuardHoldsASourceThatRemovesMostRulesUntilForced) {
    const std::string controller = "--controller unix:" + (lab_->dir / "controller.sock").string();
    const uint64_t before = stableGeneration();

    // fleet policy show: the stable release, its signers and rules with file:line.
    auto [rc, shown] = lab_->ztsegctl("fleet policy show -o json " + controller);
    ASSERT_EQ(rc, 0) << shown;
    json p = json::parse(shown);
    EXPECT_EQ(p.at("generation"), before);
    EXPECT_EQ(p.at("signer").get<std::string>().rfind("ed25519:", 0), 0u) << p.at("signer");
    ASSERT_FALSE(p.at("rules").empty());
    EXPECT_EQ(p.at("rules")[0].at("policy"), "probe");
    EXPECT_NE(p.at("rules")[0].at("location").get<std::string>().find("fleet.yaml:"),
              std::string::npos);
    EXPECT_EQ(p.at("rules")[0].at("entries").size(), 2u) << p.at("rules")[0];

    // Both entries in force replaced by another: 100% removed, held back.
    lab_->writePolicy({7008}, "rev 7b (replaces every rule)");
    v1::ReloadReply reply = lab_->reload();
    EXPECT_NE(reply.refused().find("it would remove 2 of the 2 rule entries"), std::string::npos)
        << reply.refused();
    EXPECT_EQ(reply.generation(), before);
    EXPECT_EQ(stableGeneration(), before);
    std::this_thread::sleep_for(500ms);
    for (int i = 0; i < kAgents; ++i) EXPECT_EQ(lab_->agentGeneration(i), before) << "agent" << i;
    auto [rc_refused, out_refused] = lab_->ztsegctl("fleet reload " + controller);
    EXPECT_EQ(rc_refused, 3) << out_refused;

    // --force rolls it out.
    auto [rc_forced, out_forced] = lab_->ztsegctl("fleet reload --force " + controller);
    EXPECT_EQ(rc_forced, 0) << out_forced;
    const uint64_t forced = stableGeneration();
    EXPECT_GT(forced, before);
    ASSERT_TRUE(converged(forced, 10s));

    // Back to rev 7's rules: removes 7008, the only entry in force, so forced too.
    lab_->writePolicy({kProbePort, 7006}, "rev 7c (rev 7 again)");
    auto [rc_back, out_back] = lab_->ztsegctl("fleet reload --force " + controller);
    EXPECT_EQ(rc_back, 0) << out_back;
    ASSERT_TRUE(converged(stableGeneration(), 10s));
    EXPECT_GT(stableGeneration(), forced);
}

TEST_F(Fleet, EtcdModeEndToEnd) {
    lab_->startEtcd();
    uint64_t before = stableGeneration();
    lab_->stopController();
    lab_->writeControllerConfig(FleetLab::Mode::Etcd, {"A"});
    for (int i = 0; i < kAgents; ++i) {
        lab_->stopAgent(i);
        lab_->writeAgentConfig(i, FleetLab::Mode::Etcd);
    }
    lab_->startController();
    for (int i = 0; i < kAgents; ++i) lab_->startAgent(i);
    ASSERT_TRUE(allConnected(kAgents, 30s)) << "agents report through etcd";
    EXPECT_EQ(lab_->fleetStatus().mode(), "etcd");

    // A staged rollout through etcd keys.
    lab_->writePolicy({kProbePort, 7007}, "rev 8 (etcd)");
    auto t0 = std::chrono::steady_clock::now();
    v1::ReloadReply reply = lab_->reload();
    ASSERT_EQ(reply.rollout().state(), "done") << reply.rollout().reason();
    uint64_t g = reply.generation();
    EXPECT_GT(g, before);
    ASSERT_TRUE(converged(g, 20s));
    for (const auto& e : eventsOf(lab_->rolloutLog(), g)) {
        if (e["event"] == "push") {
            EXPECT_EQ(e["as"], "delta") << "etcd mode: a host's key holds the delta " << e.dump();
        }
    }
    std::cout << "[measure] etcd mode: 5 agents converged on generation " << g << " in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
              << " s (staged, 1.5 s soak per wave)\n";

    // etcd is not trusted: a tampered bundle written straight into it is refused by all.
    NetnsForwarder fwd(lab_->hub, kEtcdPort);
    EtcdClient etcd({"127.0.0.1:" + std::to_string(fwd.port())});
    auto stable = etcd.get("/ztseg/lab/bundle");
    ASSERT_TRUE(stable.has_value());
    policy::Envelope env = policy::openEnvelope(stable->value);
    v1::Bundle inner;
    ASSERT_TRUE(inner.ParseFromString(env.bundle));
    inner.set_generation(g + 50);
    v1::SignedBundle tampered;
    tampered.set_bundle(inner.SerializeAsString());
    for (const auto& s : env.signatures) {
        auto* o = tampered.add_signatures();
        o->set_key_id(s.key_id);
        o->set_sig(s.sig);
    }
    etcd.put("/ztseg/lab/bundle", tampered.SerializeAsString());
    // Agents watch the small stable pointer, and read the bundle when behind it.
    etcd.put("/ztseg/lab/stable", std::to_string(g + 50));
    EXPECT_TRUE(FleetLab::waitFor(
        [&] {
            auto st = lab_->fleetStatus();
            return st.hosts_size() == kAgents &&
                   std::all_of(st.hosts().begin(), st.hosts().end(), [](const auto& h) {
                       return h.last_error().find("does not verify") != std::string::npos;
                   });
        },
        20s))
        << "every agent reports the refusal";
    for (int i = 0; i < kAgents; ++i) EXPECT_EQ(lab_->agentGeneration(i), g) << "agent" << i;

    // An agent that was offline catches up from etcd.
    lab_->stopAgent(2);
    ASSERT_TRUE(allConnected(kAgents - 1, 20s));
    lab_->writePolicy({kProbePort, 7008}, "rev 9 (etcd)");
    reply = lab_->reload();
    ASSERT_EQ(reply.rollout().state(), "done") << reply.rollout().reason();
    ASSERT_TRUE(converged(reply.generation(), 20s, /*except=*/2));
    lab_->startAgent(2);
    EXPECT_TRUE(
        FleetLab::waitFor([&] { return lab_->agentGeneration(2) == reply.generation(); }, 30s));
    lab_->stopController();
    for (int i = 0; i < kAgents; ++i) lab_->stopAgent(i);
    lab_->stopEtcd();
}

}  // namespace
}  // namespace ztseg::test
