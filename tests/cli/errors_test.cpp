// ztsegctl's error paths: one line that says what to do, and the documented
// exit code (docs/ztsegctl.md).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "integration/ztseg_process.hpp"

namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

const fs::path kSource = ZTSEG_SOURCE_DIR;

CommandResult ctl(const std::string& args, const std::vector<std::string>& prefix = {}) {
    std::vector<std::string> argv = prefix;
    argv.push_back(ZTSEGCTL_PATH);
    std::istringstream in(args);
    for (std::string a; in >> a;) argv.push_back(a);
    return runCommand(argv, nullptr, std::chrono::seconds(60), true);
}

size_t lines(const std::string& s) {
    return size_t(std::count(s.begin(), s.end(), '\n'));
}

class CliErrors : public ::testing::Test {
  protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() / uniqueName("ztctl");
        fs::create_directories(dir_);
        fs::permissions(dir_,
                        fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
        fs::current_path(kSource);
    }
    void TearDown() override { fs::remove_all(dir_); }

    // A unix socket at `name`: listening (a "daemon") or only bound (stale).
    UniqueFd unixSocket(const std::string& name, bool listening) {
        UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::string p = (dir_ / name).string();
        std::strncpy(a.sun_path, p.c_str(), sizeof(a.sun_path) - 1);
        EXPECT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
        if (listening) {
            EXPECT_EQ(listen(fd.get(), 4), 0);
        }
        chmod(p.c_str(), 0600);
        return fd;
    }
    fs::path dir_;
};

TEST_F(CliErrors, DaemonNotRunningSaysHowToStartIt) {
    CommandResult r = ctl("rollback --socket " + (dir_ / "none.sock").string());
    EXPECT_EQ(r.status, 3);
    EXPECT_EQ(lines(r.errors), 1u) << r.errors;
    EXPECT_NE(r.errors.find("ztsegd is not running (no socket at"), std::string::npos) << r.errors;
    EXPECT_NE(r.errors.find("systemctl start ztsegd"), std::string::npos) << r.errors;

    UniqueFd stale = unixSocket("stale.sock", false);
    r = ctl("flows --socket " + (dir_ / "stale.sock").string());
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("ztsegd is not running (nobody listens on"), std::string::npos)
        << r.errors;

    setenv("ZTSEG_SOCKET", (dir_ / "env.sock").string().c_str(), 1);
    r = ctl("rollback");
    unsetenv("ZTSEG_SOCKET");
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find((dir_ / "env.sock").string()), std::string::npos)
        << "ZTSEG_SOCKET names the socket: " << r.errors;
}

