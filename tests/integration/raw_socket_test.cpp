// Raw IP, AF_PACKET and AF_XDP sockets of enforced workloads: refused by the
// BPF LSM socket_create program (their packets bypass connect/sendmsg and,
// for AF_PACKET, the cgroup egress hook), unless a policy says
// `raw_sockets: allow`. Without BPF LSM, the fallback refuses raw IP sockets
// (EPERM) and kills a task that asks for a packet socket. Real processes in
// the lab's db workload cgroup.
//
// Tests run with whichever guard the kernel gets; those about one guard skip
// where the other runs. The fallback is also forced on every kernel (an LSM
// list without bpf), and the verdict itself is covered on every kernel by
// tests/bpf/sock_create_test.cpp.
#include <bpf/bpf.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/error.hpp"
#include "datapath/raw_socket_guard.hpp"
#include "integration/lab_fixture.hpp"
#include "integration/ztseg_process.hpp"
#include "policy/compiler.hpp"
#include "policy/parser.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

#define REQUIRE_RAW_SOCKET_GUARD()                                                                 \
    do {                                                                                           \
        if (!dp_->rawSocketGuard()) {                                                              \
            GTEST_SKIP() << "raw sockets are not confined here: " << dp_->rawSocketGuardProblem(); \
        }                                                                                          \
    } while (0)

// Child::wait() of a process killed by SIGKILL: what the fallback does to a
// workload task asking for a packet socket.
constexpr int kKilled = 128 + SIGKILL;

struct SocketCall {
    int family, type, protocol;
};
// The three the finding names: a packet socket, raw UDP over IPv4, raw ICMPv6.
const SocketCall kRawCalls[] = {
    {AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)},
    {AF_INET, SOCK_RAW, IPPROTO_UDP},
    {AF_INET6, SOCK_RAW, IPPROTO_ICMPV6},
};

// socket() and close(): 0 or the errno.
int trySocket(const SocketCall& c) {
    int fd = ::socket(c.family, c.type | SOCK_CLOEXEC, c.protocol);
    if (fd < 0) {
        return errno;
    }
    ::close(fd);
    return 0;
}

// Ping sockets need the caller's group in ping_group_range (the lab's host
// namespace is the test's own).
int tryPingSocket(int family) {
    std::ofstream("/proc/sys/net/ipv4/ping_group_range") << "0 2147483647";
    return trySocket({family, SOCK_DGRAM, family == AF_INET ? int{IPPROTO_ICMP} : IPPROTO_ICMPV6});
}

class RawSockets : public LabTest {
  protected:
    int inDbSocket(const SocketCall& c) {
        return inDb([c] { return trySocket(c); });
    }
    int outsideWorkloadsSocket(const SocketCall& c) {
        Child child(&lab_->host(), nullptr, [c] { return trySocket(c); });
        return child.wait(30s);
    }
    // What a refused socket() call yields under this datapath's guard.
    int refusal(const SocketCall& c) const {
        bool packet = c.family == AF_PACKET || c.family == AF_XDP;
        return packet && dp_->rawSocketGuardKind() == RawGuardKind::Fallback ? kKilled : EPERM;
    }
    uint64_t counted(uint32_t reason) {
        return counters().at(ZTSEG_HOOK_SOCK_CREATE, reason).packets;
    }
    // Replace the fixture's datapath by one created with `opts`.
    void recreate(const DatapathOptions& opts) {
        reader_.reset();
        dp_.reset();
        Datapath::uninstall(opts_.pin_dir);
        opts_ = opts;
        dp_.emplace(Datapath::create(opts_));
        reader_ = std::make_unique<EventReader>(
            dp_->eventsFd(), [this](const ztseg_flow_event& e) { events_.push_back(e); });
    }
    std::string tempFile(const std::string& content) {
        std::string path =
            "/tmp/ztseg-lsm-" + std::to_string(getpid()) + "-" + std::to_string(temp_files_.size());
        std::ofstream(path) << content;
        temp_files_.push_back(path);
        return path;
    }
    void TearDown() override {
        LabTest::TearDown();
        for (const auto& f : temp_files_) {
            fs::remove(f);
        }
    }
    std::vector<std::string> temp_files_;
};

