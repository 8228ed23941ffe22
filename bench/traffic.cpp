#include "traffic.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "common/error.hpp"
#include "common/packet_builder.hpp"

namespace ztseg::bench {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// A T in memory shared with forked children (mapped before the fork).
template <class T>
class SharedBlock {
  public:
    SharedBlock() {
        void* p =
            mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            throwErrno("map shared memory for a benchmark child", errno);
        }
        ptr_ = std::construct_at(static_cast<T*>(p));
    }
    ~SharedBlock() {
        std::destroy_at(ptr_);
        munmap(ptr_, sizeof(T));
    }
    SharedBlock(const SharedBlock&) = delete;
    SharedBlock& operator=(const SharedBlock&) = delete;
    T* get() const { return ptr_; }
    T* operator->() const { return ptr_; }

  private:
    T* ptr_;
};

sockaddr_in v4Addr(const std::string& addr, uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (inet_pton(AF_INET, addr.c_str(), &a.sin_addr) != 1) {
        throw Error("bad IPv4 address " + addr);
    }
    return a;
}

// Non-blocking TCP socket bound to `src` (port chosen at connect), connect started.
int startConnect(const sockaddr_in& src, const sockaddr_in& dst) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof(src)) != 0 ||
        (connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof(dst)) != 0 &&
         errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    return fd;
}

// Close with RST: no TIME_WAIT, the source port is free again at once.
void closeReset(int fd) {
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
}

int listenTcp(const std::string& addr, uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    sockaddr_in a = v4Addr(addr, port);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 4096) != 0) {
        throwErrno("listen on " + addr + ":" + std::to_string(port), errno);
    }
    return fd;
}

double elapsedS(Clock::time_point since) {
    return std::chrono::duration<double>(Clock::now() - since).count();
}

}  // namespace

CpuSample CpuSample::now() {
    std::ifstream in("/proc/stat");
    std::string cpu;
    uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    if (!in || cpu != "cpu") {
        throw Error("read /proc/stat: unexpected format");
    }
    double hz = double(sysconf(_SC_CLK_TCK));
    return {double(softirq) / hz, double(user + nice + system + irq + softirq + steal) / hz};
}

std::unique_ptr<test::Child> startIperfServer(test::NetNs& ns, test::Cgroup2* cg,
                                              const std::string& addr, uint16_t port) {
    std::string p = std::to_string(port);
    auto c = std::make_unique<test::Child>(&ns, cg, [addr, p] {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execlp("iperf3", "iperf3", "-s", "-B", addr.c_str(), "-p", p.c_str(),
               static_cast<char*>(nullptr));
        return 127;
    });
    // Ready when it accepts a connection.
    for (int i = 0; i < 50; ++i) {
        test::Child probe(&ns, nullptr,
                          [addr, port] { return test::tcpConnect(addr, port, 200ms).err; });
        if (probe.wait(5s) == 0) {
            return c;
        }
        std::this_thread::sleep_for(100ms);
    }
    throw Error("iperf3 server on " + addr + ":" + p + " did not start (is iperf3 installed?)");
}

