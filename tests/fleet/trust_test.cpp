// Control-plane trust over real mutual TLS (issue 13): one real ztsegd agent
// and a real ztseg-controller in the fleet lab (tests/fleet/fleet_lab.hpp).
// Impostor controllers with certificates of the fleet CA are refused by the
// agent (it never says hello, so it forwards no flows); a revoked controller
// is refused, and disconnected when revoked at runtime (SIGHUP), by serial
// list and by CRL; a bad CRL fails the start and does not drop revocation on
// reload; the TCP API refuses impostor and revoked clients. Tests run in
// order on one lab; each leaves the agent connected to the real controller.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "common/x509_names.hpp"
#include "fleet/fleet_lab.hpp"
#include "integration/netns_forwarder.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

constexpr uint16_t kAgentApiPort = 19447;

class FleetTrust : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        lab_ = new FleetLab(1);
        TestPki& pki = lab_->pki;
        // Impostors: certificates of the fleet CA that are not spiffe://lab/controller.
        pki.leaf("dashboard", "DNS:controller.lab,URI:spiffe://lab/controller-readonly-dashboard",
                 "ca");
        pki.leaf("queryimp",
                 "DNS:controller.lab,URI:spiffe://other-fleet/svc?x=spiffe://lab/controller", "ca");
        pki.leaf("twouri", "DNS:controller.lab,URI:spiffe://other/x,URI:spiffe://lab/controller",
                 "ca");
        pki.leaf("queryreader", "URI:spiffe://lab/svc?x=1", "ca");
        pki.leaf("reader", "URI:spiffe://lab/host/reader", "ca");
        pki.leaf("reader2", "URI:spiffe://lab/host/reader2", "ca");
        // Agents the controller must not admit (the old prefix check did).
        pki.leaf("hostquery", "URI:spiffe://lab/host/agent9?x=1", "ca");
        pki.leaf("hosttwo", "URI:spiffe://lab/host/agent9,URI:spiffe://other/host/agent9", "ca");
        lab_->agent_api_tcp = "127.0.0.1:" + std::to_string(kAgentApiPort);
        lab_->writePolicy({kProbePort}, "rev 1");
        lab_->writeControllerConfig(FleetLab::Mode::Direct, {"A"});
        lab_->startController();
        lab_->writeAgentConfig(0, FleetLab::Mode::Direct);
        lab_->startAgent(0);
        ASSERT_TRUE(FleetLab::waitFor([] { return lab_->agentGeneration(0) == 1; }, 30s))
            << lab_->agentLog(0);
    }
    static void TearDownTestSuite() {
        delete lab_;
        lab_ = nullptr;
    }
    void SetUp() override { ASSERT_NE(lab_, nullptr); }
    void TearDown() override {
        if (HasFailure()) {
            std::cerr << "---- agent0 log ----\n" << lab_->agentLog(0) << "---- end ----\n";
        }
    }

    static bool connected() {
        auto st = lab_->fleetStatus();
        return std::any_of(st.hosts().begin(), st.hosts().end(),
                           [](const auto& h) { return h.host() == "agent0" && h.connected(); });
    }
    static bool logSays(const std::string& text, std::chrono::milliseconds timeout = 10s) {
        return FleetLab::waitFor([&] { return lab_->agentLog(0).find(text) != std::string::npos; },
                                 timeout);
    }
    static void runController(const std::string& cert) {
        lab_->stopController();
        lab_->controller_cert = cert;
        lab_->writeControllerConfig(FleetLab::Mode::Direct, {"A"});
        lab_->startController();
    }
    // Agent config with `revoked_yaml` appended, then SIGHUP.
    static void reloadWith(const std::string& revoked_yaml) {
        lab_->agent_extra_yaml = revoked_yaml;
        lab_->writeAgentConfig(0, FleetLab::Mode::Direct);
        lab_->reloadAgent(0);
    }
    static size_t fleetFlowLines() { return FleetLab::jsonLines(lab_->flowFile()).size(); }
    static void probe() {
        std::string hub = hubAddr(0);
        Child c(lab_->agents[0].ns.get(), lab_->agents[0].probe.get(),
                [hub] { return tcpConnect(hub, kProbePort, 1s).err; });
        c.wait(10s);
    }
    // An API client of agent0 over TCP with `cert` as its client certificate.
    static std::unique_ptr<v1::Agent::Stub> apiClient(const NetnsForwarder& fwd,
                                                      const std::string& cert) {
        grpc::SslCredentialsOptions o;
        o.pem_root_certs = slurp(lab_->pki.cert("ca"));
        o.pem_private_key = slurp(lab_->pki.key(cert));
        o.pem_cert_chain = slurp(lab_->pki.cert(cert));
        grpc::ChannelArguments args;
        args.SetSslTargetNameOverride("agent0.lab");
        return v1::Agent::NewStub(grpc::CreateCustomChannel(
            "127.0.0.1:" + std::to_string(fwd.port()), grpc::SslCredentials(o), args));
    }
    static std::unique_ptr<grpc::ClientContext> deadline(std::chrono::seconds s = 10s) {
        auto ctx = std::make_unique<grpc::ClientContext>();
        ctx->set_deadline(std::chrono::system_clock::now() + s);
        return ctx;
    }
    static grpc::Status status(v1::Agent::Stub& stub) {
        v1::StatusReply r;
        return stub.Status(deadline().get(), {}, &r);
    }
    static grpc::Status apply(v1::Agent::Stub& stub) {
        v1::ApplyRequest req;
        req.set_bundle("not a bundle");
        v1::ApplyReply r;
        return stub.Apply(deadline().get(), req, &r);
    }
    static grpc::Status flows(v1::Agent::Stub& stub) {
        auto ctx = deadline();
        auto reader = stub.Flows(ctx.get(), {});
        v1::FlowEvent e;
        while (reader->Read(&e)) {
        }
        return reader->Finish();
    }
    static std::string serialOfCert(const std::string& name) {
        return normalizeSerial(lab_->pki.serial(name));
    }

    static FleetLab* lab_;
};
FleetLab* FleetTrust::lab_ = nullptr;

