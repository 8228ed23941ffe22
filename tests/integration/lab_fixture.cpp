#include "integration/lab_fixture.hpp"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>

#include "common/error.hpp"

using namespace std::chrono_literals;

namespace ztseg::test {

NetnsScope::NetnsScope(const NetNs& ns) {
    saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved_ < 0 || setns(ns.fd(), CLONE_NEWNET) != 0) {
        throwErrno("enter netns " + ns.name(), errno);
    }
}

NetnsScope::~NetnsScope() {
    if (saved_ >= 0) {
        setns(saved_, CLONE_NEWNET);
        ::close(saved_);
    }
}

void LabTest::SetUp() {
    static std::atomic<int> seq{0};
    subnet_ = 100 + (getpid() + seq++) % 100;
    host_ = std::make_unique<NetNs>(uniqueName("zth"));
    peer_ = std::make_unique<NetNs>(uniqueName("ztp"));
    veth_ =
        std::make_unique<VethPair>(uniqueName("zvh"), host_.get(), uniqueName("zvp"), peer_.get());
    std::string n = std::to_string(subnet_);
    veth_->addAddress(0, "10.213." + n + ".1/24");
    veth_->addAddress(0, "fd00:213:" + n + "::1/64");
    for (const char* h : {"2", "3"}) {
        veth_->addAddress(1, "10.213." + n + "." + h + "/24");
        veth_->addAddress(1, "fd00:213:" + n + "::" + h + "/64");
    }
    db_cg_ = std::make_unique<Cgroup2>(uniqueName("ztdb"));

    opts_.pin_dir =
        "/sys/fs/bpf/ztseg-it-" + std::to_string(getpid()) + "-" + std::to_string(seq++);
    opts_.policy_capacity = 1 << 16;
    opts_.identity_capacity = 1 << 16;
    opts_.drop_event_interval_ns = 0;
    dp_.emplace(Datapath::create(opts_));
    reader_ = std::make_unique<EventReader>(
        dp_->eventsFd(), [this](const ztseg_flow_event& e) { events_.push_back(e); });
}

void LabTest::TearDown() {
    reader_.reset();
    dp_.reset();
    Datapath::uninstall(opts_.pin_dir);
    db_cg_.reset();
    veth_.reset();
    peer_.reset();
    host_.reset();
}

std::string LabTest::dbAddr(int family) const {
    return family == 4 ? "10.213." + std::to_string(subnet_) + ".1"
                       : "fd00:213:" + std::to_string(subnet_) + "::1";
}
std::string LabTest::webAddr(int family) const {
    return family == 4 ? "10.213." + std::to_string(subnet_) + ".2"
                       : "fd00:213:" + std::to_string(subnet_) + "::2";
}
std::string LabTest::intruderAddr(int family) const {
    return family == 4 ? "10.213." + std::to_string(subnet_) + ".3"
                       : "fd00:213:" + std::to_string(subnet_) + "::3";
}

Generation LabTest::policy(uint64_t number, WorkloadMode mode) const {
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

void LabTest::apply(uint64_t number, WorkloadMode mode) {
    dp_->apply(policy(number, mode));
}

void LabTest::attachAll() {
    {
        NetnsScope in(*host_);
        dp_->attachXdp(veth_->nameA());
    }
    dp_->attachCgroup(db_cg_->path());
}

std::unique_ptr<Child> LabTest::startDbServer(uint16_t port, bool udp) {
    auto c = std::make_unique<Child>(host_.get(), db_cg_.get(), [port, udp](Child::Ready& r) {
        if (udp) {
            UniqueFd fd = udpBind("::", port);
            r.signal();
            udpEchoServe(fd.get(), 1 << 30, 60s);
        } else {
            UniqueFd fd = tcpListen("::", port);
            r.signal();
            tcpEchoServe(fd.get(), 1 << 30, 60s);
        }
        return 0;
    });
    c->waitReady(5s);
    return c;
}

std::unique_ptr<Child> LabTest::startWebServer(uint16_t port) {
    auto c = std::make_unique<Child>(peer_.get(), nullptr, [port](Child::Ready& r) {
        UniqueFd fd = tcpListen("::", port);
        r.signal();
        tcpEchoServe(fd.get(), 1 << 30, 60s);
        return 0;
    });
    c->waitReady(5s);
    return c;
}

int LabTest::inPeer(std::function<int()> fn) {
    Child c(peer_.get(), nullptr, std::move(fn));
    return c.wait(30s);
}

int LabTest::inDb(std::function<int()> fn) {
    Child c(host_.get(), db_cg_.get(), std::move(fn));
    return c.wait(30s);
}

std::vector<ztseg_flow_event> LabTest::takeEvents() {
    reader_->drain();
    return std::exchange(events_, {});
}

}  // namespace ztseg::test
