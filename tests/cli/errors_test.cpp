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
#include <string>
#include <vector>

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

// A socket that accepts but never answers is a hung ztsegd: it still holds
// its links, so uninstall says to kill it (a ztsegd that answers: "stop it
// first", Recovery.WithZtsegdRunningTheConsoleRollsBackOverTheLocalSocket).
TEST_F(CliErrors, UninstallRefusesWhileAHungDaemonHoldsTheSocket) {
    UniqueFd daemon = unixSocket("run.sock", true);
    std::ofstream(dir_ / "ztsegd.yaml")
        << "pin_dir: /sys/fs/bpf/" << dir_.filename().string()
        << "\napi: {unix_socket: " << (dir_ / "run.sock").string() << "}\n";
    CommandResult r = ctl("uninstall --config " + (dir_ / "ztsegd.yaml").string());
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("but does not answer (hung?): kill it"), std::string::npos) << r.errors;
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
    r = ctl("whatif --strict -p policies --flows " + (dir_ / "bad.jsonl").string());
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find((dir_ / "bad.jsonl").string() + ":1: missing field"), std::string::npos)
        << r.errors;

    std::ofstream(dir_ / "broken.yaml") << "policies:\n  - name: x\n    selectr: {}\n";
    r = ctl("whatif -p " + (dir_ / "broken.yaml").string() + " --flows tests/cli/data/audit.jsonl");
    EXPECT_EQ(r.status, 1);
    EXPECT_NE(r.errors.find("broken.yaml:3:5: error: unknown field 'selectr'"), std::string::npos)
        << r.errors;

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

// A flow file being appended to, or with one bad line, is still read (issue
// 14): bad lines are skipped and named, a partial last line is skipped with a
// warning; --strict keeps the first bad line an error.
TEST_F(CliErrors, FlowFilesSurviveBadAndPartialLines) {
    std::ifstream in(kSource / "tests/cli/data/audit.jsonl");
    std::vector<std::string> good;
    for (std::string l; std::getline(in, l);) good.push_back(l);
    ASSERT_EQ(good.size(), 8u);
    const fs::path f = dir_ / "appending.jsonl";
    {
        std::ofstream out(f);
        for (size_t i = 0; i < good.size(); ++i) {
            out << good[i] << "\n";
            if (i == 1)
                out << "{\"class_uid\": 4001, cut\n";  // line 3
        }
        out << good[0].substr(0, good[0].size() / 2);  // line 10: no newline yet
    }
    CommandResult r = ctl("flows --file " + f.string() + " -o json");
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_EQ(lines(r.output), 8u) << r.output;
    EXPECT_NE(r.errors.find(f.string() + ": skipped 1 bad line (3); first: " + f.string() + ":3: "),
              std::string::npos)
        << r.errors;
    EXPECT_NE(r.errors.find(f.string() + ":10: last line has no newline"), std::string::npos)
        << r.errors;

    r = ctl("flows --strict --file " + f.string());
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find(f.string() + ":3: "), std::string::npos) << r.errors;
    EXPECT_EQ(r.output, "");

    // whatif reads the same 8 events as from the clean file.
    CommandResult clean = ctl("whatif -p policies --flows tests/cli/data/audit.jsonl");
    r = ctl("whatif -p policies --flows " + f.string());
    EXPECT_EQ(r.status, clean.status) << r.errors;
    EXPECT_EQ(r.output, clean.output);
    r = ctl("whatif --strict -p policies --flows " + f.string());
    EXPECT_EQ(r.status, 3);

    // A complete last line without its newline is an event like any other.
    std::ofstream(f, std::ios::trunc) << good[0] << "\n" << good[1];
    r = ctl("flows --file " + f.string() + " -o json");
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_EQ(r.output, good[0] + "\n" + good[1] + "\n");
    EXPECT_EQ(r.errors, "");
}

// A CI gate pointed at the wrong file must not pass (issue 14).
TEST_F(CliErrors, WhatifWithNothingToJudgeFails) {
    std::ofstream(dir_ / "empty.jsonl") << "";
    CommandResult r = ctl("whatif -p policies --flows " + (dir_ / "empty.jsonl").string());
    EXPECT_EQ(r.status, 3);
    EXPECT_NE(r.errors.find("whatif: nothing to judge: 0 flow events read"), std::string::npos)
        << r.errors;
    // Flows of workloads the candidate does not know.
    std::ofstream(dir_ / "other.yaml")
        << "workloads:\n  - name: batch\n    labels: {app: batch}\n"
           "    addresses: [192.0.2.10]\n"
           "policies:\n  - name: batch\n    selector: {matchLabels: {app: batch}}\n"
           "    ingress: []\n";
    r = ctl("whatif -p " + (dir_ / "other.yaml").string() + " --flows tests/cli/data/audit.jsonl");
    EXPECT_EQ(r.status, 3) << r.output << r.errors;
    EXPECT_NE(r.errors.find("none of them to or from a workload of the candidate policy"),
              std::string::npos)
        << r.errors;
}

