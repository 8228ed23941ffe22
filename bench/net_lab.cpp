#include "net_lab.hpp"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>

#include "datapath/datapath.hpp"
#include "integration/lab_topology.hpp"
#include "xdp_filter.hpp"

namespace ztseg::bench {

namespace {

std::array<uint8_t, 6> macOf(test::NetNs& ns, const std::string& ifname) {
    test::NetnsScope in(ns);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ifreq ifr{};
    std::snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname.c_str());
    int rc = fd < 0 ? -1 : ioctl(fd, SIOCGIFHWADDR, &ifr);
    int err = errno;
    if (fd >= 0) {
        close(fd);
    }
    if (rc != 0) {
        throwErrno("read MAC address of " + ifname, err);
    }
    std::array<uint8_t, 6> mac{};
    std::copy_n(reinterpret_cast<uint8_t*>(ifr.ifr_hwaddr.sa_data), 6, mac.begin());
    return mac;
}

std::string macText(const std::array<uint8_t, 6>& m) {
    char buf[20];
    std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                  m[5]);
    return buf;
}

// A file for a command to read (rules, neighbour batches), removed afterwards.
class TempFile {
  public:
    TempFile(const std::string& what, const std::string& content)
        : path_(std::filesystem::temp_directory_path() /
                ("ztseg-bench-" + what + "-" + std::to_string(getpid()))) {
        std::ofstream(path_) << content;
    }
    ~TempFile() {
        std::error_code ec;
        std::filesystem::remove(path_, ec);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

uint64_t sumMatches(const std::string& text, const std::regex& re) {
    uint64_t sum = 0;
    for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
        sum += std::stoull((*it)[1].str());
    }
    return sum;
}

class NoFilter : public InstalledFilter {
  public:
    explicit NoFilter(NetLab& lab) : lab_(lab) {}
    uint64_t dropped() const override { return lab_.udpNoPorts(); }
    std::string detail() const override { return "no filter (the stack drops: no UDP socket)"; }

  private:
    NetLab& lab_;
};

class ZtsegFilter : public InstalledFilter {
  public:
    ZtsegFilter(NetLab& lab, const BenchPolicy& p, XdpRequest req) {
        DatapathOptions o;
        o.pin_dir = "/sys/fs/bpf/ztseg-bench-net-" + std::to_string(getpid());
        Datapath::uninstall(o.pin_dir);
        pin_dir_ = o.pin_dir;
        try {
            dp_.emplace(Datapath::create(o));
            dp_->apply(p.toGeneration(1, lab.serverCgroup().id()));
            {
                test::NetnsScope in(lab.server());
                mode_ = dp_->attachXdp(lab.serverIf(), req);
            }
            dp_->attachCgroup(lab.serverCgroup().path());
        } catch (...) {
            dp_.reset();
            Datapath::uninstall(pin_dir_);
            throw;
        }
    }
    ~ZtsegFilter() override {
        dp_.reset();
        Datapath::uninstall(pin_dir_);
    }
    uint64_t dropped() const override {
        Counters c = dp_->counters();
        uint64_t sum = 0;
        for (uint32_t hook : {ZTSEG_HOOK_XDP, ZTSEG_HOOK_CGROUP_INGRESS}) {
            for (uint32_t r = ZTSEG_REASON_FIRST_DROP; r < ZTSEG_REASON_MAX; ++r) {
                sum += c.at(hook, r).packets;
            }
        }
        return sum;
    }
    std::string detail() const override {
        std::string stage = mode_ == XdpMode::Tcx ? std::string("tcx ingress (tc program)")
                                                  : "XDP " + std::string(xdpModeName(mode_));
        return stage + " + cgroup_skb/sock hooks";
    }

  private:
    std::optional<Datapath> dp_;
    std::string pin_dir_;
    XdpMode mode_ = XdpMode::Native;
};

class IptablesFilter : public InstalledFilter {
  public:
    IptablesFilter(NetLab& lab, const BenchPolicy& p, bool ct) : lab_(lab), ct_(ct) {
        std::string rules = p.toIptables(ct);
        // The final DROP in a chain of its own, so reading its counter is cheap.
        std::string from = "-A ZTBENCH -j DROP\n";
        rules.replace(rules.find(from), from.size(), "-A ZTBENCH -j ZTDROP\n-A ZTDROP -j DROP\n");
        rules.insert(rules.find(":ZTBENCH"), ":ZTDROP - [0:0]\n");
        TempFile file("iptables", rules);
        lab.server().exec("iptables-restore < " + file.path());
    }
    uint64_t dropped() const override {
        std::string out = lab_.server().execOut("iptables -L ZTDROP -v -x -n");
        static const std::regex re(R"(\n\s*(\d+)\s+\d+\s+DROP)");
        return sumMatches(out, re);
    }
    std::string detail() const override {
        return std::string("filter INPUT, linear chain") +
               (ct_ ? ", ESTABLISHED,RELATED accepted first" : ", no conntrack shortcut");
    }

  private:
    NetLab& lab_;
    bool ct_;
};

class NftablesFilter : public InstalledFilter {
  public:
    NftablesFilter(NetLab& lab, const BenchPolicy& p) : lab_(lab) {
        TempFile file("nft", p.toNftables("ztbench"));
        lab.server().exec("nft -f " + file.path());
    }
    uint64_t dropped() const override {
        std::string out = lab_.server().execOut("nft list counters table inet ztbench");
        static const std::regex re(R"(packets (\d+))");
        return sumMatches(out, re);
    }
    std::string detail() const override {
        return "inet table: unlabeled dropped at prerouting/raw (set lookup), ct established, "
               "(source . port) interval set";
    }

