// The network benchmark lab and the filters it compares. A fresh lab per
// (filter, policy size), so no filter inherits another's hooks, conntrack
// entries or counters; deleting the namespaces removes every iptables/nftables
// rule and XDP program with them (the host's own firewall is never touched).
//
//   client ns                                   server ns (filters live here)
//   measured sources + one unlabeled  ──veth──  10.127.255.1, servers in a cgroup
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench_policy.hpp"
#include "common/error.hpp"
#include "common/lab.hpp"

namespace ztseg::bench {

class NetLab {
  public:
    // `sources`: rule sources the client sends from (plus one unlabeled address).
    explicit NetLab(const std::vector<std::string>& sources);

    test::NetNs& server() { return *server_; }
    test::NetNs& client() { return *client_; }
    test::Cgroup2& serverCgroup() { return *cg_; }
    const std::string& serverIf() const { return veth_->nameA(); }
    const std::string& clientIf() const { return veth_->nameB(); }
    std::array<uint8_t, 6> serverMac() const { return server_mac_; }
    std::array<uint8_t, 6> clientMac() const { return client_mac_; }
    const std::vector<std::string>& sources() const { return sources_; }
    static std::string unlabeledSource() { return BenchPolicy::unlabeledV4(60000); }

    // Packets that reached UDP in the server namespace with no socket to take them.
    uint64_t udpNoPorts() const;

  private:
    std::unique_ptr<test::NetNs> server_, client_;
    std::unique_ptr<test::VethPair> veth_;
    std::unique_ptr<test::Cgroup2> cg_;
    std::array<uint8_t, 6> server_mac_{}, client_mac_{};
    std::vector<std::string> sources_;
};

// Ztseg: what ztsegd does by default (xdp_mode: auto): tc at tcx ingress on
// the veth. ZtsegGeneric / ZtsegNative: XDP in that mode instead.
enum class Filter {
    None,
    Ztseg,
    ZtsegGeneric,
    ZtsegNative,
    Iptables,
    IptablesCt,
    Nftables,
    XdpFilter
};
std::string_view filterName(Filter f);
Filter parseFilter(std::string_view name);  // throws Error listing the names
std::vector<Filter> allFilters();

// A filter that cannot hold the policy at this size (reported, not an error).
class Unsupported : public Error {
  public:
    using Error::Error;
};

class InstalledFilter {
  public:
    virtual ~InstalledFilter() = default;
    // Packets this filter has dropped so far (None: what the stack dropped for
    // lack of a socket).
    virtual uint64_t dropped() const = 0;
    // Where/how it runs, e.g. "XDP native + cgroup_skb".
    virtual std::string detail() const = 0;
};

std::unique_ptr<InstalledFilter> installFilter(Filter f, NetLab& lab, const BenchPolicy& policy);

}  // namespace ztseg::bench
