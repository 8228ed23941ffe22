#include "xdp_filter.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/error.hpp"
#include "integration/lab_topology.hpp"

namespace ztseg::bench {

namespace {

// Where xdp-filter pins its maps (fixed in xdp-tools), and the flags its CLI
// stores per CPU for "--mode src" (MAP_FLAG_SRC in xdp-filter/common_kern_user.h).
constexpr const char* kPinDir = "/sys/fs/bpf/xdp-filter";
// libxdp's own directory (its multi-program dispatcher); created on first use.
constexpr const char* kLibxdpDir = "/sys/fs/bpf/xdp";
constexpr uint64_t kFlagSrc = 1;

UniqueFd openPin(const std::string& name) {
    std::string path = std::string(kPinDir) + "/" + name;
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
        throwErrno("open xdp-filter map " + path, errno);
    }
    return UniqueFd(fd);
}

int possibleCpus() {
    int n = libbpf_num_possible_cpus();
    if (n <= 0) {
        throwErrno("count possible CPUs", -n);
    }
    return n;
}

}  // namespace

bool XdpFilter::installed() {
    return test::trySh("command -v xdp-filter >/dev/null");
}

XdpFilter::XdpFilter(const test::NetNs& ns, std::string ifname, bool native)
    : ns_(ns.name()), ifname_(std::move(ifname)), native_(native) {
    if (std::filesystem::exists(kPinDir)) {
        throw Error(std::string("xdp-filter: ") + kPinDir +
                    " already exists: another xdp-filter is loaded on this machine (or a crashed "
                    "run left it); unload it (xdp-filter unload --all in its namespace) or remove "
                    "the directory, the benchmark will not share its maps");
    }
    made_libxdp_dir_ = !std::filesystem::exists(kLibxdpDir);
    // nsenter keeps the mount namespace (ip netns exec would hide bpffs).
    cli(std::string("load --policy deny --mode ") + (native ? "native " : "skb ") + ifname_);
    try {
        int ifindex;
        uint32_t id = 0;
        {
            test::NetnsScope in(ns);
            ifindex = int(if_nametoindex(ifname_.c_str()));
            if (ifindex == 0) {
                throwErrno("xdp-filter: find interface " + ifname_, errno);
            }
            LIBBPF_OPTS(bpf_xdp_query_opts, q);
            if (bpf_xdp_query(ifindex, 0, &q) != 0) {
                throwErrno("xdp-filter: query XDP program on " + ifname_, errno);
            }
            id = native ? q.drv_prog_id : q.skb_prog_id;
        }
        int fd = id ? bpf_prog_get_fd_by_id(id) : -1;
        if (fd < 0) {
            throw Error("xdp-filter: no XDP program attached to " + ifname_ + " after load");
        }
        prog_ = UniqueFd(fd);
        ipv4_ = openPin("filter_ipv4");
        ipv6_ = openPin("filter_ipv6");
        stats_ = openPin("xdp_stats_map");
    } catch (...) {
        test::trySh("nsenter --net=/run/netns/" + ns_ + " xdp-filter unload " + ifname_ +
                    " >/dev/null 2>&1");
        throw;
    }
}

XdpFilter::~XdpFilter() {
    if (!test::trySh("nsenter --net=/run/netns/" + ns_ + " xdp-filter unload " + ifname_ +
                     " >/dev/null 2>&1")) {
        spdlog::warn("xdp-filter: unload from {} failed; remove {} by hand", ifname_, kPinDir);
    }
    std::error_code ec;
    if (made_libxdp_dir_ && std::filesystem::is_empty(kLibxdpDir, ec)) {
        std::filesystem::remove(kLibxdpDir, ec);
    }
}

void XdpFilter::cli(const std::string& args) const {
    test::sh("nsenter --net=/run/netns/" + ns_ + " xdp-filter " + args + " 2>&1");
}

std::string XdpFilter::programName() const {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(prog_.get(), &info, &len) != 0) {
        throwErrno("xdp-filter: read program info", errno);
    }
    return info.name;
}

uint32_t XdpFilter::capacity(int family) const {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd((family == 4 ? ipv4_ : ipv6_).get(), &info, &len) != 0) {
        throwErrno("xdp-filter: read map info", errno);
    }
    return info.max_entries;
}

void XdpFilter::writeAddress(int family, const std::string& addr) const {
    uint8_t key[16] = {};
    if (inet_pton(family == 4 ? AF_INET : AF_INET6, addr.c_str(), key) != 1) {
        throw Error("xdp-filter: bad address " + addr);
    }
    std::vector<uint64_t> values(static_cast<size_t>(possibleCpus()), kFlagSrc);
    if (bpf_map_update_elem((family == 4 ? ipv4_ : ipv6_).get(), key, values.data(), BPF_ANY) !=
        0) {
        throwErrno("xdp-filter: allow source " + addr, errno);
    }
}

void XdpFilter::allowSources(const std::vector<std::string>& addrs) {
    for (const std::string& a : addrs) {
        int family = a.find(':') == std::string::npos ? 4 : 6;
        if (!checked_format_) {
            // The first address through the CLI; ours must be byte-identical.
            cli("ip " + a + " --mode src");
            uint8_t key[16] = {};
            inet_pton(family == 4 ? AF_INET : AF_INET6, a.c_str(), key);
            std::vector<uint64_t> got(static_cast<size_t>(possibleCpus()));
            if (bpf_map_lookup_elem((family == 4 ? ipv4_ : ipv6_).get(), key, got.data()) != 0) {
                throw Error("xdp-filter: the CLI's rule for " + a + " is not in its map");
            }
            for (uint64_t v : got) {
                if (v != kFlagSrc) {
                    throw Error("xdp-filter: its map format changed (value " + std::to_string(v) +
                                " for a source rule); update bench/xdp_filter.cpp");
                }
            }
            checked_format_ = true;
            continue;
        }
        writeAddress(family, a);
    }
}

uint64_t XdpFilter::dropped() const {
    // Per-CPU {packets, bytes} records indexed by XDP action.
    std::vector<uint64_t> rec(static_cast<size_t>(possibleCpus()) * 2);
    uint32_t key = XDP_DROP;
    if (bpf_map_lookup_elem(stats_.get(), &key, rec.data()) != 0) {
        throwErrno("xdp-filter: read drop statistics", errno);
    }
    uint64_t sum = 0;
    for (size_t i = 0; i < rec.size(); i += 2) {
        sum += rec[i];
    }
    return sum;
}

}  // namespace ztseg::bench
