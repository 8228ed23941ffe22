#include "controller/controller_service.hpp"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/unix_socket.hpp"
#include "common/x509_names.hpp"
#include "controller.grpc.pb.h"
#include "shared/flow_stream.hpp"

namespace ztseg::controller {

class ControllerServer::Service final : public v1::Controller::Service {
  public:
    explicit Service(Controller& c) : c_(c) {
        for (const auto& s : c.config().revoked_serials) {
            revoked_serials_.push_back(normalizeSerial(s));
        }
    }

    grpc::Status Connect(grpc::ServerContext* ctx, AgentStream* stream) override {
        std::string host;
        if (auto st = authorizeAgent(ctx, &host); !st.ok()) {
            return st;
        }
        stream->SendInitialMetadata();
        v1::AgentMessage m;
        if (!stream->Read(&m) || !m.has_hello()) {
            return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "expected Hello first");
        }
        if (m.hello().host() != host) {
            spdlog::warn("agent {} ({}) said hello as '{}': refused", host, ctx->peer(),
                         m.hello().host());
            return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                "hello names host '" + m.hello().host() +
                                    "' but the certificate names '" + host + "'");
        }
        auto session = std::make_shared<AgentSession>(ctx, stream, m.hello().generation());
        c_.sessions()->attach(host, session);
        c_.fleet().connected(host, ctx->peer(), m.hello().generation(),
                             m.hello().highest_generation());
        spdlog::info("agent {} connected from {} at generation {}", host, ctx->peer(),
                     m.hello().generation());
        if (WireKeyPusher* w = c_.wireKeys()) {
            w->pushTo(host);  // its pairwise keys before anything else
        }
        if (c_.collectsFlows()) {
            v1::ControllerMessage sub;
            sub.mutable_flows();
            session->write(sub);
        }
        while (stream->Read(&m)) {
            if (m.has_report()) {
                if (m.report().has_apply() && !m.report().apply().applied()) {
                    spdlog::warn("agent {} refused generation {}: {}", host,
                                 m.report().apply().generation(), m.report().apply().error());
                }
                c_.fleet().report(host, m.report());
                session->setGeneration(m.report().status().generation());
                if (AutoConfirm* ac = c_.autoConfirm()) {
                    ac->onReport(host, m.report());
                }
            } else if (m.has_flow()) {
                c_.onFlow(m.flow());
            }
        }
        session->close();
        c_.sessions()->detach(host, session);
        if (AutoConfirm* ac = c_.autoConfirm()) {
            ac->onDisconnect(host);
        }
        c_.fleet().disconnected(host);
        spdlog::info("agent {} disconnected", host);
        return grpc::Status::OK;
    }

    grpc::Status FleetStatus(grpc::ServerContext* ctx, const v1::FleetStatusRequest*,
                             v1::FleetStatusReply* reply) override {
        if (auto st = operatorOnly(ctx, "FleetStatus"); !st.ok())
            return st;
        *reply = c_.status();
        return grpc::Status::OK;
    }

    grpc::Status Reload(grpc::ServerContext* ctx, const v1::ReloadRequest* req,
                        v1::ReloadReply* reply) override {
        if (auto st = operatorOnly(ctx, "Reload"); !st.ok())
            return st;
        *reply = c_.reload(req->force());
        return grpc::Status::OK;
    }

    grpc::Status FleetPolicy(grpc::ServerContext* ctx, const v1::PolicyRequest*,
                             v1::PolicyReply* reply) override {
        if (auto st = operatorOnly(ctx, "FleetPolicy"); !st.ok())
            return st;
        try {
            *reply = c_.policy();
        } catch (const std::exception& e) {
            return grpc::Status(grpc::StatusCode::INTERNAL, e.what());
        }
        return grpc::Status::OK;
    }

    grpc::Status FleetRules(grpc::ServerContext* ctx, const v1::RulesRequest*,
                            v1::RulesReply* reply) override {
        if (auto st = operatorOnly(ctx, "FleetRules"); !st.ok())
            return st;
        try {
            *reply = c_.rules();
        } catch (const std::exception& e) {
            return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, e.what());
        }
        return grpc::Status::OK;
    }

    grpc::Status FleetFlows(grpc::ServerContext* ctx, const v1::FlowsRequest* req,
                            grpc::ServerWriter<v1::FlowEvent>* writer) override {
        if (auto st = operatorOnly(ctx, "FleetFlows"); !st.ok())
            return st;
        if (!c_.collectsFlows()) {
            return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                "flow collection is off (set flows.file in the controller config)");
        }
        return serveFlows(ctx, *req, writer, c_.flowHub());
    }

  private:
    static bool isUnix(grpc::ServerContext* ctx) { return ctx->peer().rfind("unix:", 0) == 0; }

    grpc::Status operatorOnly(grpc::ServerContext* ctx, const char* method) {
        if (isUnix(ctx))
            return grpc::Status::OK;
        spdlog::warn("{} from {} denied: operators use the unix socket", method, ctx->peer());
        return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            std::string(method) + " is only served on the unix socket");
    }

    grpc::Status authorizeAgent(grpc::ServerContext* ctx, std::string* host) {
        std::string denied;
        std::string pem;
        if (auto auth = ctx->auth_context()) {
            for (const auto& v : auth->FindPropertyValues("x509_pem_cert")) {
                pem.assign(v.data(), v.size());
            }
        }
        const std::string expected = "spiffe://" + c_.config().fleet + "/host/<name>";
        const auto& revoked_hosts = c_.config().revoked_hosts;
        std::string serial = serialOf(pem);
        if (isUnix(ctx) || pem.empty()) {
            denied = "agents connect over TCP with a client certificate";
        } else {
            // The one URI SAN, parsed as a SPIFFE ID: exactly /host/<name> in this fleet.
            try {
                SpiffeId id = spiffeIdOf(pem);
                if (auto name = fleetHost(id, c_.config().fleet)) {
                    *host = *name;
                } else {
                    denied = "certificate names " + id.str() + ", not " + expected;
                }
            } catch (const Error& e) {
                denied = std::string(e.what()) + " (expected " + expected + ")";
            }
        }
        if (!denied.empty()) {
            // refused already
        } else if (std::find(revoked_serials_.begin(), revoked_serials_.end(), serial) !=
                   revoked_serials_.end()) {
            denied = "certificate serial " + serial + " of host " + *host + " is revoked";
        } else if (std::find(revoked_hosts.begin(), revoked_hosts.end(), *host) !=
                   revoked_hosts.end()) {
            denied = "host " + *host + " is revoked";
        }
        if (!denied.empty()) {
            spdlog::warn("agent connection from {} refused: {}", ctx->peer(), denied);
            return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, denied);
        }
        return grpc::Status::OK;
    }

    Controller& c_;
    std::vector<std::string> revoked_serials_;
};