TEST_F(RawSockets, EnforcedWorkloadIsRefusedRawAndPacketSockets) {
    REQUIRE_RAW_SOCKET_GUARD();
    apply(1);
    for (const SocketCall& c : kRawCalls) {
        EXPECT_EQ(inDbSocket(c), refusal(c)) << c.family << "/" << c.protocol;
    }
    EXPECT_EQ(counted(ZTSEG_REASON_DROP_RAW_SOCKET), 3u);
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 3u);
    for (const auto& e : ev) {
        EXPECT_EQ(e.hook, ZTSEG_HOOK_SOCK_CREATE);
        EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
        EXPECT_EQ(e.reason, ZTSEG_REASON_DROP_RAW_SOCKET);
        EXPECT_EQ(e.src_identity, kDbId);
        EXPECT_EQ(e.cgroup_id, lab_->dbCgroup().id());
    }
    EXPECT_EQ(ev[0].sport, AF_PACKET);
    EXPECT_EQ(ev[0].dport, ETH_P_ALL);
    EXPECT_EQ(ev[1].family, 4);
    EXPECT_EQ(ev[1].proto, IPPROTO_UDP);
    EXPECT_EQ(ev[2].family, 6);
    EXPECT_EQ(ev[2].proto, IPPROTO_ICMPV6);
    // Ordinary sockets are none of the guard's business.
    EXPECT_EQ(inDbSocket({AF_INET, SOCK_STREAM, 0}), 0);
    EXPECT_EQ(inDbSocket({AF_INET6, SOCK_DGRAM, 0}), 0);
}

TEST_F(RawSockets, GenerationGrantAllowsThem) {
    REQUIRE_RAW_SOCKET_GUARD();
    Generation g = policy(1, WorkloadMode::Enforce);
    g.raw_sockets.insert(kDbId);
    dp_->apply(g);
    for (const SocketCall& c : kRawCalls) {
        EXPECT_EQ(inDbSocket(c), 0) << c.family << "/" << c.protocol;
    }
    EXPECT_EQ(counted(ZTSEG_REASON_ALLOW_POLICY), 3u);
    EXPECT_EQ(counted(ZTSEG_REASON_DROP_RAW_SOCKET), 0u);
}

// The whole path: policy YAML -> compiler -> generation -> kernel.
TEST_F(RawSockets, PolicyFieldAllowsThem) {
    REQUIRE_RAW_SOCKET_GUARD();
    auto generationFor = [&](const std::string& raw_sockets_line, uint64_t number) {
        policy::Diagnostics diags;
        policy::PolicySet ps = policy::parsePolicies(
            {{"raw.yaml",
              "workloads:\n  - name: db\n    labels: {app: db}\n"
              "policies:\n  - name: db\n    selector: {matchLabels: {app: db}}\n" +
                  raw_sockets_line}},
            diags);
        policy::CompiledPolicy cp = policy::compile(ps, number, diags);
        return cp.toGeneration({{lab_->dbCgroup().id(), cp.workloads.at(0).identity}});
    };
    dp_->apply(generationFor("    raw_sockets: allow\n", 1));
    for (const SocketCall& c : kRawCalls) {
        EXPECT_EQ(inDbSocket(c), 0) << c.family << "/" << c.protocol;
    }
    dp_->apply(generationFor("", 2));  // default: deny
    for (const SocketCall& c : kRawCalls) {
        EXPECT_EQ(inDbSocket(c), refusal(c)) << c.family << "/" << c.protocol;
    }
}

