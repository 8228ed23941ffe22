// ztsegd and cgroups that appear while it is not looking: a workload cgroup
// re-created while the daemon is stopped, and a new one used the instant it
// exists, are judged as the workload from their first packet (the kernel's
// cgroup_mkdir program enters them as pending); ztsegd then classifies them.
// Also measures that classification latency (mkdir -> settled by ztsegd).
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "abi.h"
#include "common/unique_fd.hpp"
#include "integration/daemon_fixture.hpp"

namespace ztseg::test {
namespace {

class CgroupBoundary : public Ztsegd {
  protected:
    // db -> web on a port db's policy never allows: EPERM when judged as db.
    int dbEgress() {
        std::string web = lab_->webAddr(4);
        Child c(&lab_->host(), db_cg_.get(), [web] { return tcpConnect(web, kOtherPort, 1s).err; });
        return c.wait(30s);
    }
    void recreateDb() {
        std::string rel = db_cg_->path().substr(Cgroup2::mountPoint().size() + 1);
        db_cg_.reset();
        db_cg_ = std::make_unique<Cgroup2>(rel);
    }
    bool pending(uint64_t id) {
        UniqueFd m(bpf_obj_get((pin_dir_ + "/maps/ztseg_cg_pending").c_str()));
        ztseg_pending_cgroup v{};
        return m.valid() && bpf_map_lookup_elem(m.get(), &id, &v) == 0;
    }
};

// Finding 1c: a service restart during a daemon upgrade re-creates the
// workload's cgroup while ztsegd is stopped; it ran with no egress policy.
TEST_F(CgroupBoundary, WorkloadCgroupRecreatedWhileDaemonIsDownIsJudgedAsTheWorkload) {
    daemon_ = startDaemon();
    ASSERT_EQ(dbEgress(), EPERM);
    ASSERT_EQ(kill(daemon_->pid(), SIGTERM), 0);
    ASSERT_EQ(daemon_->wait(30s), 0);

    recreateDb();  // new cgroup id, nobody classifies it
    EXPECT_TRUE(pending(db_cg_->id())) << "the kernel entered the new cgroup as pending";
    EXPECT_EQ(dbEgress(), EPERM) << "judged as db while ztsegd is down";

    daemon_ = startDaemon();
    waitFor([&] { return !pending(db_cg_->id()); });
    EXPECT_EQ(dbEgress(), EPERM) << "classified as db";
    startDbServer();
    EXPECT_EQ(webToDb(), 0) << "and db's ingress rules admit web";
}

// How long a new workload cgroup stays pending before ztsegd has classified
// it (inotify -> scan -> endpoint written -> pending entry removed). The
// workload is judged as db throughout, so this is a cost, not a window.
TEST_F(CgroupBoundary, NewWorkloadCgroupIsClassifiedQuickly) {
    daemon_ = startDaemon();
    std::vector<double> ms;
    for (int i = 0; i < 20; ++i) {
        std::string rel = db_cg_->path().substr(Cgroup2::mountPoint().size() + 1);
        db_cg_.reset();
        std::this_thread::sleep_for(50ms);
        auto t0 = std::chrono::steady_clock::now();
        db_cg_ = std::make_unique<Cgroup2>(rel);
        uint64_t id = db_cg_->id();
        bool was_pending = pending(id);
        while (pending(id) && std::chrono::steady_clock::now() - t0 < 10s) {
            std::this_thread::sleep_for(100us);
        }
        ASSERT_FALSE(pending(id)) << "ztsegd never classified cgroup " << id;
        if (was_pending) {
            ms.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count());
        }
    }
    ASSERT_FALSE(ms.empty());
    std::sort(ms.begin(), ms.end());
    std::cout << "classification latency (mkdir -> classified by ztsegd) over " << ms.size()
              << " cgroups: median " << ms[ms.size() / 2] << " ms, max " << ms.back() << " ms\n";
    RecordProperty("classification_ms_median", std::to_string(ms[ms.size() / 2]));
    RecordProperty("classification_ms_max", std::to_string(ms.back()));
    EXPECT_EQ(dbEgress(), EPERM);
}

}  // namespace
}  // namespace ztseg::test