TEST_F(CliErrors, ArgumentsOutOfRangeAndProtocolSpelling) {
    for (const char* n : {"0", "-1", "00"}) {
        CommandResult r = ctl(std::string("flows --file tests/cli/data/audit.jsonl --last ") + n);
        EXPECT_EQ(r.status, 2) << r.errors;
        EXPECT_NE(r.errors.find("give a count N >= 1"), std::string::npos) << r.errors;
    }
    CommandResult r = ctl("flows --file tests/cli/data/audit.jsonl --last 2");
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_EQ(lines(r.output), 3u) << r.output;  // header and two flows
    // "TCP" as Kubernetes manifests write it: in policies, filters and services alike.
    std::ofstream(dir_ / "upper.yaml")
        << "workloads:\n  - name: db\n    labels: {app: db}\n    addresses: [10.0.0.1]\n"
           "  - name: web\n    labels: {app: web}\n    addresses: [10.0.0.2]\n"
           "policies:\n  - name: db\n    selector: {matchLabels: {app: db}}\n"
           "    ingress:\n      - from: [{selector: {matchLabels: {app: web}}}]\n"
           "        ports: [{port: 5432, protocol: TCP}]\n";
    r = ctl("check " + (dir_ / "upper.yaml").string());
    EXPECT_EQ(r.status, 0) << r.errors;
    r = ctl("explain -p " + (dir_ / "upper.yaml").string() + " --from app=web --to app=db " +
            "--port 5432/TCP");
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_NE(r.output.find("allowed"), std::string::npos) << r.output;
    // A range holding a workload's address is not "unlabeled": refused, naming what it holds.
    r = ctl("explain -p " + (dir_ / "upper.yaml").string() + " --from 10.0.0.0/24 --to app=db " +
            "--port 5432/tcp");
    EXPECT_EQ(r.status, 2) << r.output << r.errors;
    EXPECT_NE(r.errors.find("'10.0.0.0/24' is a range holding addresses of different identities: "
                            "workload db (10.0.0.1/32), workload web (10.0.0.2/32)"),
              std::string::npos)
        << r.errors;
    r = ctl("explain -p " + (dir_ / "upper.yaml").string() + " --from 10.0.0.2/32 --to app=db " +
            "--port 5432/tcp");
    EXPECT_EQ(r.status, 0) << r.errors;
    r = ctl("flows --file tests/cli/data/audit.jsonl --protocol TCP -o json");
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_GT(lines(r.output), 0u);
}

TEST_F(CliErrors, FlowSelectionMisuseIsAUsageError) {
    const std::string file = " --file tests/cli/data/enforce.jsonl";
    struct Case {
        std::string args, needle;
    } cases[] = {
        {"flows" + file + " --not", "--not must come before the filter it negates"},
        {"flows" + file + " --not --since 5m", "--not must come before the filter it negates"},
        {"flows" + file + " --first 1 --last 1", "--first excludes --last"},
        {"flows" + file + " --first 0", "--first 0: give a count N >= 1"},
        {"flows" + file + " --until yesterday", "bad --until 'yesterday'"},
        {"flows -f --first 2", "do not go with --follow"},
        {"flows" + file + " --color sometimes", "--color"},
        {"flows" + file + " -o yaml", "-o"},
        {"flows" + file + " --label key!", "label selector"},
        {"map" + file + " -o svg", "-o svg writes a file: give --out FILE"},
        {"map" + file + " -o png", "-o png writes a file: give --out FILE"},
        {"map" + file + " -o jpeg --out x.jpeg", "-o"},
        {"map" + file + " --first 0", "--first 0: give a count N >= 1"},
        {"fleet map --controller unix:/nowhere -o svg", "-o svg writes a file: give --out FILE"},
    };
    for (const auto& c : cases) {
        CommandResult r = ctl(c.args);
        EXPECT_EQ(r.status, 2) << c.args << "\n" << r.output << r.errors;
        EXPECT_NE(r.errors.find(c.needle), std::string::npos) << c.args << "\n" << r.errors;
    }
    // Piped (not a terminal): no colour unless asked.
    CommandResult r = ctl("flows" + file + " --verdict dropped");
    EXPECT_EQ(r.output.find("\033["), std::string::npos) << r.output;
    r = ctl("flows" + file + " --verdict dropped --color always -o compact");
    EXPECT_NE(r.output.find("\033[31mDROPPED\033[0m"), std::string::npos) << r.output;
    r = ctl("flows" + file + " --verdict dropped --color auto -o dict");
    EXPECT_EQ(r.output.find("\033["), std::string::npos) << r.output;
}

