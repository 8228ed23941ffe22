// etcd mode distribution (the key layout is in agent/etcd_link.hpp): bundles
// and report requests are written under the prefix; the agents' reports are
// watched and fed into the Fleet. Hosts are known by their reports; one
// silent for host_timeout counts as offline.
//
// A generation's full signed bundle is written once, to
// <prefix>/generations/<g>; a host's key then holds a reference to it
// (common/etcd_bundle_ref.hpp) or a delta, never a copy of the bundle. The
// per-host keys of a batch are written in transactions of up to 128 puts,
// a few in flight at once. The newest kKeepGenerations generation keys are
// kept, older ones deleted.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/etcd_client.hpp"
#include "controller/distributor.hpp"
#include "controller/fleet.hpp"

namespace ztseg::controller {

class EtcdDistributor : public Distributor {
  public:
    EtcdDistributor(std::vector<std::string> endpoints, std::string prefix, Fleet& fleet,
                    std::chrono::milliseconds host_timeout);
    ~EtcdDistributor() override;

    static constexpr size_t kKeepGenerations = 4;  // the DeltaCache holds 3 bases

    bool push(const std::string& host, uint64_t generation,
              const std::string& signed_bundle) override;
    std::vector<bool> pushMany(const std::vector<Push>& pushes) override;
    void requestReport(const std::string& host, uint64_t id, bool rules) override;
    void publishStable(uint64_t generation, const std::string& signed_bundle) override;
    void publishRollout(const v1::RolloutStatus& status) override;

  private:
    void watchReports();
    void onReport(const EtcdKeyValue& kv);
    // Writes <prefix>/generations/<g> unless written already (same bytes),
    // then deletes the generation keys beyond the newest kKeepGenerations.
    // Returns the reference to put in host keys; throws Error.
    std::string publishGeneration(uint64_t generation, const std::string& signed_bundle);

    std::string prefix_;
    Fleet& fleet_;
    std::chrono::milliseconds host_timeout_;
    EtcdClient kv_, watch_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread watcher_, expirer_;
    std::mutex gen_mu_;  // one publishGeneration at a time
    bool gens_listed_ = false;
    std::map<uint64_t, std::string> gens_;  // generation keys in etcd: generation -> reference
};

}  // namespace ztseg::controller
