#include "agent/api_server.hpp"

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "agent.grpc.pb.h"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/revocation.hpp"
#include "common/spiffe_id.hpp"
#include "common/unique_fd.hpp"
#include "common/unix_socket.hpp"
#include "common/x509_names.hpp"

namespace ztseg::agent {
namespace {

std::string readPem(const std::string& path) {
    try {
        return readFile(path);
    } catch (const Error& e) {
        throw Error(std::string("api.tls: ") + e.what());
    }
}

// The client's certificate as the TLS handshake verified it ("" on the unix socket).
std::string peerPem(const grpc::ServerContext& ctx) {
    std::string pem;
    if (auto auth = ctx.auth_context()) {
        for (const auto& v : auth->FindPropertyValues("x509_pem_cert")) {
            pem.assign(v.data(), v.size());
        }
    }
    return pem;
}

std::shared_ptr<const Revocation> orNone(std::shared_ptr<const Revocation> r) {
    return r ? r : std::make_shared<const Revocation>();
}

grpc::Status fromError(grpc::StatusCode code, const std::exception& e) {
    if (dynamic_cast<const Error*>(&e) == nullptr) {
        code = grpc::StatusCode::INTERNAL;
    } else if (dynamic_cast<const CapacityError*>(&e) != nullptr) {
        code = grpc::StatusCode::RESOURCE_EXHAUSTED;
    }
    return grpc::Status(code, e.what());
}

}  // namespace

// ---- the service ----

class ApiServer::Service final : public v1::Agent::Service {
  public:
    Service(std::string fleet, std::shared_ptr<const Revocation> revocation, AgentOps& ops,
            FlowHub& hub)
        : fleet_(std::move(fleet)),
          revocation_(orNone(std::move(revocation))),
          ops_(ops),
          hub_(hub) {}

    grpc::Status Apply(grpc::ServerContext* ctx, const v1::ApplyRequest* req,
                       v1::ApplyReply* reply) override {
        if (auto st = authorize(ctx, "Apply", true); !st.ok()) {
            return st;
        }
        try {
            reply->set_generation(ops_.apply(req->bundle(), req->confirm_within_ms()));
        } catch (const std::exception& e) {
            spdlog::warn("API Apply from {} refused: {}", ctx->peer(), e.what());
            return fromError(grpc::StatusCode::INVALID_ARGUMENT, e);
        }
        return grpc::Status::OK;
    }

    grpc::Status Rollback(grpc::ServerContext* ctx, const v1::RollbackRequest*,
                          v1::RollbackReply* reply) override {
        if (auto st = authorize(ctx, "Rollback", true); !st.ok()) {
            return st;
        }
        try {
            reply->set_generation(ops_.rollback());
        } catch (const std::exception& e) {
            spdlog::warn("API Rollback from {} refused: {}", ctx->peer(), e.what());
            return fromError(grpc::StatusCode::FAILED_PRECONDITION, e);
        }
        return grpc::Status::OK;
    }

    grpc::Status Confirm(grpc::ServerContext* ctx, const v1::ConfirmRequest* req,
                         v1::ConfirmReply* reply) override {
        if (auto st = authorize(ctx, "Confirm", true); !st.ok()) {
            return st;
        }
        try {
            reply->set_generation(ops_.confirm(req->generation()));
        } catch (const std::exception& e) {
            spdlog::warn("API Confirm from {} refused: {}", ctx->peer(), e.what());
            return fromError(grpc::StatusCode::FAILED_PRECONDITION, e);
        }
        return grpc::Status::OK;
    }

    grpc::Status Status(grpc::ServerContext* ctx, const v1::StatusRequest*,
                        v1::StatusReply* reply) override {
        if (auto st = authorize(ctx, "Status", false); !st.ok()) {
            return st;
        }
        try {
            *reply = ops_.status();
        } catch (const std::exception& e) {
            return fromError(grpc::StatusCode::FAILED_PRECONDITION, e);
        }
        return grpc::Status::OK;
    }

    grpc::Status Policy(grpc::ServerContext* ctx, const v1::PolicyRequest*,
                        v1::PolicyReply* reply) override {
        if (auto st = authorize(ctx, "Policy", false); !st.ok()) {
            return st;
        }
        try {
            *reply = ops_.policy();
        } catch (const std::exception& e) {
            return fromError(grpc::StatusCode::FAILED_PRECONDITION, e);
        }
        return grpc::Status::OK;
    }

    grpc::Status Rules(grpc::ServerContext* ctx, const v1::RulesRequest*,
                       v1::RulesReply* reply) override {
        if (auto st = authorize(ctx, "Rules", false); !st.ok()) {
            return st;
        }
        try {
            *reply = ops_.rules();
        } catch (const std::exception& e) {
            return fromError(grpc::StatusCode::FAILED_PRECONDITION, e);
        }
        return grpc::Status::OK;
    }

    grpc::Status Flows(grpc::ServerContext* ctx, const v1::FlowsRequest* req,
                       grpc::ServerWriter<v1::FlowEvent>* writer) override {
        // Registered before the check: a revocation loaded in between cuts it.
        OpenStream open(*this, ctx);
        if (auto st = authorize(ctx, "Flows", false); !st.ok()) {
            return st;
        }
        return serveFlows(ctx, *req, writer, hub_);
    }

