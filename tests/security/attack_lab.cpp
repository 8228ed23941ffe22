#include "security/attack_lab.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "model/names.hpp"

namespace ztseg::test {

std::string familyLabel(const ::testing::TestParamInfo<int>& info) {
    return info.param == 6 ? "IPv6" : "IPv4";
}

PacketBuilder packetFor(int family, const std::string& src, const std::string& dst) {
    return family == 6 ? PacketBuilder::ipv6(src, dst) : PacketBuilder::ipv4(src, dst);
}

// ---- Gate ----

Gate::Gate() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("gate: pipe2: ") + std::strerror(errno));
    }
    r_.reset(fds[0]);
    w_.reset(fds[1]);
}

void Gate::open() {
    while (write(w_.get(), "g", 1) < 0 && errno == EINTR) {
    }
}

bool Gate::wait(std::chrono::milliseconds timeout) {
    pollfd p{r_.get(), POLLIN, 0};
    int rc;
    while ((rc = poll(&p, 1, int(timeout.count()))) < 0 && errno == EINTR) {
    }
    return rc > 0;
}

// ---- AttackLab ----

AttackLab::AttackLab(DatapathOptions opts, bool with_datapath) : opts_(std::move(opts)) {
    static std::atomic<int> seq{0};
    const int n = seq++;
    subnet_ = 20 + (getpid() + n) % 200;
    opts_.pin_dir = "/sys/fs/bpf/ztseg-sec-" + std::to_string(getpid()) + "-" + std::to_string(n);
    opts_.policy_capacity = 1 << 14;
    opts_.identity_capacity = 1 << 12;
    opts_.ringbuf_bytes = 1 << 16;

    host_ = std::make_unique<NetNs>(uniqueName("zsh"));
    peer_ = std::make_unique<NetNs>(uniqueName("zsp"));
    veth_ = std::make_unique<VethPair>(uniqueName("zsvh"), host_.get(), uniqueName("zsvp"),
                                       peer_.get());
    veth_->addAddress(0, addr(Role::Db, 4) + "/24");
    veth_->addAddress(0, addr(Role::Db, 6) + "/64");
    for (Role r : {Role::Web, Role::Intruder}) {
        veth_->addAddress(1, addr(r, 4) + "/24");
        veth_->addAddress(1, addr(r, 6) + "/64");
    }
    // Neighbours known up front: no ARP/ND round trip inside a measured exchange.
    const std::string mac = macOf(*host_, veth_->nameA());
    peer_->exec("ip neigh replace " + addr(Role::Db, 4) + " lladdr " + mac + " dev " +
                veth_->nameB() + " nud permanent");
    peer_->exec("ip -6 neigh replace " + addr(Role::Db, 6) + " lladdr " + mac + " dev " +
                veth_->nameB() + " nud permanent");

    const std::string tag = uniqueName("ztsc");
    root_ = std::make_unique<Cgroup2>(tag);
    db_ = std::make_unique<Cgroup2>(tag + "/db");
    other_ = std::make_unique<Cgroup2>(tag + "/other");
    tools_ = std::make_unique<Cgroup2>(uniqueName("ztst"));
    if (with_datapath) {
        dp_.emplace(Datapath::create(opts_));
        snapshot();
    }
}

AttackLab::~AttackLab() {
    if (dp_) {
        dp_.reset();
        try {
            Datapath::uninstall(opts_.pin_dir);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "warning: uninstall %s: %s\n", opts_.pin_dir.c_str(), e.what());
        }
    }
    db_.reset();
    other_.reset();
    root_.reset();
    tools_.reset();
    veth_.reset();
    peer_.reset();
    host_.reset();
}

std::string AttackLab::addr(Role r, int family) const {
    const int host = int(r);
    return family == 4 ? "10.214." + std::to_string(subnet_) + "." + std::to_string(host)
                       : "fd00:214:" + std::to_string(subnet_) + "::" + std::to_string(host);
}

Generation AttackLab::policy(uint64_t number, WorkloadMode mode) const {
    Generation g;
    g.number = number;
    for (int f : {4, 6}) {
        g.identities.push_back({IpPrefix::parse(addr(Role::Db, f)), kDbId});
        g.identities.push_back({IpPrefix::parse(addr(Role::Web, f)), kWebId});
    }
    g.modes[kDbId] = mode;
    g.endpoints.push_back({db_->id(), kDbId});
    using D = Direction;
    using A = Action;
    const PortRange udp_egress{kDbUdpEgressPort, kDbUdpEgressPort};
    g.rules = {
        {kDbId, kWebId, D::Ingress, ZTSEG_PROTO_TCP, {kDbPort, kDbPort2}, A::Allow, 1},
        {kDbId, kWebId, D::Ingress, ZTSEG_PROTO_UDP, {kDbPort, kDbPort}, A::Allow, 2},
        {kDbId, kWebId, D::Ingress, ZTSEG_PROTO_ICMP, {}, A::Allow, 3},
        {kDbId, kWebId, D::Ingress, ZTSEG_PROTO_ICMPV6, {}, A::Allow, 4},
        {kDbId, kWebId, D::Ingress, ZTSEG_PROTO_TCP, {kSshPort, kSshPort}, A::Deny, 5},
        {kDbId, kWebId, D::Egress, ZTSEG_PROTO_TCP, {kWebPort, kWebPort}, A::Allow, 6},
        {kDbId, kWebId, D::Egress, ZTSEG_PROTO_UDP, udp_egress, A::Allow, 7},
    };
    return g;
}

