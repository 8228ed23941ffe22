// XdpInterfaces against the real kernel, in a private network namespace: XDP
// on every interface `interfaces` names, with the program its link type needs;
// loopback never; a refused link type logged while the others are attached;
// adopted attachments kept, wrong ones replaced, unwanted ones removed.
#include "agent/xdp_interfaces.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <poll.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <sstream>

#include "common/error.hpp"
#include "common/lab.hpp"
#include "common/tun.hpp"

namespace ztseg::agent {
namespace {

using namespace std::chrono_literals;
using test::TunDevice;
using test::uniqueName;

constexpr auto kBpfTcxIngress = bpf_attach_type(46);  // newer than Debian 12's uapi headers

// Everything logged while it lives.
class LogCapture {
  public:
    LogCapture() : prev_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
        spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
    }
    ~LogCapture() { spdlog::set_default_logger(prev_); }
    std::string text() const { return out_.str(); }

  private:
    std::ostringstream out_;
    std::shared_ptr<spdlog::logger> prev_;
};

// The whole test in a fresh network namespace with its own pinned datapath.
class XdpInterfacesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        in_.emplace(ns_);
        test::sh("ip -n " + ns_.name() + " link set lo up");
        opts_.pin_dir = "/sys/fs/bpf/" + uniqueName("ztxi");
        opts_.policy_capacity = 1024;
        opts_.identity_capacity = 1024;
        dp_.emplace(Datapath::create(opts_));
    }
    void TearDown() override {
        dp_.reset();
        Datapath::uninstall(opts_.pin_dir);
        in_.reset();
    }

    std::string programOn(const std::string& ifname) {
        for (const auto& a : dp_->xdpAttachments()) {
            if (a.ifname == ifname) {
                return a.program;
            }
        }
        return "(none)";
    }
    // Programs on the device's tcx ingress chain.
    static uint32_t tcxProgsOn(int ifindex) {
        uint32_t ids[8];
        LIBBPF_OPTS(bpf_prog_query_opts, q, .prog_ids = ids, .prog_cnt = 8);
        if (bpf_prog_query_opts(ifindex, kBpfTcxIngress, &q) != 0) {
            return 0;
        }
        return q.prog_cnt;
    }
    static bool anyXdpOn(int ifindex) {
        LIBBPF_OPTS(bpf_xdp_query_opts, q);
        return bpf_xdp_query(ifindex, 0, &q) == 0 && q.prog_id != 0;
    }
    // The id of the XDP link pinned for `ifname` (0 if none): the same id
    // means the same attachment, kept.
    uint32_t linkId(const std::string& ifname) {
        int fd = bpf_obj_get((opts_.pin_dir + "/links/xdp-" + ifname).c_str());
        if (fd < 0) {
            return 0;
        }
        UniqueFd link(fd);
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        return bpf_obj_get_info_by_fd(fd, &info, &len) == 0 ? info.id : 0;
    }

    test::NetNs ns_;
    std::optional<test::NetnsScope> in_;
    DatapathOptions opts_;
    std::optional<Datapath> dp_;
};

TEST_F(XdpInterfacesTest, EveryInterfaceButLoopbackWithItsProgram) {
    TunDevice tun(uniqueName("ztun"), IFF_TUN | IFF_NO_PI);
    TunDevice tap(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);
    TunDevice ib(uniqueName("ztib"), IFF_TUN | IFF_NO_PI);
    ib.setLinkType(ARPHRD_INFINIBAND);
    LogCapture log;
    XdpInterfaces x(*dp_, {"*"}, XdpRequest::Generic);
    x.start();  // the refused interface is no exception: the others are attached

    auto attached = x.attached();
    EXPECT_EQ(attached.size(), 2u);
    EXPECT_EQ(attached.count(tun.name()), 1u);
    EXPECT_EQ(attached.count(tap.name()), 1u);
    EXPECT_EQ(programOn(tun.name()), "ztseg_xdp_l3");
    EXPECT_EQ(programOn(tap.name()), "ztseg_xdp");
    EXPECT_FALSE(anyXdpOn(ib.ifindex()));
    EXPECT_FALSE(anyXdpOn(1)) << "XDP on lo";
    EXPECT_NE(log.text().find("interface " + ib.name() + ": attach XDP to " + ib.name() +
                              ": link type infiniband (32) is not supported"),
              std::string::npos)
        << log.text();
    EXPECT_EQ(log.text().find("loopback"), std::string::npos) << log.text();

    // one that appears later is attached as it appears
    TunDevice later(uniqueName("ztun"), IFF_TUN | IFF_NO_PI);
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!x.attached().count(later.name()) && std::chrono::steady_clock::now() < deadline) {
        pollfd p{x.fd(), POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            x.process();
        }
    }
    EXPECT_EQ(programOn(later.name()), "ztseg_xdp_l3");
}

