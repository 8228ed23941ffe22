// The raw-socket verdict of bpf/lsm_socket.c, on any kernel: its raw_tp twin
// (the same source, built with ZTSEG_SOCK_CREATE_TWIN) runs through
// BPF_PROG_TEST_RUN with socket_create's arguments, against the maps of a real
// datapath (this process is the workload, as in the packet tests). The LSM
// program itself, with real sockets, is tested in
// tests/integration/raw_socket_test.cpp where the kernel runs BPF LSM.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>

#include "bpf/datapath_fixture.hpp"
#include "common/error.hpp"
#include "sock_create_twin.skel.h"

namespace ztseg::test {
namespace {

constexpr IdentityId kDb = 300;
constexpr uint64_t kSomeoneElsesCgroup = 0x7fffffff0001;  // no cgroup has this id

class SockCreate : public DatapathTest {
  protected:
    void SetUp() override {
        DatapathTest::SetUp();
        twin_.reset(sock_create_twin_bpf__open());
        ASSERT_TRUE(twin_) << "open the raw_tp twin of lsm_socket.c";
        bpf_map* m;
        bpf_object__for_each_map(m, twin_->obj) {
            std::string pin = options().pin_dir + "/maps/" + bpf_map__name(m);
            UniqueFd fd(bpf_obj_get(pin.c_str()));
            ASSERT_TRUE(fd) << pin;
            ASSERT_EQ(bpf_map__reuse_fd(m, fd.get()), 0) << pin;
        }
        ASSERT_EQ(sock_create_twin_bpf__load(twin_.get()), 0) << "load the raw_tp twin";
    }
    void TearDown() override {
        twin_.reset();
        DatapathTest::TearDown();
    }

    void workload(WorkloadMode mode, bool raw_sockets = false) {
        addWorkload(kDb, mode);
        if (raw_sockets) {
            gen().raw_sockets.insert(kDb);
        }
        applyGen();
    }

    // What socket_create's BPF LSM program would return for this socket() call.
    int create(int family, int type, int protocol, int kern = 0, int ret = 0) {
        uint64_t args[5] = {uint64_t(family), uint64_t(type), uint64_t(protocol), uint64_t(kern),
                            uint64_t(int64_t(ret))};
        LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = args, .ctx_size_in = sizeof(args));
        int fd = bpf_program__fd(twin_->progs.ztseg_sock_create);
        if (bpf_prog_test_run_opts(fd, &o) != 0) {
            throwErrno("BPF_PROG_TEST_RUN ztseg_sock_create (raw_tp twin)", errno);
        }
        return int(o.retval);
    }
    // One socket() call: its verdict, and `reason` is the only counter that moved.
    void expectCreate(int family, int type, int protocol, int want, uint32_t reason) {
        snapshotCounters();
        EXPECT_EQ(create(family, type, protocol), want) << family << "/" << type << "/" << protocol;
        EXPECT_EQ(counted(ZTSEG_HOOK_SOCK_CREATE, reason), 1u) << moved(ZTSEG_HOOK_SOCK_CREATE);
        EXPECT_EQ(countedAll(ZTSEG_HOOK_SOCK_CREATE), 1u) << moved(ZTSEG_HOOK_SOCK_CREATE);
    }
    // Not a raw socket: passed at once, nothing counted, no event.
    void expectIgnored(int family, int type, int protocol, int kern = 0) {
        snapshotCounters();
        EXPECT_EQ(create(family, type, protocol, kern), 0)
            << family << "/" << type << "/" << protocol;
        EXPECT_EQ(countedAll(ZTSEG_HOOK_SOCK_CREATE), 0u) << moved(ZTSEG_HOOK_SOCK_CREATE);
        EXPECT_TRUE(takeEvents().empty());
    }

    struct TwinDeleter {
        void operator()(sock_create_twin_bpf* s) const { sock_create_twin_bpf__destroy(s); }
    };
    std::unique_ptr<sock_create_twin_bpf, TwinDeleter> twin_;
};

TEST_F(SockCreate, EnforcedWorkloadIsRefusedPacketAndRawIpSockets) {
    workload(WorkloadMode::Enforce);
    expectCreate(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), -EPERM, ZTSEG_REASON_DROP_RAW_SOCKET);
    ztseg_flow_event e = onlyEvent(ZTSEG_REASON_DROP_RAW_SOCKET, kDb, 0);
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_DROPPED);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_SOCK_CREATE);
    EXPECT_EQ(e.direction, ZTSEG_DIR_EGRESS);
    EXPECT_EQ(e.cgroup_id, selfCgroupId());
    EXPECT_EQ(e.family, 0) << "no IP family";
    EXPECT_EQ(e.proto, 0);
    EXPECT_EQ(e.sport, AF_PACKET) << "the address family";
    EXPECT_EQ(e.dport, ETH_P_ALL) << "the ethertype, host order";

    expectCreate(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP), -EPERM, ZTSEG_REASON_DROP_RAW_SOCKET);
    EXPECT_EQ(onlyEvent().dport, ETH_P_IP);

    expectCreate(AF_INET, SOCK_RAW, IPPROTO_UDP, -EPERM, ZTSEG_REASON_DROP_RAW_SOCKET);
    e = onlyEvent(ZTSEG_REASON_DROP_RAW_SOCKET, kDb, 0);
    EXPECT_EQ(e.family, 4);
    EXPECT_EQ(e.proto, IPPROTO_UDP);
    EXPECT_EQ(e.sport, 0);
    EXPECT_EQ(e.dport, 0);

    // Type flags above SOCK_TYPE_MASK do not hide a raw socket.
    expectCreate(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6, -EPERM,
                 ZTSEG_REASON_DROP_RAW_SOCKET);
    e = onlyEvent(ZTSEG_REASON_DROP_RAW_SOCKET, kDb, 0);
    EXPECT_EQ(e.family, 6);
    EXPECT_EQ(e.proto, IPPROTO_ICMPV6);

    expectCreate(AF_INET, SOCK_RAW, IPPROTO_RAW, -EPERM, ZTSEG_REASON_DROP_RAW_SOCKET);
    onlyEvent();
    expectCreate(AF_XDP, SOCK_RAW, 0, -EPERM, ZTSEG_REASON_DROP_RAW_SOCKET);
    EXPECT_EQ(onlyEvent().sport, AF_XDP);
}