TEST_F(RawSockets, AuditModeAllowsThemWithAWouldDropEvent) {
    REQUIRE_RAW_SOCKET_GUARD();
    apply(1, WorkloadMode::Audit);
    EXPECT_EQ(inDbSocket(kRawCalls[0]), 0);
    EXPECT_EQ(counted(ZTSEG_REASON_AUDIT), 1u);
    auto ev = takeEvents();
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].hook, ZTSEG_HOOK_SOCK_CREATE);
    EXPECT_EQ(ev[0].verdict, ZTSEG_VERDICT_WOULD_DROP);
    EXPECT_EQ(ev[0].reason, ZTSEG_REASON_DROP_RAW_SOCKET);
}

TEST_F(RawSockets, ProcessesOutsideWorkloadsAreNotConfined) {
    apply(1);
    for (const SocketCall& c : kRawCalls) {
        EXPECT_EQ(outsideWorkloadsSocket(c), 0) << c.family << "/" << c.protocol;
    }
    if (dp_->rawSocketGuard()) {
        // (other processes on the host may open raw sockets meanwhile)
        EXPECT_GE(counted(ZTSEG_REASON_PASS_NO_ENDPOINT), 3u);
    }
}

// Ping sockets are datagram sockets the cgroup hooks judge: not raw, allowed,
// and ping() (which uses them) works from inside an enforced workload.
TEST_F(RawSockets, PingSocketsStayAllowed) {
    Generation g = policy(1, WorkloadMode::Enforce);
    g.rules.push_back({kDbId, kWebId, Direction::Egress, ZTSEG_PROTO_ICMP, {}, Action::Allow, 7});
    g.rules.push_back({kDbId, kWebId, Direction::Egress, ZTSEG_PROTO_ICMPV6, {}, Action::Allow, 8});
    dp_->apply(g);
    attachAll();
    EXPECT_EQ(inDb([] { return tryPingSocket(AF_INET); }), 0);
    EXPECT_EQ(inDb([] { return tryPingSocket(AF_INET6); }), 0);
    for (int family : {4, 6}) {
        std::string dst = webAddr(family), src = dbAddr(family);
        EXPECT_EQ(inDb([&] { return ping(dst, 2s, src); }), 0) << "IPv" << family;
    }
    EXPECT_EQ(counted(ZTSEG_REASON_DROP_RAW_SOCKET), 0u);
}

TEST_F(RawSockets, LsmGuardLinkIsPinnedAdoptedAndLeavesNoTrace) {
    if (dp_->rawSocketGuardKind() != RawGuardKind::Lsm) {
        GTEST_SKIP() << "this kernel does not run BPF LSM programs: " << dp_->rawSocketGuardMode();
    }
    const std::string pin = lsmLinkPin(opts_.pin_dir);
    ASSERT_TRUE(fs::exists(pin));
    ASSERT_TRUE(fs::exists(opts_.pin_dir + "/progs/" + kSockCreateProg));
    bpf_prog_info prog{};
    uint32_t len = sizeof(prog);
    ASSERT_EQ(bpf_obj_get_info_by_fd(dp_->programFd(kSockCreateProg), &prog, &len), 0);
    auto linkInfo = [&] {
        UniqueFd fd(bpf_obj_get(pin.c_str()));
        EXPECT_TRUE(fd) << pin;
        bpf_link_info info{};
        uint32_t n = sizeof(info);
        EXPECT_EQ(bpf_obj_get_info_by_fd(fd.get(), &info, &n), 0);
        return info;
    };
    bpf_link_info link = linkInfo();
    EXPECT_EQ(link.type, BPF_LINK_TYPE_TRACING);
    EXPECT_EQ(link.prog_id, prog.id);

    // Adopt finds it; a link removed behind ztseg's back is attached again.
    EXPECT_TRUE(Datapath::adopt(opts_).rawSocketGuard());
    ASSERT_EQ(::unlink(pin.c_str()), 0);
    EXPECT_TRUE(Datapath::adopt(opts_).rawSocketGuard());
    ASSERT_TRUE(fs::exists(pin));
    uint32_t relinked = linkInfo().id;
    apply(1);
    EXPECT_EQ(inDbSocket(kRawCalls[0]), EPERM);

    // Uninstall: no pin, no link, no program (what `bpftool link/prog show` list).
    reader_.reset();
    dp_.reset();
    Datapath::uninstall(opts_.pin_dir);
    EXPECT_FALSE(fs::exists(opts_.pin_dir));
    for (uint32_t id : {link.id, relinked}) {
        UniqueFd fd(bpf_link_get_fd_by_id(id));
        EXPECT_FALSE(fd) << "link " << id << " survived uninstall";
    }
    UniqueFd gone(bpf_prog_get_fd_by_id(prog.id));
    EXPECT_FALSE(gone) << "program " << prog.id << " survived uninstall";
    EXPECT_EQ(inDbSocket(kRawCalls[0]), 0);
}

