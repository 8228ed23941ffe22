// inspectPinned reads what a pinned datapath enforces without changing it:
// every map entry, pin and link is the same before and after, and what it
// reports is what was applied and attached.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bpf/datapath_fixture.hpp"
#include "common/cgroup.hpp"
#include "common/lab.hpp"
#include "datapath/datapath_inspect.hpp"
#include "datapath/pins.hpp"

namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

using Bytes = std::vector<uint8_t>;
using Entries = std::map<Bytes, Bytes>;

// Every entry of a map (per-CPU values for every CPU).
Entries dumpMap(int fd) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    EXPECT_EQ(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
    const bool percpu = info.type == BPF_MAP_TYPE_PERCPU_ARRAY ||
                        info.type == BPF_MAP_TYPE_PERCPU_HASH ||
                        info.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
    const size_t value_size =
        percpu ? size_t(possibleCpus()) * ((info.value_size + 7) & ~7u) : info.value_size;
    Entries out;
    if (info.type == BPF_MAP_TYPE_RINGBUF) {
        return out;
    }
    Bytes key(info.key_size), next(info.key_size);
    for (bool first = true;
         bpf_map_get_next_key(fd, first ? nullptr : key.data(), next.data()) == 0; first = false) {
        key = next;
        Bytes value(value_size);
        if (bpf_map_lookup_elem(fd, key.data(), value.data()) == 0) {
            out[key] = value;
        }
    }
    return out;
}

// Everything under the pin dir: each pin, each map's entries (and those of
// the inner maps the slot maps hold), each link's id and program.
struct PinImage {
    std::map<std::string, Entries> maps;
    std::map<std::string, std::pair<uint32_t, uint32_t>> links;  // pin -> link id, program id
    std::vector<std::string> pins;
    bool operator==(const PinImage&) const = default;
};

PinImage imageOf(const std::string& pin_dir) {
    PinImage img;
    for (const auto& e : fs::recursive_directory_iterator(pin_dir)) {
        img.pins.push_back(e.path().string());
    }
    std::sort(img.pins.begin(), img.pins.end());
    for (const auto& e : fs::directory_iterator(pins::mapsDir(pin_dir))) {
        const std::string name = e.path().filename().string();
        // Written by the programs themselves, from whatever the host does
        // meanwhile (a cgroup created, an IPv6 DAD or MLD packet on the veth's
        // XDP): not what inspection could have changed.
        static const std::set<std::string> kWrittenByPackets{
            "ztseg_cg_pending", "ztseg_ct",        "ztseg_ct_new",   "ztseg_ctstats",
            "ztseg_frags",      "ztseg_flowcache", "ztseg_counters", "ztseg_evstats",
            "ztseg_ratelimit",  "ztseg_srclimit",  "ztseg_events",   "ztseg_rule_hits"};
        if (kWrittenByPackets.count(name)) {
            continue;
        }
        UniqueFd fd(bpf_obj_get(e.path().c_str()));
        EXPECT_TRUE(fd.valid()) << name;
        img.maps[name] = dumpMap(fd.get());
        bpf_map_info info{};
        uint32_t len = sizeof(info);
        bpf_obj_get_info_by_fd(fd.get(), &info, &len);
        if (info.type != BPF_MAP_TYPE_ARRAY_OF_MAPS) {
            continue;
        }
        for (const auto& [key, value] : img.maps[name]) {
            uint32_t id = 0;
            std::memcpy(&id, value.data(), sizeof(id));
            UniqueFd inner(bpf_map_get_fd_by_id(id));
            if (inner.valid()) {
                img.maps[name + "/" + std::to_string(id)] = dumpMap(inner.get());
            }
        }
    }
    for (const auto& e : fs::directory_iterator(pins::linksDir(pin_dir))) {
        UniqueFd fd(bpf_obj_get(e.path().c_str()));
        bpf_link_info info{};
        uint32_t len = sizeof(info);
        EXPECT_EQ(bpf_obj_get_info_by_fd(fd.get(), &info, &len), 0) << e.path();
        img.links[e.path().filename().string()] = {info.id, info.prog_id};
    }
    return img;
}

class Inspect : public DatapathTest {};

TEST_F(Inspect, ReportsWhatIsPinnedAndChangesNothing) {
    NetNs peer;
    VethPair veth(uniqueName("zi"), nullptr, uniqueName("zi"), &peer);
    Cgroup2 cg;
    addIdentity("10.77.0.0/16", 4242);
    addWorkload(4242, WorkloadMode::Audit);
    applyGen();
    applyGen();  // generation 2, rollback to 1
    dp().attachCgroup(cg.path());
    ASSERT_EQ(dp().attachXdp(veth.nameA(), XdpRequest::Generic), XdpMode::Generic);

    const std::string pin_dir = options().pin_dir;
    const PinImage before = imageOf(pin_dir);
    ASSERT_FALSE(before.links.empty());
    std::optional<PinnedDatapath> p = inspectPinned(pin_dir);
    EXPECT_EQ(imageOf(pin_dir), before) << "inspection changed the pinned datapath";

    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->active_generation, 2u);
    EXPECT_EQ(p->previous_generation, 1u);
    ASSERT_EQ(p->endpoints.size(), 1u);
    EXPECT_EQ(p->endpoints[0].cgroup_id, selfCgroupId());
    EXPECT_EQ(p->endpoints[0].identity, 4242u);
    EXPECT_EQ(p->endpoints[0].mode, WorkloadMode::Audit);
    EXPECT_EQ(p->endpoints[0].cgroup_path, selfCgroupPath());
    ASSERT_EQ(p->cgroups.size(), 1u);
    EXPECT_EQ(p->cgroups[0].cgroup_id, cg.id());
    EXPECT_EQ(p->cgroups[0].cgroup_path, cg.path());
    EXPECT_EQ(p->cgroups[0].hooks,
              (std::vector<std::string>{"ingress", "egress", "connect4", "connect6", "sendmsg4",
                                        "sendmsg6", "sockops"}));
    ASSERT_EQ(p->xdp.size(), 1u);
    EXPECT_EQ(p->xdp[0].ifname, veth.nameA());
    EXPECT_EQ(p->xdp[0].mode, XdpMode::Generic);
    EXPECT_EQ(p->xdp[0].program, kXdpEthernetProg);
    EXPECT_EQ(p->raw_guard, RawGuardKind::None) << "the fixture loads no guard";

    dp().detachXdp(veth.nameA());
    dp().detachCgroup(cg.path());
}

TEST_F(Inspect, NothingPinnedIsNothingAndCreatesNothing) {
    const std::string dir = options().pin_dir + "-absent";
    EXPECT_FALSE(inspectPinned(dir).has_value());
    EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace ztseg::test
