#include "agent/controller_link.hpp"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/fleet_report.hpp"
#include "agent/wire_proof_push.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/spiffe_id.hpp"
#include "common/x509_names.hpp"
#include "controller.grpc.pb.h"

namespace ztseg::agent {
namespace {

using Stream = grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>;

std::string peerPem(const grpc::ClientContext& ctx) {
    std::string pem;
    if (auto auth = ctx.auth_context()) {
        for (const auto& v : auth->FindPropertyValues("x509_pem_cert")) {
            pem.assign(v.data(), v.size());
        }
    }
    return pem;
}

}  // namespace

// One connected stream: the reader (this thread), a reporter and, once
// subscribed, a flow forwarder. Writes are serialized.
class ControllerLink::Session {
  public:
    Session(ControllerLink& link, Stream& stream) : link_(link), stream_(stream) {}

    ~Session() {
        {
            std::lock_guard lock(mu_);
            done_ = true;
        }
        cv_.notify_all();
        if (reporter_.joinable())
            reporter_.join();
        if (flows_.joinable())
            flows_.join();
    }

    bool send(const v1::AgentMessage& m) {
        std::lock_guard lock(write_mu_);
        return stream_.Write(m);
    }

    void serve() {
        v1::AgentMessage hello;
        v1::StatusReply st = link_.ops_.status();
        hello.mutable_hello()->set_host(link_.cfg_.host_name);
        hello.mutable_hello()->set_generation(st.generation());
        hello.mutable_hello()->set_highest_generation(st.highest_generation());
        if (!send(hello)) {
            return;
        }
        reporter_ = std::thread([this] { reportPeriodically(); });
        v1::ControllerMessage m;
        while (stream_.Read(&m)) {
            if (m.has_push()) {
                apply(m.push());
            } else if (m.has_confirm()) {
                confirm(m.confirm());
            } else if (m.has_wire_proof()) {
                wireProof(m.wire_proof());
            } else if (m.has_report_request()) {
                v1::AgentMessage out;
                *out.mutable_report() = fleetReport(link_.ops_, m.report_request().id(), nullptr,
                                                    m.report_request().rules());
                send(out);
            } else if (m.has_flows() && !flows_.joinable()) {
                flows_ = std::thread([this] { forwardFlows(); });
            }
        }
    }

  private:
    void apply(const v1::BundlePush& push) {
        v1::ApplyResult res;
        res.set_generation(push.generation());
        try {
            link_.ops_.apply(push.signed_bundle(), push.confirm_within_ms());
            res.set_applied(true);
        } catch (const std::exception& e) {
            // admission already logged why; the controller hears it too
            res.set_error(e.what());
        }
        v1::AgentMessage out;
        *out.mutable_report() = fleetReport(link_.ops_, 0, &res);
        send(out);
    }

    // Pairwise keys for proven identity: the next status report says whether they apply.
    void wireProof(const v1::WireProofPush& push) {
        try {
            link_.ops_.setWireProof(wireProofConfig(push), push.epoch());
            spdlog::info("wire proof: epoch {} keys for {} peers in force", push.epoch(),
                         push.peers_size());
        } catch (const std::exception& e) {
            spdlog::error("wire proof keys for epoch {} refused, the ones in force stay: {}",
                          push.epoch(), e.what());
        }
    }

    // The controller saw this host healthy on the generation over this link.
    void confirm(const v1::ConfirmPush& c) {
        v1::ConfirmResult res;
        res.set_generation(c.generation());
        try {
            link_.ops_.confirm(c.generation());
            res.set_confirmed(true);
        } catch (const std::exception& e) {
            res.set_error(e.what());
        }
        v1::AgentMessage out;
        *out.mutable_report() = fleetReport(link_.ops_, 0);
        *out.mutable_report()->mutable_confirm() = res;
        send(out);
    }

    void reportPeriodically() {
        std::unique_lock lock(mu_);
        auto every = std::chrono::milliseconds(link_.cfg_.controller.report_interval_ms);
        while (!cv_.wait_for(lock, every, [&] { return done_; })) {
            lock.unlock();
            v1::AgentMessage out;
            *out.mutable_report() = fleetReport(link_.ops_, 0);
            bool ok = send(out);
            lock.lock();
            if (!ok) {
                return;
            }
        }
    }

    void forwardFlows() {
        auto sub = link_.hub_.subscribe(/*with_history=*/false);
        for (;;) {
            {
                std::lock_guard lock(mu_);
                if (done_)
                    break;
            }
            auto r = link_.hub_.next(*sub, std::chrono::milliseconds(200));
            if (!r) {
                if (link_.hub_.closed())
                    break;
                continue;
            }
            v1::AgentMessage out;
            *out.mutable_flow() = toFlowEvent(*r);
            if (!send(out))
                break;
        }
        link_.hub_.unsubscribe(sub);
    }

