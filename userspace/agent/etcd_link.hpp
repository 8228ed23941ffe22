// etcd mode (fleets beyond hundreds of hosts): instead of a controller
// connection, ztsegd watches two keys in etcd and reports into a third
// (docs/ztseg-controller.md, "etcd mode"):
//   <prefix>/stable                     the stable generation (watched: small)
//   <prefix>/bundle                     the fleet's stable signed bundle (read
//                                       only when this host is behind it)
//   <prefix>/hosts/<host>/bundle        a delta against the generation this
//                                       host reported, or a reference to
//                                       <prefix>/generations/<g>
//   <prefix>/generations/<g>            generation g's signed bundle, once for
//                                       the fleet (common/etcd_bundle_ref.hpp)
//   <prefix>/hosts/<host>/report-request  a report is wanted (value: request id)
//   <prefix>/reports/<host>             this host's Report (controller.proto, binary)
// Candidates are tried newest first through the normal admission, so etcd
// is never trusted: an unsigned, tampered or replayed value is refused,
// reported and logged like any other bundle.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "agent/api_server.hpp"
#include "agent/config.hpp"
#include "common/etcd_client.hpp"
#include "controller.pb.h"

namespace ztseg::agent {

class EtcdLink {
  public:
    EtcdLink(const AgentConfig& cfg, AgentOps& ops);  // starts the watch threads
    ~EtcdLink();
    EtcdLink(const EtcdLink&) = delete;
    EtcdLink& operator=(const EtcdLink&) = delete;

  private:
    void watchLoop(EtcdClient& client, const std::string& key, bool prefix);
    void onChange(const EtcdKeyValue& kv);
    void sync();  // applies the newest admissible candidate
    // Admits `candidate` unless tried before or not newer than what this host
    // applied; reports the outcome. True if applied.
    bool tryCandidate(const std::string& candidate);
    // The signed bundle a reference in this host's key names, read from its
    // generation key; nullopt when not newer than what this host has, or
    // refused (a bad reference, a missing key, bytes other than it names:
    // logged and reported, enforcement unchanged). Throws Error if etcd fails.
    std::optional<std::string> resolve(const std::string& ref);
    void report(uint64_t request_id, const v1::ApplyResult* apply = nullptr, bool rules = false);
    bool sleepFor(std::chrono::milliseconds d);

    AgentConfig cfg_;
    AgentOps& ops_;
    std::string fleet_key_, stable_key_, host_prefix_, host_bundle_key_, request_key_, report_key_;
    EtcdClient kv_;
    EtcdClient fleet_watch_, host_watch_;
    std::mutex sync_mu_;              // one sync at a time
    std::vector<std::string> tried_;  // candidates already tried (their SHA-256)
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace ztseg::agent