// The fallback, forced on every kernel with an LSM list that lacks bpf, once
// per kill hook the kernel has (the kprobe, or the syscall tracepoint where
// the kernel has no kprobes; the tracepoint is on every kernel here).
class RawSocketFallback : public RawSockets, public ::testing::WithParamInterface<RawKillHook> {
  protected:
    void recreateWithFallback(const std::string& lsm_list) {
        if (std::string missing = rawKillHookMissing(GetParam()); !missing.empty()) {
            GTEST_SKIP() << "this kernel has no such hook: " << missing;
        }
        DatapathOptions o = opts_;
        o.lsm_list = tempFile(lsm_list);
        o.raw_socket_kill_hook = GetParam();
        recreate(o);
        ASSERT_TRUE(dp_->rawSocketGuard()) << dp_->rawSocketGuardProblem();
        ASSERT_EQ(dp_->rawSocketGuardKind(), RawGuardKind::Fallback);
        ASSERT_EQ(dp_->rawSocketKillHook(), GetParam());
    }
};

INSTANTIATE_TEST_SUITE_P(KillHooks, RawSocketFallback,
                         ::testing::Values(RawKillHook::Kprobe, RawKillHook::SyscallTracepoint),
                         [](const auto& param_info) {
                             return param_info.param == RawKillHook::Kprobe ? "Kprobe"
                                                                            : "SyscallTracepoint";
                         });

