// The pending confirmation record (agent/confirm_window.hpp) and the return
// point in the state dir: a record survives a round trip, anything torn or
// garbage is an error naming what is wrong (ztsegd then rolls back to the
// return point at start: tests/integration/confirm_test.cpp), and windows
// are parsed the same way everywhere (shared/confirm_duration.hpp).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "agent/confirm_window.hpp"
#include "common/error.hpp"
#include "shared/confirm_duration.hpp"
#include "shared/generation_store.hpp"

namespace ztseg::agent {
namespace {

const PendingConfirm kPending{8, 7, 1767225600123, 60000};

std::string errorOf(const std::string& text) {
    try {
        parsePending(text);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(PendingRecord, RoundTrips) {
    const std::string text = formatPending(kPending);
    EXPECT_EQ(text,
              "ztseg pending confirmation v1\ngeneration 8\nreturn_to 7\n"
              "deadline_unix_ms 1767225600123\nwindow_ms 60000\nend\n");
    EXPECT_EQ(parsePending(text), kPending);
}

TEST(PendingRecord, TornRecordIsAnError) {
    const std::string text = formatPending(kPending);
    for (size_t cut : {size_t(0), size_t(10), size_t(40), text.size() - 4}) {
        EXPECT_NE(errorOf(text.substr(0, cut)), "") << "cut at " << cut;
    }
    EXPECT_EQ(errorOf(text.substr(0, text.size() - 4)), "the record is torn (no 'end' line)");
}

TEST(PendingRecord, GarbageIsAnErrorThatSaysWhat) {
    EXPECT_EQ(errorOf(std::string("\x7f"
                                  "ELF\x02\x01",
                                  6))
                  .rfind("not a pending confirmation", 0),
              0u);
    EXPECT_EQ(errorOf("ztseg pending confirmation v1\ngeneration eight\nreturn_to 7\n"
                      "deadline_unix_ms 1\nwindow_ms 1000\nend\n"),
              "field 'generation' is not a number: 'eight'");
    EXPECT_EQ(errorOf("ztseg pending confirmation v1\ngeneration 8\nend\n"),
              "field 'return_to' is missing");
    EXPECT_EQ(errorOf("ztseg pending confirmation v1\ngeneration 8\ngeneration 9\nend\n"),
              "bad line 'generation 9'");
    EXPECT_EQ(errorOf("ztseg pending confirmation v1\ngeneration 8\nreturn_to 8\n"
                      "deadline_unix_ms 1\nwindow_ms 1000\nend\n"),
              "generation 8 returning to 8 makes no sense");
    EXPECT_EQ(errorOf("ztseg pending confirmation v1\ngeneration 8\nreturn_to 7\n"
                      "deadline_unix_ms 1\nwindow_ms 0\nend\n"),
              "window_ms 0 is out of range");
}

TEST(ConfirmWindowDuration, ParsesUnitsAndRefusesZeroAndAbsurdValues) {
    EXPECT_EQ(parseConfirmWindow("30s"), 30000u);
    EXPECT_EQ(parseConfirmWindow("2m"), 120000u);
    EXPECT_EQ(parseConfirmWindow("1h"), 3600000u);
    EXPECT_EQ(parseConfirmWindow("1500ms"), 1500u);
    EXPECT_EQ(parseConfirmWindow("45"), 45000u);
    EXPECT_EQ(parseConfirmWindow("24h"), kMaxConfirmWindowMs);
    for (const char* bad :
         {"0s", "0", "", "s", "-5s", "1.5s", "2d", "25h", "999999999999h", "500ms", "soon"}) {
        EXPECT_THROW(parseConfirmWindow(bad), Error) << bad;
    }
    EXPECT_EQ(formatWindow(60000), "1m");
    EXPECT_EQ(formatWindow(2000), "2s");
    EXPECT_EQ(formatWindow(1500), "1500ms");
}

class ReturnPoint : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("ztseg-confirm-" + std::to_string(getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(ReturnPoint, LaterAppliesLeaveItAloneAndRestoringKeepsHighest) {
    GenerationStore s(dir_);
    s.recordApplied(7, "seven", true);
    s.keepReturnPoint();
    s.recordApplied(8, "eight", true);
    s.recordApplied(9, "nine", true);  // a second apply inside the window
    EXPECT_EQ(s.returnPointBundle(), "seven");
    EXPECT_EQ(s.previousBundle(), "eight");
    s.restoreReturnPoint();
    EXPECT_EQ(s.currentBundle(), "seven");
    EXPECT_EQ(s.previousBundle(), "nine");
    EXPECT_FALSE(s.returnPointBundle().has_value());
    EXPECT_EQ(s.highest(), 9u) << "rollback protection stays";
}

TEST_F(ReturnPoint, RecordsAreWrittenAtomicallyAndRemoved) {
    GenerationStore s(dir_);
    s.writeRecord(kPendingConfirmFile, formatPending(kPending));
    EXPECT_EQ(parsePending(*s.readRecord(kPendingConfirmFile)), kPending);
    EXPECT_FALSE(std::filesystem::exists(dir_ / "pending-confirm.tmp"));
    s.removeRecord(kPendingConfirmFile);
    EXPECT_FALSE(s.readRecord(kPendingConfirmFile).has_value());
    EXPECT_NO_THROW(s.removeRecord(kPendingConfirmFile)) << "removing nothing is fine";
}

}  // namespace
}  // namespace ztseg::agent