void AttackLab::attachHooks(const std::string& path) {
    dp_->attachCgroup(path.empty() ? root_->path() : path);
}

void AttackLab::attachXdp() {
    NetnsScope in(*host_);
    dp_->attachXdp(veth_->nameA());
}

std::string macOf(NetNs& ns, const std::string& ifname) {
    std::string out = ns.execOut("cat /sys/class/net/" + ifname + "/address");
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
        out.pop_back();
    }
    return out;
}

int sendL3(int packet_fd, const std::string& ifname, const std::string& dst_mac,
           const std::vector<uint8_t>& l3) {
    sockaddr_ll to{};
    to.sll_family = AF_PACKET;
    to.sll_ifindex = int(if_nametoindex(ifname.c_str()));
    to.sll_protocol = htons((l3[0] >> 4) == 6 ? ETH_P_IPV6 : ETH_P_IP);
    to.sll_halen = ETH_ALEN;
    std::sscanf(dst_mac.c_str(), "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &to.sll_addr[0], &to.sll_addr[1],
                &to.sll_addr[2], &to.sll_addr[3], &to.sll_addr[4], &to.sll_addr[5]);
    return sendto(packet_fd, l3.data(), l3.size(), 0, reinterpret_cast<sockaddr*>(&to),
                  sizeof(to)) == ssize_t(l3.size())
               ? 0
               : errno;
}

void AttackLab::sysctl(NetNs& ns, const std::string& key, const std::string& value) {
    ns.exec("sysctl -qw " + key + "=\"" + value + "\"");
}

int AttackLab::inPeer(std::function<int()> fn) {
    Child c(peer_.get(), tools_.get(), std::move(fn));
    return c.wait(30s);
}

int AttackLab::inHost(Cgroup2* cg, std::function<int()> fn) {
    Child c(host_.get(), cg, std::move(fn));
    return c.wait(30s);
}

namespace {
std::unique_ptr<Child> echoServer(NetNs* ns, Cgroup2* cg, uint16_t port, bool udp,
                                  const std::string& addr) {
    auto c = std::make_unique<Child>(ns, cg, [port, udp, addr](Child::Ready& r) {
        UniqueFd fd = udp ? udpBind(addr, port) : tcpListen(addr, port);
        r.signal();
        if (udp) {
            udpEchoServe(fd.get(), 1 << 30, 60s);
        } else {
            tcpEchoServe(fd.get(), 1 << 30, 60s);
        }
        return 0;
    });
    c->waitReady(5s);
    return c;
}
}  // namespace

std::unique_ptr<Child> AttackLab::serveInHost(Cgroup2* cg, uint16_t port, bool udp,
                                              const std::string& addr) {
    return echoServer(host_.get(), cg, port, udp, addr);
}

std::unique_ptr<Child> AttackLab::serveInPeer(uint16_t port, bool udp, const std::string& addr) {
    return echoServer(peer_.get(), tools_.get(), port, udp, addr);
}

int AttackLab::inject(const std::vector<std::vector<uint8_t>>& l3_packets, int cpu) {
    Shared<int> sent;
    const std::string ifname = veth_->nameB();
    const std::string mac = macOf(*host_, veth_->nameA());
    int status = inPeer([&] {
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            if (sched_setaffinity(0, sizeof(set), &set) != 0) {
                std::perror("inject: sched_setaffinity");
                return 4;
            }
        }
        UniqueFd fd(socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        if (!fd) {
            std::perror("inject: socket(AF_PACKET)");
            return 2;
        }
        for (const auto& p : l3_packets) {
            if (int err = sendL3(fd.get(), ifname, mac, p)) {
                std::fprintf(stderr, "inject: sendto: %s\n", std::strerror(err));
                return 3;
            }
            ++*sent;
        }
        return 0;
    });
    if (status != 0) {
        throw std::runtime_error("inject from peer namespace failed (status " +
                                 std::to_string(status) + ", " + std::to_string(*sent) + " of " +
                                 std::to_string(l3_packets.size()) + " sent)");
    }
    return *sent;
}

uint64_t AttackLab::counted(uint32_t hook, uint32_t reason) const {
    return dp_->counters().at(hook, reason).packets - base_.at(hook, reason).packets;
}

std::string AttackLab::moved(uint32_t hook) const {
    std::string s;
    for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
        if (uint64_t c = counted(hook, r)) {
            s += (s.empty() ? "" : " ") + std::string(reasonName(r)) + "=" + std::to_string(c);
        }
    }
    return s.empty() ? "nothing" : s;
}