TEST_F(FleetTrust, ImpostorControllersOfTheFleetCaAreRefused) {
    ASSERT_TRUE(FleetLab::waitFor(connected, 10s));
    struct Impostor {
        const char* cert;
        const char* why;  // in the agent's log
    } impostors[] = {
        {"dashboard",
         "is spiffe://lab/controller-readonly-dashboard, not spiffe://lab/controller; not "
         "trusting it"},
        {"queryimp", "is not a SPIFFE ID: a query ('?') is not allowed; not trusting it"},
        {"twouri", "has 2 URI SANs (spiffe://other/x, spiffe://lab/controller)"},
    };
    for (const auto& imp : impostors) {
        runController(imp.cert);
        EXPECT_TRUE(logSays(imp.why)) << imp.cert;
        size_t lines = fleetFlowLines();
        probe();  // an allowed connection: a flow the agent would forward
        std::this_thread::sleep_for(1500ms);
        EXPECT_FALSE(connected()) << imp.cert << ": the agent said hello to an impostor";
        EXPECT_EQ(fleetFlowLines(), lines) << imp.cert << " received flows";
    }
    runController("controller");
    EXPECT_TRUE(FleetLab::waitFor(connected, 10s)) << "the real controller is trusted";
    EXPECT_TRUE(logSays("connected to controller " + hubAddr(0) + ":" +
                        std::to_string(kControllerPort) + " (spiffe://lab/controller)"));
}

TEST_F(FleetTrust, RevokedControllerIsCutOnReloadAndRefusedBySerialAndByCrl) {
    ASSERT_TRUE(FleetLab::waitFor(connected, 10s));
    std::string serial = serialOfCert("controller");
    reloadWith("revoked: {serials: [\"" + lab_->pki.serial("controller") + "\"]}\n");
    EXPECT_TRUE(FleetLab::waitFor([] { return !connected(); }, 10s))
        << "the open stream is cut on reload";
    EXPECT_TRUE(logSays("disconnecting: certificate serial " + serial + " is revoked"));
    EXPECT_TRUE(logSays("presents a revoked certificate: certificate serial " + serial +
                        " is revoked (revoked.serials); not trusting it"));

    std::string crl = lab_->pki.crl("ca", {"controller"}, "controller.crl");
    reloadWith("revoked: {crl: " + crl + "}\n");
    EXPECT_TRUE(logSays("certificate serial " + serial + " is revoked (CRL " + crl + ")"));
    EXPECT_FALSE(connected());

    // A CRL that cannot be trusted on reload: an error, and the previous list stays.
    std::string expired =
        lab_->pki.crl("ca", {}, "expired.crl", "20200101000000Z", "20200102000000Z");
    reloadWith("revoked: {crl: " + expired + "}\n");
    EXPECT_TRUE(logSays("keeping the previous revocation (0 revoked serials, CRL " + crl));
    std::this_thread::sleep_for(3s);  // more than one reconnect attempt
    EXPECT_FALSE(connected()) << "a bad CRL on reload must not drop revocation";

    reloadWith("");
    EXPECT_TRUE(FleetLab::waitFor(connected, 10s)) << "revocation lifted on reload";
}

