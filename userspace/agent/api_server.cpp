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

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent.grpc.pb.h"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/unique_fd.hpp"
#include "flows/filter.hpp"
#include "flows/ocsf.hpp"

namespace ztseg::agent {
namespace {

std::string readPem(const std::string& path) {
    try {
        return readFile(path);
    } catch (const Error& e) {
        throw Error(std::string("api.tls: ") + e.what());
    }
}

// Ready the path for gRPC's bind: the directory exists (created 0700), no
// stale socket is left, and no live server is using it.
void prepareUnixSocket(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path)) {
        throw Error("api.unix_socket " + path + ": path too long");
    }
    namespace fs = std::filesystem;
    fs::path dir = fs::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !fs::exists(dir, ec)) {
        fs::create_directories(dir, ec);
        if (ec || ::chmod(dir.c_str(), 0700) != 0) {
            throw Error("api.unix_socket: create " + dir.string() + ": " +
                        (ec ? ec.message() : std::strerror(errno)));
        }
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        return;
    }
    if (!S_ISSOCK(st.st_mode)) {
        throw Error("api.unix_socket " + path + " exists and is not a socket");
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    if (fd && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        throw Error("api.unix_socket " + path + " is served by another process (ztsegd running?)");
    }
    ::unlink(path.c_str());
}

grpc::Status fromError(grpc::StatusCode code, const std::exception& e) {
    if (dynamic_cast<const Error*>(&e) == nullptr) {
        code = grpc::StatusCode::INTERNAL;
    } else if (dynamic_cast<const CapacityError*>(&e) != nullptr) {
        code = grpc::StatusCode::RESOURCE_EXHAUSTED;
    }
    return grpc::Status(code, e.what());
}

flows::FlowFilter filterOf(const v1::FlowsRequest& req) {
    flows::FlowFilter f;
    for (const auto& v : req.verdict()) f.verdicts.insert(flows::FlowFilter::parseVerdict(v));
    for (const auto& v : req.from_label())
        f.from_labels.push_back(flows::FlowFilter::parseSelector(v));
    for (const auto& v : req.to_label()) f.to_labels.push_back(flows::FlowFilter::parseSelector(v));
    for (const auto& v : req.from_ip()) f.from_ip.push_back(flows::FlowFilter::parseCidr(v));
    for (const auto& v : req.to_ip()) f.to_ip.push_back(flows::FlowFilter::parseCidr(v));
    for (uint32_t p : req.port()) f.ports.insert(flows::FlowFilter::parsePort(std::to_string(p)));
    for (const auto& v : req.protocol()) f.protocols.insert(flows::FlowFilter::parseProtocol(v));
    return f;
}

void fillEndpoint(const flows::FlowEndpoint& in, v1::FlowEndpoint* out) {
    out->set_ip(in.ip);
    out->set_port(in.port);
    out->set_identity(in.identity);
    out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
    out->set_name(in.name);
}

}  // namespace

// ---- FlowHub ----

FlowHub::FlowHub(size_t queue_capacity, size_t history)
    : capacity_(queue_capacity), history_size_(history) {
    history_.reserve(history_size_);
}

FlowHub::Recent& FlowHub::nextHistorySlotLocked() {
    if (history_.size() < history_size_) {
        return history_.emplace_back();
    }
    Recent& slot = history_[history_next_];
    history_next_ = (history_next_ + 1) % history_size_;
    return slot;
}

void FlowHub::publish(const flows::FlowRecord& r) {
    {
        std::lock_guard lock(mu_);
        if (closed_) {
            return;
        }
        if (history_size_ > 0) {
            nextHistorySlotLocked() = r;
        }
        queueLocked(r);
    }
    cv_.notify_all();
}

void FlowHub::queueLocked(const flows::FlowRecord& r) {
    for (const auto& s : subs_) {
        if (s->queue.size() >= capacity_) {
            s->queue.pop_front();
            ++lost_;
        }
        s->queue.push_back(r);
    }
}

void FlowHub::publish(std::span<const ztseg_flow_event> events,
                      const std::shared_ptr<const flows::EnrichView>& view,
                      const EventClock& clock) {
    std::unique_lock lock(mu_);
    if (closed_ || events.empty()) {
        return;
    }
    // Only the last history_size_ events of the batch stay in the history.
    for (const ztseg_flow_event& ev : events.last(std::min(events.size(), history_size_))) {
        Recent& slot = nextHistorySlotLocked();
        if (auto* u = std::get_if<Unenriched>(&slot)) {
            u->ev = ev;
            if (u->view != view) {  // a batch shares one view: skip the refcount traffic
                u->view = view;
            }
            u->clock = clock;
        } else {
            slot = Unenriched{ev, view, clock};
        }
    }
    if (subs_.empty()) {
        return;
    }
    for (const ztseg_flow_event& ev : events) {
        queueLocked(view->enrich(ev, clock));
    }
    lock.unlock();
    cv_.notify_all();
}

