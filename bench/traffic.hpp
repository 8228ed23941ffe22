// Traffic the network benchmarks measure, each run as a process inside a
// benchmark namespace (test::Child), results handed back through shared memory:
//   - bulk TCP: iperf3 (JSON output);
//   - new-connection rate: our client opens short TCP connections from many
//     source ports (kernel-chosen, several source addresses) against our
//     accept-and-close server, closing with RST so no TIME_WAIT piles up;
//   - unlabeled flood: small UDP frames from addresses no rule knows, written
//     with AF_PACKET + PACKET_QDISC_BYPASS and sendmmsg (pktgen and
//     xdp-trafficgen do not work on this kernel);
//   - latency probe: TCP connect time and a 1-byte echo round trip.
// CPU time comes from /proc/stat (see CpuSample).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/lab.hpp"

namespace ztseg::bench {

using std::chrono::milliseconds;

// Machine-wide CPU time from /proc/stat, in seconds.
struct CpuSample {
    double softirq = 0;  // time spent in softirq context: where both XDP and netfilter drop
    double busy = 0;     // everything but idle and iowait
    static CpuSample now();
    CpuSample operator-(const CpuSample& o) const { return {softirq - o.softirq, busy - o.busy}; }
};

// iperf3 server (any number of sequential tests) in ns + cg.
std::unique_ptr<test::Child> startIperfServer(test::NetNs& ns, test::Cgroup2* cg,
                                              const std::string& addr, uint16_t port);
// One iperf3 test from `src`; returns the receiver's bits/s.
double runIperf(test::NetNs& ns, const std::string& src, const std::string& dst, uint16_t port,
                double seconds);

// Accepts and closes connections until killed.
std::unique_ptr<test::Child> startAcceptServer(test::NetNs& ns, test::Cgroup2* cg,
                                               const std::string& addr, uint16_t port);
// Echoes (one connection at a time) until killed.
std::unique_ptr<test::Child> startEchoServer(test::NetNs& ns, test::Cgroup2* cg,
                                             const std::string& addr, uint16_t port);

struct ConnRate {
    uint64_t connected = 0;
    uint64_t failed = 0;  // refused or timed out (1 s)
    double seconds = 0;
    double perSecond() const { return seconds > 0 ? double(connected) / seconds : 0; }
};
ConnRate runConnRate(test::NetNs& ns, const std::vector<std::string>& sources,
                     const std::string& dst, uint16_t port, double seconds, int concurrency);

struct FloodTarget {
    std::string ifname;  // sending interface in the flooding namespace
    std::array<uint8_t, 6> src_mac, dst_mac;
    std::string dst;  // IPv4
    uint16_t dport;
    uint32_t sources;  // distinct unlabeled source addresses (and random source ports)
};
// A flood running in its own process (pinned to `cpu`, -1 = any) until
// stop() or destruction; sent() counts frames the kernel accepted.
class Flood {
  public:
    Flood(test::NetNs& ns, const FloodTarget& t, int cpu);
    ~Flood();
    Flood(const Flood&) = delete;
    Flood& operator=(const Flood&) = delete;
    uint64_t sent() const;
    void stop();

  private:
    struct Shared;
    Shared* shm_;
    std::unique_ptr<test::Child> child_;
};

struct LatencySamples {
    std::vector<double> connect_us, echo_us;
    uint32_t failed = 0;
};
// Up to `probes` probes, `gap` apart, for at most `budget` (a starved flow's
// probes time out after 2 s each: the budget bounds the run).
LatencySamples runLatencyProbe(test::NetNs& ns, const std::string& src, const std::string& dst,
                               uint16_t port, uint32_t probes, milliseconds gap,
                               milliseconds budget = milliseconds(30'000));

double percentile(std::vector<double> v, double p);  // p in [0, 100]; 0 if empty
double median(std::vector<double> v);

}  // namespace ztseg::bench
