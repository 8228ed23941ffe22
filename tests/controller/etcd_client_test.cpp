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
