// Proves the lab building blocks work with real traffic. Needs root. All traffic stays inside
// the namespaces created here (10.213.1.0/24, fd00:213::/64).
#include "common/lab.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <linux/magic.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "common/packet_builder.hpp"

namespace ztseg::test {
namespace {

using namespace std::chrono_literals;

constexpr uint16_t kPort = 7777;

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

std::vector<pid_t> procsOf(const Cgroup2& cg) {
    std::vector<pid_t> pids;
    std::istringstream in(readFile(cg.path() + "/cgroup.procs"));
    for (pid_t p; in >> p;) {
        pids.push_back(p);
    }
    return pids;
}

TEST(Lab, UniqueNameIsShortAndUnique) {
    std::set<std::string> seen;
    for (int i = 0; i < 2000; ++i) {
        std::string n = uniqueName("ztveth");
        EXPECT_LE(n.size(), 15u);
        EXPECT_EQ(n.rfind("ztveth", 0), 0u);
        EXPECT_TRUE(seen.insert(n).second) << n;
    }
    EXPECT_THROW(uniqueName("much-too-long-prefix"), std::runtime_error);
}

TEST(Lab, Shell) {
    EXPECT_NO_THROW(sh("true"));
    EXPECT_EQ(shOut("echo hi; echo ignored >&2"), "hi\n");
    EXPECT_FALSE(trySh("exit 1"));
    EXPECT_TRUE(trySh("true"));
    try {
        sh("echo to-stdout; echo to-stderr >&2; exit 3");
        FAIL() << "sh did not throw";
    } catch (const std::runtime_error& e) {
        std::string what = e.what();
        EXPECT_TRUE(contains(what, "exit 3")) << what;  // names the command
        EXPECT_TRUE(contains(what, "exit status 3")) << what;
        EXPECT_TRUE(contains(what, "to-stdout")) << what;
        EXPECT_TRUE(contains(what, "to-stderr")) << what;
    }
}

TEST(Lab, UniqueFdClosesAndMoves) {
    int raw = dup(0);
    ASSERT_GE(raw, 0);
    {
        UniqueFd a(raw);
        UniqueFd b(std::move(a));
        EXPECT_FALSE(a);
        EXPECT_EQ(b.get(), raw);
    }
    EXPECT_EQ(fcntl(raw, F_GETFD), -1);
    EXPECT_EQ(errno, EBADF);
}

TEST(Cgroup2Test, MountPointIsCgroup2) {
    std::string mp = Cgroup2::mountPoint();
    struct statfs sfs {};
    ASSERT_EQ(statfs(mp.c_str(), &sfs), 0) << mp;
    EXPECT_EQ(static_cast<unsigned long>(sfs.f_type), CGROUP2_SUPER_MAGIC) << mp;
}

TEST(Cgroup2Test, IdIsInodeNumber) {
    Cgroup2 cg;
    struct stat st {};
    ASSERT_EQ(stat(cg.path().c_str(), &st), 0);
    EXPECT_EQ(cg.id(), st.st_ino);
    EXPECT_EQ(Cgroup2::idOfPath(cg.path()), cg.id());
    EXPECT_NE(Cgroup2::idOfPath(Cgroup2::mountPoint()), cg.id());
    EXPECT_GE(cg.fd(), 0);
}

TEST(Cgroup2Test, ChildShowsUpInCgroupProcs) {
    Cgroup2 cg;
    std::string rel = cg.path().substr(Cgroup2::mountPoint().size());
    Child child(nullptr, &cg, [](Child::Ready& ready) {
        ready.signal();
        pause();
        return 0;
    });
    child.waitReady(2s);
    EXPECT_EQ(procsOf(cg), std::vector<pid_t>{child.pid()});
    EXPECT_TRUE(
        contains(readFile("/proc/" + std::to_string(child.pid()) + "/cgroup"), "0::" + rel + "\n"));
    EXPECT_TRUE(child.running());
}

TEST(Cgroup2Test, DestructorKillsMembersAndRemovesDir) {
    std::optional<Cgroup2> cg(std::in_place);
    std::string path = cg->path();
    Child child(nullptr, &*cg, [](Child::Ready& ready) {
        ready.signal();
        pause();
        return 0;
    });
    child.waitReady(2s);
    std::filesystem::create_directory(path + "/sub");  // sub-cgroups are removed too
    cg.reset();
    EXPECT_EQ(child.wait(2s), 128 + SIGKILL);
    EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ChildTest, ExitStatusExceptionAndTimeout) {
    EXPECT_EQ(Child(nullptr, nullptr, [] { return 7; }).wait(2s), 7);
    EXPECT_EQ(Child(nullptr, nullptr, []() -> int { throw std::runtime_error("boom"); }).wait(2s),
              Child::kExitException);

    Child sleeper(nullptr, nullptr, [] {
        pause();
        return 0;
    });
    auto start = std::chrono::steady_clock::now();
    EXPECT_THROW(sleeper.wait(100ms), std::runtime_error);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_FALSE(sleeper.running());
}

TEST(ChildTest, WaitReadyFailsIfChildExitsFirst) {
    Child child(nullptr, nullptr, [] { return 3; });
    try {
        child.waitReady(2s);
        FAIL() << "waitReady did not throw";
    } catch (const std::runtime_error& e) {
        EXPECT_TRUE(contains(e.what(), "status 3")) << e.what();
    }
    Child slow(nullptr, nullptr, [] {
        pause();
        return 0;
    });
    EXPECT_THROW(slow.waitReady(50ms), std::runtime_error);
}

TEST(ChildTest, MoveOnly) {
    std::vector<Child> kids;
    for (int i = 0; i < 4; ++i) {
        kids.emplace_back(nullptr, nullptr, [i] { return i; });
    }
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(kids[i].wait(2s), i);
    }
}

// Two namespaces joined by a veth pair, each with one v4 and one v6 address.
struct Topology {
    NetNs a;
    NetNs b;
    VethPair veth{uniqueName("ztva"), &a, uniqueName("ztvb"), &b};

