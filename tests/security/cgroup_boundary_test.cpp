// Finding 1 (a, b): the cgroup hooks judge a socket by its exact cgroup id;
// any other cgroup under the attach point passes as "no-endpoint". Fixed
// behaviour: a child cgroup of a workload is that workload, and traffic to or
// from an address a local managed workload owns is judged as that workload,
// whatever cgroup created the socket.
//
// Both run in cgroup-hooks-only mode (no XDP, a supported configuration:
// `interfaces: []`), so the cgroup stage is the only judge.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "security/attack_lab.hpp"

namespace ztseg::test {
namespace {

class CgroupBoundary : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<AttackLab>();
        lab_->apply(lab_->policy(1));
        lab_->attachHooks();
    }
    int f() const { return GetParam(); }
    std::string db() const { return lab_->addr(Role::Db, f()); }
    std::string web() const { return lab_->addr(Role::Web, f()); }
    std::string intruder() const { return lab_->addr(Role::Intruder, f()); }

    // From the peer namespace: an echo round trip as web, a bare connect as `src`.
    int webRoundTrip(uint16_t port) {
        std::string d = db(), s = web();
        return lab_->inPeer([=] { return tcpEchoRoundTrip(d, port, "hi", 2s, s); });
    }
    int connectAs(const std::string& src, uint16_t port) {
        std::string d = db();
        return lab_->inPeer([=] { return connectFrom(src, d, port); });
    }

    std::unique_ptr<AttackLab> lab_;
};

// A process of db makes db/escape, moves itself there and serves; another egresses from there.
TEST_P(CgroupBoundary, ChildCgroupOfWorkloadIsJudgedAsWorkload) {
    const std::string db_path = lab_->db().path();
    auto server = std::make_unique<Child>(&lab_->host(), &lab_->db(), [=](Child::Ready& r) {
        moveIntoNewChildCgroup(db_path, "escape");
        UniqueFd a = tcpListen("::", kDbPort), b = tcpListen("::", kSshPort);
        r.signal();
        tcpEchoServeAll({a.get(), b.get()}, 30s);
        return 0;
    });
    server->waitReady(5s);
    auto web8080 = lab_->serveInPeer(kWebPort);
    auto web9999 = lab_->serveInPeer(kOtherPort);

    // Control: what db's policy allows still works from the child cgroup.
    ASSERT_EQ(webRoundTrip(kDbPort), 0) << "web -> db:5432 (allowed) must work";

    lab_->snapshot();
    int intruder_err = connectAs(intruder(), kDbPort);
    EXPECT_NE(intruder_err, 0)
        << "ingress bypass: unlabeled intruder reached db's server in child cgroup db/escape: "
        << errName(intruder_err)
        << "; cgroup ingress counted: " << lab_->moved(ZTSEG_HOOK_CGROUP_INGRESS);
    lab_->snapshot();
    int ssh_err = connectAs(web(), kSshPort);
    EXPECT_NE(ssh_err, 0) << "ingress bypass: web reached db:22 (denied) in child cgroup: "
                          << errName(ssh_err)
                          << "; cgroup ingress counted: " << lab_->moved(ZTSEG_HOOK_CGROUP_INGRESS);

    // Egress from the child cgroup.
    const std::string w = web();
    const std::string escape = db_path + "/escape";
    lab_->snapshot();
    int allowed = lab_->inHost(&lab_->db(), [=] {
        moveIntoCgroup(escape);
        return tcpEchoRoundTrip(w, kWebPort, "hi", 2s);
    });
    EXPECT_EQ(allowed, 0) << "db -> web:8080 (allowed) from the child cgroup must work";
    lab_->snapshot();
    int denied = lab_->inHost(&lab_->db(), [=] {
        moveIntoCgroup(escape);
        return connectFrom("", w, kOtherPort);
    });
    EXPECT_EQ(denied, EPERM) << "egress bypass: db/escape -> web:9999 (not allowed) gave "
                             << errName(denied) << " instead of EPERM; connect hook counted: "
                             << lab_->moved(ZTSEG_HOOK_SOCK_CONNECT);
}

// The listener is created in P/other (no workload), bound to db's address; a child process
// inherits it, moves into db and accepts.
TEST_P(CgroupBoundary, ListenerCreatedOutsideWorkloadIsJudgedAsWorkload) {
    const std::string d = db(), db_path = lab_->db().path();
    auto server = std::make_unique<Child>(&lab_->host(), &lab_->other(), [=](Child::Ready& r) {
        UniqueFd a = tcpListen(d, kDbPort), b = tcpListen(d, kSshPort);
        pid_t heir = fork();
        if (heir == 0) {
            moveIntoCgroup(db_path);
            r.signal();
            tcpEchoServeAll({a.get(), b.get()}, 30s);
            _exit(0);
        }
        a.reset();
        b.reset();
        int status = 0;
        waitpid(heir, &status, 0);
        return 0;
    });
    server->waitReady(5s);

    ASSERT_EQ(webRoundTrip(kDbPort), 0) << "web -> db:5432 (allowed) must work";

    lab_->snapshot();
    int intruder_err = connectAs(intruder(), kDbPort);
    EXPECT_NE(intruder_err, 0)
        << "bypass: unlabeled intruder reached db through a listener created outside the "
           "workload cgroup: "
        << errName(intruder_err)
        << "; cgroup ingress counted: " << lab_->moved(ZTSEG_HOOK_CGROUP_INGRESS);
    lab_->snapshot();
    int ssh_err = connectAs(web(), kSshPort);
    EXPECT_NE(ssh_err, 0)
        << "bypass: web reached db:22 (denied) through a listener created outside the workload: "
        << errName(ssh_err)
        << "; cgroup ingress counted: " << lab_->moved(ZTSEG_HOOK_CGROUP_INGRESS);
}

INSTANTIATE_TEST_SUITE_P(Families, CgroupBoundary, ::testing::Values(4, 6), familyLabel);

}  // namespace
}  // namespace ztseg::test
