// What ztsegd checks before it touches the kernel (agent/preflight.hpp).
#include "agent/preflight.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace ztseg::agent {
namespace {

namespace fs = std::filesystem;

std::string errorOf(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

class Preflight : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("ztseg-preflight-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        cfg_.metrics_listen = "127.0.0.1:0";
        cfg_.unix_socket = (dir_ / "run" / "sock").string();
        cfg_.flow_file = (dir_ / "log" / "flows.jsonl").string();
        cfg_.state_dir = (dir_ / "state").string();
    }
    void TearDown() override { fs::remove_all(dir_); }
    // Two P-256 key pairs and a self-signed certificate for the first.
    void makeTls() {
        const std::string d = dir_.string();
        ASSERT_EQ(std::system(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                               "-nodes -days 1 -subj /CN=t -keyout " +
                               d + "/a.key -out " + d + "/a.pem 2>/dev/null")
                                  .c_str()),
                  0);
        ASSERT_EQ(std::system(("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
                               "-out " +
                               d + "/b.key 2>/dev/null")
                                  .c_str()),
                  0);
    }
    fs::path dir_;
    AgentConfig cfg_;
};

TEST(ListenAddress, ParsesHostPortAndBracketedV6) {
    EXPECT_EQ(parseListenAddress("f", "127.0.0.1:9746"),
              (std::pair<std::string, uint16_t>{"127.0.0.1", 9746}));
    EXPECT_EQ(parseListenAddress("f", "[::1]:80"), (std::pair<std::string, uint16_t>{"::1", 80}));
    for (const char* bad : {"9746", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:65536", ":80",
                            "127.0.0.1:-1", "127.0.0.1:1234567"}) {
        const std::string e = errorOf([&] { parseListenAddress("metrics.listen", bad); });
        EXPECT_NE(e.find("metrics.listen"), std::string::npos) << bad << ": " << e;
    }
}

TEST_F(Preflight, CleanConfigPassesAndMakesDirectoriesPrivate) {
    EXPECT_EQ(errorOf([&] { preflight(cfg_); }), "");
    EXPECT_EQ(fs::status(dir_ / "log").permissions() & fs::perms::all,
              fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
    EXPECT_EQ(fs::status(dir_ / "state").permissions() & fs::perms::all, fs::perms::owner_all);
}

TEST_F(Preflight, PortInUseIsRefusedNamingTheField) {
    UniqueFd held(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(held.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ASSERT_EQ(::listen(held.get(), 1), 0);
    socklen_t len = sizeof(a);
    ASSERT_EQ(::getsockname(held.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    // api.tcp is trial-bound before the kernel is touched; metrics.listen is bound by the
    // metrics server itself, which fails the start the same way (daemon_start_test).
    cfg_.tcp_listen = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    const std::string e = errorOf([&] { preflight(cfg_); });
    EXPECT_NE(e.find("api.tcp 127.0.0.1:" + std::to_string(ntohs(a.sin_port))), std::string::npos)
        << e;
    EXPECT_NE(e.find("Address already in use"), std::string::npos) << e;
}

TEST_F(Preflight, TlsKeyOfAnotherCertificateIsRefused) {
    makeTls();
    cfg_.tls = {(dir_ / "a.pem").string(), (dir_ / "b.key").string(), (dir_ / "a.pem").string()};
    cfg_.tcp_listen = "127.0.0.1:0";
    cfg_.fleet = "lab";
    std::string e = errorOf([&] { preflight(cfg_); });
    EXPECT_NE(
        e.find("api.tls.key " + (dir_ / "b.key").string() + ": does not belong to the certificate"),
        std::string::npos)
        << e;
    cfg_.tls.key = (dir_ / "a.key").string();
    EXPECT_EQ(errorOf([&] { preflight(cfg_); }), "");
    cfg_.tls.ca = (dir_ / "b.key").string();  // a key where the CA belongs
    e = errorOf([&] { preflight(cfg_); });
    EXPECT_NE(e.find("api.tls.ca"), std::string::npos) << e;
}

TEST_F(Preflight, EveryProblemIsListedAtOnce) {
    std::ofstream(dir_ / "not-a-key.pem") << "garbage\n";
    std::ofstream(dir_ / "file") << "x";
    cfg_.trusted_keys = {(dir_ / "not-a-key.pem").string()};
    cfg_.flow_file = (dir_ / "file" / "flows.jsonl").string();  // under a regular file
    cfg_.metrics_listen = "localhost";
    const std::string e = errorOf([&] { preflight(cfg_); });
    EXPECT_NE(e.find("before touching the kernel"), std::string::npos) << e;
    EXPECT_NE(e.find("metrics.listen"), std::string::npos) << e;
    EXPECT_NE(e.find("not-a-key.pem"), std::string::npos) << e;
    EXPECT_NE(e.find("flows.file"), std::string::npos) << e;
}

}  // namespace
}  // namespace ztseg::agent
