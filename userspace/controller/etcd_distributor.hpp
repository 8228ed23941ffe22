// etcd mode distribution (the key layout is in agent/etcd_link.hpp): bundles
// and report requests are written under the prefix; the agents' reports are
// watched and fed into the Fleet. Hosts are known by their reports; one
// silent for host_timeout counts as offline.
#pragma once

#include <condition_variable>
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

    bool push(const std::string& host, uint64_t generation,
              const std::string& signed_bundle) override;
    void requestReport(const std::string& host, uint64_t id, bool rules) override;
    void publishStable(uint64_t generation, const std::string& signed_bundle) override;
    void publishRollout(const v1::RolloutStatus& status) override;

  private:
    void watchReports();
    void onReport(const EtcdKeyValue& kv);

    std::string prefix_;
    Fleet& fleet_;
    std::chrono::milliseconds host_timeout_;
    EtcdClient kv_, watch_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread watcher_, expirer_;
};

}  // namespace ztseg::controller
