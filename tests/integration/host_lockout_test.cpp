// The operator cannot lock themselves out of the host (issue 17), against
// the real ztsegd and kernel with real traffic: the host's "sshd" admits the
// bastion (web) under generation 1; generation 2, a host policy that no longer
// admits port 22 (the operator's mistake), applied with `--confirm-within`,
// cuts the open SSH session and refuses new ones, and ztsegd rolls back by
// itself when nobody confirms: the same session works again, with a flow
// record of the refused SSH flow and a log line saying why. Also when ztsegd
// is killed and restarted inside the window. In audit mode the same mistake
// only reports would-drops. Each test prints its `[timeline]`.
#include <signal.h>

#include <chrono>
#include <iostream>

#include "integration/host_daemon_fixture.hpp"

namespace ztseg::test {
namespace {

using Clock = std::chrono::steady_clock;

class HostLockout : public HostZtsegd {
  protected:
    // ztsegd on generation 1, the operator's SSH session open and working,
    // generation 2 (SSH moved to a port nobody listens on: 22 no longer admitted) in gen2.pb.
    void startWithOpenSession(const std::string& gen2_mode = "enforce") {
        daemon_ = startDaemon();
        ASSERT_TRUE(waitUntil([&] { return generationNow() == 1; })) << logText();
        ASSERT_EQ(openSession(), 0) << "generation 1 admits the bastion's SSH";
        ASSERT_EQ(sessionEcho("ls"), 0);
        writeHostBundle(2, "gen2.pb", bastionRules(2222), gen2_mode);
    }
    static int64_t msSince(Clock::time_point t0) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    }
    // Polls until generation 1 is back: at the deadline of the `window_s`
    // window (not before, at most 1.5 s after), and the log says why. ms from t0 (-1: never).
    int64_t expectRolledBackAtTheDeadline(Clock::time_point t0, int window_s) {
        const int64_t back_ms = msUntilGeneration(1, t0, std::chrono::seconds(window_s + 5));
        EXPECT_GT(back_ms, 0) << "not rolled back within the window + 5 s\n" << logText();
        EXPECT_GE(back_ms, window_s * 1000 - 100) << "rolled back before the deadline";
        EXPECT_LE(back_ms, window_s * 1000 + 1500) << "window + 1.5 s slack";
        EXPECT_NE(logText().find("generation 2 was not confirmed within " +
                                 std::to_string(window_s) + "s; rolled back to 1"),
                  std::string::npos)
            << logText();
        return back_ms;
    }
    // After the rollback (`back_ms` after t0): ms from t0 until a new SSH
    // connection works, and until the open session echoes `pending` (typed
    // while locked out; TCP retransmits it, and conntrack judges the
    // retransmission as new under generation 1, which admits it), then one
    // more echo on the same session. Prints the timeline of `what`.
    void expectSshBackAndPrintTimeline(Clock::time_point t0, const std::string& what,
                                       int64_t back_ms, const std::string& pending) {
        const int64_t new_ms = msUntil([&] { return webToHost() == 0; }, t0, 15s);
        const int64_t same_ms =
            msUntil([&] { return tcpReadEcho(session_.get(), pending, 20ms) == 0; }, t0, 25s);
        std::cout << "[timeline] " << what << ": rolled back to generation 1 after " << back_ms
                  << " ms, a new SSH connection works after " << new_ms
                  << " ms, the open SSH session echoes again after " << same_ms << " ms\n";
        EXPECT_GT(new_ms, 0) << "a new SSH connection after the rollback";
        EXPECT_GT(same_ms, 0) << "the same session resumes after the rollback";
        EXPECT_EQ(sessionEcho("uptime"), 0) << "and keeps working";
    }
};

TEST_F(HostLockout, OperatorWhoBlocksTheirOwnSshIsLetBackInWithinTheWindow) {
    startWithOpenSession();

    const auto t0 = Clock::now();
    CommandResult r = applyBundle("gen2.pb", "--confirm-within 3s");
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    const int64_t applied_ms = msSince(t0);
    EXPECT_NE(sessionEcho("whoami", 500ms), 0) << "generation 2 cuts the open SSH session";
    EXPECT_NE(webToHost(), 0) << "and refuses a new one";
    EXPECT_EQ(generationNow(), 2u) << "still inside the window";

    const int64_t back_ms = expectRolledBackAtTheDeadline(t0, 3);
    ASSERT_GT(back_ms, 0);
    expectSshBackAndPrintTimeline(
        t0,
        "host policy without SSH, apply --confirm-within 3s (applied after " +
            std::to_string(applied_ms) + " ms)",
        back_ms, "whoami");
    ASSERT_TRUE(waitUntil([&] { return !hostFlows("dropped", "default-deny").empty(); }, 3s))
        << "no flow record of the refused SSH flow\n"
        << flowsText();
    const auto refused = hostFlows("dropped", "default-deny").front();
    EXPECT_EQ(refused["src_endpoint"].value("ip", ""), lab_->webAddr(4)) << refused.dump();
    const auto& z = refused["unmapped"]["ztseg"];
    EXPECT_EQ(z.value("workload", ""), "host") << refused.dump();
    EXPECT_EQ(z["dst_labels"].value("ztseg.io/reserved", ""), "host") << refused.dump();
    EXPECT_EQ(z.value("generation", 0), 2) << "refused by the unconfirmed generation";
}

TEST_F(HostLockout, ZtsegdKilledAndRestartedMidWindowStillLetsTheOperatorBackIn) {
    startWithOpenSession();

    const auto t0 = Clock::now();
    CommandResult r = applyBundle("gen2.pb", "--confirm-within 5s");
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    EXPECT_NE(sessionEcho("whoami", 500ms), 0) << "generation 2 cuts the open SSH session";
    daemon_.reset();  // SIGKILL: a crash in the middle of the pending confirmation
    EXPECT_NE(webToHost(), 0) << "the pinned datapath keeps generation 2 while ztsegd is down";
    daemon_ = startDaemon();
    const int64_t restarted_ms = msSince(t0);
    ASSERT_LT(restarted_ms, 4500) << "restarted too late to be inside the window";

    const int64_t back_ms = expectRolledBackAtTheDeadline(t0, 5);
    ASSERT_GT(back_ms, 0);
    expectSshBackAndPrintTimeline(t0,
                                  "host policy without SSH, apply --confirm-within 5s, ztsegd "
                                  "killed and restarted after " +
                                      std::to_string(restarted_ms) + " ms",
                                  back_ms, "whoami");
}

TEST_F(HostLockout, AuditModeHostPolicyOnlyReportsWouldDropsAndSshKeepsWorking) {
    startWithOpenSession("audit");
    CommandResult r = applyBundle("gen2.pb");
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    ASSERT_EQ(generationNow(), 2u);

    EXPECT_EQ(sessionEcho("whoami"), 0) << "audit: the open session keeps working";
    EXPECT_EQ(webToHost(), 0) << "audit: a new SSH connection works";
    EXPECT_TRUE(waitUntil([&] { return !hostFlows("would-drop", "default-deny").empty(); }, 3s))
        << "no would-drop record for the host's SSH\n"
        << flowsText();
    EXPECT_EQ(flowsWithVerdict("dropped"), 0u) << flowsText();
}

}  // namespace
}  // namespace ztseg::test