// A kernel without BPF LSM: the fallback confines raw sockets, its two links
// are pinned, found again (and re-attached) on adopt, and removed without a
// trace on uninstall.
TEST_P(RawSocketFallback, WithoutBpfLsmTheFallbackConfinesThem) {
    ASSERT_NO_FATAL_FAILURE(recreateWithFallback("lockdown,capability,landlock\n"));
    if (IsSkipped()) {
        return;
    }
    EXPECT_EQ(dp_->programFd(kSockCreateProg), -1);
    EXPECT_FALSE(fs::exists(lsmLinkPin(opts_.pin_dir)));
    const std::string inet_pin = fallbackInetLinkPin(opts_.pin_dir);
    const std::string kill_pin = fallbackKillLinkPin(opts_.pin_dir);
    auto linkInfo = [](const std::string& pin) {
        UniqueFd fd(bpf_obj_get(pin.c_str()));
        EXPECT_TRUE(fd) << pin;
        bpf_link_info info{};
        uint32_t n = sizeof(info);
        EXPECT_EQ(bpf_obj_get_info_by_fd(fd.get(), &info, &n), 0) << pin;
        return info;
    };
    const bpf_link_info inet = linkInfo(inet_pin), kill = linkInfo(kill_pin);
    EXPECT_EQ(inet.type, BPF_LINK_TYPE_CGROUP);
    EXPECT_EQ(inet.cgroup.attach_type, BPF_CGROUP_INET_SOCK_CREATE);
    EXPECT_EQ(kill.type, BPF_LINK_TYPE_PERF_EVENT);
    bpf_prog_info kill_prog{};
    uint32_t kill_prog_len = sizeof(kill_prog);
    ASSERT_EQ(
        bpf_obj_get_info_by_fd(dp_->programFd(kSockCreateKillProg), &kill_prog, &kill_prog_len), 0);
    EXPECT_EQ(kill_prog.type,
              GetParam() == RawKillHook::Kprobe ? BPF_PROG_TYPE_KPROBE : BPF_PROG_TYPE_TRACEPOINT);
    EXPECT_EQ(kill.prog_id, kill_prog.id);

    apply(1);
    attachAll();
    auto server = startDbServer(kDbPort);
    EXPECT_EQ(lab_->webToDb(), 0);  // everything else enforces as ever
    EXPECT_NE(lab_->intruderToDb(), 0);
    EXPECT_EQ(inDbSocket(kRawCalls[0]), kKilled) << "packet socket";
    EXPECT_EQ(inDbSocket(kRawCalls[1]), EPERM) << "raw IPv4 socket";
    EXPECT_EQ(inDbSocket(kRawCalls[2]), EPERM) << "raw IPv6 socket";
    EXPECT_EQ(inDbSocket({AF_INET, SOCK_STREAM, 0}), 0);
    EXPECT_EQ(inDbSocket({AF_INET6, SOCK_DGRAM, 0}), 0);
    for (const SocketCall& c : kRawCalls) {
        EXPECT_EQ(outsideWorkloadsSocket(c), 0) << c.family << "/" << c.protocol;
    }
    EXPECT_EQ(counted(ZTSEG_REASON_DROP_RAW_SOCKET), 3u);

    // Adopt (with the real LSM list) keeps the fallback; removed links come back.
    DatapathOptions plain = opts_;
    plain.lsm_list = kDefaultLsmList;
    EXPECT_EQ(Datapath::adopt(plain).rawSocketGuardKind(), RawGuardKind::Fallback);
    EXPECT_EQ(Datapath::adopt(plain).rawSocketKillHook(), GetParam());
    ASSERT_EQ(::unlink(inet_pin.c_str()), 0);
    ASSERT_EQ(::unlink(kill_pin.c_str()), 0);
    EXPECT_EQ(inDbSocket(kRawCalls[0]), 0) << "links removed by hand: unconfined";
    {
        Datapath adopted = Datapath::adopt(plain);  // closed before uninstall below
        EXPECT_TRUE(adopted.rawSocketGuard());
        EXPECT_EQ(adopted.rawSocketGuardKind(), RawGuardKind::Fallback);
    }
    const uint32_t relinked_inet = linkInfo(inet_pin).id, relinked_kill = linkInfo(kill_pin).id;
    EXPECT_EQ(inDbSocket(kRawCalls[0]), kKilled);
    EXPECT_EQ(inDbSocket(kRawCalls[1]), EPERM);

    // Uninstall: no pin, no link, no program left.
    bpf_prog_info prog{};
    uint32_t len = sizeof(prog);
    ASSERT_EQ(bpf_obj_get_info_by_fd(dp_->programFd(kSockCreateKillProg), &prog, &len), 0);
    server.reset();  // a forked child: it holds copies of the datapath's fds
    reader_.reset();
    dp_.reset();
    Datapath::uninstall(opts_.pin_dir);
    EXPECT_FALSE(fs::exists(opts_.pin_dir));
    for (uint32_t id : {inet.id, kill.id, relinked_inet, relinked_kill}) {
        UniqueFd fd(bpf_link_get_fd_by_id(id));
        EXPECT_FALSE(fd) << "link " << id << " survived uninstall";
    }
    // A tracing program is freed only after an RCU grace period: poll for it.
    EXPECT_TRUE(waitUntil([&] { return !UniqueFd(bpf_prog_get_fd_by_id(prog.id)); }))
        << "program " << prog.id << " survived uninstall";
    EXPECT_EQ(inDbSocket(kRawCalls[0]), 0);
}