    ControllerLink& link_;
    Stream& stream_;
    std::mutex write_mu_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread reporter_, flows_;
};

ControllerLink::ControllerLink(const AgentConfig& cfg, std::shared_ptr<const Revocation> revocation,
                               AgentOps& ops, FlowHub& hub)
    : cfg_(cfg),
      ops_(ops),
      hub_(hub),
      ca_(readFile(cfg.tls.ca, "api.tls.ca")),
      key_(readFile(cfg.tls.key, "api.tls.key")),
      cert_(readFile(cfg.tls.cert, "api.tls.cert")),
      revocation_(revocation ? std::move(revocation) : std::make_shared<const Revocation>()) {
    thread_ = std::thread([this] { run(); });
}

ControllerLink::~ControllerLink() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
        if (active_ != nullptr) {
            active_->TryCancel();
        }
    }
    cv_.notify_all();
    thread_.join();
}

void ControllerLink::setRevocation(std::shared_ptr<const Revocation> r) {
    if (!r) {
        r = std::make_shared<const Revocation>();
    }
    revocation_.store(r);
    std::lock_guard lock(mu_);
    if (active_ != nullptr && !peer_pem_.empty()) {
        if (auto why = r->check(peer_pem_)) {
            spdlog::warn("controller {}: disconnecting: {}", cfg_.controller.address, *why);
            active_->TryCancel();
        }
    }
}

// Why the server's certificate is not the fleet's controller, or "".
std::string ControllerLink::refusal(const std::string& pem) const {
    const std::string expected = "spiffe://" + cfg_.fleet + "/controller";
    if (auto why = revocation_.load()->check(pem)) {
        return "the server at " + cfg_.controller.address +
               " presents a revoked certificate: " + *why + "; not trusting it";
    }
    try {
        SpiffeId id = spiffeIdOf(pem);
        if (!isFleetController(id, cfg_.fleet)) {
            return "the server at " + cfg_.controller.address + " is " + id.str() + ", not " +
                   expected + "; not trusting it";
        }
    } catch (const Error& e) {
        return "the server at " + cfg_.controller.address + " is not " + expected + ": " +
               e.what() + "; not trusting it";
    }
    return "";
}

bool ControllerLink::sleepFor(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stop_; });
}

void ControllerLink::run() {
    grpc::SslCredentialsOptions tls;
    tls.pem_root_certs = ca_;
    tls.pem_private_key = key_;
    tls.pem_cert_chain = cert_;
    grpc::ChannelArguments args;
    if (!cfg_.controller.server_name.empty()) {
        args.SetSslTargetNameOverride(cfg_.controller.server_name);
    }
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5'000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2'000);
    args.SetMaxReceiveMessageSize(256 << 20);
    auto channel =
        grpc::CreateCustomChannel(cfg_.controller.address, grpc::SslCredentials(tls), args);
    auto stub = v1::Controller::NewStub(channel);
    auto backoff = std::chrono::milliseconds(200);
    std::string last_failure;
    for (;;) {
        grpc::ClientContext ctx;
        {
            std::lock_guard lock(mu_);
            if (stop_)
                return;
            active_ = &ctx;
            peer_pem_.clear();
        }
        auto stream = stub->Connect(&ctx);
        stream->WaitForInitialMetadata();
        std::string pem = peerPem(ctx);
        std::string failure;
        if (pem.empty()) {
            // The call failed before the server answered: the status says why.
            stream->WritesDone();
            failure = stream->Finish().error_message();
        } else if (failure = refusal(pem); !failure.empty()) {
            ctx.TryCancel();
            stream->Finish();
        } else {
            {
                // From here a reload that revokes this certificate cuts the stream.
                std::lock_guard lock(mu_);
                peer_pem_ = pem;
            }
            if (revocation_.load()->check(pem)) {
                ctx.TryCancel();  // revoked between the check and the registration
            }
            spdlog::info("connected to controller {} ({})", cfg_.controller.address,
                         spiffeIdOf(pem).str());
            backoff = std::chrono::milliseconds(200);
            last_failure.clear();
            connected_ = true;
            {
                Session s(*this, *stream);
                s.serve();
            }
            connected_ = false;
            grpc::Status st = stream->Finish();
            failure =
                "disconnected: " + (st.ok() ? std::string("stream closed") : st.error_message());
        }
        {
            std::lock_guard lock(mu_);
            active_ = nullptr;
            peer_pem_.clear();
            if (stop_)
                return;
        }
        if (failure != last_failure) {
            spdlog::warn("controller {}: {}", cfg_.controller.address, failure);
            last_failure = failure;
        }
        if (!sleepFor(backoff))
            return;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
}

}  // namespace ztseg::agent