double runIperf(test::NetNs& ns, const std::string& src, const std::string& dst, uint16_t port,
                double seconds) {
    std::string out = std::filesystem::temp_directory_path() /
                      ("ztseg-bench-iperf-" + std::to_string(getpid()) + ".json");
    std::string t = std::to_string(std::max(1L, std::lround(seconds)));
    std::string p = std::to_string(port);
    test::Child c(&ns, nullptr, [&] {
        int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        dup2(fd, 1);
        execlp("iperf3", "iperf3", "-c", dst.c_str(), "-B", src.c_str(), "-p", p.c_str(), "-t",
               t.c_str(), "-J", "--connect-timeout", "3000", static_cast<char*>(nullptr));
        return 127;
    });
    int status = c.wait(std::chrono::milliseconds(long(seconds * 1000) + 30'000));
    std::stringstream text;
    text << std::ifstream(out).rdbuf();
    std::filesystem::remove(out);
    nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        throw Error("iperf3 from " + src + ": exit " + std::to_string(status) + ", no JSON output");
    }
    if (j.contains("error")) {
        throw Error("iperf3 from " + src + ": " + j["error"].get<std::string>());
    }
    return j.at("end").at("sum_received").at("bits_per_second").get<double>();
}

std::unique_ptr<test::Child> startAcceptServer(test::NetNs& ns, test::Cgroup2* cg,
                                               const std::string& addr, uint16_t port) {
    auto c = std::make_unique<test::Child>(&ns, cg, [addr, port](test::Child::Ready& r) {
        int fd = listenTcp(addr, port);
        r.signal();
        for (;;) {
            int conn = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
            if (conn >= 0) {
                close(conn);
            }
        }
        return 0;
    });
    c->waitReady(5s);
    return c;
}

std::unique_ptr<test::Child> startEchoServer(test::NetNs& ns, test::Cgroup2* cg,
                                             const std::string& addr, uint16_t port) {
    auto c = std::make_unique<test::Child>(&ns, cg, [addr, port](test::Child::Ready& r) {
        int fd = listenTcp(addr, port);
        r.signal();
        test::tcpEchoServe(fd, 1 << 30, std::chrono::hours(1));
        return 0;
    });
    c->waitReady(5s);
    return c;
}

ConnRate runConnRate(test::NetNs& ns, const std::vector<std::string>& sources,
                     const std::string& dst, uint16_t port, double seconds, int concurrency) {
    struct Result {
        std::atomic<uint64_t> connected{0}, failed{0};
        double seconds = 0;
    };
    SharedBlock<Result> res;
    Result* r = res.get();
    test::Child c(&ns, nullptr, [&, r] {
        std::vector<sockaddr_in> srcs;
        for (const auto& s : sources) {
            srcs.push_back(v4Addr(s, 0));
        }
        sockaddr_in to = v4Addr(dst, port);
        int ep = epoll_create1(EPOLL_CLOEXEC);
        struct Slot {
            int fd = -1;
            Clock::time_point started;
        };
        std::vector<Slot> slots(size_t(std::max(1, concurrency)));
        size_t next_src = 0;
        auto open = [&](size_t i) {
            for (int tries = 0; tries < 100; ++tries) {
                int fd = startConnect(srcs[next_src++ % srcs.size()], to);
                if (fd >= 0) {
                    epoll_event ev{};
                    ev.events = EPOLLOUT;
                    ev.data.u64 = i;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                    slots[i] = {fd, Clock::now()};
                    return;
                }
                r->failed++;  // e.g. no free source port at this instant
            }
            throw Error("connection-rate client: cannot open sockets");
        };
        auto start = Clock::now();
        auto deadline = start + std::chrono::duration<double>(seconds);
        for (size_t i = 0; i < slots.size(); ++i) {
            open(i);
        }
        std::vector<epoll_event> evs(slots.size());
        while (Clock::now() < deadline) {
            int n = epoll_wait(ep, evs.data(), int(evs.size()), 10);
            for (int k = 0; k < n; ++k) {
                size_t i = evs[size_t(k)].data.u64;
                int err = 0;
                socklen_t len = sizeof(err);
                getsockopt(slots[i].fd, SOL_SOCKET, SO_ERROR, &err, &len);
                (err == 0 ? r->connected : r->failed)++;
                closeReset(slots[i].fd);
                open(i);
            }
            auto now = Clock::now();
            for (size_t i = 0; i < slots.size(); ++i) {
                if (now - slots[i].started > 1s) {  // dropped SYN: count and move on
                    r->failed++;
                    closeReset(slots[i].fd);
                    open(i);
                }
            }
        }
        r->seconds = elapsedS(start);
        return 0;
    });
    int status = c.wait(std::chrono::milliseconds(long(seconds * 1000) + 30'000));
    if (status != 0) {
        throw Error("connection-rate client exited with status " + std::to_string(status));
    }
    return {r->connected.load(), r->failed.load(), r->seconds};
}

struct Flood::Shared {
    std::atomic<uint64_t> sent{0};
    std::atomic<bool> stop{false};
};

Flood::Flood(test::NetNs& ns, const FloodTarget& t, int cpu) {
    void* p =
        mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        throwErrno("map shared memory for the flood", errno);
    }
    shm_ = std::construct_at(static_cast<Shared*>(p));
    Shared* s = shm_;
    try {
        child_ = std::make_unique<test::Child>(&ns, nullptr, [t, cpu, s](test::Child::Ready& r) {
            if (cpu >= 0) {
                cpu_set_t set;
                CPU_ZERO(&set);
                CPU_SET(cpu, &set);
                sched_setaffinity(0, sizeof(set), &set);
            }
            // 256 frames: unlabeled sources, random source ports, minimum Ethernet size.
            std::mt19937 rng(7);
            std::vector<std::vector<uint8_t>> frames;
            for (uint32_t i = 0; i < 256; ++i) {
                std::string src = "10.126." + std::to_string(1 + (i % t.sources) / 250) + "." +
                                  std::to_string(1 + (i % t.sources) % 250);
                auto f = test::PacketBuilder::ipv4(src, t.dst)
                             .udp(uint16_t(1024 + rng() % 60000), t.dport)
                             .payload(18)
                             .build();
                std::copy(t.dst_mac.begin(), t.dst_mac.end(), f.begin());
                std::copy(t.src_mac.begin(), t.src_mac.end(), f.begin() + 6);
                frames.push_back(std::move(f));
            }
            int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
            int one = 1;
            sockaddr_ll ll{};
            ll.sll_family = AF_PACKET;
            ll.sll_protocol = htons(ETH_P_IP);
            ll.sll_ifindex = int(if_nametoindex(t.ifname.c_str()));
            if (fd < 0 || ll.sll_ifindex == 0 ||
                bind(fd, reinterpret_cast<sockaddr*>(&ll), sizeof(ll)) != 0 ||
                setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) != 0) {
                throwErrno("flood: AF_PACKET socket on " + t.ifname, errno);
            }
            std::vector<iovec> iov(frames.size());
            std::vector<mmsghdr> msgs(frames.size());
            for (size_t i = 0; i < frames.size(); ++i) {
                iov[i] = {frames[i].data(), frames[i].size()};
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            r.signal();
            constexpr unsigned kBatch = 64;
            for (size_t b = 0; !s->stop.load(std::memory_order_relaxed); b = (b + kBatch) % 256) {
                int n = sendmmsg(fd, &msgs[b], kBatch, 0);
                if (n > 0) {
                    s->sent.fetch_add(uint64_t(n), std::memory_order_relaxed);
                } else if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
                    throwErrno("flood: sendmmsg", errno);
                }
            }
            return 0;
        });
        child_->waitReady(5s);
    } catch (...) {
        std::destroy_at(shm_);
        munmap(shm_, sizeof(Shared));
        throw;
    }
}

uint64_t Flood::sent() const {
    return shm_->sent.load();
}

void Flood::stop() {
    shm_->stop = true;
    if (child_) {
        child_->wait(10s);
        child_.reset();
    }
}

Flood::~Flood() {
    try {
        stop();
    } catch (...) {
        child_.reset();  // SIGKILL
    }
    std::destroy_at(shm_);
    munmap(shm_, sizeof(Shared));
}

LatencySamples runLatencyProbe(test::NetNs& ns, const std::string& src, const std::string& dst,
                               uint16_t port, uint32_t probes, milliseconds gap,
                               milliseconds budget) {
    constexpr uint32_t kMax = 16384;
    struct Result {
        uint32_t n = 0, failed = 0;
        float connect_us[kMax];
        float echo_us[kMax];
    };
    probes = std::min(probes, kMax);
    SharedBlock<Result> res;
    Result* r = res.get();
    test::Child c(&ns, nullptr, [&, r] {
        sockaddr_in from = v4Addr(src, 0), to = v4Addr(dst, port);
        auto us = [](Clock::duration d) {
            return float(std::chrono::duration<double, std::micro>(d).count());
        };
        auto deadline = Clock::now() + budget;
        for (uint32_t i = 0; i < probes && Clock::now() < deadline; ++i) {
            auto t0 = Clock::now();
            int fd = startConnect(from, to);
            pollfd pfd{fd, POLLOUT, 0};
            int err = 1;
            socklen_t len = sizeof(err);
            if (fd >= 0 && poll(&pfd, 1, 1000) == 1) {
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            }
            auto t1 = Clock::now();
            char b = 'x';
            bool ok = err == 0 && send(fd, &b, 1, MSG_NOSIGNAL) == 1;
            pfd = {fd, POLLIN, 0};
            ok = ok && poll(&pfd, 1, 1000) == 1 && recv(fd, &b, 1, 0) == 1;
            auto t2 = Clock::now();
            if (fd >= 0) {
                closeReset(fd);
            }
            if (ok) {
                r->connect_us[r->n] = us(t1 - t0);
                r->echo_us[r->n] = us(t2 - t1);
                r->n++;
            } else {
                r->failed++;
            }
            std::this_thread::sleep_for(gap);
        }
        return 0;
    });
    c.wait(budget + milliseconds(probes * gap.count()) + milliseconds(15'000));
    LatencySamples s;
    s.connect_us.assign(r->connect_us, r->connect_us + r->n);
    s.echo_us.assign(r->echo_us, r->echo_us + r->n);
    s.failed = r->failed;
    return s;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    size_t i = size_t(std::lround(p / 100.0 * double(v.size() - 1)));
    return v[std::min(i, v.size() - 1)];
}

double median(std::vector<double> v) {
    return percentile(std::move(v), 50);
}

}  // namespace ztseg::bench
