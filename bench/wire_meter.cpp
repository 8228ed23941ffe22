#include "wire_meter.hpp"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>

#include <cstring>

#include "controller.pb.h"

namespace ztseg::bench {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr const char* kConnect = "/ztseg.v1.Controller/Connect";

// One per call: only the agents' Connect streams are counted (gRPC wants an
// interceptor from a global factory for every call, so others pass through).
class ConnectInterceptor final : public grpc::experimental::Interceptor {
  public:
    explicit ConnectInterceptor(bool counted) : counted_(counted) {}

    void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
        if (!counted_) {
            m->Proceed();
            return;
        }
        if (m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_MESSAGE)) {
            const auto* out = static_cast<const v1::AgentMessage*>(m->GetSendMessage());
            if (out != nullptr && out->has_hello()) {
                host_ = out->hello().host();
                WireMeter::instance().opened(host_);
            }
        }
        if (m->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
            const auto* in = static_cast<const v1::ControllerMessage*>(m->GetRecvMessage());
            if (in != nullptr && !host_.empty()) {
                WireMeter::instance().add(host_, in->ByteSizeLong());
            }
        }
        m->Proceed();
    }

  private:
    bool counted_;
    std::string host_;
};

class ConnectInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
  public:
    grpc::experimental::Interceptor* CreateClientInterceptor(
        grpc::experimental::ClientRpcInfo* info) override {
        return new ConnectInterceptor(info->method() != nullptr &&
                                      std::strcmp(info->method(), kConnect) == 0);
    }
};

}  // namespace

WireMeter& WireMeter::instance() {
    static WireMeter* meter = [] {
        static ConnectInterceptorFactory factory;  // lives as long as the process
        grpc::experimental::RegisterGlobalClientInterceptorFactory(&factory);
        return new WireMeter;
    }();
    return *meter;
}

WireMeter::Count WireMeter::received(const std::string& host) const {
    std::lock_guard lock(mu_);
    auto it = by_host_.find(host);
    return it == by_host_.end() ? Count{} : it->second;
}

void WireMeter::add(const std::string& host, uint64_t bytes) {
    std::lock_guard lock(mu_);
    Count& c = by_host_[host];
    ++c.messages;
    c.bytes += bytes;
}

void WireMeter::opened(const std::string& host) {
    std::lock_guard lock(mu_);
    ++by_host_[host].streams;
}

}  // namespace ztseg::bench
