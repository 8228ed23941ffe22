// Golden tests of ztsegctl's output: the real binary on checked-in inputs
// (tests/cli/data: flow files recorded by `make demo`, the lab's policy
// files) compared byte for byte with tests/cli/golden. Run from the source
// tree with TZ=UTC, so file names and times print the same everywhere.
//
// Regenerate after an intended output change (then review the diff):
//   ZTSEG_UPDATE_GOLDEN=1 build/tests/cli_tests --gtest_filter='Golden*'
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/status_text.hpp"
#include "cli/stopped_status.hpp"
#include "integration/ztseg_process.hpp"

namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

const fs::path kSource = ZTSEG_SOURCE_DIR;

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool updating() {
    const char* u = std::getenv("ZTSEG_UPDATE_GOLDEN");
    return u && *u && std::string(u) != "0";
}

// Compares (or, when updating, writes) tests/cli/golden/NAME.
void expectGolden(const std::string& name, const std::string& actual) {
    fs::path golden = kSource / "tests/cli/golden" / name;
    if (updating()) {
        std::ofstream(golden, std::ios::binary | std::ios::trunc) << actual;
        return;
    }
    ASSERT_TRUE(fs::exists(golden))
        << golden << " is missing; create it with ZTSEG_UPDATE_GOLDEN=1";
    EXPECT_EQ(actual, slurp(golden))
        << "output differs from " << golden << " (ZTSEG_UPDATE_GOLDEN=1 regenerates it)";
}

struct Case {
    const char* golden;  // stdout; NAME.stderr holds stderr when there is any
    const char* args;
    int status;
};

// The lab's policy: the shipped examples plus the lab's bastion.
#define LAB_POLICY "-p policies/fleet.yaml -p policies/three-tier.yaml -p tests/cli/data/lab.yaml"
#define AUDIT "tests/cli/data/audit.jsonl"
#define ENFORCE "tests/cli/data/enforce.jsonl"

const Case kCases[] = {
    {"flows-all.txt", "flows --file " AUDIT " --file " ENFORCE, 0},
    {"flows-to-db-not-allowed.txt",
     "flows --file " AUDIT " --file " ENFORCE " --verdict dropped --verdict would-drop --to app=db "
     "--port 5432",
     0},
    {"flows-from-web-last2.txt", "flows --file " ENFORCE " --from web --last 2", 0},
    {"flows-intruder.jsonl", "flows --file " ENFORCE " --from-ip 10.10.9.0/24 -o json", 0},
    {"flows-since.txt", "flows --file " ENFORCE " --since 2026-12-02T03:37:33Z", 0},
    {"flows-jsonpb.jsonl", "flows --file " AUDIT " --last 2 -o jsonpb", 0},
    {"flows-not-allowed-ip-compact.txt",
     "flows --file " ENFORCE " --not --verdict allowed --ip 10.10.3.10 -o compact", 0},
    {"flows-label-key-first3-dict.txt",
     "flows --file " AUDIT " --file " ENFORCE " --from-label tier --first 3 -o dict", 0},
    {"flows-ip-port-either-side-until.txt",
     "flows --file " ENFORCE " --ip 10.10.2.10 --port 8080 --until 2026-12-02T03:37:33Z", 0},
    {"whatif-enforce.txt", "whatif " LAB_POLICY " --flows " AUDIT, 4},
    {"whatif-enforce.json", "whatif " LAB_POLICY " --flows " AUDIT " -o json", 4},
    {"whatif-with-bastion-ssh.txt",
     "whatif " LAB_POLICY " -p tests/cli/data/bastion-ssh.yaml --flows " AUDIT, 4},
    {"whatif-enforced-flows.txt",
     "whatif " LAB_POLICY " -p tests/cli/data/bastion-ssh.yaml --flows " ENFORCE, 0},
    {"suggest-inventory.yaml", "suggest --flows " AUDIT " " LAB_POLICY, 0},
    {"suggest-rebuilt.yaml", "suggest --flows " AUDIT " --flows " ENFORCE " --mode audit", 0},
    {"explain-web-db.txt",
     "explain --flow-file " ENFORCE " --pick 6 " LAB_POLICY " -p tests/cli/data/bastion-ssh.yaml",
     0},
    {"explain-web-db.json",
     "explain --flow-file " ENFORCE " --pick 6 " LAB_POLICY
     " -p tests/cli/data/bastion-ssh.yaml -o json",
     0},
    {"explain-intruder.txt", "explain --flow-file " ENFORCE " --pick -1 " LAB_POLICY, 0},
    {"map-enforce.dot", "map --file " ENFORCE, 0},
    {"map-audit-by-tier.dot", "map --file " AUDIT " --group-by tier", 0},
    {"map-not-allowed.dot",
     "map --file " AUDIT " --file " ENFORCE " --not --verdict allowed --to app=db", 0},
};