TEST_F(SockCreate, PingAndOrdinarySocketsAreNotRaw) {
    workload(WorkloadMode::Enforce);
    expectIgnored(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);  // ping sockets
    expectIgnored(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_ICMPV6);
    expectIgnored(AF_INET, SOCK_STREAM, 0);
    expectIgnored(AF_INET6, SOCK_DGRAM, IPPROTO_UDP);
    expectIgnored(AF_UNIX, SOCK_RAW, 0);  // not a network packet socket
    expectIgnored(AF_NETLINK, SOCK_RAW, 0);
    // Sockets the kernel makes for itself are none of a workload's business.
    expectIgnored(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), /*kern=*/1);
}

TEST_F(SockCreate, AnEarlierRefusalStands) {
    workload(WorkloadMode::Enforce, /*raw_sockets=*/true);
    snapshotCounters();
    EXPECT_EQ(create(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), 0, -EACCES), -EACCES);
    EXPECT_EQ(countedAll(ZTSEG_HOOK_SOCK_CREATE), 0u);
}

TEST_F(SockCreate, PolicyFieldAllowsRawSockets) {
    workload(WorkloadMode::Enforce, /*raw_sockets=*/true);
    expectCreate(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), 0, ZTSEG_REASON_ALLOW_POLICY);
    expectCreate(AF_INET, SOCK_RAW, IPPROTO_UDP, 0, ZTSEG_REASON_ALLOW_POLICY);
    expectCreate(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6, 0, ZTSEG_REASON_ALLOW_POLICY);
    EXPECT_TRUE(takeEvents().empty()) << "an allowed socket is not a flow";

    // Withdrawn by the next generation: refused again (the endpoint's flags follow).
    gen().raw_sockets.clear();
    applyGen();
    expectCreate(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), -EPERM, ZTSEG_REASON_DROP_RAW_SOCKET);
    onlyEvent(ZTSEG_REASON_DROP_RAW_SOCKET, kDb, 0);
}

TEST_F(SockCreate, AuditModeAllowsWithAWouldDropEvent) {
    workload(WorkloadMode::Audit);
    expectCreate(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), 0, ZTSEG_REASON_AUDIT);
    ztseg_flow_event e = onlyEvent(ZTSEG_REASON_DROP_RAW_SOCKET, kDb, 0);
    EXPECT_EQ(e.verdict, ZTSEG_VERDICT_WOULD_DROP);
    EXPECT_EQ(e.hook, ZTSEG_HOOK_SOCK_CREATE);
    expectCreate(AF_INET, SOCK_RAW, IPPROTO_UDP, 0, ZTSEG_REASON_AUDIT);
    EXPECT_EQ(onlyEvent().verdict, ZTSEG_VERDICT_WOULD_DROP);
}

TEST_F(SockCreate, ProcessesOutsideWorkloadsAreNotConfined) {
    gen().modes[kDb] = WorkloadMode::Enforce;
    gen().endpoints.push_back({kSomeoneElsesCgroup, kDb});
    applyGen();
    expectCreate(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), 0, ZTSEG_REASON_PASS_NO_ENDPOINT);
    expectCreate(AF_INET, SOCK_RAW, IPPROTO_UDP, 0, ZTSEG_REASON_PASS_NO_ENDPOINT);
    EXPECT_TRUE(takeEvents().empty());
}

TEST_F(SockCreate, NothingIsConfinedBeforeTheFirstGeneration) {
    expectCreate(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), 0, ZTSEG_REASON_PASS_NO_ENDPOINT);
}

TEST_F(SockCreate, EndpointAddedBetweenAppliesKeepsItsRawSocketGrant) {
    gen().modes[kDb] = WorkloadMode::Enforce;
    gen().raw_sockets.insert(kDb);
    applyGen();
    dp().upsertEndpoint({selfCgroupId(), kDb}, WorkloadMode::Enforce, /*raw_sockets=*/true);
    expectCreate(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), 0, ZTSEG_REASON_ALLOW_POLICY);
    dp().upsertEndpoint({selfCgroupId(), kDb}, WorkloadMode::Enforce);
    expectCreate(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL), -EPERM, ZTSEG_REASON_DROP_RAW_SOCKET);
}

}  // namespace
}  // namespace ztseg::test
