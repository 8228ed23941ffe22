// ztsegd's gRPC API (userspace/proto/agent.proto): Apply, Rollback, Status and
// the Flows stream, on the unix socket (local admin: root only, every call
// allowed) and, when configured, on TCP with mutual TLS (the controller).
// TCP callers are authorized by the SPIFFE-style URI SAN of their client
// certificate: spiffe://<fleet>/controller may do everything, any other
// spiffe://<fleet>/... name may only read (Status, Flows).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "agent.pb.h"
#include "datapath/event_reader.hpp"
#include "flows/enrich.hpp"
#include "flows/flow_record.hpp"

namespace grpc {
class Server;
}

namespace ztseg::agent {

// What the API does; the Daemon implements it. Methods run on gRPC threads
// and throw ztseg::Error with the reason when they refuse.
struct AgentOps {
    virtual ~AgentOps() = default;
    virtual uint64_t apply(const std::string& bundle) = 0;  // the applied generation
    virtual uint64_t rollback() = 0;                        // the now active generation
    virtual v1::StatusReply status() = 0;
};

// Fan-out of enriched flows to Flows streams. Each subscriber has a bounded
// queue; when it is full the oldest event is dropped and counted in lost().
// The last `history` flows are kept for Flows without follow.
class FlowHub {
  public:
    explicit FlowHub(size_t queue_capacity = 4096, size_t history = 1024);

    void publish(const flows::FlowRecord& r);
    // The event pipeline's way in, a batch at a time: records are built only
    // when someone reads them (a connected stream at once, recent() later,
    // with the view and clock they were published with), so with no stream
    // connected a batch costs copying its last `history` events.
    void publish(std::span<const ztseg_flow_event> events,
                 const std::shared_ptr<const flows::EnrichView>& view, const EventClock& clock);
    std::vector<flows::FlowRecord> recent() const;

    // One stream's queue; guarded by the hub.
    struct Subscription {
        std::deque<flows::FlowRecord> queue;
    };
    std::shared_ptr<Subscription> subscribe(bool with_history);
    void unsubscribe(const std::shared_ptr<Subscription>& s);
    // The subscription's next flow; nullopt after `timeout` or once closed.
    std::optional<flows::FlowRecord> next(Subscription& s, std::chrono::milliseconds timeout);
    void close();  // wakes every subscriber; next() returns nullopt from now on
    bool closed() const;

    uint64_t lost() const;  // events dropped from full subscriber queues

  private:
    struct Unenriched {
        ztseg_flow_event ev;
        std::shared_ptr<const flows::EnrichView> view;
        EventClock clock;
    };
    using Recent = std::variant<flows::FlowRecord, Unenriched>;
    Recent& nextHistorySlotLocked();               // the slot to overwrite; needs history_size_ > 0
    void queueLocked(const flows::FlowRecord& r);  // to every stream, oldest dropped if full
    std::vector<flows::FlowRecord> recentLocked() const;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    size_t capacity_, history_size_;
    std::vector<Recent> history_;  // ring: history_next_ is the oldest once full
    size_t history_next_ = 0;
    std::set<std::shared_ptr<Subscription>> subs_;
    uint64_t lost_ = 0;
    bool closed_ = false;
};

// FlowRecord -> the API's FlowEvent (with the OCSF JSON line).
v1::FlowEvent toFlowEvent(const flows::FlowRecord& r);

struct ApiOptions {
    std::string unix_socket;                // empty: no unix socket
    std::string tcp_listen;                 // host:port, empty: no TCP
    std::string tls_cert, tls_key, tls_ca;  // PEM files, required with tcp_listen
    std::string fleet;                      // names spiffe://<fleet>/...; required with TCP
};

// The SPIFFE-style URI SANs in a PEM certificate (empty if none or unparsable).
std::vector<std::string> uriSansOf(const std::string& pem_cert);

class ApiServer {
  public:
    // Listens and serves on gRPC's threads until destroyed. Throws Error if a
    // listener cannot be set up (including another ztsegd on the socket).
    ApiServer(const ApiOptions& opts, AgentOps& ops, FlowHub& hub);
    ~ApiServer();  // closes open Flows streams and stops the server
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    uint16_t tcpPort() const { return tcp_port_; }  // the bound port (for tcp_listen ":0")

  private:
    class Service;
    std::unique_ptr<Service> service_;
    std::unique_ptr<grpc::Server> server_;
    FlowHub& hub_;
    uint16_t tcp_port_ = 0;
};

}  // namespace ztseg::agent