// status without a daemon reads its pins; with none there it says so (exit 6).
TEST_F(CliErrors, StatusWithoutDaemonOrPinsSaysNothingIsEnforced) {
    const std::string pins = (dir_ / "pins").string(), state = (dir_ / "state").string();
    const std::string args = "status --socket " + (dir_ / "none.sock").string() + " --pin-dir " +
                             pins + " --state-dir " + state;
    CommandResult r = ctl(args);
    EXPECT_EQ(r.status, 6) << r.output << r.errors;
    EXPECT_EQ(r.output, "ztsegd is not running and nothing is pinned under " + pins +
                            ": this host enforces nothing\n");
    EXPECT_EQ(r.errors, "");
    EXPECT_FALSE(fs::exists(pins));
    EXPECT_FALSE(fs::exists(state));

    // Pins are root's: a normal user is told so instead of a guess.
    r = ctl(args, {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    EXPECT_EQ(r.status, 3);
    EXPECT_EQ(lines(r.errors), 1u) << r.errors;
    EXPECT_NE(r.errors.find("ztsegd is not running (nobody answers on"), std::string::npos)
        << r.errors;
    EXPECT_NE(r.errors.find("needs root"), std::string::npos) << r.errors;

    // An explicit --config must exist.
    r = ctl(args + " --config " + (dir_ / "missing.yaml").string());
    EXPECT_EQ(r.status, 3) << r.output;
    EXPECT_NE(r.errors.find("missing.yaml"), std::string::npos) << r.errors;
}

TEST_F(CliErrors, PermissionDeniedSaysItNeedsRoot) {
    UniqueFd daemon = unixSocket("root.sock", true);
    CommandResult r = ctl("status --socket " + (dir_ / "root.sock").string(),
                          {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    EXPECT_EQ(r.status, 3);
    EXPECT_EQ(lines(r.errors), 1u) << r.errors;
    EXPECT_NE(r.errors.find("permission denied on " + (dir_ / "root.sock").string()),
              std::string::npos)
        << r.errors;
    EXPECT_NE(r.errors.find("run ztsegctl as root"), std::string::npos) << r.errors;

    std::ofstream(dir_ / "ztsegd.yaml") << "pin_dir: /sys/fs/bpf/none\n";
    r = ctl("uninstall --config " + (dir_ / "ztsegd.yaml").string(),
            {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"});
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("needs root"), std::string::npos) << r.errors;
}

TEST_F(CliErrors, UninstallRefusesWhileTheDaemonRuns) {
    UniqueFd daemon = unixSocket("run.sock", true);
    std::ofstream(dir_ / "ztsegd.yaml")
        << "pin_dir: /sys/fs/bpf/" << dir_.filename().string()
        << "\napi: {unix_socket: " << (dir_ / "run.sock").string() << "}\n";
    CommandResult r = ctl("uninstall --config " + (dir_ / "ztsegd.yaml").string());
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("ztsegd is running"), std::string::npos) << r.errors;
    EXPECT_NE(r.errors.find("stop it first"), std::string::npos) << r.errors;
}

TEST_F(CliErrors, BadInputNamesTheOptionOrTheLine) {
    CommandResult r = ctl("flows --file tests/cli/data/audit.jsonl --verdict maybe");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.errors.find("bad --verdict 'maybe'"), std::string::npos) << r.errors;
    r = ctl("flows --file tests/cli/data/audit.jsonl --since yesterday");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.errors.find("bad --since 'yesterday'"), std::string::npos) << r.errors;
    r = ctl("flows --file tests/cli/data/audit.jsonl --port 70000");
    EXPECT_EQ(r.status, 2);

    std::ofstream(dir_ / "bad.jsonl") << "{\"class_uid\": 4001}\n";
    r = ctl("whatif -p policies --flows " + (dir_ / "bad.jsonl").string());
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find((dir_ / "bad.jsonl").string() + ":1: missing field"), std::string::npos)
        << r.errors;

    std::ofstream(dir_ / "broken.yaml") << "policies:\n  - name: x\n    selectr: {}\n";
    r = ctl("whatif -p " + (dir_ / "broken.yaml").string() + " --flows tests/cli/data/audit.jsonl");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.errors.find("broken.yaml:3:5: error: unknown field 'selectr'"), std::string::npos)
        << r.errors;

    r = ctl("explain --flow-file tests/cli/data/audit.jsonl");
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("holds 8 flow events: choose one with --pick N (1..8"),
              std::string::npos)
        << r.errors;
    r = ctl("explain --flow-file tests/cli/data/audit.jsonl --pick 9");
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("--pick 9 is outside 1..8"), std::string::npos) << r.errors;
    r = ctl("explain --from app=web");
    EXPECT_EQ(r.status, 2);
    r = ctl("explain --flow-file tests/cli/data/audit.jsonl --from app=web");
    EXPECT_EQ(r.status, 2) << "--from excludes --flow-file";
    r = ctl("apply policies --bundle x.pb --socket /nonexistent");
    EXPECT_EQ(r.status, 2);
    r = ctl("frobnicate");
    EXPECT_EQ(r.status, 2);
    r = ctl("flows --follow --file tests/cli/data/audit.jsonl");
    EXPECT_EQ(r.status, 2);
}

// A private key verifies signatures as well as its public half, so verify
// used to accept it; trusting a key must never need the signing key.
TEST_F(CliErrors, VerifyRefusesAPrivateKeyAsTheTrustedKey) {
    std::string key = (dir_ / "k").string(), bundle = (dir_ / "b.pb").string();
    ASSERT_EQ(ctl("keygen -o " + key).status, 0);
    ASSERT_EQ(ctl("compile policies -b " + bundle).status, 0);
    ASSERT_EQ(ctl("sign " + bundle + " -k " + key + ".key").status, 0);
    CommandResult r = ctl("verify " + bundle + " -k " + key + ".key");
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find(key +
                            ".key: is a private key; a trusted key must be the public key "
                            "(ztsegctl keygen writes " +
                            key + ".pub)"),
              std::string::npos)
        << r.errors;
    EXPECT_EQ(lines(r.errors), 1u) << r.errors;
    EXPECT_EQ(ctl("verify " + bundle + " -k " + key + ".pub").status, 0) << "the public key works";
}

TEST_F(CliErrors, EveryCommandHasHelp) {
    for (const char* cmd : {"compile", "check", "explain", "status", "apply", "rollback",
                            "uninstall", "flows", "whatif", "suggest"}) {
        CommandResult r = ctl(std::string(cmd) + " --help");
        EXPECT_EQ(r.status, 0) << cmd;
        EXPECT_NE(r.output.find("Usage:"), std::string::npos) << cmd << ": " << r.output;
    }
}

}  // namespace
}  // namespace ztseg::test
