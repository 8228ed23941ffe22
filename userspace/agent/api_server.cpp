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

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent.grpc.pb.h"
#include "common/error.hpp"
#include "common/file.hpp"
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
    Service(std::string fleet, AgentOps& ops, FlowHub& hub)
        : fleet_(std::move(fleet)), ops_(ops), hub_(hub) {}

    grpc::Status Apply(grpc::ServerContext* ctx, const v1::ApplyRequest* req,
                       v1::ApplyReply* reply) override {
        if (auto st = authorize(ctx, "Apply", true); !st.ok()) {
            return st;
        }
        try {
            reply->set_generation(ops_.apply(req->bundle()));
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

    grpc::Status Flows(grpc::ServerContext* ctx, const v1::FlowsRequest* req,
                       grpc::ServerWriter<v1::FlowEvent>* writer) override {
        if (auto st = authorize(ctx, "Flows", false); !st.ok()) {
            return st;
        }
        return serveFlows(ctx, *req, writer, hub_);
    }

  private:
    // Unix socket callers are local root (the socket is 0600): all allowed.
    // TCP callers passed mutual TLS; their certificate's URI SAN decides.
    grpc::Status authorize(grpc::ServerContext* ctx, const char* method, bool mutates) const {
        if (ctx->peer().rfind("unix:", 0) == 0) {
            return grpc::Status::OK;
        }
        std::vector<std::string> uris;
        if (auto auth = ctx->auth_context()) {
            for (const auto& v : auth->FindPropertyValues("x509_pem_cert")) {
                uris = uriSansOf(std::string(v.data(), v.size()));
            }
        }
        std::string prefix = "spiffe://" + fleet_ + "/";
        std::string controller = prefix + "controller";
        std::string who;
        bool in_fleet = false, is_controller = false;
        for (const auto& u : uris) {
            who += (who.empty() ? "" : ",") + u;
            in_fleet = in_fleet || u.rfind(prefix, 0) == 0;
            is_controller = is_controller || u == controller;
        }
        std::string denied;
        if (uris.empty()) {
            denied = "the client certificate has no URI SAN (expected " + prefix + "...)";
        } else if (!in_fleet) {
            denied = "identity " + who + " is not in fleet " + fleet_;
        } else if (mutates && !is_controller) {
            denied = "identity " + who + " may not call " + method + " (only " + controller + ")";
        }
        if (!denied.empty()) {
            spdlog::warn("API {} from {} denied: {}", method, ctx->peer(), denied);
            return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, denied);
        }
        return grpc::Status::OK;
    }

    std::string fleet_;
    AgentOps& ops_;
    FlowHub& hub_;
};

// ---- the server ----

ApiServer::ApiServer(const ApiOptions& opts, AgentOps& ops, FlowHub& hub)
    : service_(std::make_unique<Service>(opts.fleet, ops, hub)), hub_(hub) {
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

ApiServer::~ApiServer() {
    hub_.close();
    if (server_) {
        server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
        server_->Wait();
    }
}

}  // namespace ztseg::agent
