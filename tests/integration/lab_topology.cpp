#include "integration/lab_topology.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>

#include "common/error.hpp"

using namespace std::chrono_literals;

namespace ztseg::test {

DbLab::DbLab() {
    static std::atomic<int> seq{0};
    subnet_ = 100 + (getpid() + seq++) % 100;
    host_ = std::make_unique<NetNs>(uniqueName("zth"));
    peer_ = std::make_unique<NetNs>(uniqueName("ztp"));
    veth_ =
        std::make_unique<VethPair>(uniqueName("zvh"), host_.get(), uniqueName("zvp"), peer_.get());
    veth_->addAddress(0, dbAddr(4) + "/24");
    veth_->addAddress(0, dbAddr(6) + "/64");
    veth_->addAddress(1, webAddr(4) + "/24");
    veth_->addAddress(1, webAddr(6) + "/64");
    veth_->addAddress(1, intruderAddr(4) + "/24");
    veth_->addAddress(1, intruderAddr(6) + "/64");
    db_cg_ = std::make_unique<Cgroup2>(uniqueName("ztdb"));
}

namespace {
std::string labAddr(int subnet, int family, int host) {
    return family == 4 ? "10.213." + std::to_string(subnet) + "." + std::to_string(host)
                       : "fd00:213:" + std::to_string(subnet) + "::" + std::to_string(host);
}
}  // namespace

std::string DbLab::dbAddr(int family) const {
    return labAddr(subnet_, family, 1);
}
std::string DbLab::webAddr(int family) const {
    return labAddr(subnet_, family, 2);
}
std::string DbLab::intruderAddr(int family) const {
    return labAddr(subnet_, family, 3);
}

Generation DbLab::policy(uint64_t number, WorkloadMode mode) const {
    Generation g;
    g.number = number;
    for (int f : {4, 6}) {
        g.identities.push_back({IpPrefix::parse(dbAddr(f)), kDbId});
        g.identities.push_back({IpPrefix::parse(webAddr(f)), kWebId});
    }
    g.modes[kDbId] = mode;
    g.endpoints.push_back({db_cg_->id(), kDbId});
    g.rules = {
        {kDbId, kWebId, Direction::Ingress, ZTSEG_PROTO_TCP, {kDbPort, kDbPort2}, Action::Allow, 1},
        {kDbId, kWebId, Direction::Ingress, ZTSEG_PROTO_UDP, {kDbPort, kDbPort}, Action::Allow, 2},
        {kDbId, kWebId, Direction::Ingress, ZTSEG_PROTO_ICMP, {}, Action::Allow, 3},
        {kDbId, kWebId, Direction::Ingress, ZTSEG_PROTO_ICMPV6, {}, Action::Allow, 4},
        {kDbId, kWebId, Direction::Ingress, ZTSEG_PROTO_TCP, {kSshPort, kSshPort}, Action::Deny, 5},
        {kDbId, kWebId, Direction::Egress, ZTSEG_PROTO_TCP, {kWebPort, kWebPort}, Action::Allow, 6},
    };
    return g;
}

XdpMode DbLab::attach(Datapath& dp) const {
    XdpMode mode;
    {
        NetnsScope in(*host_);
        mode = dp.attachXdp(veth_->nameA());
    }
    dp.attachCgroup(db_cg_->path());
    return mode;
}

namespace {
// A TCP or UDP echo server process (dual-stack, all addresses), ready on return.
std::unique_ptr<Child> startEchoServer(NetNs* ns, Cgroup2* cg, uint16_t port, bool udp) {
    auto c = std::make_unique<Child>(ns, cg, [port, udp](Child::Ready& r) {
        UniqueFd fd = udp ? udpBind("::", port) : tcpListen("::", port);
        r.signal();
        if (udp) {
            udpEchoServe(fd.get(), 1 << 30, 60s);
        } else {
            tcpEchoServeConcurrently(fd.get(), 60s);
        }
        return 0;
    });
    c->waitReady(5s);
    return c;
}
}  // namespace

std::unique_ptr<Child> DbLab::startDbServer(uint16_t port, bool udp) {
    return startEchoServer(host_.get(), db_cg_.get(), port, udp);
}

std::unique_ptr<Child> DbLab::startServerIn(Cgroup2& cg, uint16_t port) {
    return startEchoServer(host_.get(), &cg, port, false);
}

std::unique_ptr<Child> DbLab::startWebServer(uint16_t port) {
    return startEchoServer(peer_.get(), nullptr, port, false);
}

int DbLab::inPeer(std::function<int()> fn) {
    Child c(peer_.get(), nullptr, std::move(fn));
    return c.wait(30s);
}

int DbLab::webToDb(uint16_t port) {
    std::string dst = dbAddr(4), src = webAddr(4);
    return inPeer([&] { return tcpEchoRoundTrip(dst, port, "hi", 1s, src); });
}

int DbLab::intruderToDb() {
    std::string dst = dbAddr(4), src = intruderAddr(4);
    return inPeer([&] { return tcpConnect(dst, kDbPort, 400ms, src).err; });
}

int DbLab::hostToWeb(Cgroup2& cg, uint16_t port) {
    std::string dst = webAddr(4);
    Child c(host_.get(), &cg, [&] { return tcpEchoRoundTrip(dst, port, "hi", 1s); });
    return c.wait(30s);
}

int DbLab::inDb(std::function<int()> fn) {
    Child c(host_.get(), db_cg_.get(), std::move(fn));
    return c.wait(30s);
}

}  // namespace ztseg::test
