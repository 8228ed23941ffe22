#include "bpf/datapath_fixture.hpp"

#include <bpf/bpf.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "model/names.hpp"

namespace ztseg::test {

std::string DatapathTest::uniquePinDir() {
    static std::atomic<int> n{0};
    return "/sys/fs/bpf/ztseg-test-" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

uint64_t DatapathTest::selfCgroupId() {
    return cgroupIdOf(selfCgroupPath());
}

void DatapathTest::SetUp() {
    if (const char* e = std::getenv("ZTSEG_TEST_INGRESS");
        e != nullptr && std::string(e) == "tcx") {
        ingress_ = Ingress::Tcx;
    }
    opts_.pin_dir = uniquePinDir();
    opts_.policy_capacity = 1 << 18;
    opts_.identity_capacity = 1 << 16;
    opts_.drop_event_interval_ns = 0;  // every drop reported; tests count events
    // This process is the workload (BPF_PROG_TEST_RUN judges its cgroup): a
    // host-wide BPF LSM guard would refuse raw sockets to everything sharing
    // that cgroup while a test runs. sock_create_test runs the guard's verdict
    // through BPF_PROG_TEST_RUN instead.
    opts_.raw_socket_guard = false;
    customize(opts_);
    dp_.emplace(Datapath::create(opts_));
    reader_ = std::make_unique<EventReader>(
        dp_->eventsFd(), [this](const ztseg_flow_event& e) { events_.push_back(e); });
    snapshotCounters();
}

void DatapathTest::TearDown() {
    reader_.reset();
    dp_.reset();
    Datapath::uninstall(opts_.pin_dir);
}

void DatapathTest::addIdentity(const std::string& prefix, IdentityId id) {
    gen_.identities.push_back({IpPrefix::parse(prefix), id});
}

void DatapathTest::addWorkload(IdentityId id, WorkloadMode mode) {
    gen_.modes[id] = mode;
    gen_.endpoints.push_back({selfCgroupId(), id});
}

void DatapathTest::addRule(Rule r) {
    gen_.rules.push_back(r);
}

void DatapathTest::addRules(const std::vector<Rule>& rules) {
    for (const Rule& r : rules) {
        addRule(r);
    }
}

void DatapathTest::applyGen() {
    gen_.number = next_gen_++;
    dp_->apply(gen_);
}

RunResult DatapathTest::runProgram(const char* prog, const std::vector<uint8_t>& frame,
                                   uint32_t repeat) {
    int fd = dp_->programFd(prog);
    if (fd < 0) {
        throw Error(std::string("no program ") + prog);
    }
    std::vector<uint8_t> out(frame.size() + 256);
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = uint32_t(frame.size()), .data_size_out = uint32_t(out.size()),
                .repeat = int(repeat));
    if (bpf_prog_test_run_opts(fd, &o) != 0) {
        throwErrno(std::string("BPF_PROG_TEST_RUN ") + prog, errno);
    }
    return {o.retval, o.duration};
}

RunResult DatapathTest::runIngress(bool l3, const std::vector<uint8_t>& frame, uint32_t repeat) {
    if (ingress_ == Ingress::Xdp) {
        return runProgram(l3 ? "ztseg_xdp_l3" : "ztseg_xdp", frame, repeat);
    }
    RunResult r = l3 ? runTcxL3(frame, repeat) : runTcx(frame, repeat);
    if (r.retval != kTcxNext && r.retval != kTcxDrop) {
        ADD_FAILURE() << "tc verdict " << int32_t(r.retval) << " is neither TCX_NEXT nor TCX_DROP";
    }
    r.retval = r.retval == kTcxDrop ? kXdpDrop : kXdpPass;
    return r;
}
RunResult DatapathTest::runXdp(const std::vector<uint8_t>& frame, uint32_t repeat) {
    return runIngress(false, frame, repeat);
}
RunResult DatapathTest::runXdpL3(const std::vector<uint8_t>& packet, uint32_t repeat) {
    return runIngress(true, packet, repeat);
}
RunResult DatapathTest::runTcx(const std::vector<uint8_t>& frame, uint32_t repeat) {
    return runProgram("ztseg_tcx", frame, repeat);
}
RunResult DatapathTest::runTcxL3(const std::vector<uint8_t>& packet, uint32_t repeat) {
    return runProgram("ztseg_tcx_l3", packet, repeat);
}
RunResult DatapathTest::runCgroupIngress(const std::vector<uint8_t>& frame) {
    return runProgram("ztseg_cg_ingress", frame);
}
RunResult DatapathTest::runCgroupEgress(const std::vector<uint8_t>& frame) {
    return runProgram("ztseg_cg_egress", frame);
}

RunResult DatapathTest::runAt(uint32_t hook, const std::vector<uint8_t>& frame) {
    switch (hook) {
        case ZTSEG_HOOK_XDP:
            return runXdp(frame);
        case ZTSEG_HOOK_CGROUP_INGRESS:
            return runCgroupIngress(frame);
        case ZTSEG_HOOK_CGROUP_EGRESS:
            return runCgroupEgress(frame);
    }
    throw Error("no program for hook " + std::to_string(hook));
}

void DatapathTest::snapshotCounters() {
    base_ = dp_->counters();
}

uint64_t DatapathTest::counted(uint32_t hook, uint32_t reason) {
    return dp_->counters().at(hook, reason).packets - base_.at(hook, reason).packets;
}

uint64_t DatapathTest::countedAll(uint32_t hook) {
    uint64_t sum = 0;
    for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
        sum += counted(hook, r);
    }
    return sum;
}