// A private key verifies signatures as well as its public half, so verify
// used to accept it; trusting a key must never need the signing key.
TEST_F(CliErrors, VerifyRefusesAPrivateKeyAsTheTrustedKey) {
    std::string key = (dir_ / "k").string(), bundle = (dir_ / "b.pb").string();
    ASSERT_EQ(ctl("keygen --out " + key).status, 0);
    ASSERT_EQ(ctl("compile policies --out " + bundle).status, 0);
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

// An unknown command or option is named with the one nearest to it (issue 14).
TEST_F(CliErrors, UnknownWordsSayWhatWasMeant) {
    struct Case {
        std::string args, says;
    } cases[] = {
        {"stauts",
         "ztsegctl: unknown command 'stauts'; did you mean 'status'? (see ztsegctl "
         "--help)"},
        {"fleet flwos",
         "ztsegctl: fleet: unknown command 'flwos'; did you mean 'flows'? (see "
         "ztsegctl fleet --help)"},
        {"flows --file tests/cli/data/audit.jsonl --lables app=web",
         "ztsegctl: flows: unknown option '--lables'; did you mean '--label'? (see ztsegctl flows "
         "--help)"},
        {"fleet flows --controler unix:/nowhere",
         "ztsegctl: fleet flows: unknown option '--controler'; did you mean '--controller'?"},
        {"whatif -p policies --flow tests/cli/data/audit.jsonl",
         "whatif: unknown option '--flow'; did you mean '--flows'?"},
        {"check policies --output=json --stirct",
         "unknown option '--stirct'; did you mean "
         "'--strict'?"},
        {"frobnicate", "ztsegctl: unknown command 'frobnicate' (see ztsegctl --help)"},
        {"fleet",
         "ztsegctl: fleet needs a command: status, reload, policy, flows, rules or map (see "
         "ztsegctl fleet --help)"},
        {"rules --since 7d", "--since needs --unused"},
        {"rules --suggest-removal policies", "--suggest-removal needs --unused"},
        {"rules --unused --since 7x", "ztsegctl: bad --since '7x': expected a window like 7d"},
        {"rules --sort size", "--sort"},
        {"fleet rules --since 1h", "--since needs --unused"},
    };
    for (const auto& c : cases) {
        CommandResult r = ctl(c.args);
        EXPECT_EQ(r.status, 2) << c.args;
        EXPECT_EQ(lines(r.errors), 1u) << c.args << "\n" << r.errors;
        EXPECT_NE(r.errors.find(c.says), std::string::npos) << c.args << "\n" << r.errors;
    }
}

// A command run without its input says what it needs and how to give it.
TEST_F(CliErrors, CommandsWithoutTheirInputSayWhatTheyNeed) {
    struct Case {
        std::string args, says;
    } cases[] = {
        {"apply",
         "ztsegctl: apply needs policy files or a directory: ztsegctl apply "
         "POLICY_DIR|FILE..."},
        {"apply --socket /nonexistent", "apply needs policy files or a directory"},
        {"compile",
         "ztsegctl: compile needs policy files or a directory: ztsegctl compile "
         "POLICY_DIR|FILE..."},
        {"check", "check needs policy files or a directory"},
        {"whatif",
         "whatif needs candidate policy and recorded flows: ztsegctl whatif -p "
         "POLICY_DIR|FILE... --flows FLOW_FILE..."},
        {"whatif -p policies", "whatif needs candidate policy and recorded flows"},
        {"suggest", "suggest needs recorded flows: ztsegctl suggest --flows FLOW_FILE..."},
        {"explain",
         "explain needs a flow: ztsegctl explain --from PARTY --to PARTY --port "
         "SERVICE"},
        {"explain -p /nonexistent --from app=web", "explain needs a flow"},
        {"sign",
         "sign needs a bundle and the private key(s) to sign it with: ztsegctl sign "
         "BUNDLE -k KEY..."},
        {"verify bundle.pb", "verify needs a bundle and the public key(s) to trust"},
    };
    for (const auto& c : cases) {
        CommandResult r = ctl(c.args);
        EXPECT_EQ(r.status, 2) << c.args;
        EXPECT_EQ(lines(r.errors), 1u) << c.args << "\n" << r.errors;
        EXPECT_NE(r.errors.find(c.says), std::string::npos) << c.args << "\n" << r.errors;
    }
}

// One flag name per meaning (issue 14): -o/--output is the output format,
// --out FILE the file written. Old spellings still work, with a warning;
// old and new together is a usage error.
TEST_F(CliErrors, OldFlagSpellingsWarnAndCannotBeMixedWithNewOnes) {
    const std::string b = (dir_ / "b.pb").string(), k = (dir_ / "k").string();
    CommandResult r = ctl("compile policies -b " + b);
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_TRUE(fs::exists(b));
    EXPECT_NE(r.errors.find("ztsegctl: warning: 'ztsegctl compile -b' is deprecated: use --out "
                            "FILE"),
              std::string::npos)
        << r.errors;
    r = ctl("compile policies --bundle " + b + " --output-format json");
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_NE(r.output.find("\"bundle_bytes\""), std::string::npos) << r.output;
    EXPECT_NE(r.errors.find("'ztsegctl compile --bundle' is deprecated: use --out FILE"),
              std::string::npos)
        << r.errors;
    EXPECT_NE(r.errors.find("'ztsegctl compile --output-format' is deprecated: use --output"),
              std::string::npos)
        << r.errors;
    r = ctl("compile policies --out " + b + " -o json");
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_EQ(r.errors, "");
    EXPECT_NE(r.output.find("\"bundle_bytes\""), std::string::npos) << r.output;
    r = ctl("check policies --output-format yaml");
    EXPECT_EQ(r.status, 2) << "the old spelling is checked like the new one";
    EXPECT_NE(r.errors.find("check: --output-format: yaml not in {text,json}"), std::string::npos)
        << r.errors;
    r = ctl("compile policies -b");
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.errors.find("compile: -b: 1 required FILE missing"), std::string::npos) << r.errors;

    const std::string mixed = (dir_ / "mixed.pb").string();
    struct Case {
        std::string args, says;
    } cases[] = {
        {"compile policies --out " + mixed + " -b " + mixed,
         "ztsegctl: compile: -b is the deprecated spelling of --out; give only --out"},
        {"check policies -o json --output-format json",
         "ztsegctl: check: --output-format is the deprecated spelling of --output; give only "
         "--output"},
        {"keygen --out " + k + "1 -o " + k + "2",
         "ztsegctl: keygen: -o is the deprecated spelling of --out; give only --out"},
        {"sign " + b + " -k " + k + ".key --out " + mixed + " --bundle-out " + mixed,
         "ztsegctl: sign: --bundle-out is the deprecated spelling of --out; give only --out"},
    };
    for (const auto& c : cases) {
        r = ctl(c.args);
        EXPECT_EQ(r.status, 2) << c.args;
        EXPECT_EQ(r.errors, c.says + "\n") << c.args;
    }
    EXPECT_FALSE(fs::exists(mixed));
    EXPECT_FALSE(fs::exists(k + "1.key"));

    // keygen has no output formats: -o PREFIX is a deprecated --out.
    r = ctl("keygen -o " + k);
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_TRUE(fs::exists(k + ".key"));
    EXPECT_NE(r.errors.find("'ztsegctl keygen -o' is deprecated: use --out FILE"),
              std::string::npos)
        << r.errors;
    const std::string signed_pb = (dir_ / "signed.pb").string();
    r = ctl("sign " + b + " -k " + k + ".key -b " + signed_pb);
    EXPECT_EQ(r.status, 0) << r.errors;
    EXPECT_NE(r.errors.find("'ztsegctl sign -b' is deprecated: use --out FILE"), std::string::npos)
        << r.errors;
    EXPECT_EQ(ctl("verify " + signed_pb + " -k " + k + ".pub").status, 0);

    // --help shows only the current spellings.
    r = ctl("compile --help");
    EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("--bundle"), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("--output-format"), std::string::npos) << r.output;
    r = ctl("sign --help");
    EXPECT_EQ(r.output.find("--bundle-out"), std::string::npos) << r.output;
}