TEST_F(FleetTrust, AnExpiredCrlStopsTheStartWithItsLocation) {
    std::string expired =
        lab_->pki.crl("ca", {}, "expired-start.crl", "20200101000000Z", "20200102000000Z");
    lab_->stopAgent(0);
    lab_->agent_extra_yaml = "revoked:\n  crl: " + expired + "\n";
    lab_->writeAgentConfig(0, FleetLab::Mode::Direct);
    lab_->startAgent(0);
    EXPECT_EQ(lab_->agents[0].proc->wait(30s), 1);
    std::string config = (lab_->agents[0].dir / "ztsegd.yaml").string();
    std::string log = lab_->agentLog(0);
    auto at = log.find("revoked.crl " + expired + ": expired at Jan  2 00:00:00 2020 GMT");
    ASSERT_NE(at, std::string::npos) << log;
    std::string line = log.substr(log.rfind('\n', at) + 1, at - log.rfind('\n', at) - 1);
    EXPECT_TRUE(std::regex_search(line, std::regex(":[0-9]+:[0-9]+: $")) &&
                line.find(config + ":") != std::string::npos)
        << "the error names file:line:col: " << line;
    EXPECT_NE(log.find("fail closed", at), std::string::npos);

    lab_->agent_extra_yaml.clear();
    lab_->writeAgentConfig(0, FleetLab::Mode::Direct);
    lab_->startAgent(0);
    EXPECT_TRUE(FleetLab::waitFor(connected, 30s));
}

TEST_F(FleetTrust, ControllerRefusesAgentsWhoseIdIsNotExactlyAHost) {
    NetnsForwarder fwd(lab_->hub, kControllerPort);
    auto connectAs = [&](const std::string& cert) {
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
        hello.mutable_hello()->set_host("agent9?x=1");
        stream->Write(hello);
        stream->WritesDone();
        v1::ControllerMessage m;
        while (stream->Read(&m)) {
        }
        return stream->Finish();
    };
    grpc::Status query = connectAs("hostquery");
    EXPECT_EQ(query.error_code(), grpc::StatusCode::PERMISSION_DENIED) << query.error_message();
    EXPECT_NE(query.error_message().find("is not a SPIFFE ID: a query"), std::string::npos)
        << query.error_message();
    grpc::Status two = connectAs("hosttwo");
    EXPECT_EQ(two.error_code(), grpc::StatusCode::PERMISSION_DENIED) << two.error_message();
    EXPECT_NE(two.error_message().find("has 2 URI SANs"), std::string::npos) << two.error_message();
    v1::FleetStatusReply fleet = lab_->fleetStatus();
    for (const auto& h : fleet.hosts()) {
        EXPECT_EQ(h.host(), "agent0") << "must not have joined";
    }
}

TEST_F(FleetTrust, APrivateKeyInTrustedKeysStopsTheStart) {
    lab_->stopAgent(0);
    lab_->writeAgentConfig(0, FleetLab::Mode::Direct);
    fs::path config = lab_->agents[0].dir / "ztsegd.yaml";
    std::string text = slurp(config);
    std::string pub = lab_->keyPath("A", ".pub"), priv = lab_->keyPath("A", ".key");
    text.replace(text.find(pub), pub.size(), priv);
    std::ofstream(config) << text;
    lab_->startAgent(0);
    EXPECT_EQ(lab_->agents[0].proc->wait(30s), 1);
    EXPECT_TRUE(logSays("trusted_keys: " + priv +
                        ": is a private key; a trusted key must be the "
                        "public key (ztsegctl keygen writes " +
                        pub + ")"));

    lab_->writeAgentConfig(0, FleetLab::Mode::Direct);
    lab_->startAgent(0);
    EXPECT_TRUE(FleetLab::waitFor(connected, 30s));
}

