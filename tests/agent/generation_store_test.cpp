// Rollback protection persists across restarts and fails closed.
#include "shared/generation_store.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/error.hpp"

namespace ztseg::agent {
namespace {

class StoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("ztseg-store-" + std::to_string(getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir_);
    }
    void TearDown() override { std::filesystem::remove_all(dir_); }
    std::filesystem::path dir_;
};

TEST_F(StoreTest, FreshStoreAcceptsAnyGeneration) {
    GenerationStore s(dir_);
    EXPECT_EQ(s.highest(), 0u);
    EXPECT_NO_THROW(s.checkNewer(1));
    EXPECT_FALSE(s.currentBundle().has_value());
}

TEST_F(StoreTest, LocalRollbackRecordsTheBundleButKeepsHighest) {
    {
        GenerationStore s(dir_);
        s.recordApplied(1, "bundle-one");
        s.recordApplied(2, "bundle-two");
        s.recordCurrent("bundle-one");
    }
    GenerationStore again(dir_);
    EXPECT_EQ(again.currentBundle(), "bundle-one");
    EXPECT_EQ(again.highest(), 2u);
    EXPECT_THROW(again.checkNewer(2), Error);
}

// The bundle rollback returns to lives on disk, not in the daemon's memory.
TEST_F(StoreTest, PreviousBundleIsKeptOnDiskAndSwapsOnRollback) {
    {
        GenerationStore s(dir_);
        s.recordApplied(1, "bundle-one", /*keep_previous=*/true);
        EXPECT_FALSE(s.previousBundle().has_value());  // nothing was current before
        s.recordApplied(2, "bundle-two", /*keep_previous=*/true);
        EXPECT_EQ(s.previousBundle(), "bundle-one");
        s.swapCurrentAndPrevious();
    }
    GenerationStore again(dir_);  // a restart keeps the rollback
    EXPECT_EQ(again.currentBundle(), "bundle-one");
    EXPECT_EQ(again.previousBundle(), "bundle-two");
    EXPECT_EQ(again.highest(), 2u);
    again.recordApplied(3, "bundle-three");  // without keep_previous: previous untouched
    EXPECT_EQ(again.previousBundle(), "bundle-two");
    size_t files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) {
        ++files;
    }
    EXPECT_EQ(files, 3u);  // current, previous, highest: no temp or swap file left
}

TEST_F(StoreTest, HighestGenerationSurvivesAReopenAndRefusesRollback) {
    {
        GenerationStore s(dir_);
        s.recordApplied(9, "bundle-nine");
    }
    GenerationStore again(dir_);  // a restarted daemon
    EXPECT_EQ(again.highest(), 9u);
    EXPECT_EQ(again.currentBundle().value(), "bundle-nine");
    try {
        again.checkNewer(7);
        FAIL() << "older generation accepted";
    } catch (const Error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "generation 7 is not newer than 9, the highest this host applied (rollback "
                  "refused)");
    }
    EXPECT_THROW(again.checkNewer(9), Error) << "replay of the same generation";
    EXPECT_NO_THROW(again.checkNewer(10));
}

TEST_F(StoreTest, CorruptRecordFailsClosed) {
    GenerationStore s(dir_);
    std::ofstream(dir_ / "highest-generation") << "12x";
    EXPECT_THROW(s.highest(), Error);
    EXPECT_THROW(s.checkNewer(1000), Error);
}

TEST_F(StoreTest, NoTemporaryFilesAreLeftBehind) {
    GenerationStore s(dir_);
    s.recordApplied(3, std::string(100000, 'b'));
    EXPECT_EQ(s.currentBundle().value().size(), 100000u);
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
        EXPECT_NE(e.path().extension(), ".tmp") << e.path();
    }
}

}  // namespace
}  // namespace ztseg::agent