// A killed task never runs past socket(): not even its other threads.
TEST_P(RawSocketFallback, FallbackKillsTheWholeTaskBeforeSocketReturns) {
    ASSERT_NO_FATAL_FAILURE(recreateWithFallback("capability\n"));
    if (IsSkipped()) {
        return;
    }
    apply(1);
    Shared<int> after_socket, other_thread_after;
    int status = inDb([&] {
        std::atomic<bool> created{false};
        std::thread spinner([&] {
            while (!created.load()) {
            }
            *other_thread_after = 1;  // reached only if the process survived socket()
        });
        int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
        created = true;
        *after_socket = fd >= 0 ? 1 : 2;
        spinner.join();
        return 0;
    });
    EXPECT_EQ(status, kKilled);
    EXPECT_EQ(*after_socket, 0) << "socket() returned to the task";
    EXPECT_EQ(*other_thread_after, 0);
}

// Fallback turned off on a kernel without BPF LSM: not confined, and says so.
TEST_F(RawSockets, WithoutBpfLsmOrFallbackTheDatapathSaysRawSocketsAreNotConfined) {
    DatapathOptions o = opts_;
    o.lsm_list = tempFile("lockdown,capability,landlock\n");
    o.raw_socket_fallback = false;
    recreate(o);
    EXPECT_FALSE(dp_->rawSocketGuard());
    EXPECT_EQ(dp_->rawSocketGuardKind(), RawGuardKind::None);
    EXPECT_NE(dp_->rawSocketGuardProblem().find(
                  "the kernel's active LSMs (lockdown,capability,landlock) do not include bpf"),
              std::string::npos)
        << dp_->rawSocketGuardProblem();
    EXPECT_NE(dp_->rawSocketGuardProblem().find("fallback (raw_socket_fallback) is turned off"),
              std::string::npos)
        << dp_->rawSocketGuardProblem();
    for (const char* prog : {kSockCreateProg, kSockCreateInetProg, kSockCreateKillProg}) {
        EXPECT_EQ(dp_->programFd(prog), -1) << prog;
        EXPECT_FALSE(fs::exists(opts_.pin_dir + "/progs/" + prog)) << prog;
    }
    apply(1);
    EXPECT_EQ(inDbSocket(kRawCalls[0]), 0);  // not confined, as reported
    EXPECT_EQ(inDbSocket(kRawCalls[1]), 0);

    DatapathOptions plain = opts_;
    plain.lsm_list = kDefaultLsmList;
    Datapath adopted = Datapath::adopt(plain);
    EXPECT_FALSE(adopted.rawSocketGuard());
    EXPECT_NE(adopted.rawSocketGuardProblem().find("was loaded without a raw-socket guard"),
              std::string::npos)
        << adopted.rawSocketGuardProblem();
}

TEST_F(RawSockets, TurnedOffByOptionIsNotConfinedAndSaysSo) {
    DatapathOptions o = opts_;
    o.raw_socket_guard = false;
    recreate(o);
    EXPECT_FALSE(dp_->rawSocketGuard());
    EXPECT_NE(dp_->rawSocketGuardProblem().find("turned off"), std::string::npos)
        << dp_->rawSocketGuardProblem();
    for (const char* prog : {kSockCreateProg, kSockCreateInetProg, kSockCreateKillProg}) {
        EXPECT_FALSE(fs::exists(opts_.pin_dir + "/progs/" + prog)) << prog;
    }
    EXPECT_FALSE(fs::exists(lsmLinkPin(opts_.pin_dir)));
    EXPECT_FALSE(fs::exists(fallbackKillLinkPin(opts_.pin_dir)));
}

TEST(BpfLsm, UnreadableLsmListSaysWhy) {
    const std::string why = bpfLsmMissing("/nonexistent/ztseg/lsm");
    EXPECT_NE(why.find("cannot read the kernel's active LSM list at /nonexistent/ztseg/lsm"),
              std::string::npos)
        << why;
}

}  // namespace
}  // namespace ztseg::test
