// What proven identity on the wire (docs/datapath.md#proven-identity) costs
// per SYN, side by side with today's SYN path, in one run:
//
//   receiver: ztseg_xdp and ztseg_tcx on one SYN, BPF_PROG_TEST_RUN: from an
//   address that is no fleet peer's (its address identity: today's path)
//   and from a fleet peer's address with a valid proof (the proof is read and
//   its SipHash checked), both admitted by the same rule; and an unproven SYN
//   (refused). Median (min-max) ns per packet over --runs runs of --repeat.
//
//   both ends, real connections: TCP connections per second (connect, accept,
//   reset) from a workload cgroup (sock_ops writes the proof) over a veth to a
//   server judged by tc at tcx ingress (which checks it), the destination a
//   fleet peer or not. Runs interleaved (on, off, off, on, ...); the ratio is
//   on/off per pair of runs, median and min-max.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "common/lab.hpp"
#include "common/packet_builder.hpp"
#include "datapath/datapath.hpp"
#include "datapath/wire_proof.hpp"

using namespace ztseg;
using namespace std::chrono_literals;
using ztseg::test::PacketBuilder;

namespace {

constexpr IdentityId kClientId = 1000, kServerId = 300;
constexpr uint16_t kPort = 5201;
const std::string kFleetSrc = "10.96.0.1", kOtherSrc = "10.96.0.2", kServer = "10.127.255.1";

struct Config {
    uint32_t repeat = 1'000'000;
    int runs = 7;
    double conn_seconds = 2;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string spread(const std::vector<double>& v, int prec) {
    char b[96];
    std::snprintf(b, sizeof(b), "%.*f (%.*f–%.*f)", prec, median(v), prec,
                  *std::min_element(v.begin(), v.end()), prec,
                  *std::max_element(v.begin(), v.end()));
    return b;
}

WireKey benchKey() {
    WireKey k;
    k.id = 1;
    for (size_t i = 0; i < k.key.size(); ++i) k.key[i] = static_cast<uint8_t>(0x30 + i);
    k.send = k.accept = true;
    return k;
}

WireProofConfig fleetConfig(bool on) {
    WireProofConfig c;
    if (on) {
        // one datapath plays both hosts: the client's address (proven to the
        // server) and the server's (the client proves its SYNs to it)
        c.peers.push_back({1,
                           "bench-peer",
                           {IpPrefix::parse(kFleetSrc + "/32"), IpPrefix::parse(kServer + "/32")},
                           {benchKey()},
                           {kClientId}});
    }
    return c;
}

Generation generation(uint64_t server_cgroup, uint64_t client_cgroup) {
    Generation g;
    g.number = 1;
    g.identities = {{IpPrefix::parse(kFleetSrc + "/32"), kClientId},
                    {IpPrefix::parse(kOtherSrc + "/32"), kClientId},
                    {IpPrefix::parse(kServer + "/32"), kServerId}};
    g.modes[kServerId] = WorkloadMode::Enforce;
    g.modes[kClientId] = WorkloadMode::Enforce;
    g.endpoints.push_back({server_cgroup, kServerId});
    if (client_cgroup) {
        g.endpoints.push_back({client_cgroup, kClientId});
    }
    g.rules = {{kServerId,
                kClientId,
                Direction::Ingress,
                ZTSEG_PROTO_TCP,
                {kPort, kPort},
                Action::Allow,
                1},
               {kClientId,
                kServerId,
                Direction::Egress,
                ZTSEG_PROTO_TCP,
                {kPort, kPort},
                Action::Allow,
                2}};
    return g;
}

std::vector<uint8_t> syn(const std::string& src, bool with_proof) {
    std::vector<uint8_t> opts = {2, 4, 0x05, 0xb4};
    if (with_proof) {
        auto o = wireProofOption(benchKey(), IpPrefix::parse(src + "/32"),
                                 IpPrefix::parse(kServer + "/32"), 40000, kPort, 77, kClientId,
                                 wireProofNow());
        opts.insert(opts.end(), o.begin(), o.end());
    } else {
        opts.insert(opts.end(), {1, 1, 1, 1});  // the same length without a proof
        opts.insert(opts.end(), 16, 1);
    }
    return PacketBuilder::ipv4(src, kServer)
        .tcp(40000, kPort)
        .seqAck(77, 0)
        .tcpOptions(opts)
        .build();
}

double nsPerPacket(int fd, const std::vector<uint8_t>& frame, uint32_t repeat, uint32_t want) {
    LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = frame.data(),
                .data_size_in = uint32_t(frame.size()), .repeat = int(repeat));
    if (bpf_prog_test_run_opts(fd, &o) != 0) {
        throwErrno("BPF_PROG_TEST_RUN", errno);
    }
    if (o.retval != want) {
        throw Error("unexpected verdict " + std::to_string(int(o.retval)) + ", want " +
                    std::to_string(int(want)));
    }
    return o.duration;
}

// A datapath of its own, removed with its pins when the run is done.
class BenchDatapath {
  public:
    explicit BenchDatapath(const std::string& tag) {
        opts_.pin_dir = "/sys/fs/bpf/ztseg-bench-proof-" + tag + std::to_string(getpid());
        opts_.raw_socket_guard = false;
        Datapath::uninstall(opts_.pin_dir);
        dp_.emplace(Datapath::create(opts_));
    }
    ~BenchDatapath() {
        dp_.reset();
        Datapath::uninstall(opts_.pin_dir);
    }
    BenchDatapath(const BenchDatapath&) = delete;
    BenchDatapath& operator=(const BenchDatapath&) = delete;
    Datapath& operator*() { return *dp_; }

