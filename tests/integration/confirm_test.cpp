// Apply with a confirm window ("commit confirmed", issue 17) against the real
// ztsegd and kernel: an unconfirmed apply rolls back by itself (and the
// connection it cut works again), a confirmed one stays, a ztsegd killed
// mid-window still rolls back at the deadline (or at once, if the deadline
// passed while it was down), an unreadable record does not stop the start,
// a second apply inside a window keeps the original return point, and
// confirm refuses when nothing or another generation is pending.
// Each rollback's timeline (ms from apply to rollback) is printed.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "integration/daemon_fixture.hpp"

namespace ztseg::test {
namespace {

using Clock = std::chrono::steady_clock;

class ConfirmWindow : public Ztsegd {
  protected:
    // ztsegd started (again) with generation 1 (db admits web on 5432) and
    // its API answering; generation 2 (5433 only: web -> db 5432 cut) ready
    // to apply.
    void startWithTwoGenerations() {
        startDbServer();
        daemon_ = startDaemon();
        ASSERT_TRUE(waitUntil([&] { return generationNow() == 1; })) << logText();
        writeBundle(2, "5433", "gen2.pb");
    }
    CommandResult applyGen2(const std::string& window) {
        return ctl("apply --force --bundle " + (dir_ / "gen2.pb").string() + " --confirm-within " +
                   window);
    }
    std::string pendingRecord() { return slurp(dir_ / "state" / "pending-confirm"); }
};

TEST_F(ConfirmWindow, UnconfirmedApplyRollsBackByItselfAndTheCutConnectionWorksAgain) {
    startWithTwoGenerations();
    ASSERT_EQ(webToDb(), 0) << "generation 1 admits web -> db 5432";

    const auto t0 = Clock::now();
    CommandResult r = applyGen2("2s");
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    const int64_t applied_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    EXPECT_EQ(r.output.rfind("applied generation 2", 0), 0u) << r.output;
    EXPECT_NE(r.output.find("rolls back to generation 1 by itself"), std::string::npos) << r.output;
    EXPECT_NE(webToDb(), 0) << "generation 2 cuts web -> db 5432";
    auto st = status();
    ASSERT_TRUE(st.contains("confirm_pending")) << st.dump();
    EXPECT_EQ(st["confirm_pending"]["return_to"], "1");
    EXPECT_EQ(metric("ztseg_confirm_pending"), 1);
    r = ctl("status");
    EXPECT_NE(r.output.find("confirm pending: generation 2 rolls back to 1 in "), std::string::npos)
        << r.output;

    const int64_t back_ms = msUntilGeneration(1, t0, 6s);
    ASSERT_GT(back_ms, 0) << "not rolled back within the window + 4 s\n" << logText();
    std::cout << "[timeline] apply --confirm-within 2s: applied after " << applied_ms
              << " ms, back on generation 1 after " << back_ms << " ms (deadline 2000 ms)\n";
    EXPECT_GE(back_ms, 1900) << "rolled back before the deadline";
    EXPECT_LE(back_ms, 3500) << "window + 1.5 s slack";

    EXPECT_EQ(webToDb(), 0) << "the rollback admits web -> db 5432 again";
    EXPECT_NE(logText().find("generation 2 was not confirmed within 2s; rolled back to 1"),
              std::string::npos)
        << logText();
    EXPECT_EQ(metric("ztseg_confirm_rollbacks_total"), 1);
    EXPECT_EQ(metric("ztseg_confirm_pending"), 0);
    st = status();
    EXPECT_FALSE(st.contains("confirm_pending")) << st.dump();
    EXPECT_EQ(st["last_auto_rollback"]["from_generation"], "2");
    EXPECT_EQ(st["last_auto_rollback"]["to_generation"], "1");
    EXPECT_EQ(st["highest_generation"], "2") << "rollback protection keeps the highest";
    r = ctl("status");
    EXPECT_NE(r.output.find("last automatic rollback: "), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir_ / "state" / "pending-confirm"));
}

TEST_F(ConfirmWindow, ConfirmedApplyStays) {
    startWithTwoGenerations();
    CommandResult r = applyGen2("2s");
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    r = ctl("confirm");
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    EXPECT_EQ(r.output, "confirmed generation 2: it stays in force\n");
    std::this_thread::sleep_for(3s);  // past the deadline
    EXPECT_EQ(generationNow(), 2u);
    EXPECT_NE(webToDb(), 0) << "generation 2 still cuts web -> db 5432";
    EXPECT_EQ(metric("ztseg_confirm_rollbacks_total"), 0);
    EXPECT_FALSE(fs::exists(dir_ / "state" / "pending-confirm"));
    EXPECT_FALSE(fs::exists(dir_ / "state" / "confirm-return-bundle.pb"));
}

TEST_F(ConfirmWindow, ApplyWhilePendingKeepsTheOriginalReturnPoint) {
    startWithTwoGenerations();
    ASSERT_EQ(applyGen2("30s").status, 0);
    writeBundle(3, "5434", "gen3.pb");
    const auto t0 = Clock::now();
    CommandResult r =
        ctl("apply --force --bundle " + (dir_ / "gen3.pb").string() + " --confirm-within 2s");
    ASSERT_EQ(r.status, 0) << r.output << r.errors;
    EXPECT_NE(r.output.find("rolls back to generation 1 by itself"), std::string::npos)
        << "generation 2 was never confirmed: the return point stays 1\n"
        << r.output;
    auto st = status();
    EXPECT_EQ(st["confirm_pending"]["generation"], "3") << st.dump();
    EXPECT_EQ(st["confirm_pending"]["return_to"], "1");
    const int64_t back_ms = msUntilGeneration(1, t0, 6s);
    ASSERT_GT(back_ms, 0) << logText();
    EXPECT_GE(back_ms, 1900) << "the new apply's window replaced the 30 s one";
    EXPECT_NE(logText().find("generation 3 was not confirmed within 2s; rolled back to 1"),
              std::string::npos)
        << logText();
    EXPECT_EQ(webToDb(), 0);
}

TEST_F(ConfirmWindow, ConfirmWithNothingPendingOrAnotherGenerationIsRefused) {
    startWithTwoGenerations();
    CommandResult r = ctl("confirm");
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("nothing to confirm: no apply with a confirm window is pending "
                            "(generation 1 is in force)"),
              std::string::npos)
        << r.errors;