// Out-of-range and missing argument values are usage errors (exit 2).
TEST_F(CliErrors, OutOfRangeValuesAreUsageErrors) {
    struct Case {
        std::string args, says;
    } cases[] = {
        {"compile policies -g 0 --out /nonexistent/b.pb", "--generation"},
        {"apply -g 0 policies --socket /nonexistent", "--generation"},
        {"explain --flow-file tests/cli/data/audit.jsonl --pick 9", "--pick 9 is outside 1..8"},
        {"explain --flow-file tests/cli/data/audit.jsonl",
         "holds 8 flow events: choose one with --pick N (1..8"},
        {"flows --file tests/cli/data/audit.jsonl --first 0", "--first 0: give a count N >= 1"},
        {"fleet flows --last 0 --controller unix:/nowhere", "--last 0: give a count N >= 1"},
        {"suggest --flows tests/cli/data/audit.jsonl --mode strict", "--mode"},
    };
    for (const auto& c : cases) {
        CommandResult r = ctl(c.args);
        EXPECT_EQ(r.status, 2) << c.args << "\n" << r.errors;
        EXPECT_EQ(lines(r.errors), 1u) << c.args << "\n" << r.errors;
        EXPECT_NE(r.errors.find(c.says), std::string::npos) << c.args << "\n" << r.errors;
    }
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