  private:
    DatapathOptions opts_;
    std::optional<Datapath> dp_;
};

void receiverCost(const Config& c) {
    BenchDatapath bdp("r");
    Datapath& dp = *bdp;
    dp.apply(generation(cgroupIdOf(selfCgroupPath()), 0));
    dp.setWireProof(fleetConfig(true));

    struct Case {
        const char* label;
        std::vector<uint8_t> frame;
        uint32_t xdp, tcx;
    };
    const std::vector<Case> cases = {
        {"SYN, address identity (today)", syn(kOtherSrc, false), XDP_PASS, uint32_t(-1)},
        {"SYN, proven identity", syn(kFleetSrc, true), XDP_PASS, uint32_t(-1)},
        {"SYN, unproven (refused)", syn(kFleetSrc, false), XDP_DROP, 2},
    };
    std::printf("| hook | case | ns/packet, median (min–max) | vs today |\n|---|---|---|---|\n");
    for (const char* prog : {"ztseg_xdp", "ztseg_tcx"}) {
        const bool xdp = std::string(prog) == "ztseg_xdp";
        std::vector<std::vector<double>> ns(cases.size());
        for (int r = 0; r < c.runs; ++r) {
            for (size_t i = 0; i < cases.size(); ++i) {
                ns[i].push_back(nsPerPacket(dp.programFd(prog), cases[i].frame, c.repeat,
                                            xdp ? cases[i].xdp : cases[i].tcx));
            }
        }
        for (size_t i = 0; i < cases.size(); ++i) {
            std::vector<double> ratio;
            for (int r = 0; r < c.runs; ++r) ratio.push_back(ns[i][r] / ns[0][r]);
            std::printf("| %s | %s | %s | %s |\n", xdp ? "XDP" : "tcx", cases[i].label,
                        spread(ns[i], 0).c_str(), spread(ratio, 2).c_str());
        }
    }
}

// Connections per second from `cg` in `client` to the server for `seconds`.
double connRate(test::NetNs& client, test::Cgroup2& cg, double seconds) {
    test::Shared<std::atomic<uint64_t>> done;
    test::Child ch(&client, &cg, [&] {
        const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(kPort);
        inet_pton(AF_INET, kServer.c_str(), &sa.sin_addr);
        const linger reset{1, 0};  // close with RST: no TIME_WAIT to run out of ports
        while (std::chrono::steady_clock::now() < end) {
            int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            setsockopt(s, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
            if (::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
                ::close(s);
                return 1;
            }
            ::close(s);
            ++*done;
        }
        return 0;
    });
    if (ch.wait(std::chrono::milliseconds(int(seconds * 1000) + 10'000)) != 0) {
        throw Error("a connection failed");
    }
    return double(done->load()) / seconds;
}

void connectionCost(const Config& c) {
    test::NetNs client, server;
    test::VethPair veth(test::uniqueName("zpc"), &client, test::uniqueName("zps"), &server);
    veth.addAddress(0, kFleetSrc + "/8");
    veth.addAddress(1, kServer + "/8");
    test::Cgroup2 client_cg, server_cg;
    BenchDatapath bdp("c");
    Datapath& dp = *bdp;
    dp.apply(generation(server_cg.id(), client_cg.id()));
    dp.attachCgroup(client_cg.path());
    dp.attachCgroup(server_cg.path());
    {
        test::NetnsScope in(server);
        dp.attachXdp(veth.nameB(), XdpRequest::Tcx);
    }
    test::Child srv(&server, &server_cg, [](test::Child::Ready& ready) {
        UniqueFd l = test::tcpListen(kServer, kPort);
        ::listen(l.get(), 4096);  // a deep accept queue: no SYN dropped for want of room
        ready.signal();
        for (;;) {
            int a = ::accept(l.get(), nullptr, nullptr);
            if (a >= 0)
                ::close(a);
        }
        return 0;
    });
    srv.waitReady(5s);

    std::vector<double> on, off, ratio;
    for (int r = 0; r < c.runs; ++r) {
        const bool on_first = r % 2 == 0;
        double rate[2];
        for (int k = 0; k < 2; ++k) {
            const bool proof = (k == 0) == on_first;
            dp.setWireProof(fleetConfig(proof));
            rate[proof ? 1 : 0] = connRate(client, client_cg, c.conn_seconds);
        }
        off.push_back(rate[0]);
        on.push_back(rate[1]);
        ratio.push_back(rate[1] / rate[0]);
    }
    std::printf(
        "\n| connections/s, median (min–max) | without proof | with proof | with/without |\n"
        "|---|---|---|---|\n| TCP connect + accept + reset | %s | %s | %s |\n",
        spread(off, 0).c_str(), spread(on, 0).c_str(), spread(ratio, 3).c_str());
    {
        test::NetnsScope in(server);
        dp.detachXdp(veth.nameB());
    }
    dp.detachCgroup(client_cg.path());
    dp.detachCgroup(server_cg.path());
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ztseg_bench_proof: per-SYN cost of proven identity on the wire"};
    Config c;
    bool smoke = false;
    app.add_option("--repeat", c.repeat, "packets per BPF_PROG_TEST_RUN");
    app.add_option("--runs", c.runs, "runs per case");
    app.add_option("--conn-seconds", c.conn_seconds, "seconds per connection-rate run");
    app.add_flag("--smoke", smoke, "tiny sizes: checks that it works, measures nothing");
    CLI11_PARSE(app, argc, argv);
    if (smoke) {
        c.repeat = 1000;
        c.runs = 2;
        c.conn_seconds = 0.3;
    }
    spdlog::set_level(spdlog::level::err);
    try {
        receiverCost(c);
        connectionCost(c);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ztseg_bench_proof: %s\n", e.what());
        return 1;
    }
    return 0;
}
