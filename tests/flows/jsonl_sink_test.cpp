#include "flows/jsonl_sink.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "flows/ocsf.hpp"

namespace ztseg::flows {
namespace {

namespace fs = std::filesystem;

class JsonlSinkTest : public ::testing::Test {
  protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "ztseg-flows-XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { fs::remove_all(dir_); }

    static FlowRecord record(int i) {
        FlowRecord r;
        r.time = std::chrono::system_clock::now();
        r.host = "node-1";
        r.verdict = "dropped";
        r.reason = "default-deny";
        r.protocol = 6;
        r.protocol_name = "tcp";
        r.src.ip = "10.0.0.1";
        r.src.port = uint16_t(i);
        r.dst.ip = "10.0.0.3";
        r.dst.port = 5432;
        r.packets = 1;
        r.bytes = 60;
        return r;
    }

    // Every line of a file is one OCSF object; returns the source ports seen.
    static std::vector<int> readPorts(const fs::path& p) {
        std::ifstream in(p);
        std::vector<int> ports;
        std::string line;
        while (std::getline(in, line)) {
            nlohmann::json j = nlohmann::json::parse(line);  // throws on a torn line
            EXPECT_EQ(j.at("class_uid"), 4001);
            ports.push_back(j.at("src_endpoint").value("port", 0));  // 0: left out
        }
        return ports;
    }