TEST_F(FleetTrust, TcpApiRefusesImpostorsAndRevokedReaders) {
    NetnsForwarder fwd(*lab_->agents[0].ns, kAgentApiPort);
    ASSERT_TRUE(FleetLab::waitFor([&] { return status(*apiClient(fwd, "reader")).ok(); }, 20s));

    grpc::Status two = apply(*apiClient(fwd, "twouri"));
    EXPECT_EQ(two.error_code(), grpc::StatusCode::PERMISSION_DENIED) << two.error_message();
    EXPECT_NE(two.error_message().find("has 2 URI SANs"), std::string::npos) << two.error_message();
    grpc::Status dash = apply(*apiClient(fwd, "dashboard"));
    EXPECT_EQ(dash.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(dash.error_message().find("identity spiffe://lab/controller-readonly-dashboard may "
                                        "not call Apply (only spiffe://lab/controller)"),
              std::string::npos)
        << dash.error_message();
    grpc::Status query = apply(*apiClient(fwd, "queryimp"));
    EXPECT_EQ(query.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    grpc::Status query_read = status(*apiClient(fwd, "queryreader"));
    EXPECT_EQ(query_read.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << "spiffe://lab/svc?x=1 is not an ID of the fleet";
    EXPECT_NE(query_read.error_message().find("is not a SPIFFE ID: a query"), std::string::npos)
        << query_read.error_message();
    grpc::Status real = apply(*apiClient(fwd, "controller"));
    EXPECT_EQ(real.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << "the real controller is authorized (its bundle is junk): " << real.error_message();
    // Confirm ends a confirm window: authorized like Apply.
    auto confirm = [](v1::Agent::Stub& stub) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 10s);
        v1::ConfirmReply reply;
        return stub.Confirm(&ctx, v1::ConfirmRequest{}, &reply);
    };
    grpc::Status reader_confirm = confirm(*apiClient(fwd, "dashboard"));
    EXPECT_EQ(reader_confirm.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(reader_confirm.error_message().find("may not call Confirm (only "
                                                  "spiffe://lab/controller)"),
              std::string::npos)
        << reader_confirm.error_message();
    grpc::Status real_confirm = confirm(*apiClient(fwd, "controller"));
    EXPECT_EQ(real_confirm.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << "the controller is authorized; nothing awaits confirmation: "
        << real_confirm.error_message();

    // A reader following flows, then revoked at runtime: by serial, and reader2 by CRL.
    auto reader = apiClient(fwd, "reader");
    auto follower = std::async(std::launch::async, [&] {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 60s);
        v1::FlowsRequest req;
        req.set_follow(true);
        auto stream = reader->Flows(&ctx, req);
        v1::FlowEvent e;
        while (stream->Read(&e)) {
        }
        return stream->Finish();
    });
    ASSERT_TRUE(status(*apiClient(fwd, "reader2")).ok());
    std::this_thread::sleep_for(500ms);  // the stream is open
    std::string crl = lab_->pki.crl("ca", {"reader2"}, "reader2.crl");
    reloadWith("revoked: {serials: [\"" + lab_->pki.serial("reader") + "\"], crl: " + crl + "}\n");
    ASSERT_EQ(follower.wait_for(15s), std::future_status::ready) << "the open Flows stream is cut";
    EXPECT_EQ(follower.get().error_code(), grpc::StatusCode::CANCELLED);
    EXPECT_TRUE(logSays("API Flows stream of"));

    std::string serial = serialOfCert("reader");
    for (grpc::Status st : {status(*reader), flows(*reader)}) {
        EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
        EXPECT_NE(st.error_message().find("certificate serial " + serial +
                                          " is revoked (revoked.serials)"),
                  std::string::npos)
            << st.error_message();
    }
    std::string serial2 = serialOfCert("reader2");
    for (grpc::Status st :
         {status(*apiClient(fwd, "reader2")), flows(*apiClient(fwd, "reader2"))}) {
        EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
        EXPECT_NE(st.error_message().find("certificate serial " + serial2 + " is revoked (CRL " +
                                          crl + ")"),
                  std::string::npos)
            << st.error_message();
    }
    EXPECT_TRUE(connected()) << "the controller's certificate is not revoked";

    reloadWith("");
    EXPECT_TRUE(FleetLab::waitFor([&] { return status(*reader).ok(); }, 10s));
}

}  // namespace
}  // namespace ztseg::test