ControllerServer::ControllerServer(Controller& c) : service_(std::make_unique<Service>(c)) {
    const ControllerConfig& cfg = c.config();
    grpc::ServerBuilder b;
    b.RegisterService(service_.get());
    b.SetMaxReceiveMessageSize(256 << 20);
    b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
    b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    int unix_port = 0, tcp_port = 0;
    if (!cfg.unix_socket.empty()) {
        prepareUnixSocket(cfg.unix_socket, "api.unix_socket");
        b.AddListeningPort("unix:" + cfg.unix_socket, grpc::InsecureServerCredentials(),
                           &unix_port);
    }
    if (!cfg.listen.empty()) {
        grpc::SslServerCredentialsOptions so(
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
        so.pem_root_certs = readFile(cfg.tls.ca, "api.tls.ca");
        so.pem_key_cert_pairs.push_back(
            {readFile(cfg.tls.key, "api.tls.key"), readFile(cfg.tls.cert, "api.tls.cert")});
        b.AddListeningPort(cfg.listen, grpc::SslServerCredentials(so), &tcp_port);
    }
    mode_t old = ::umask(0177);  // the socket is born 0600
    server_ = b.BuildAndStart();
    ::umask(old);
    if (!server_ || (!cfg.unix_socket.empty() && unix_port == 0) ||
        (!cfg.listen.empty() && tcp_port == 0)) {
        throw Error("API: cannot listen on " +
                    (cfg.unix_socket.empty() ? "" : "unix:" + cfg.unix_socket + " ") +
                    (cfg.listen.empty() ? "" : "tcp " + cfg.listen));
    }
    tcp_port_ = uint16_t(tcp_port);
    spdlog::info("controller API on {}{}", cfg.unix_socket.empty() ? "" : "unix:" + cfg.unix_socket,
                 cfg.listen.empty() ? "" : " and " + cfg.listen + " (agents, mutual TLS)");
}

ControllerServer::~ControllerServer() {
    if (server_) {
        server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
        server_->Wait();
    }
}

}  // namespace ztseg::controller
