// The real iputils `ping` from a workload under a policy that allows ICMP
// (issue 14). ping first connect()s a UDP socket to port 1025 of the target to
// learn its source address; nothing is sent, so the connect hook must not
// refuse it. What a datagram socket sends is still judged: a UDP datagram to
// a port the policy does not allow fails with EPERM at send, an echo request
// the policy does not allow is dropped at the egress hook.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "security/attack_lab.hpp"

namespace ztseg::test {
namespace {

namespace fs = std::filesystem;

constexpr uint16_t kPingProbePort = 1025;  // iputils' source-address probe

class Ping : public ::testing::TestWithParam<int> {
  protected:
    void SetUp() override {
        if (!fs::exists(kPing)) {
            GTEST_SKIP() << kPing << " is missing (make deps installs iputils-ping)";
        }
        lab_ = std::make_unique<AttackLab>();
        lab_->attachHooks();
        lab_->attachXdp();
        // ICMP "ping" sockets for every group in the lab's host namespace (its own
        // namespace: nothing outside the lab changes); a workload's raw sockets are refused.
        AttackLab::sysctl(lab_->host(), "net.ipv4.ping_group_range", "0 2147483647");
        out_ = fs::temp_directory_path() / ("ztseg-ping-" + std::to_string(getpid()) + ".txt");
    }
    void TearDown() override { fs::remove(out_); }

    // The lab's policy, plus db -> web ICMP echo when `icmp_egress`.
    void applyPolicy(bool icmp_egress) {
        Generation g = lab_->policy(1);
        if (icmp_egress) {
            g.rules.push_back(
                {kDbId, kWebId, Direction::Egress, ZTSEG_PROTO_ICMP, {}, Action::Allow, 8});
            g.rules.push_back(
                {kDbId, kWebId, Direction::Egress, ZTSEG_PROTO_ICMPV6, {}, Action::Allow, 9});
        }
        lab_->apply(g);
    }

    // `ping -c 1` from db to web: its exit status; its output in out_.
    int pingFromDb() {
        const std::string target = lab_->addr(Role::Web, GetParam());
        const std::string out = out_.string();
        return lab_->inHost(&lab_->db(), [target, out] {
            int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0) {
                return 126;
            }
            execl(kPing, "ping", "-n", "-c", "1", "-W", "3", target.c_str(),
                  static_cast<char*>(nullptr));
            return 127;
        });
    }
    std::string output() const {
        std::ifstream in(out_);
        std::stringstream s;
        s << in.rdbuf();
        return s.str();
    }

    // From db: connect() a UDP socket to web:port, then send() on it. Both errnos (0 = ok).
    std::pair<int, int> udpConnectThenSend(uint16_t port) {
        const std::string target = lab_->addr(Role::Web, GetParam());
        Shared<std::pair<int, int>> result;
        const int status = lab_->inHost(&lab_->db(), [&] {
            const SockAddress to = sockAddress(target, port);
            UniqueFd fd(socket(to.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0));
            if (!fd) {
                return 1;
            }
            int connect_err = connect(fd.get(), to.sa(), to.len) == 0 ? 0 : errno;
            int send_err = send(fd.get(), "x", 1, 0) == 1 ? 0 : errno;
            *result = {connect_err, send_err};
            return 0;
        });
        EXPECT_EQ(status, 0);
        return *result;
    }

    static constexpr const char* kPing = "/usr/bin/ping";
    std::unique_ptr<AttackLab> lab_;
    fs::path out_;
};

TEST_P(Ping, RealPingWorksUnderAPolicyThatAllowsIcmp) {
    applyPolicy(true);
    EXPECT_EQ(pingFromDb(), 0) << output();
    EXPECT_NE(output().find("1 received"), std::string::npos) << output();
    std::cout << "[record] ping from db (its cgroup enforced, ICMP allowed to web):\n" << output();
}

TEST_P(Ping, RealPingFailsWhereThePolicyDoesNotAllowIcmp) {
    applyPolicy(false);
    lab_->snapshot();
    EXPECT_NE(pingFromDb(), 0) << output();
    // Dropped where the echo request leaves (ping socket sends are not refused
    // with an errno), not refused at ping's connect probe.
    EXPECT_NE(output().find("1 packets transmitted, 0 received"), std::string::npos) << output();
    EXPECT_EQ(output().find("connect"), std::string::npos) << output();
    EXPECT_GE(lab_->counted(ZTSEG_HOOK_CGROUP_EGRESS, ZTSEG_REASON_DROP_DEFAULT_DENY), 1u)
        << lab_->moved(ZTSEG_HOOK_CGROUP_EGRESS);
}

TEST_P(Ping, DatagramConnectSendsNothingSoOnlyTheSendIsJudged) {
    applyPolicy(true);
    // Port 1025 is not allowed: connect() fixes the peer (EPERM before the fix), send() fails.
    auto [connect_err, send_err] = udpConnectThenSend(kPingProbePort);
    EXPECT_EQ(errName(connect_err), errName(0));
    EXPECT_EQ(errName(send_err), errName(EPERM));
    // The allowed UDP port still works through a connected socket.
    auto [ok_connect, ok_send] = udpConnectThenSend(kDbUdpEgressPort);
    EXPECT_EQ(errName(ok_connect), errName(0));
    EXPECT_EQ(errName(ok_send), errName(0));
}

INSTANTIATE_TEST_SUITE_P(Families, Ping, ::testing::Values(4, 6), familyLabel);

}  // namespace
}  // namespace ztseg::test
