// xdp-filter (Debian xdp-tools) as a benchmark opponent: loaded with its own
// CLI in deny mode (default drop, rules allow) on an interface of a benchmark
// namespace, rules written into its pinned maps in exactly the format its
// CLI writes (checked against the CLI on the first address), unloaded on
// destruction. Its program (xdpfilt_dny_all) is reachable by fd for
// BPF_PROG_TEST_RUN.
//
// xdp-filter pins its maps in one fixed bpffs directory, so only one instance
// can exist per machine: a directory left by someone else is refused, never reused.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/lab.hpp"
#include "common/unique_fd.hpp"

namespace ztseg::bench {

class XdpFilter {
  public:
    XdpFilter(const test::NetNs& ns, std::string ifname, bool native);
    ~XdpFilter();
    XdpFilter(const XdpFilter&) = delete;
    XdpFilter& operator=(const XdpFilter&) = delete;

    // Sources admitted whatever the port ("xdp-filter ip ADDR --mode src").
    void allowSources(const std::vector<std::string>& addrs);
    // Most addresses one family's map holds.
    uint32_t capacity(int family) const;

    int programFd() const { return prog_.get(); }
    std::string programName() const;
    bool native() const { return native_; }
    // Packets it returned XDP_DROP for (its xdp_stats_map).
    uint64_t dropped() const;

    static bool installed();

  private:
    void cli(const std::string& args) const;
    void writeAddress(int family, const std::string& addr) const;
    std::string ns_;
    std::string ifname_;
    bool native_;
    UniqueFd prog_, ipv4_, ipv6_, stats_;
    bool checked_format_ = false;
    bool made_libxdp_dir_ = false;
};

}  // namespace ztseg::bench