// A restarted daemon adopts the pinned datapath: what is right stays attached
// (the same links, enforcement never paused), what the config no longer
// names goes.
TEST_F(XdpInterfacesTest, AdoptionKeepsAttachmentsAndDropsUnwantedOnes) {
    TunDevice tun(uniqueName("ztun"), IFF_TUN | IFF_NO_PI);
    TunDevice tap(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);
    XdpInterfaces(*dp_, {"*"}, XdpRequest::Generic).start();
    uint32_t tun_link = linkId(tun.name()), tap_link = linkId(tap.name());
    ASSERT_NE(tun_link, 0u);

    Datapath adopted = Datapath::adopt(opts_);
    XdpInterfaces again(adopted, {"*"}, XdpRequest::Generic);
    again.start();
    EXPECT_EQ(again.attached().size(), 2u);
    EXPECT_EQ(linkId(tun.name()), tun_link) << "re-attached instead of kept";
    EXPECT_EQ(linkId(tap.name()), tap_link);

    XdpInterfaces narrowed(adopted, {tap.name()}, XdpRequest::Generic);
    narrowed.start();
    EXPECT_EQ(narrowed.attached().size(), 1u);
    EXPECT_FALSE(anyXdpOn(tun.ifindex())) << "XDP left on an interface no longer named";
    EXPECT_EQ(linkId(tap.name()), tap_link);

    XdpInterfaces none(adopted, {}, XdpRequest::Generic);  // cgroup_only
    none.start();
    EXPECT_TRUE(none.attached().empty());
    EXPECT_FALSE(anyXdpOn(tap.ifindex()));
}

// A pinned attachment whose program does not fit the link's type any more
// (here: a tap switched to an IP-first link type) is replaced.
TEST_F(XdpInterfacesTest, WrongProgramReplaced) {
    TunDevice dev(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);
    XdpInterfaces(*dp_, {"zta*"}, XdpRequest::Generic).start();
    ASSERT_EQ(programOn(dev.name()), "ztseg_xdp");
    dev.setLinkType(ARPHRD_NONE);
    LogCapture log;
    XdpInterfaces again(*dp_, {"zta*"}, XdpRequest::Generic);
    again.start();
    EXPECT_EQ(programOn(dev.name()), "ztseg_xdp_l3");
    EXPECT_NE(log.text().find("pinned ingress link runs ztseg_xdp, replacing it"),
              std::string::npos)
        << log.text();
}

// A running ztsegd follows a link type change: the program the new type
// needs, or none (logged) when the new type is refused.
TEST_F(XdpInterfacesTest, LinkTypeChangeFollowed) {
    TunDevice dev(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);
    XdpInterfaces x(*dp_, {"zta*"}, XdpRequest::Generic);
    x.start();
    ASSERT_EQ(programOn(dev.name()), "ztseg_xdp");
    auto processUntil = [&](const std::function<bool()>& done) {
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            pollfd p{x.fd(), POLLIN, 0};
            if (poll(&p, 1, 100) > 0) {
                x.process();
            }
        }
    };
    dev.setLinkType(ARPHRD_NONE);
    processUntil([&] { return programOn(dev.name()) == "ztseg_xdp_l3"; });
    EXPECT_EQ(programOn(dev.name()), "ztseg_xdp_l3");

    dev.setLinkType(ARPHRD_INFINIBAND);
    processUntil([&] { return !anyXdpOn(dev.ifindex()); });
    EXPECT_FALSE(anyXdpOn(dev.ifindex()));
    EXPECT_TRUE(x.attached().empty());
}

