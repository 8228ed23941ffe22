// Recovery when the host's network is locked down (issue 17), the console
// procedure of docs/install.md tested against the real ztsegd and kernel: a
// deny-all host policy is in force (the bastion cannot reach the host's
// "sshd", the host cannot reach web; both proven with traffic). From the
// console: with ztsegd running, its local API still answers and `ztsegctl
// rollback` restores access; with ztsegd stopped (SIGTERM) enforcement stays
// (fail closed) until `ztsegctl uninstall` removes it; the same after a
// SIGKILL (a stale socket file left behind) and for a hung ztsegd, which
// uninstall refuses to race until it is killed.
#include <signal.h>

#include <filesystem>

#include "integration/host_daemon_fixture.hpp"

namespace ztseg::test {
namespace {

class Recovery : public HostZtsegd {
  protected:
    // ztsegd enforcing generation 2, a host policy without rules (deny-all);
    // generation 1 admitted SSH and the host's egress to web: both proven,
    // before and after.
    void lockDown() {
        daemon_ = startDaemon();
        ASSERT_TRUE(waitUntil([&] { return generationNow() == 1; })) << logText();
        ASSERT_EQ(webToHost(), 0) << "generation 1 admits the bastion's SSH";
        ASSERT_EQ(hostToWeb(), 0) << "generation 1 admits the host's egress to web:8080";
        writeHostBundle(2, "deny-all.pb", "");
        CommandResult r = applyBundle("deny-all.pb");
        ASSERT_EQ(r.status, 0) << r.output << r.errors;
        expectLockedOut("deny-all applied");
    }
    void expectLockedOut(const std::string& when) {
        EXPECT_NE(webToHost(), 0) << when << ": SSH to the host must be refused";
        EXPECT_NE(hostToWeb(), 0) << when << ": the host's egress must be refused";
    }
    void expectAccessRestored(const std::string& how) {
        EXPECT_EQ(webToHost(), 0) << how << ": SSH to the host works again";
        EXPECT_EQ(hostToWeb(), 0) << how << ": the host's egress works again";
    }
    // `ztsegctl uninstall --config ztsegd.yaml`, as an operator at the console runs it.
    CommandResult uninstall() {
        return runCommand({ZTSEGCTL_PATH, "uninstall", "--config", (dir_ / "ztsegd.yaml").string()},
                          nullptr, 60s, true);
    }
    void expectUninstalled(const CommandResult& r) {
        EXPECT_EQ(r.status, 0) << r.output << r.errors;
        EXPECT_NE(r.output.find("ztseg removed: every program detached"), std::string::npos)
            << r.output;
        EXPECT_FALSE(fs::exists(pin_dir_)) << "pins left under " << pin_dir_;
        expectAccessRestored("uninstalled");
    }
};

TEST_F(Recovery, WithZtsegdRunningTheConsoleRollsBackOverTheLocalSocket) {
    lockDown();
    // uninstall is refused while ztsegd runs: it would install enforcement again
    CommandResult r = uninstall();
    EXPECT_EQ(r.status, 3) << r.output << r.errors;
    EXPECT_NE(r.errors.find("ztsegd is running"), std::string::npos) << r.errors;
    EXPECT_NE(r.errors.find("stop it first"), std::string::npos) << r.errors;
    r = ctl("status");
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_NE(r.output.find("policy generation 2 (rollback goes to 1)"), std::string::npos)
        << r.output;
    r = ctl("rollback");
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    EXPECT_EQ(r.output, "rolled back to generation 1\n");
    expectAccessRestored("rollback");
}

TEST_F(Recovery, StoppedZtsegdKeepsEnforcingUntilUninstall) {
    lockDown();
    ASSERT_EQ(::kill(daemon_->pid(), SIGTERM), 0);
    EXPECT_EQ(daemon_->wait(15s), 0) << logText();
    expectLockedOut("ztsegd stopped (fail closed)");
    CommandResult r = ctl("status --config " + (dir_ / "ztsegd.yaml").string());
    EXPECT_EQ(r.status, 5) << "stopped, still enforcing\n" << r.output << r.errors;
    EXPECT_NE(r.output.find("policy generation 2"), std::string::npos) << r.output;
    expectUninstalled(uninstall());
}

TEST_F(Recovery, KilledZtsegdLeavesAStaleSocketAndUninstallStillWorks) {
    lockDown();
    daemon_.reset();  // SIGKILL
    ASSERT_TRUE(fs::exists(dir_ / "sock")) << "a killed ztsegd leaves its socket file";
    expectLockedOut("ztsegd killed");
    expectUninstalled(uninstall());
}

TEST_F(Recovery, HungZtsegdIsNamedAndUninstallWorksOnceItIsKilled) {
    lockDown();
    ASSERT_EQ(::kill(daemon_->pid(), SIGSTOP), 0);  // hung: holds its socket, answers nothing
    CommandResult r = uninstall();
    EXPECT_EQ(r.status, 3) << r.output << r.errors;
    EXPECT_NE(
        r.errors.find("ztsegd holds " + (dir_ / "sock").string() + " but does not answer (hung?)"),
        std::string::npos)
        << r.errors;
    expectLockedOut("uninstall refused");
    daemon_.reset();  // SIGKILL, as the message says
    expectUninstalled(uninstall());
}

}  // namespace
}  // namespace ztseg::test
