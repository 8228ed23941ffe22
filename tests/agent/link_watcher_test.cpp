// LinkWatcher against the real kernel, inside a private network namespace per test.
#include "agent/link_watcher.hpp"

#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "common/lab.hpp"
#include "common/tun.hpp"

namespace ztseg::agent {
namespace {

using namespace std::chrono_literals;
using test::NetNs;

// `ip -n NS args`: runs in ns without entering it.
void ip(const NetNs& ns, const std::string& args) {
    test::sh("ip -n " + ns.name() + " " + args);
}

// Builds the watcher on a thread that has entered ns, so its sockets live there.
std::unique_ptr<LinkWatcher> watcherIn(const NetNs& ns, std::vector<std::string> patterns) {
    auto fut = std::async(std::launch::async, [&ns, patterns = std::move(patterns)] {
        if (setns(ns.fd(), CLONE_NEWNET) != 0) {
            throw std::runtime_error("setns " + ns.name() + ": " + std::strerror(errno));
        }
        return std::make_unique<LinkWatcher>(patterns);
    });
    return fut.get();
}

// Polls and processes until `done` says enough, or the timeout elapses.
std::vector<LinkEvent> collect(LinkWatcher& w,
                               const std::function<bool(const std::vector<LinkEvent>&)>& done,
                               std::chrono::milliseconds timeout = 3000ms) {
    std::vector<LinkEvent> got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(got)) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) {
            break;
        }
        pollfd pfd{w.fd(), POLLIN, 0};
        if (poll(&pfd, 1, static_cast<int>(left.count())) > 0) {
            w.process([&](const LinkEvent& ev) { got.push_back(ev); });
        }
    }
    return got;
}

auto atLeast(size_t n) {
    return [n](const std::vector<LinkEvent>& v) { return v.size() >= n; };
}

// Events still arriving within a short quiet period (should be none).
std::vector<LinkEvent> drain(LinkWatcher& w) {
    return collect(
        w, [](const auto&) { return false; }, 300ms);
}

std::set<std::string> names(const std::vector<LinkEvent>& evs, LinkEvent::Kind kind) {
    std::set<std::string> out;
    for (const auto& e : evs) {
        if (e.kind == kind) {
            out.insert(e.link.name);
        }
    }
    return out;
}

TEST(LinkWatcherTest, DumpSeesLoopbackInFreshNamespace) {
    NetNs ns;
    auto w = watcherIn(ns, {"lo"});
    auto links = w->dump();
    ASSERT_EQ(links.size(), 1u);
    EXPECT_EQ(links[0].name, "lo");
    EXPECT_EQ(links[0].ifindex, 1);
    EXPECT_FALSE(links[0].up);  // `ip netns add` leaves lo down
    ip(ns, "link set lo up");
    EXPECT_TRUE(drain(*w).empty());  // flag changes are not events
    links = w->dump();
    ASSERT_EQ(links.size(), 1u);
    EXPECT_TRUE(links[0].up);
}

// `interfaces: ["*"]` must never put XDP on loopback (it would judge, and
// drop, the host's traffic to itself, its own /metrics included).
TEST(LinkWatcherTest, GlobsNeverMatchLoopback) {
    NetNs ns;
    auto w = watcherIn(ns, {"*", "l?", "[l]o", "lo*"});
    EXPECT_TRUE(w->dump().empty()) << "lo matched a glob";
    EXPECT_FALSE(w->matches("lo", /*loopback=*/true));
    EXPECT_TRUE(w->matches("lo", /*loopback=*/false)) << "a device that only has the name";
    ip(ns, "link add ztvg0 type veth peer name ztvg1");
    ip(ns, "link set lo down");
    ip(ns, "link set lo up");
    auto evs = collect(*w, atLeast(2));
    EXPECT_EQ(names(evs, LinkEvent::Added), (std::set<std::string>{"ztvg0", "ztvg1"}));
    EXPECT_TRUE(drain(*w).empty());
    auto links = w->dump();
    ASSERT_EQ(links.size(), 2u);
    for (const auto& l : links) {
        EXPECT_NE(l.name, "lo");
        EXPECT_FALSE(l.loopback);
        EXPECT_EQ(l.type, 1) << "veths are ARPHRD_ETHER";
    }
}

// An exact name still matches what it names; ztsegd's config refuses "lo"
// and the datapath refuses to attach to loopback.
TEST(LinkWatcherTest, ExactNameReportsLoopbackAsSuch) {
    NetNs ns;
    auto w = watcherIn(ns, {"lo"});
    auto links = w->dump();
    ASSERT_EQ(links.size(), 1u);
    EXPECT_TRUE(links[0].loopback);
    EXPECT_EQ(links[0].type, 772) << "ARPHRD_LOOPBACK";
}

// A link whose type changes (where its frames start, so which XDP program it
// needs) is reported as leaving and arriving again.
TEST(LinkWatcherTest, LinkTypeChangeIsReportedAsRemovedAndAdded) {
    NetNs ns;
    std::optional<test::TunDevice> dev;
    {
        test::NetnsScope in(ns);
        dev.emplace("ztvtap0", IFF_TAP | IFF_NO_PI);
    }
    auto w = watcherIn(ns, {"ztv*"});
    auto links = w->dump();
    ASSERT_EQ(links.size(), 1u);
    EXPECT_EQ(links[0].type, ARPHRD_ETHER);
    dev->setLinkType(ARPHRD_NONE);
    auto evs = collect(*w, atLeast(2));
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[0].kind, LinkEvent::Removed);
    EXPECT_EQ(evs[0].link.type, ARPHRD_ETHER);
    EXPECT_EQ(evs[1].kind, LinkEvent::Added);
    EXPECT_EQ(evs[1].link.type, ARPHRD_NONE);
    EXPECT_EQ(evs[1].link.ifindex, links[0].ifindex);
    EXPECT_TRUE(drain(*w).empty());
}