uint64_t AttackLab::countedAll(uint32_t hook) const {
    uint64_t sum = 0;
    for (uint32_t r = 0; r < ZTSEG_REASON_MAX; ++r) {
        sum += counted(hook, r);
    }
    return sum;
}

// ---- sockets ----

UniqueFd tcpConnected(const std::string& src, const std::string& dst, uint16_t port,
                      std::chrono::milliseconds timeout) {
    const SockAddress to = sockAddress(dst, port), from = sockAddress(src, 0);
    UniqueFd fd(socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd || bind(fd.get(), from.sa(), from.len) != 0) {
        throw std::runtime_error("tcp " + src + " -> " + dst + ": socket/bind: " + errName(errno));
    }
    if (connect(fd.get(), to.sa(), to.len) != 0 && errno != EINPROGRESS) {
        throw std::runtime_error("tcp " + src + " -> " + dst + ": connect: " + errName(errno));
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int so_error = ETIMEDOUT;
    socklen_t len = sizeof(so_error);
    if (poll(&p, 1, int(timeout.count())) == 1) {
        getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
    }
    if (so_error != 0) {
        throw std::runtime_error("tcp " + src + " -> " + dst + ": connect: " + errName(so_error));
    }
    return fd;
}

int recvExactly(int fd, size_t n, std::chrono::milliseconds timeout, std::string& out) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    out.clear();
    while (out.size() < n) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, int(left.count())) == 0) {
            return ETIMEDOUT;
        }
        char buf[512];
        ssize_t r = recv(fd, buf, std::min(sizeof(buf), n - out.size()), MSG_DONTWAIT);
        if (r == 0) {
            return ECONNRESET;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            return errno;
        }
        out.append(buf, size_t(r));
    }
    return 0;
}

int countDatagrams(int fd, std::chrono::milliseconds idle) {
    int n = 0;
    char buf[2048];
    for (pollfd p{fd, POLLIN, 0}; poll(&p, 1, int(idle.count())) > 0;) {
        if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) >= 0) {
            ++n;
        } else if (errno != EAGAIN && errno != EINTR) {
            break;
        }
    }
    return n;
}

void tcpEchoServeAll(const std::vector<int>& listen_fds, std::chrono::milliseconds idle) {
    std::vector<pollfd> p;
    for (int fd : listen_fds) {
        p.push_back({fd, POLLIN, 0});
    }
    while (poll(p.data(), p.size(), int(idle.count())) > 0) {
        for (auto& e : p) {
            if (e.revents & POLLIN) {
                UniqueFd conn(accept4(e.fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
                if (conn) {
                    char buf[512];
                    pollfd c{conn.get(), POLLIN, 0};
                    if (poll(&c, 1, 2000) > 0) {
                        ssize_t n = recv(conn.get(), buf, sizeof(buf), 0);
                        if (n > 0) {
                            send(conn.get(), buf, size_t(n), MSG_NOSIGNAL);
                        }
                    }
                }
            }
        }
    }
}

void moveIntoCgroup(const std::string& path) {
    std::ofstream procs(path + "/cgroup.procs");
    procs << "0" << std::flush;
    if (!procs) {
        throw std::runtime_error("join cgroup " + path + ": write cgroup.procs failed");
    }
}

void moveIntoNewChildCgroup(const std::string& parent, const std::string& name) {
    const std::string path = parent + "/" + name;
    if (mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        throw std::runtime_error("mkdir " + path + ": " + std::strerror(errno));
    }
    moveIntoCgroup(path);
}

std::string errName(int err) {
    if (err == 0) {
        return "0 (success)";
    }
    const char* name = strerrorname_np(err);
    return name ? name : std::to_string(err);
}

std::string relativeCgroupPath(const Cgroup2& cg) {
    return cg.path().substr(Cgroup2::mountPoint().size() + 1);
}

int connectFrom(const std::string& src, const std::string& dst, uint16_t port,
                std::chrono::milliseconds timeout) {
    return tcpConnect(dst, port, timeout, src).err;
}

void setIcmpRest(std::vector<uint8_t>& l3, uint32_t rest) {
    const bool v6 = (l3[0] >> 4) == 6;
    const size_t off = v6 ? 40 : (l3[0] & 0x0f) * 4u;
    for (int i = 0; i < 4; ++i) {
        l3[off + 4 + i] = uint8_t(rest >> (24 - 8 * i));
    }
    l3[off + 2] = l3[off + 3] = 0;
    std::vector<uint8_t> sum;
    if (v6) {  // pseudo header: addresses, upper-layer length, next header 58
        const uint32_t len = uint32_t(l3.size() - off);
        sum.assign(l3.begin() + 8, l3.begin() + 40);
        for (int i = 0; i < 4; ++i) {
            sum.push_back(uint8_t(len >> (24 - 8 * i)));
        }
        sum.insert(sum.end(), {0, 0, 0, 58});
    }
    sum.insert(sum.end(), l3.begin() + off, l3.end());
    const uint16_t c = internetChecksum(sum);
    l3[off + 2] = uint8_t(c >> 8);
    l3[off + 3] = uint8_t(c & 0xff);
}

}  // namespace ztseg::test
