// EtcdClient against a real etcd (Debian's etcd-server) that the test starts
// on loopback with a temporary data directory: put/get/range, and a watch
// that delivers changes as they happen and ends on stop().
#include "common/etcd_client.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "common/error.hpp"
#include "common/etcd_bundle_ref.hpp"

namespace ztseg {
namespace {

using namespace std::chrono_literals;

class Etcd : public ::testing::Test {
  protected:
    void SetUp() override {
        port_ = uint16_t(20000 + (getpid() % 5000) * 2);
        dir_ = std::filesystem::temp_directory_path() / ("ztseg-etcd-" + std::to_string(getpid()));
        std::filesystem::remove_all(dir_);
        std::string client = "http://127.0.0.1:" + std::to_string(port_);
        std::string peer = "http://127.0.0.1:" + std::to_string(port_ + 1);
        std::string data = dir_.string(), log = dir_.string() + ".log";
        pid_ = fork();
        ASSERT_GE(pid_, 0);
        if (pid_ == 0) {
            int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd >= 0)
                dup2(fd, 2);
            execl("/usr/bin/etcd", "etcd", "--name", "t", "--data-dir", data.c_str(),
                  "--listen-client-urls", client.c_str(), "--advertise-client-urls", client.c_str(),
                  "--listen-peer-urls", peer.c_str(), "--initial-advertise-peer-urls", peer.c_str(),
                  "--initial-cluster", ("t=" + peer).c_str(), "--log-level", "warn",
                  static_cast<char*>(nullptr));
            _exit(127);
        }
        client_ = std::make_unique<EtcdClient>(std::vector<std::string>{client});
        for (int i = 0; i < 100; ++i) {
            try {
                client_->range("/");
                return;
            } catch (const Error&) {
                std::this_thread::sleep_for(100ms);
            }
        }
        FAIL() << "etcd did not start on port " << port_;
    }
    void TearDown() override {
        client_.reset();
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            waitpid(pid_, nullptr, 0);
        }
        std::filesystem::remove_all(dir_);
        std::filesystem::remove(dir_.string() + ".log");
    }

    uint16_t port_ = 0;
    pid_t pid_ = -1;
    std::filesystem::path dir_;
    std::unique_ptr<EtcdClient> client_;
};

TEST_F(Etcd, PutGetAndRangeKeepBinaryValues) {
    std::string binary("\x0a\x00\xff\x01 signed", 10);
    client_->put("/zt/lab/bundle", binary);
    client_->put("/zt/lab/hosts/a/bundle", "a");
    client_->put("/zt/labx/bundle", "other prefix");
    auto kv = client_->get("/zt/lab/bundle");
    ASSERT_TRUE(kv.has_value());
    EXPECT_EQ(kv->value, binary);
    EXPECT_FALSE(client_->get("/zt/lab/none").has_value());
    int64_t rev = 0;
    auto all = client_->range("/zt/lab/", &rev);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].key, "/zt/lab/bundle");
    EXPECT_EQ(all[1].key, "/zt/lab/hosts/a/bundle");
    EXPECT_GE(rev, 3);
}

TEST_F(Etcd, WatchDeliversChangesAsTheyHappenAndStops) {
    int64_t rev = 0;
    client_->range("/w/", &rev);
    EtcdClient watcher({"127.0.0.1:" + std::to_string(port_)});
    std::atomic<int> seen{0};
    std::string last;
    std::thread t([&] {
        watcher.watch("/w/", true, rev + 1, [&](const EtcdKeyValue& kv) {
            last = kv.key + "=" + kv.value;
            ++seen;
        });
    });
    std::this_thread::sleep_for(200ms);
    client_->put("/w/a", "1");
    client_->put("/other", "not watched");
    client_->put("/w/b", "2");
    for (int i = 0; i < 50 && seen < 2; ++i) std::this_thread::sleep_for(100ms);
    EXPECT_EQ(seen, 2) << "both changes under the prefix, on the open stream";
    EXPECT_EQ(last, "/w/b=2");
    watcher.stop();
    t.join();  // watch() returns once stopped
}