    fs::path dir_;
};

TEST_F(JsonlSinkTest, AppendsOneValidJsonObjectPerLine) {
    fs::path p = dir_ / "flows.jsonl";
    JsonlSink sink({p.string(), 0, 3});
    for (int i = 0; i < 10; ++i) {
        EXPECT_TRUE(sink.write(record(i)));
    }
    sink.flush();
    EXPECT_EQ(sink.written(), 10u);
    EXPECT_EQ(sink.lost(), 0u);
    std::vector<int> want{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    EXPECT_EQ(readPorts(p), want);
}

TEST_F(JsonlSinkTest, RotatesBySizeAndKeepsMaxFiles) {
    fs::path p = dir_ / "flows.jsonl";
    const size_t line = toOcsfLine(record(100)).size() + 1;
    const uint64_t max_bytes = line * 3 + line / 2;  // three records per file
    {
        JsonlSink sink({p.string(), max_bytes, 2});
        for (int i = 100; i < 120; ++i) {  // same width ports: same line length
            ASSERT_TRUE(sink.write(record(i)));
        }
        EXPECT_EQ(sink.written(), 20u);
    }
    // 20 records, 3 per file: current holds 2 (118, 119), .1 holds 115-117, .2 112-114.
    EXPECT_EQ(readPorts(p), (std::vector<int>{118, 119}));
    EXPECT_EQ(readPorts(fs::path(p.string() + ".1")), (std::vector<int>{115, 116, 117}));
    EXPECT_EQ(readPorts(fs::path(p.string() + ".2")), (std::vector<int>{112, 113, 114}));
    EXPECT_FALSE(fs::exists(p.string() + ".3"));
    for (const auto& e : fs::directory_iterator(dir_)) {
        EXPECT_LE(fs::file_size(e.path()), max_bytes) << e.path();
    }
    EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator{}), 3);
}

// Rotation accounting: lines deleted with the oldest file count as rotated
// away undelivered unless below the delivered watermark.
TEST_F(JsonlSinkTest, CountsLinesRotatedAwayBeforeDelivery) {
    fs::path p = dir_ / "flows.jsonl";
    const size_t line = toOcsfLine(record(100)).size() + 1;
    JsonlSink sink({p.string(), line * 3 + line / 2, 1});  // three per file, one rotated file
    for (int i = 100; i < 106; ++i) {
        ASSERT_TRUE(sink.write(record(i)));
    }
    EXPECT_EQ(sink.rotatedUndelivered(), 0u);  // 100-102 in .1, nothing deleted yet
    sink.markDelivered(4);                     // 100-103 reached a stream
    for (int i = 106; i < 120; ++i) {
        ASSERT_TRUE(sink.write(record(i)));
    }
    // 20 lines: 118-119 current, 115-117 in .1; 100-114 deleted, 104-114 undelivered
    EXPECT_EQ(readPorts(fs::path(p.string() + ".1")), (std::vector<int>{115, 116, 117}));
    EXPECT_EQ(sink.rotatedUndelivered(), 11u);
    sink.markDelivered(2);   // a watermark never goes back
    sink.markDelivered(20);  // 100-119
    for (int i = 120; i < 126; ++i) {
        ASSERT_TRUE(sink.write(record(i)));
    }
    // 115-120 deleted since: only 120 was not delivered
    EXPECT_EQ(readPorts(fs::path(p.string() + ".1")), (std::vector<int>{121, 122, 123}));
    EXPECT_EQ(sink.rotatedUndelivered(), 12u);
}

TEST_F(JsonlSinkTest, ReopenedSinkContinuesTheExistingFileSize) {
    fs::path p = dir_ / "flows.jsonl";
    const size_t line = toOcsfLine(record(100)).size() + 1;
    {
        JsonlSink sink({p.string(), line * 2, 1});
        ASSERT_TRUE(sink.write(record(100)));
    }
    JsonlSink sink({p.string(), line * 2, 1});
    ASSERT_TRUE(sink.write(record(101)));  // fits: file has 2 lines
    ASSERT_TRUE(sink.write(record(102)));  // rotates
    EXPECT_EQ(readPorts(fs::path(p.string() + ".1")), (std::vector<int>{100, 101}));
    EXPECT_EQ(readPorts(p), (std::vector<int>{102}));
}

TEST_F(JsonlSinkTest, EnospcIsCountedNeverThrownAndRecoversOnANewPath) {
    JsonlSink sink({"/dev/full", 0, 0});  // every write fails with ENOSPC
    for (int i = 0; i < 5; ++i) {
        bool ok = true;
        EXPECT_NO_THROW(ok = sink.write(record(i)));
        EXPECT_FALSE(ok);
    }
    EXPECT_EQ(sink.lost(), 5u);
    EXPECT_EQ(sink.written(), 0u);
    EXPECT_NO_THROW(sink.flush());

    fs::path good = dir_ / "flows.jsonl";
    sink.setPath(good.string());
    EXPECT_TRUE(sink.write(record(7)));
    EXPECT_EQ(sink.written(), 1u);
    EXPECT_EQ(sink.lost(), 5u);
    EXPECT_EQ(readPorts(good), (std::vector<int>{7}));
}

TEST_F(JsonlSinkTest, MissingDirectoryIsCountedAndRecoversWhenItAppears) {
    fs::path sub = dir_ / "later";
    fs::path p = sub / "flows.jsonl";
    JsonlSink sink({p.string(), 1 << 20, 2});
    EXPECT_FALSE(sink.write(record(1)));
    EXPECT_FALSE(sink.write(record(2)));
    EXPECT_EQ(sink.lost(), 2u);
    fs::create_directory(sub);
    EXPECT_TRUE(sink.write(record(3)));
    EXPECT_EQ(sink.written(), 1u);
    EXPECT_EQ(sink.lost(), 2u);
    EXPECT_EQ(readPorts(p), (std::vector<int>{3}));
}

TEST_F(JsonlSinkTest, ConcurrentWritersNeverTearLines) {
    fs::path p = dir_ / "flows.jsonl";
    JsonlSink sink({p.string(), 64 << 10, 20});
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
        ts.emplace_back([&, t] {
            for (int i = 0; i < 100; ++i) {
                sink.write(record(t * 1000 + i));
            }
        });
    }
    for (auto& t : ts) {
        t.join();
    }
    EXPECT_EQ(sink.written(), 400u);
    EXPECT_EQ(sink.lost(), 0u);
    size_t total = 0;
    for (const auto& e : fs::directory_iterator(dir_)) {
        total += readPorts(e.path()).size();
    }
    EXPECT_EQ(total, 400u);
}

// A batch of lines.
void addRecords(JsonlSink::Lines& lines, int first, int end) {
    for (int i = first; i < end; ++i) {
        FlowRecord r;
        r.verdict = "dropped";
        r.src.port = uint16_t(i);
        lines.add([&](TextBuffer& out) { appendOcsfLine(r, out); });
    }
}