TEST(LinkWatcherTest, DumpFiltersByGlob) {
    NetNs ns;
    ip(ns, "link add ztva0 type veth peer name other0");
    auto w = watcherIn(ns, {"ztv*"});
    auto links = w->dump();
    ASSERT_EQ(links.size(), 1u);
    EXPECT_EQ(links[0].name, "ztva0");
}

TEST(LinkWatcherTest, VethPairAddedAndRemoved) {
    NetNs ns;
    auto w = watcherIn(ns, {"ztv*"});
    EXPECT_TRUE(w->dump().empty());
    ip(ns, "link add ztvx0 type veth peer name ztvy0");
    auto added = collect(*w, atLeast(2));
    ASSERT_EQ(added.size(), 2u);
    EXPECT_EQ(names(added, LinkEvent::Added), (std::set<std::string>{"ztvx0", "ztvy0"}));
    EXPECT_NE(added[0].link.ifindex, added[1].link.ifindex);
    EXPECT_TRUE(drain(*w).empty());  // no duplicates for the follow-up NEWLINKs
    ip(ns, "link set ztvx0 up");
    ip(ns, "link set ztvy0 up");
    EXPECT_TRUE(drain(*w).empty());

    ip(ns, "link del ztvx0");  // takes the peer with it
    auto removed = collect(*w, atLeast(2));
    ASSERT_EQ(removed.size(), 2u);
    EXPECT_EQ(names(removed, LinkEvent::Removed), (std::set<std::string>{"ztvx0", "ztvy0"}));
    EXPECT_TRUE(w->dump().empty());
}

TEST(LinkWatcherTest, NonMatchingLinksAreSilent) {
    NetNs ns;
    auto w = watcherIn(ns, {"ztv*", "eth0"});
    w->dump();
    ip(ns, "link add other1 type veth peer name other2");
    ip(ns, "link add eth00 type veth peer name eth01");
    ip(ns, "link set other1 up");
    ip(ns, "link del other1");
    ip(ns, "link del eth00");
    EXPECT_TRUE(drain(*w).empty());
    ip(ns, "link add eth0 type veth peer name other3");  // exact name
    auto evs = collect(*w, atLeast(1));
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, LinkEvent::Added);
    EXPECT_EQ(evs[0].link.name, "eth0");
}

TEST(LinkWatcherTest, RenamesToAndFromMatchingNames) {
    NetNs ns;
    ip(ns, "link add plain0 type veth peer name plain9");
    auto w = watcherIn(ns, {"ztv*"});
    EXPECT_TRUE(w->dump().empty());

    ip(ns, "link set plain0 name ztvren0");  // into the pattern
    auto evs = collect(*w, atLeast(1));
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, LinkEvent::Added);
    EXPECT_EQ(evs[0].link.name, "ztvren0");
    const int idx = evs[0].link.ifindex;

    ip(ns, "link set ztvren0 name ztvren1");  // within: old leaves, new arrives
    evs = collect(*w, atLeast(2));
    ASSERT_EQ(evs.size(), 2u);
    EXPECT_EQ(evs[0].kind, LinkEvent::Removed);
    EXPECT_EQ(evs[0].link.name, "ztvren0");
    EXPECT_EQ(evs[1].kind, LinkEvent::Added);
    EXPECT_EQ(evs[1].link.name, "ztvren1");
    EXPECT_EQ(evs[1].link.ifindex, idx);

    ip(ns, "link set ztvren1 name plain1");  // out of the pattern
    evs = collect(*w, atLeast(1));
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, LinkEvent::Removed);
    EXPECT_EQ(evs[0].link.name, "ztvren1");
    EXPECT_EQ(evs[0].link.ifindex, idx);
    EXPECT_TRUE(drain(*w).empty());
}

// Creating many links without reading overruns the socket buffer; the watcher re-dumps and
// still reports each link exactly once.
TEST(LinkWatcherTest, OverrunIsRecoveredByRedump) {
    constexpr int kLinks = 300;  // veth pairs; only one end matches
    NetNs ns;
    ip(ns, "link add ztvkeep type veth peer name keepp");
    ip(ns, "link add ztvgone type veth peer name gonep");
    auto w = watcherIn(ns, {"ztv*"});
    ASSERT_EQ(w->dump().size(), 2u);
    const std::string batch = "/tmp/" + test::uniqueName("ztvb") + ".batch";
    {
        std::ofstream f(batch);
        f << "link del ztvgone\n";
        for (int i = 0; i < kLinks; ++i) {
            f << "link add ztvd" << i << " type veth peer name zp" << i << "\n";
        }
    }
    const bool ok = test::trySh("ip -n " + ns.name() + " -batch " + batch);
    std::remove(batch.c_str());
    ASSERT_TRUE(ok);
    auto evs = collect(
        *w, [](const auto& v) { return v.size() >= kLinks + 1; }, 10000ms);
    auto more = drain(*w);
    evs.insert(evs.end(), more.begin(), more.end());
    auto added = names(evs, LinkEvent::Added);
    auto removed = names(evs, LinkEvent::Removed);
    EXPECT_EQ(added.size(), static_cast<size_t>(kLinks));
    EXPECT_EQ(evs.size(), static_cast<size_t>(kLinks) + 1);  // no duplicates
    EXPECT_EQ(removed, (std::set<std::string>{"ztvgone"}));
    EXPECT_EQ(added.count("ztvkeep"), 0u);
    EXPECT_EQ(w->dump().size(), static_cast<size_t>(kLinks) + 1);
}

}  // namespace
}  // namespace ztseg::agent