TEST_F(Etcd, PutManyWritesEveryKeyInFewTransactions) {
    std::vector<std::pair<std::string, std::string>> items;
    for (int i = 0; i < 300; ++i) {
        items.emplace_back("/m/hosts/" + std::to_string(1000 + i),
                           std::string(100, char('a' + i % 26)));
    }
    int64_t rev0 = 0, rev1 = 0;
    client_->range("/m/", &rev0);
    std::vector<std::string> errors = client_->putMany(items);
    ASSERT_EQ(errors.size(), items.size());
    for (const auto& e : errors) EXPECT_EQ(e, "");
    auto all = client_->range("/m/", &rev1);
    ASSERT_EQ(all.size(), items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        EXPECT_EQ(all[i].key, items[i].first);
        EXPECT_EQ(all[i].value, items[i].second);
    }
    EXPECT_EQ(rev1 - rev0, 3) << "300 puts in transactions of at most 128: three revisions";

    // The byte bound cuts transactions too (a value over it goes alone).
    client_->range("/m/", &rev0);
    errors = client_->putMany({{"/m/a", std::string(600, 'x')},
                               {"/m/d", "small"},
                               {"/m/b", std::string(600, 'y')},
                               {"/m/c", std::string(2000, 'z')}},
                              128, 1000);
    for (const auto& e : errors) EXPECT_EQ(e, "");
    client_->range("/m/", &rev1);
    EXPECT_EQ(rev1 - rev0, 3) << "{a, d}, {b}, {c}";
    EXPECT_EQ(client_->get("/m/c")->value, std::string(2000, 'z'));

    client_->remove("/m/a");
    EXPECT_FALSE(client_->get("/m/a").has_value());
    auto keys = client_->range("/m/", nullptr, /*keys_only=*/true);
    ASSERT_FALSE(keys.empty());
    EXPECT_EQ(keys[0].key, "/m/b");
    EXPECT_EQ(keys[0].value, "") << "keys only";
}

TEST_F(Etcd, PutManyReportsEveryItemOfAFailedTransaction) {
    // etcd refuses a transaction that puts the same key twice.
    auto errors = client_->putMany({{"/d/x", "1"}, {"/d/x", "2"}, {"/d/y", "3"}}, 2);
    ASSERT_EQ(errors.size(), 3u);
    EXPECT_NE(errors[0], "");
    EXPECT_NE(errors[1], "");
    EXPECT_EQ(errors[2], "") << "the next transaction is written";
    EXPECT_FALSE(client_->get("/d/x").has_value());
    EXPECT_EQ(client_->get("/d/y")->value, "3");
}

TEST(EtcdBundleRef, RoundTripsAndIsNeverABundleOrADelta) {
    std::string bundle = "\x0a\x05bytes";
    std::string ref = makeEtcdBundleRef("/ztseg/prod", 42, bundle);
    EXPECT_LT(ref.size(), 200u);
    EXPECT_EQ(ref[0], '\0');
    ASSERT_TRUE(isEtcdBundleRef(ref));
    EtcdBundleRef r = parseEtcdBundleRef(ref);
    EXPECT_EQ(r.generation, 42u);
    EXPECT_EQ(r.key, "/ztseg/prod/generations/42");
    EXPECT_EQ(r.sha256_hex, sha256Hex(bundle));
    EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    // Bundles (0x0a, 0x08) and deltas (0x7a) are not references.
    for (std::string v :
         {std::string("\x0a\x01x"), std::string("\x08\x01"), std::string("\x7a\x02zz"),
          std::string(""), std::string("ztseg-bundle-ref/1\n")}) {
        EXPECT_FALSE(isEtcdBundleRef(v));
        EXPECT_THROW(parseEtcdBundleRef(v), Error);
    }
    // Malformed references are errors, not guesses.
    auto broken = [&](const std::string& from, const std::string& to) {
        std::string b = ref;
        b.replace(b.find(from), from.size(), to);
        return b;
    };
    for (const std::string& bad :
         {broken("generation=42", "generation=0"), broken("generation=42", "generation=4x2"),
          broken("sha256=", "sha256=00"), broken("sha256=", "sha="), ref + "extra",
          ref.substr(0, ref.size() - 1)}) {
        EXPECT_TRUE(isEtcdBundleRef(bad));
        EXPECT_THROW(parseEtcdBundleRef(bad), Error) << bad.substr(1);
    }
}

TEST_F(Etcd, UnreachableEndpointIsAnErrorNamingIt) {
    EtcdClient nowhere({"127.0.0.1:1"});
    try {
        nowhere.put("/k", "v");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("127.0.0.1:1"), std::string::npos) << e.what();
    }
}

}  // namespace
}  // namespace ztseg