    Topology() {
        veth.addAddress(0, "10.213.1.1/24");
        veth.addAddress(1, "10.213.1.2/24");
        veth.addAddress(0, "fd00:213::1/64");
        veth.addAddress(1, "fd00:213::2/64");
    }
};

struct Family {
    const char* name;
    const char* addr_a;
    const char* addr_b;
    const char* unused;  // in the subnet but assigned to nobody: never answers
};

void PrintTo(const Family& f, std::ostream* os) {
    *os << f.name;
}

class LabTraffic : public ::testing::TestWithParam<Family> {
  protected:
    Topology topo_;
};

// Echo server in server_ns; the client in client_ns must get its message back.
void expectTcpEcho(NetNs& server_ns, const std::string& server_addr, NetNs& client_ns) {
    Child server(&server_ns, nullptr, [&](Child::Ready& ready) {
        UniqueFd listener = tcpListen(server_addr, kPort);
        ready.signal();
        return tcpEchoServe(listener.get(), 1, 3s) == 1 ? 0 : 1;
    });
    server.waitReady(3s);
    Child client(&client_ns, nullptr,
                 [&] { return tcpEchoRoundTrip(server_addr, kPort, "hello ztseg", 3s); });
    EXPECT_EQ(client.wait(5s), 0) << "client -> " << server_addr;
    EXPECT_EQ(server.wait(5s), 0) << "server " << server_addr;
}

void expectUdpEcho(NetNs& server_ns, const std::string& server_addr, NetNs& client_ns) {
    Child server(&server_ns, nullptr, [&](Child::Ready& ready) {
        UniqueFd sock = udpBind(server_addr, kPort);
        ready.signal();
        return udpEchoServe(sock.get(), 1, 3s) == 1 ? 0 : 1;
    });
    server.waitReady(3s);
    Child client(&client_ns, nullptr,
                 [&] { return udpRoundTrip(server_addr, kPort, "hello ztseg", 3s); });
    EXPECT_EQ(client.wait(5s), 0) << "client -> " << server_addr;
    EXPECT_EQ(server.wait(5s), 0) << "server " << server_addr;
}

TEST_P(LabTraffic, TcpEchoBothWays) {
    expectTcpEcho(topo_.b, GetParam().addr_b, topo_.a);
    expectTcpEcho(topo_.a, GetParam().addr_a, topo_.b);
}

TEST_P(LabTraffic, UdpEchoBothWays) {
    expectUdpEcho(topo_.b, GetParam().addr_b, topo_.a);
    expectUdpEcho(topo_.a, GetParam().addr_a, topo_.b);
}

TEST_P(LabTraffic, PingBothWays) {
    const Family f = GetParam();
    EXPECT_EQ(Child(&topo_.a, nullptr, [&] { return ping(f.addr_b, 2s); }).wait(5s), 0);
    EXPECT_EQ(Child(&topo_.b, nullptr, [&] { return ping(f.addr_a, 2s, f.addr_b); }).wait(5s), 0);
}

TEST_P(LabTraffic, BindSource) {
    const Family f = GetParam();
    Child server(&topo_.b, nullptr, [&](Child::Ready& ready) {
        UniqueFd listener = tcpListen(f.addr_b, kPort);
        UniqueFd sock = udpBind(f.addr_b, kPort);
        ready.signal();
        return tcpEchoServe(listener.get(), 1, 3s) == 1 && udpEchoServe(sock.get(), 1, 3s) == 1 ? 0
                                                                                                : 1;
    });
    server.waitReady(3s);
    Child client(&topo_.a, nullptr, [&] {
        if (int err = tcpEchoRoundTrip(f.addr_b, kPort, "x", 3s, f.addr_a)) {
            return err;
        }
        return udpRoundTrip(f.addr_b, kPort, "y", 3s, f.addr_a);
    });
    EXPECT_EQ(client.wait(5s), 0);
    EXPECT_EQ(server.wait(5s), 0);
}

// Failures come back as errno values, within the timeout, without throwing.
TEST_P(LabTraffic, FailuresAreReportedAsErrno) {
    const Family f = GetParam();
    Child client(&topo_.a, nullptr, [&] {
        ConnectResult refused = tcpConnect(f.addr_b, kPort, 2s);
        if (refused.err != ECONNREFUSED) {
            return 1;
        }
        ConnectResult silent = tcpConnect(f.unused, kPort, 300ms);
        if (silent.err != ETIMEDOUT || silent.elapsed < 250ms || silent.elapsed > 1s) {
            return 2;
        }
        if (udpRoundTrip(f.addr_b, kPort, "nobody listens", 300ms) != ETIMEDOUT) {
            return 3;
        }
        if (ping(f.unused, 300ms) != ETIMEDOUT) {
            return 4;
        }
        // Binding to an address this namespace does not own.
        if (tcpConnect(f.addr_b, kPort, 1s, f.addr_b).err != EADDRNOTAVAIL) {
            return 5;
        }
        return 0;
    });
    EXPECT_EQ(client.wait(10s), 0);
}

INSTANTIATE_TEST_SUITE_P(Families, LabTraffic,
                         ::testing::Values(Family{"v4", "10.213.1.1", "10.213.1.2", "10.213.1.99"},
                                           Family{"v6", "fd00:213::1", "fd00:213::2",
                                                  "fd00:213::99"}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Lab, VethEndsLiveInTheirNamespaces) {
    Topology topo;
    int ifindex_a = topo.veth.ifindexA();
    int ifindex_b = topo.veth.ifindexB();
    EXPECT_GT(ifindex_a, 0);
    EXPECT_GT(ifindex_b, 0);
    std::string name_a = topo.veth.nameA();
    EXPECT_EQ(Child(&topo.a, nullptr,
                    [&] { return if_nametoindex(name_a.c_str()) == unsigned(ifindex_a) ? 0 : 1; })
                  .wait(2s),
              0);
    EXPECT_FALSE(trySh("ip -o link show " + name_a));  // not in the root namespace
    EXPECT_TRUE(contains(topo.b.execOut("ip -o link show"), topo.veth.nameB()));
}

// Feeds PacketBuilder frames to a real kernel through a tap device (tap RX leaves checksums
// unverified, unlike veth) and expects the kernel's answer; corrupted copies must be dropped.
struct KernelCase {
    const char* what;
    std::vector<uint8_t> frame;
    bool v6;
    uint8_t reply_proto;
    int reply_icmp_type;  // -1: any packet of reply_proto
};

bool isReply(const std::vector<uint8_t>& f, const KernelCase& c) {
    size_t l3 = 14, l4 = c.v6 ? l3 + 40 : l3 + 20;
    if (f.size() < l4 + 1 || f[12] != (c.v6 ? 0x86 : 0x08) || f[13] != (c.v6 ? 0xdd : 0x00)) {
        return false;
    }
    uint8_t proto = c.v6 ? f[l3 + 6] : f[l3 + 9];
    return proto == c.reply_proto && (c.reply_icmp_type < 0 || f[l4] == c.reply_icmp_type);
}

// True if a frame matching c arrives on the tap within timeout.
bool awaitReply(int tap, const KernelCase& c, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<uint8_t> buf(65536);
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{tap, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            return false;
        }
        ssize_t n = read(tap, buf.data(), buf.size());
        if (n > 0 && isReply({buf.begin(), buf.begin() + n}, c)) {
            return true;
        }
    }
}

TEST(Lab, KernelAcceptsBuiltPackets) {
    using PB = PacketBuilder;
    const std::string a4 = "10.213.1.1", b4 = "10.213.1.2", a6 = "fd00:213::1", b6 = "fd00:213::2";
    // Nothing listens on port 7777, so UDP draws port-unreachable and TCP a RST.
    const std::vector<KernelCase> cases = {
        {"v4 tcp", PB::ipv4(a4, b4).tcp(40000, kPort).build(), false, IPPROTO_TCP, -1},
        {"v4 udp", PB::ipv4(a4, b4).udp(40000, kPort).payload(5).build(), false, IPPROTO_ICMP, 3},
        {"v4 icmp", PB::ipv4(a4, b4).icmpEcho(9).payload(3).build(), false, IPPROTO_ICMP, 0},
        {"v6 tcp", PB::ipv6(a6, b6).tcp(40000, kPort).build(), true, IPPROTO_TCP, -1},
        {"v6 udp", PB::ipv6(a6, b6).udp(40000, kPort).payload(5).build(), true, IPPROTO_ICMPV6, 1},
        {"v6 icmp", PB::ipv6(a6, b6).icmpEcho(9).payload(3).build(), true, IPPROTO_ICMPV6, 129},
        {"v6 ext+udp",
         PB::ipv6(a6, b6)
             .ipv6ExtHeader(IPPROTO_HOPOPTS, 8)
             .ipv6ExtHeader(IPPROTO_ROUTING, 16)
             .ipv6ExtHeader(IPPROTO_DSTOPTS, 24)
             .udp(40000, kPort)
             .payload(5)
             .build(),
         true, IPPROTO_ICMPV6, 1},
        {"v6 2 KiB dstopts",
         PB::ipv6(a6, b6).ipv6ExtHeader(IPPROTO_DSTOPTS, 2048).icmpEcho(9).build(), true,
         IPPROTO_ICMPV6, 129},
        {"v6 atomic fragment", PB::ipv6(a6, b6).fragment(1, 0, false).icmpEcho(9).build(), true,
         IPPROTO_ICMPV6, 129},
    };

    NetNs ns;
    Child child(&ns, nullptr, [&]() -> int {
        UniqueFd tap(open("/dev/net/tun", O_RDWR | O_CLOEXEC));
        ifreq ifr{};
        ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
        std::strncpy(ifr.ifr_name, "zttap", IFNAMSIZ - 1);
        if (!tap || ioctl(tap.get(), TUNSETIFF, &ifr) != 0) {
            std::perror("tap");
            return 100;
        }
        // The tap owns the builder's destination MAC; replies go to its source MAC.
        sh("ip link set zttap address 02:00:00:00:00:01 up");
        sh("ip addr add " + b4 + "/24 dev zttap");
        sh("ip addr add " + b6 + "/64 dev zttap nodad");
        sh("ip neigh add " + a4 + " lladdr 02:00:00:00:00:02 dev zttap");
        sh("ip neigh add " + a6 + " lladdr 02:00:00:00:00:02 dev zttap");
        for (size_t i = 0; i < cases.size(); ++i) {
            std::vector<uint8_t> bad = cases[i].frame;
            bad.back() ^= 0x5a;  // the last byte is always covered by the L4 checksum
            if (write(tap.get(), bad.data(), bad.size()) != ssize_t(bad.size()) ||
                awaitReply(tap.get(), cases[i], 200ms)) {
                std::fprintf(stderr, "%s: corrupted packet was answered\n", cases[i].what);
                return 1 + i;
            }
            const auto& good = cases[i].frame;
            if (write(tap.get(), good.data(), good.size()) != ssize_t(good.size()) ||
                !awaitReply(tap.get(), cases[i], 2s)) {
                std::fprintf(stderr, "%s: no answer\n", cases[i].what);
                return 50 + i;
            }
        }
        std::vector<uint8_t> bad_ip = cases[2].frame;
        bad_ip[14 + 8] ^= 1;  // TTL: the IPv4 header checksum no longer matches
        if (write(tap.get(), bad_ip.data(), bad_ip.size()) != ssize_t(bad_ip.size()) ||
            awaitReply(tap.get(), cases[2], 200ms)) {
            return 99;
        }
        return 0;
    });
    EXPECT_EQ(child.wait(30s), 0);
}

TEST(Lab, NothingLeftBehind) {
    std::string ns_a, ns_b, veth_a, veth_b, cg_path;
    pid_t pid;
    {
        Topology topo;
        Cgroup2 cg;
        Child child(&topo.a, &cg, [](Child::Ready& ready) {
            ready.signal();
            pause();
            return 0;
        });
        child.waitReady(2s);
        ns_a = topo.a.name();
        ns_b = topo.b.name();
        veth_a = topo.veth.nameA();
        veth_b = topo.veth.nameB();
        cg_path = cg.path();
        pid = child.pid();

        EXPECT_EQ(procsOf(cg), std::vector<pid_t>{pid});
        std::string list = shOut("ip netns list");
        EXPECT_TRUE(contains(list, ns_a) && contains(list, ns_b)) << list;
        EXPECT_TRUE(std::filesystem::is_directory(cg_path));
    }
    std::string list = shOut("ip netns list");
    EXPECT_FALSE(contains(list, ns_a)) << list;
    EXPECT_FALSE(contains(list, ns_b)) << list;
    std::string links = shOut("ip -o link show");
    EXPECT_FALSE(contains(links, veth_a)) << links;
    EXPECT_FALSE(contains(links, veth_b)) << links;
    EXPECT_FALSE(std::filesystem::exists(cg_path));
    EXPECT_FALSE(std::filesystem::exists("/run/netns/" + ns_a));
    EXPECT_NE(kill(pid, 0), 0);  // reaped: the pid is gone
}

}  // namespace
}  // namespace ztseg::test