  private:
    NetLab& lab_;
};

class XdpFilterFilter : public InstalledFilter {
  public:
    XdpFilterFilter(NetLab& lab, const BenchPolicy& p) : xf_(lab.server(), lab.serverIf(), true) {
        if (p.rules > xf_.capacity(4)) {
            throw Unsupported("xdp-filter holds at most " + std::to_string(xf_.capacity(4)) +
                              " IPv4 addresses");
        }
        xf_.allowSources(p.xdpFilterSourcesV4());
    }
    uint64_t dropped() const override { return xf_.dropped(); }
    std::string detail() const override {
        return "XDP native, " + xf_.programName() + ", sources allowlisted (any port)";
    }

  private:
    XdpFilter xf_;
};

}  // namespace

NetLab::NetLab(const std::vector<std::string>& sources) : sources_(sources) {
    server_ = std::make_unique<test::NetNs>(test::uniqueName("zbs"));
    client_ = std::make_unique<test::NetNs>(test::uniqueName("zbc"));
    veth_ = std::make_unique<test::VethPair>(test::uniqueName("zbvs"), server_.get(),
                                             test::uniqueName("zbvc"), client_.get());
    cg_ = std::make_unique<test::Cgroup2>(test::uniqueName("zbcg"));
    server_mac_ = macOf(*server_, serverIf());
    client_mac_ = macOf(*client_, clientIf());
    std::string len = "/" + std::to_string(kSubnetLength);
    veth_->addAddress(0, BenchPolicy::serverV4() + len);
    std::vector<std::string> all = sources_;
    all.push_back(unlabeledSource());
    // Permanent neighbours: no ARP in any measurement (and none for a filter to judge).
    std::ostringstream srv, cli;
    for (const auto& a : all) {
        veth_->addAddress(1, a + len);
        srv << "neigh replace " << a << " lladdr " << macText(client_mac_) << " dev " << serverIf()
            << " nud permanent\n";
    }
    cli << "neigh replace " << BenchPolicy::serverV4() << " lladdr " << macText(server_mac_)
        << " dev " << clientIf() << " nud permanent\n";
    TempFile f1("neigh-s", srv.str()), f2("neigh-c", cli.str());
    server_->exec("ip -batch " + f1.path());
    client_->exec("ip -batch " + f2.path());
}

uint64_t NetLab::udpNoPorts() const {
    test::NetnsScope in(*server_);
    std::ifstream f("/proc/thread-self/net/snmp");
    std::string header, values;
    while (std::getline(f, header) && std::getline(f, values)) {
        if (header.rfind("Udp:", 0) != 0) {
            continue;
        }
        std::istringstream h(header), v(values);
        for (std::string name, val; h >> name && v >> val;) {
            if (name == "NoPorts") {
                return std::stoull(val);
            }
        }
    }
    throw Error("read Udp NoPorts from /proc/net/snmp in " + server_->name());
}

std::string_view filterName(Filter f) {
    switch (f) {
        case Filter::None:
            return "none";
        case Filter::Ztseg:
            return "ztseg";
        case Filter::ZtsegGeneric:
            return "ztseg-generic";
        case Filter::ZtsegNative:
            return "ztseg-native";
        case Filter::Iptables:
            return "iptables";
        case Filter::IptablesCt:
            return "iptables-ct";
        case Filter::Nftables:
            return "nftables";
        case Filter::XdpFilter:
            return "xdp-filter";
    }
    return "?";
}

std::vector<Filter> allFilters() {
    return {Filter::None,     Filter::Ztseg,      Filter::ZtsegGeneric, Filter::ZtsegNative,
            Filter::Iptables, Filter::IptablesCt, Filter::Nftables,     Filter::XdpFilter};
}

Filter parseFilter(std::string_view name) {
    std::string known;
    for (Filter f : allFilters()) {
        if (filterName(f) == name) {
            return f;
        }
        known += (known.empty() ? "" : ", ") + std::string(filterName(f));
    }
    throw Error("unknown filter '" + std::string(name) + "' (known: " + known + ")");
}

std::unique_ptr<InstalledFilter> installFilter(Filter f, NetLab& lab, const BenchPolicy& policy) {
    switch (f) {
        case Filter::None:
            return std::make_unique<NoFilter>(lab);
        case Filter::Ztseg:  // what ztsegd does by default (xdp_mode: auto): tcx on a veth
            return std::make_unique<ZtsegFilter>(lab, policy, XdpRequest::Auto);
        case Filter::ZtsegGeneric:
            return std::make_unique<ZtsegFilter>(lab, policy, XdpRequest::Generic);
        case Filter::ZtsegNative:
            return std::make_unique<ZtsegFilter>(lab, policy, XdpRequest::Native);
        case Filter::Iptables:
            return std::make_unique<IptablesFilter>(lab, policy, false);
        case Filter::IptablesCt:
            return std::make_unique<IptablesFilter>(lab, policy, true);
        case Filter::Nftables:
            return std::make_unique<NftablesFilter>(lab, policy);
        case Filter::XdpFilter:
            return std::make_unique<XdpFilterFilter>(lab, policy);
    }
    throw Error("unknown filter");
}

}  // namespace ztseg::bench