std::string DatapathTest::moved(uint32_t hook) {
    std::string s;
    for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
        if (uint64_t c = counted(hook, r)) {
            s += std::string(reasonName(r)) + "=" + std::to_string(c) + " ";
        }
    }
    return s.empty() ? "nothing" : s;
}

void DatapathTest::expectAt(uint32_t hook, const std::vector<uint8_t>& frame, uint32_t retval,
                            uint32_t reason) {
    snapshotCounters();
    EXPECT_EQ(runAt(hook, frame).retval, retval) << hookName(hook);
    EXPECT_EQ(counted(hook, reason), 1u)
        << hookName(hook) << ": expected " << reasonName(reason) << ", counted " << moved(hook);
    EXPECT_EQ(countedAll(hook), 1u) << hookName(hook) << ": " << moved(hook);
}
void DatapathTest::expectXdp(const std::vector<uint8_t>& frame, uint32_t retval, uint32_t reason) {
    expectAt(ZTSEG_HOOK_XDP, frame, retval, reason);
}
void DatapathTest::expectXdpL3(const std::vector<uint8_t>& packet, uint32_t retval,
                               uint32_t reason) {
    snapshotCounters();
    const char* prog = ingress_ == Ingress::Tcx ? "ztseg_tcx_l3" : "ztseg_xdp_l3";
    EXPECT_EQ(runXdpL3(packet).retval, retval) << prog;
    EXPECT_EQ(counted(ZTSEG_HOOK_XDP, reason), 1u)
        << prog << ": expected " << reasonName(reason) << ", counted " << moved(ZTSEG_HOOK_XDP);
    EXPECT_EQ(countedAll(ZTSEG_HOOK_XDP), 1u) << prog << ": " << moved(ZTSEG_HOOK_XDP);
}
void DatapathTest::expectIn(const std::vector<uint8_t>& frame, uint32_t retval, uint32_t reason) {
    expectAt(ZTSEG_HOOK_CGROUP_INGRESS, frame, retval, reason);
}
void DatapathTest::expectOut(const std::vector<uint8_t>& frame, uint32_t retval, uint32_t reason) {
    expectAt(ZTSEG_HOOK_CGROUP_EGRESS, frame, retval, reason);
}

std::vector<ztseg_flow_event> DatapathTest::takeEvents() {
    reader_->drain();
    return std::exchange(events_, {});
}

ztseg_flow_event DatapathTest::onlyEvent() {
    auto ev = takeEvents();
    EXPECT_EQ(ev.size(), 1u);
    return ev.empty() ? ztseg_flow_event{} : ev.front();
}

ztseg_flow_event DatapathTest::onlyEvent(uint8_t reason, IdentityId src, IdentityId dst) {
    auto e = onlyEvent();
    EXPECT_EQ(e.reason, reason);
    EXPECT_EQ(e.src_identity, src);
    EXPECT_EQ(e.dst_identity, dst);
    return e;
}

}  // namespace ztseg::test