TEST_F(JsonlSinkTest, BatchesRotateExactlyLikeSingleWrites) {
    const size_t line = [] {
        FlowRecord r;
        r.verdict = "dropped";
        r.src.port = 100;
        return toOcsfLine(r).size() + 1;
    }();
    const uint64_t max_bytes = line * 3 + line / 2;  // three records per file
    fs::path single = dir_ / "single.jsonl", batched = dir_ / "batched.jsonl";
    {
        JsonlSink a({single.string(), max_bytes, 3});
        JsonlSink b({batched.string(), max_bytes, 3});
        JsonlSink::Lines one, many;
        for (int i = 100; i < 120; ++i) {
            addRecords(one, i, i + 1);
            a.write(one);
        }
        addRecords(many, 100, 107);  // batches that cross rotations
        b.write(many);
        EXPECT_TRUE(many.empty()) << "write() takes the whole batch";
        addRecords(many, 107, 120);
        b.write(many);
        EXPECT_EQ(a.written(), 20u);
        EXPECT_EQ(b.written(), 20u);
        EXPECT_EQ(b.lost(), 0u);
    }
    for (const char* suffix : {"", ".1", ".2", ".3"}) {
        EXPECT_EQ(readPorts(single.string() + suffix), readPorts(batched.string() + suffix))
            << suffix;
    }
    EXPECT_EQ(readPorts(batched), (std::vector<int>{118, 119}));
    EXPECT_EQ(readPorts(batched.string() + ".3"), (std::vector<int>{109, 110, 111}));
    EXPECT_FALSE(fs::exists(batched.string() + ".4"));
}

TEST_F(JsonlSinkTest, BatchOnAFullDiskCountsEveryLineLost) {
    JsonlSink sink({"/dev/full", 0, 0});
    JsonlSink::Lines lines;
    addRecords(lines, 0, 50);
    EXPECT_NO_THROW(sink.write(lines));
    EXPECT_EQ(sink.lost(), 50u);
    EXPECT_EQ(sink.written(), 0u);
    EXPECT_TRUE(lines.empty());

    sink.setPath((dir_ / "flows.jsonl").string());
    addRecords(lines, 50, 53);
    sink.write(lines);
    EXPECT_EQ(sink.written(), 3u);
    EXPECT_EQ(sink.lost(), 50u);
    EXPECT_EQ(readPorts(dir_ / "flows.jsonl"), (std::vector<int>{50, 51, 52}));
}

// RLIMIT_FSIZE makes the kernel accept part of a batch and then fail with
// EFBIG: whole lines stay, the torn one is cut off, the rest are counted.
TEST_F(JsonlSinkTest, BatchCutShortKeepsWholeLinesAndCountsTheRest) {
    fs::path p = dir_ / "flows.jsonl";
    JsonlSink::Lines lines;
    addRecords(lines, 10, 20);  // same width ports: same line length
    const size_t line = lines.bytes() / 10;
    struct FileSizeLimit {
        rlimit old{};
        sighandler_t old_handler;
        explicit FileSizeLimit(rlim_t bytes) : old_handler(signal(SIGXFSZ, SIG_IGN)) {
            getrlimit(RLIMIT_FSIZE, &old);
            rlimit lim = old;
            lim.rlim_cur = bytes;
            EXPECT_EQ(setrlimit(RLIMIT_FSIZE, &lim), 0);
        }
        ~FileSizeLimit() {
            setrlimit(RLIMIT_FSIZE, &old);
            signal(SIGXFSZ, old_handler);
        }
    };
    JsonlSink sink({p.string(), 0, 0});
    {
        FileSizeLimit limit(rlim_t(line * 4 + line / 2));  // room for 4.5 lines
        EXPECT_NO_THROW(sink.write(lines));
    }
    EXPECT_EQ(sink.written(), 4u);
    EXPECT_EQ(sink.lost(), 6u);
    EXPECT_EQ(fs::file_size(p), line * 4) << "no torn line left behind";
    EXPECT_EQ(readPorts(p), (std::vector<int>{10, 11, 12, 13}));

    addRecords(lines, 20, 22);  // and it goes on once the file may grow
    sink.write(lines);
    EXPECT_EQ(sink.written(), 6u);
    EXPECT_EQ(readPorts(p), (std::vector<int>{10, 11, 12, 13, 20, 21}));
}

TEST_F(JsonlSinkTest, ALineThatCannotBeRenderedIsCountedLost) {
    fs::path p = dir_ / "flows.jsonl";
    JsonlSink sink({p.string(), 0, 0});
    JsonlSink::Lines lines;
    addRecords(lines, 0, 1);
    lines.add([](TextBuffer& out) {
        out.append("half a line");
        throw std::runtime_error("out of memory");
    });
    addRecords(lines, 2, 3);
    EXPECT_EQ(lines.count(), 2u);
    sink.write(lines);
    EXPECT_EQ(sink.written(), 2u);
    EXPECT_EQ(sink.lost(), 1u);
    EXPECT_EQ(readPorts(p), (std::vector<int>{0, 2}));
}

TEST(JsonlSink, EmptyPathIsAnError) {
    EXPECT_THROW(JsonlSink({"", 0, 0}), Error);
}

}  // namespace
}  // namespace ztseg::flows
