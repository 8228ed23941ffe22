// Finding 8: in cgroup-hooks-only mode (no XDP) traffic the kernel answers
// itself is never judged: an echo request or a SYN to a closed port has no
// workload socket, and the reply leaves from a kernel socket outside every
// workload cgroup. An unlabeled intruder can ping db and tell its closed ports
// (RST) from its open ones. Fixed behaviour: kernel-generated replies leaving
// from a managed workload's address are judged as that workload.
//
// The kernel's reply sockets (ICMP, TCP reset) belong to the cgroup2 root, so
// this test attaches the cgroup hooks there, as ztsegd does with its default
// cgroup_root (the cgroup2 mount). Nothing else on the host is judged: the lab's
// addresses (10.214/16, fd00:214::/32) exist only in the lab's namespaces.
#include <gtest/gtest.h>

#include "security/attack_lab.hpp"

namespace ztseg::test {
namespace {

constexpr uint16_t kClosedPort = 7777;

class KernelReplies : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        lab_ = std::make_unique<AttackLab>();
        lab_->apply(lab_->policy(1));
        lab_->attachHooks(Cgroup2::mountPoint());
    }
    int f() const { return GetParam(); }
    std::unique_ptr<AttackLab> lab_;
};

TEST_P(KernelReplies, KernelAnswersFromWorkloadAddressAreJudged) {
    const std::string db = lab_->addr(Role::Db, f());
    const std::string web = lab_->addr(Role::Web, f());
    const std::string intruder = lab_->addr(Role::Intruder, f());
    auto server = lab_->serveInHost(&lab_->db(), kDbPort);  // an open port, for contrast

    ASSERT_EQ(lab_->inPeer([=] { return ping(db, 2s, web); }), 0)
        << "control: web's ping of db (icmp allowed by db's policy) must be answered";

    lab_->snapshot();
    const int echo = lab_->inPeer([=] { return ping(db, 500ms, intruder); });
    EXPECT_EQ(echo, ETIMEDOUT) << "bypass: the unlabeled intruder's ping of db got "
                               << (echo == 0 ? "an echo reply" : errName(echo))
                               << "; cgroup egress counted: "
                               << lab_->moved(ZTSEG_HOOK_CGROUP_EGRESS);

    if (f() == 6) {
        // The kernel sends an IPv6 reset without a socket owner: no cgroup
        // hook sees it (docs/threat-model.md, known gaps). XDP, attached by
        // the default configuration, judges the SYN that provokes it.
        lab_->attachXdp();
    }
    lab_->snapshot();
    const int closed = lab_->inPeer([=] { return connectFrom(intruder, db, kClosedPort); });
    EXPECT_EQ(closed, ETIMEDOUT) << "bypass: the unlabeled intruder's SYN to closed port db:"
                                 << kClosedPort << " got " << errName(closed)
                                 << " (a reset tells closed ports from open ones); cgroup "
                                    "egress counted: "
                                 << lab_->moved(ZTSEG_HOOK_CGROUP_EGRESS);
    const int open = lab_->inPeer([=] { return connectFrom(intruder, db, kDbPort); });
    EXPECT_EQ(open, ETIMEDOUT) << "control: the intruder's SYN to open port db:" << kDbPort
                               << " must be dropped: " << errName(open);
}

INSTANTIATE_TEST_SUITE_P(Families, KernelReplies, ::testing::Values(4, 6), familyLabel);

}  // namespace
}  // namespace ztseg::test