class GoldenCli : public ::testing::TestWithParam<Case> {};

TEST_P(GoldenCli, OutputMatches) {
    const Case& c = GetParam();
    setenv("TZ", "UTC", 1);
    fs::current_path(kSource);
    std::vector<std::string> argv{ZTSEGCTL_PATH};
    std::istringstream in(c.args);
    for (std::string a; in >> a;) argv.push_back(a);
    CommandResult r = runCommand(argv, nullptr, std::chrono::seconds(60), true);
    EXPECT_EQ(r.status, c.status) << c.args << "\n" << r.output << r.errors;
    expectGolden(c.golden, r.output);
    if (!r.errors.empty() ||
        fs::exists(kSource / "tests/cli/golden" / (std::string(c.golden) + ".stderr"))) {
        expectGolden(std::string(c.golden) + ".stderr", r.errors);
    }
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenCli, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) {
                             std::string n = i.param.golden;
                             for (char& ch : n) {
                                 if (!std::isalnum(static_cast<unsigned char>(ch)))
                                     ch = '_';
                             }
                             return n;
                         });

// status renders a StatusReply; the daemon's side is in the demo and the
// live CLI test.
TEST(GoldenStatus, TextAndJson) {
    v1::StatusReply st;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                    slurp(kSource / "tests/cli/data/status.json"), &st)
                    .ok());
    expectGolden("status.txt", cli::statusText(st));
    expectGolden("status.json", cli::statusJson(st));
}

// status while ztsegd is stopped renders what inspectPinned read (the live
// side: StoppedStatusSaysWhatThePinsStillEnforce in tests/integration).
TEST(GoldenStatus, StoppedTextAndJson) {
    PinnedDatapath p;
    p.pin_dir = "/sys/fs/bpf/ztseg";
    p.active_generation = 2;
    p.previous_generation = 1;
    p.xdp = {{"eth0", 2, XdpMode::Native, kXdpEthernetProg},
             {"veth1", 7, XdpMode::Generic, kXdpEthernetProg}};
    const std::vector<std::string> hooks{"ingress",  "egress",   "connect4",
                                         "connect6", "sendmsg4", "sendmsg6"};
    p.cgroups = {{3490, "ztdemo/system.slice", hooks}, {3502, "", hooks}};
    p.endpoints = {
        {3502, 1846025779, WorkloadMode::Enforce, false, ""},
        {3521, 802025710, WorkloadMode::Audit, false, "ztdemo/api.service"},
        {3559, 3027258515, WorkloadMode::Enforce, false, "ztdemo/system.slice/postgresql.service"}};
    p.raw_guard = RawGuardKind::Fallback;
    p.raw_guard_mode = rawGuardModeText(RawGuardKind::Fallback, RawKillHook::SyscallTracepoint);
    cli::StoppedStatus st{"/run/ztseg/ztsegd.sock", p.pin_dir, "/var/lib/ztseg", p, {}, {}};
    st.names = {{1846025779, "web"}, {802025710, "api"}, {3027258515, "db"}};
    expectGolden("status-stopped.txt", cli::stoppedStatusText(st));
    expectGolden("status-stopped.json", cli::stoppedStatusJson(st));

    st.names.clear();
    st.names_unavailable =
        "the bundle recorded in /var/lib/ztseg is generation 1, the datapath enforces 2";
    st.pinned->raw_guard = RawGuardKind::None;
    expectGolden("status-stopped-no-names.txt", cli::stoppedStatusText(st));

    st.pinned.reset();
    expectGolden("status-stopped-nothing-pinned.txt", cli::stoppedStatusText(st));
    expectGolden("status-stopped-nothing-pinned.json", cli::stoppedStatusJson(st));
}

}  // namespace
}  // namespace ztseg::test