std::vector<flows::FlowRecord> FlowHub::recentLocked() const {
    std::vector<flows::FlowRecord> out;
    out.reserve(history_.size());
    const size_t start = history_.size() < history_size_ ? 0 : history_next_;
    for (size_t i = 0; i < history_.size(); ++i) {
        const Recent& e = history_[(start + i) % history_.size()];
        if (const auto* u = std::get_if<Unenriched>(&e)) {
            out.push_back(u->view->enrich(u->ev, u->clock));
        } else {
            out.push_back(std::get<flows::FlowRecord>(e));
        }
    }
    return out;
}

std::vector<flows::FlowRecord> FlowHub::recent() const {
    std::lock_guard lock(mu_);
    return recentLocked();
}

std::shared_ptr<FlowHub::Subscription> FlowHub::subscribe(bool with_history) {
    auto s = std::make_shared<Subscription>();
    std::lock_guard lock(mu_);
    if (with_history) {
        auto recent = recentLocked();
        s->queue.assign(std::make_move_iterator(recent.begin()),
                        std::make_move_iterator(recent.end()));
    }
    subs_.insert(s);
    return s;
}

void FlowHub::unsubscribe(const std::shared_ptr<Subscription>& s) {
    std::lock_guard lock(mu_);
    subs_.erase(s);
}

void FlowHub::close() {
    {
        std::lock_guard lock(mu_);
        closed_ = true;
    }
    cv_.notify_all();
}

bool FlowHub::closed() const {
    std::lock_guard lock(mu_);
    return closed_;
}

uint64_t FlowHub::lost() const {
    std::lock_guard lock(mu_);
    return lost_;
}

std::optional<flows::FlowRecord> FlowHub::next(Subscription& s, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return closed_ || !s.queue.empty(); });
    if (closed_ || s.queue.empty()) {
        return std::nullopt;
    }
    flows::FlowRecord r = std::move(s.queue.front());
    s.queue.pop_front();
    return r;
}

// ---- conversions and names ----

v1::FlowEvent toFlowEvent(const flows::FlowRecord& r) {
    v1::FlowEvent e;
    e.set_time_unix_nanos(
        std::chrono::duration_cast<std::chrono::nanoseconds>(r.time.time_since_epoch()).count());
    e.set_host(r.host);
    e.set_verdict(r.verdict);
    e.set_reason(r.reason);
    e.set_hook(r.hook);
    e.set_direction(r.direction == Direction::Ingress ? "ingress" : "egress");
    e.set_family(uint32_t(r.family));
    e.set_protocol(r.protocol);
    e.set_protocol_name(r.protocol_name);
    fillEndpoint(r.src, e.mutable_src());
    fillEndpoint(r.dst, e.mutable_dst());
    e.set_rule_id(r.rule_id);
    e.set_policy(r.policy);
    e.set_rule_location(r.rule_location);
    e.set_rule_description(r.rule_description);
    e.set_workload(r.workload);
    e.set_cgroup_id(r.cgroup_id);
    e.set_generation(r.generation);
    e.set_ifindex(r.ifindex);
    e.set_packets(r.packets);
    e.set_bytes(r.bytes);
    e.set_suppressed(r.suppressed);
    e.set_icmp_type(r.icmp_type);
    e.set_icmp_code(r.icmp_code);
    e.set_ocsf_json(flows::toOcsfLine(r));
    return e;
}

std::vector<std::string> uriSansOf(const std::string& pem_cert) {
    std::vector<std::string> out;
    BIO* bio = BIO_new_mem_buf(pem_cert.data(), int(pem_cert.size()));
    if (bio == nullptr) {
        return out;
    }
    X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (x == nullptr) {
        return out;
    }
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
        if (n->type == GEN_URI) {
            const ASN1_IA5STRING* s = n->d.uniformResourceIdentifier;
            out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                             size_t(ASN1_STRING_length(s)));
        }
    }
    GENERAL_NAMES_free(names);
    X509_free(x);
    return out;
}

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
        flows::FlowFilter filter;
        try {
            filter = filterOf(*req);
        } catch (const std::exception& e) {
            return fromError(grpc::StatusCode::INVALID_ARGUMENT, e);
        }
        if (!req->follow()) {
            for (const auto& r : hub_.recent()) {
                if (filter.matches(r) && !writer->Write(toFlowEvent(r))) {
                    break;
                }
            }
            return grpc::Status::OK;
        }
        auto sub = hub_.subscribe(/*with_history=*/true);
        while (!ctx->IsCancelled()) {
            auto r = hub_.next(*sub, std::chrono::milliseconds(250));
            if (!r) {
                if (hub_.closed()) {
                    break;
                }
                continue;
            }
            if (filter.matches(*r) && !writer->Write(toFlowEvent(*r))) {
                break;
            }
        }
        hub_.unsubscribe(sub);
        return grpc::Status::OK;
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
        prepareUnixSocket(opts.unix_socket);
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