    ASSERT_EQ(applyGen2("30s").status, 0);
    r = ctl("confirm -g 5");
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("generation 5 does not await confirmation; generation 2 does (back "
                            "to 1 at the deadline)"),
              std::string::npos)
        << r.errors;
    EXPECT_TRUE(status().contains("confirm_pending")) << "a refused confirm changes nothing";
    r = ctl("confirm -g 2");
    EXPECT_EQ(r.status, 0) << r.errors;
    r = ctl("confirm -g 2");
    EXPECT_EQ(r.status, 3) << "confirmed already";
}

TEST_F(ConfirmWindow, BadWindowsAreRefusedBeforeAnythingIsSent) {
    startWithTwoGenerations();
    for (const char* bad : {"0s", "0", "25h", "2d", "soon", "500ms"}) {
        CommandResult r = applyGen2(bad);
        EXPECT_EQ(r.status, 2) << bad << ": " << r.output;
        EXPECT_NE(r.errors.find("--confirm-within: confirm window '" + std::string(bad) + "'"),
                  std::string::npos)
            << r.errors;
    }
    EXPECT_EQ(generationNow(), 1u);
}

TEST_F(ConfirmWindow, KilledDaemonRestartedMidWindowStillRollsBackAtTheDeadline) {
    startWithTwoGenerations();
    const auto t0 = Clock::now();
    ASSERT_EQ(applyGen2("5s").status, 0);
    daemon_.reset();  // SIGKILL: a crash, nothing cleaned up
    EXPECT_NE(pendingRecord().find("generation 2\nreturn_to 1\n"), std::string::npos)
        << pendingRecord();
    daemon_ = startDaemon();
    ASSERT_TRUE(waitUntil([&] { return status().contains("confirm_pending"); }, 4s)) << logText();
    EXPECT_EQ(generationNow(), 2u) << "restarted inside the window: still generation 2";
    const int64_t back_ms = msUntilGeneration(1, t0, 10s);
    ASSERT_GT(back_ms, 0) << logText();
    std::cout << "[timeline] apply --confirm-within 5s, ztsegd killed and restarted: back on "
                 "generation 1 after "
              << back_ms << " ms (deadline 5000 ms)\n";
    EXPECT_GE(back_ms, 4900);
    EXPECT_LE(back_ms, 6500);
    EXPECT_EQ(webToDb(), 0);
    EXPECT_NE(logText().find("generation 2 was not confirmed within 5s; rolled back to 1"),
              std::string::npos)
        << logText();
}

TEST_F(ConfirmWindow, DeadlinePassedWhileStoppedRollsBackAtStart) {
    startWithTwoGenerations();
    ASSERT_EQ(applyGen2("2s").status, 0);
    daemon_.reset();  // SIGKILL
    std::this_thread::sleep_for(2500ms);
    daemon_ = startDaemon();
    ASSERT_TRUE(waitUntil([&] { return generationNow() == 1; }, 4s)) << logText();
    EXPECT_NE(logText().find("generation 2 was not confirmed within 2s (the deadline passed while "
                             "ztsegd was not running); rolled back to 1"),
              std::string::npos)
        << logText();
    EXPECT_EQ(webToDb(), 0);
}

TEST_F(ConfirmWindow, UnreadableRecordDoesNotStopTheStartAndReturnsToTheReturnPoint) {
    startWithTwoGenerations();
    ASSERT_EQ(applyGen2("10m").status, 0);
    daemon_.reset();
    std::ofstream(dir_ / "state" / "pending-confirm", std::ios::trunc) << "ztseg pending conf";
    daemon_ = startDaemon();
    ASSERT_TRUE(waitUntil([&] { return generationNow() == 1; }, 4s)) << logText();
    EXPECT_NE(logText().find("pending-confirm cannot be read (not a pending confirmation record"),
              std::string::npos)
        << logText();
    EXPECT_NE(logText().find("the pending confirmation record of generation 2 was unreadable; "
                             "rolled back to 1"),
              std::string::npos)
        << logText();
    EXPECT_FALSE(fs::exists(dir_ / "state" / "pending-confirm"));
    EXPECT_EQ(webToDb(), 0);
}

}  // namespace
}  // namespace ztseg::test