    // New calls are checked against `r`; open Flows streams of peers it
    // revokes are cancelled.
    void setRevocation(std::shared_ptr<const Revocation> r) {
        r = orNone(std::move(r));
        revocation_.store(r);
        std::lock_guard lock(streams_mu_);
        for (const auto& [ctx, pem] : streams_) {
            if (auto why = r->check(pem)) {
                spdlog::warn("API Flows stream of {} cut: {}", ctx->peer(), *why);
                ctx->TryCancel();
            }
        }
    }

  private:
    // A TCP Flows stream, known while it runs.
    class OpenStream {
      public:
        OpenStream(Service& s, grpc::ServerContext* ctx) : s_(s), ctx_(ctx) {
            std::string pem = peerPem(*ctx);
            if (!pem.empty()) {
                std::lock_guard lock(s_.streams_mu_);
                s_.streams_[ctx_] = std::move(pem);
            }
        }
        ~OpenStream() {
            std::lock_guard lock(s_.streams_mu_);
            s_.streams_.erase(ctx_);
        }
        OpenStream(const OpenStream&) = delete;
        OpenStream& operator=(const OpenStream&) = delete;

      private:
        Service& s_;
        grpc::ServerContext* ctx_;
    };

    // Unix socket callers are local root (the socket is 0600): all allowed.
    // TCP callers passed mutual TLS; a revoked certificate is refused, and
    // the certificate's one URI SAN, parsed as a SPIFFE ID, decides: any ID
    // of the fleet's trust domain may read, only spiffe://<fleet>/controller
    // may change anything.
    grpc::Status authorize(grpc::ServerContext* ctx, const char* method, bool mutates) const {
        if (ctx->peer().rfind("unix:", 0) == 0) {
            return grpc::Status::OK;
        }
        const std::string controller = "spiffe://" + fleet_ + "/controller";
        std::string pem = peerPem(*ctx);
        std::string denied;
        if (pem.empty()) {
            denied = "no client certificate";
        } else if (auto why = revocation_.load()->check(pem)) {
            denied = *why;
        } else {
            try {
                SpiffeId id = spiffeIdOf(pem);
                if (!inFleet(id, fleet_)) {
                    denied = "identity " + id.str() + " is not in fleet " + fleet_;
                } else if (mutates && !isFleetController(id, fleet_)) {
                    denied = "identity " + id.str() + " may not call " + method + " (only " +
                             controller + ")";
                }
            } catch (const Error& e) {
                denied = std::string("client certificate refused: ") + e.what();
            }
        }
        if (!denied.empty()) {
            spdlog::warn("API {} from {} denied: {}", method, ctx->peer(), denied);
            return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, denied);
        }
        return grpc::Status::OK;
    }

    std::string fleet_;
    std::atomic<std::shared_ptr<const Revocation>> revocation_;
    AgentOps& ops_;
    FlowHub& hub_;
    std::mutex streams_mu_;
    std::map<grpc::ServerContext*, std::string> streams_;  // open TCP Flows: their peer's PEM
};

// ---- the server ----

ApiServer::ApiServer(const ApiOptions& opts, AgentOps& ops, FlowHub& hub)
    : service_(std::make_unique<Service>(opts.fleet, opts.revocation, ops, hub)), hub_(hub) {
    grpc::ServerBuilder b;
    b.RegisterService(service_.get());
    b.SetMaxReceiveMessageSize(256 << 20);  // bundles of large fleets
    int unix_port = 0, tcp_port = 0;
    if (!opts.unix_socket.empty()) {
        prepareUnixSocket(opts.unix_socket, "api.unix_socket");
        b.AddListeningPort("unix:" + opts.unix_socket, grpc::InsecureServerCredentials(),
                           &unix_port);
    }
    if (!opts.tcp_listen.empty()) {
        if (opts.fleet.empty()) {
            throw Error("api.tcp needs fleet: controller certificates are named spiffe://<fleet>/");
        }
        grpc::SslServerCredentialsOptions so(
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
        so.pem_root_certs = readPem(opts.tls_ca);
        so.pem_key_cert_pairs.push_back({readPem(opts.tls_key), readPem(opts.tls_cert)});
        b.AddListeningPort(opts.tcp_listen, grpc::SslServerCredentials(so), &tcp_port);
    }
    mode_t old = ::umask(0177);  // the socket is born 0600
    server_ = b.BuildAndStart();
    ::umask(old);
    if (!server_ || (!opts.unix_socket.empty() && unix_port == 0) ||
        (!opts.tcp_listen.empty() && tcp_port == 0)) {
        throw Error("API: cannot listen on " +
                    (opts.unix_socket.empty() ? "" : "unix:" + opts.unix_socket + " ") +
                    (opts.tcp_listen.empty() ? "" : "tcp " + opts.tcp_listen));
    }
    if (!opts.unix_socket.empty() && ::chmod(opts.unix_socket.c_str(), 0600) != 0) {
        throwErrno("chmod " + opts.unix_socket, errno);
    }
    tcp_port_ = uint16_t(tcp_port);
    spdlog::info("API listening on {}{}",
                 opts.unix_socket.empty() ? "" : "unix:" + opts.unix_socket,
                 opts.tcp_listen.empty() ? "" : " and " + opts.tcp_listen + " (mutual TLS)");
}

void ApiServer::setRevocation(std::shared_ptr<const Revocation> r) {
    service_->setRevocation(std::move(r));
}

ApiServer::~ApiServer() {
    hub_.close();
    if (server_) {
        server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
        server_->Wait();
    }
}

}  // namespace ztseg::agent