// Auto (ztsegd's default) on virtual devices: tc at tcx ingress, with the
// program the link type needs, reported as "tcx"; no XDP there. A restarted
// daemon keeps the very same tcx links; cgroup_only removes them.
TEST_F(XdpInterfacesTest, AutoAttachesTcxOnVirtualDevicesAndAdoptionKeepsIt) {
    TunDevice tun(uniqueName("ztun"), IFF_TUN | IFF_NO_PI);
    TunDevice tap(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);
    XdpInterfaces x(*dp_, {"*"}, XdpRequest::Auto);
    x.start();
    auto attached = x.attached();
    EXPECT_EQ(attached[tun.name()], "tcx");
    EXPECT_EQ(attached[tap.name()], "tcx");
    EXPECT_EQ(programOn(tun.name()), "ztseg_tcx_l3");
    EXPECT_EQ(programOn(tap.name()), "ztseg_tcx");
    EXPECT_EQ(tcxProgsOn(tun.ifindex()), 1u);
    EXPECT_EQ(tcxProgsOn(tap.ifindex()), 1u);
    EXPECT_FALSE(anyXdpOn(tun.ifindex()));
    EXPECT_FALSE(anyXdpOn(tap.ifindex()));
    uint32_t tun_link = linkId(tun.name()), tap_link = linkId(tap.name());
    ASSERT_NE(tun_link, 0u);

    Datapath adopted = Datapath::adopt(opts_);
    XdpInterfaces again(adopted, {"*"}, XdpRequest::Auto);
    again.start();
    EXPECT_EQ(again.attached()[tap.name()], "tcx");
    EXPECT_EQ(linkId(tun.name()), tun_link) << "re-attached instead of kept";
    EXPECT_EQ(linkId(tap.name()), tap_link) << "re-attached instead of kept";
    EXPECT_EQ(tcxProgsOn(tap.ifindex()), 1u);

    XdpInterfaces none(adopted, {}, XdpRequest::Auto);  // cgroup_only
    none.start();
    EXPECT_TRUE(none.attached().empty());
    EXPECT_EQ(tcxProgsOn(tun.ifindex()), 0u);
    EXPECT_EQ(tcxProgsOn(tap.ifindex()), 0u);
}

// Generic XDP pinned by an earlier run (or an older build) on a virtual
// device becomes tcx: the tcx link is made before the XDP link goes, so the
// device is enforced throughout, and no XDP is left behind.
TEST_F(XdpInterfacesTest, PinnedGenericXdpOnVirtualDeviceReplacedByTcx) {
    TunDevice tap(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);
    XdpInterfaces(*dp_, {"zta*"}, XdpRequest::Generic).start();
    ASSERT_TRUE(anyXdpOn(tap.ifindex()));
    Datapath adopted = Datapath::adopt(opts_);
    XdpInterfaces again(adopted, {"zta*"}, XdpRequest::Auto);
    again.start();
    EXPECT_EQ(again.attached()[tap.name()], "tcx");
    EXPECT_EQ(programOn(tap.name()), "ztseg_tcx");
    EXPECT_FALSE(anyXdpOn(tap.ifindex()));
    EXPECT_EQ(tcxProgsOn(tap.ifindex()), 1u);
}

// Fail closed: when tcx cannot be used (here: a datapath pinned by a build
// without the tcx programs), the device gets generic XDP and both the log
// and the status say why; it is never left unenforced.
TEST_F(XdpInterfacesTest, WithoutTcxFallsBackToGenericXdpAndSaysSo) {
    TunDevice tap(uniqueName("ztap"), IFF_TAP | IFF_NO_PI);
    for (const char* p : {"ztseg_tcx", "ztseg_tcx_l3"}) {
        ASSERT_EQ(::unlink((opts_.pin_dir + "/progs/" + p).c_str()), 0);
    }
    Datapath older = Datapath::adopt(opts_);
    LogCapture log;
    XdpInterfaces x(older, {"zta*"}, XdpRequest::Auto);
    x.start();
    std::string shown = x.attached()[tap.name()];
    EXPECT_EQ(shown.rfind("generic (tcx fallback: ", 0), 0u) << shown;
    EXPECT_TRUE(anyXdpOn(tap.ifindex()));
    EXPECT_EQ(programOn(tap.name()), "ztseg_xdp");
    EXPECT_NE(log.text().find("interface " + tap.name() +
                              ": the pinned datapath predates the tcx "
                              "programs (reinstall to get them); falling back to generic XDP"),
              std::string::npos)
        << log.text();
}

}  // namespace
}  // namespace ztseg::agent
