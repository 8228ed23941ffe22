// RAII building blocks for integration tests with real traffic: network namespaces, veth pairs,
// cgroup v2 directories, forked children placed in them, and socket helpers with timeouts.
// Needs root. Setup failures throw std::runtime_error; network outcomes are returned as errno.
#pragma once

#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <new>
#include <optional>
#include <string>

#include "common/unique_fd.hpp"

namespace ztseg::test {

using ztseg::UniqueFd;

// prefix + 5 base-36 chars of the pid + base-36 counter. Throws if the result would exceed 15
// characters (IFNAMSIZ - 1), so keep prefix <= 8 chars.
std::string uniqueName(const std::string& prefix);

// Runs cmd via /bin/sh -c. sh() throws (naming the command, exit status, stdout+stderr) on a
// non-zero exit; shOut() does the same and returns stdout; trySh() never throws.
void sh(const std::string& cmd);
std::string shOut(const std::string& cmd);
bool trySh(const std::string& cmd) noexcept;

// A named network namespace (`ip netns add`), deleted on destruction.
class NetNs {
  public:
    explicit NetNs(std::string name = uniqueName("ztns"));
    NetNs(NetNs&& other) noexcept;
    NetNs& operator=(NetNs&& other) noexcept;
    NetNs(const NetNs&) = delete;
    NetNs& operator=(const NetNs&) = delete;
    ~NetNs();

    const std::string& name() const { return name_; }
    // Open /run/netns/NAME, usable with setns(CLONE_NEWNET) (e.g. after fork).
    int fd() const { return fd_.get(); }
    // sh("ip netns exec NAME " + cmd).
    void exec(const std::string& cmd) const;
    std::string execOut(const std::string& cmd) const;

  private:
    void destroy() noexcept;
    std::string name_;
    UniqueFd fd_;
};

// The calling thread in a network namespace until destruction, then back
// where it was. Sockets, tun devices and ifindex lookups made meanwhile
// belong to `ns`.
class NetnsScope {
  public:
    explicit NetnsScope(const NetNs& ns);
    ~NetnsScope();
    NetnsScope(const NetnsScope&) = delete;
    NetnsScope& operator=(const NetnsScope&) = delete;

  private:
    UniqueFd saved_;
};

// A veth pair with end a in ns_a and end b in ns_b (nullptr = root netns). Both ends and each
// namespace's lo are up when the constructor returns. Deleted on destruction.
class VethPair {
  public:
    VethPair(const std::string& a, NetNs* ns_a, const std::string& b, NetNs* ns_b);
    VethPair(VethPair&& other) noexcept;
    VethPair& operator=(VethPair&& other) noexcept;
    VethPair(const VethPair&) = delete;
    VethPair& operator=(const VethPair&) = delete;
    ~VethPair();

    const std::string& nameA() const { return name_[0]; }
    const std::string& nameB() const { return name_[1]; }
    // side 0 = a, 1 = b; cidr like "10.213.1.1/24" or "fd00:213::1/64" (v6 added with nodad).
    void addAddress(int side, const std::string& cidr);
    // Interface index inside the end's own namespace.
    int ifindexA() const { return ifindex(0); }
    int ifindexB() const { return ifindex(1); }

  private:
    std::string ipCmd(int side) const;  // "ip " or "ip -n NS "
    int ifindex(int side) const;
    void waitUp(int side) const;
    void destroy() noexcept;
    std::string name_[2];
    std::string ns_[2];  // empty = root netns
};

// A child directory of the cgroup v2 root.
class Cgroup2 {
  public:
    // Where cgroup2 is mounted, from /proc/self/mountinfo (e.g. /sys/fs/cgroup/unified in hybrid).
    static std::string mountPoint();
    // The cgroup id of a cgroup2 directory, as bpf_get_current_cgroup_id() reports it.
    static uint64_t idOfPath(const std::string& path);

    explicit Cgroup2(const std::string& name = uniqueName("ztcg"));
    Cgroup2(Cgroup2&& other) noexcept;
    Cgroup2& operator=(Cgroup2&& other) noexcept;
    Cgroup2(const Cgroup2&) = delete;
    Cgroup2& operator=(const Cgroup2&) = delete;
    // Kills remaining processes (cgroup.kill, else SIGKILL per pid), waits for them to leave
    // (~2 s max) and removes the directory (and any sub-cgroups).
    ~Cgroup2();

    const std::string& path() const { return path_; }
    uint64_t id() const { return idOfPath(path_); }
    int fd() const { return fd_.get(); }  // O_RDONLY | O_DIRECTORY, for BPF cgroup attach

  private:
    void destroy() noexcept;
    std::string path_;
    UniqueFd fd_;
};

// A value in memory shared with forked children (MAP_SHARED, set up before the fork).
template <class T>
class Shared {
  public:
    Shared() {
        void* p =
            mmap(nullptr, sizeof(T), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            throw std::bad_alloc();
        }
        v_ = new (p) T{};
    }
    ~Shared() { munmap(v_, sizeof(T)); }
    Shared(const Shared&) = delete;
    Shared& operator=(const Shared&) = delete;
    T& operator*() { return *v_; }
    T* operator->() { return v_; }

  private:
    T* v_;
};

// A forked child that optionally enters a netns and a cgroup before running fn; its return
// value (0..255) becomes the exit status.
class Child {
  public:
    static constexpr int kExitException = 120;    // fn threw
    static constexpr int kExitSetupFailed = 121;  // setns or cgroup join failed

    // Handed to the child's fn; signal() unblocks the parent's waitReady().
    class Ready {
      public:
        void signal();

      private:
        friend class Child;
        explicit Ready(int fd) : fd_(fd) {}
        int fd_;
    };

    Child(NetNs* ns, Cgroup2* cg, std::function<int(Ready&)> fn);
    Child(NetNs* ns, Cgroup2* cg, std::function<int()> fn);
    Child(Child&& other) noexcept;
    Child& operator=(Child&& other) noexcept;
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    // SIGKILLs and reaps the child if it is still running.
    ~Child();

    pid_t pid() const { return pid_; }
    // Blocks until the child calls Ready::signal(); throws on timeout or if it exits first.
    void waitReady(std::chrono::milliseconds timeout);
    // Exit status (128 + signal if killed by a signal, -1 if reaped elsewhere). On timeout kills
    // the child and throws.
    int wait(std::chrono::milliseconds timeout);
    bool running();

  private:
    static int runChild(int ns_fd, const std::string& procs, const std::function<int(Ready&)>& fn,
                        int ready_fd) noexcept;
    bool reap(bool block);
    bool waitExit(std::chrono::steady_clock::time_point deadline);
    void kill() noexcept;
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd ready_;
    std::optional<int> status_;
};

// ---- sockets: IPv4 or IPv6 chosen by the presence of ':' in the address ----

// Bound, listening TCP socket (SO_REUSEADDR). Throws on failure. port 0 = ephemeral.
UniqueFd tcpListen(const std::string& addr, uint16_t port);
// Bound UDP socket. Throws on failure.
UniqueFd udpBind(const std::string& addr, uint16_t port);
// Local port of a bound socket.
uint16_t localPort(int fd);

// Accepts and echoes connections one at a time; returns the number served, after max_conns
// connections or when nothing happens for idle_timeout.
int tcpEchoServe(int listen_fd, int max_conns, std::chrono::milliseconds idle_timeout);
// Echoes every connection at once (a long-lived session does not hold up new ones); returns the
// number of connections accepted when nothing happens for idle_timeout.
int tcpEchoServeConcurrently(int listen_fd, std::chrono::milliseconds idle_timeout);

struct ConnectResult {
    int err;  // 0, or errno: ETIMEDOUT, ECONNREFUSED, EPERM (refused by a BPF hook), ...
    std::chrono::microseconds elapsed;
};
ConnectResult tcpConnect(const std::string& dst, uint16_t port, std::chrono::milliseconds timeout,
                         const std::string& bind_src = "", uint16_t bind_port = 0);
// A socket address from text (IPv6 when it contains ':'); throws on a bad address.
struct SockAddress {
    sockaddr_storage ss{};
    socklen_t len = 0;
    int family() const { return ss.ss_family; }
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss); }
};
SockAddress sockAddress(const std::string& ip, uint16_t port);

// A connected TCP socket the caller keeps (a long-lived session): 0 and `out`, else errno.
int tcpOpen(const std::string& dst, uint16_t port, std::chrono::milliseconds timeout, UniqueFd& out,
            const std::string& bind_src = "");
// On a connected socket: sends msg and reads its echo (tcpEcho), or only reads the echo of msg
// sent before (tcpReadEcho). 0, else errno (ETIMEDOUT, ECONNRESET, EBADMSG if the echo differs).
int tcpEcho(int fd, const std::string& msg, std::chrono::milliseconds timeout);
int tcpReadEcho(int fd, const std::string& msg, std::chrono::milliseconds timeout);

// Connects, sends msg, reads the echo. 0 on success, else errno (EBADMSG if the echo differs).
int tcpEchoRoundTrip(const std::string& dst, uint16_t port, const std::string& msg,
                     std::chrono::milliseconds timeout, const std::string& bind_src = "");

// Echoes datagrams; returns the number echoed, after max_msgs or idle_timeout of silence.
int udpEchoServe(int fd, int max_msgs, std::chrono::milliseconds idle_timeout);
int udpEchoServe(const std::string& addr, uint16_t port, int max_msgs,
                 std::chrono::milliseconds idle_timeout);
// sendto + recvfrom of the echo: 0, ETIMEDOUT, or the sendto errno (e.g. EPERM).
int udpRoundTrip(const std::string& dst, uint16_t port, const std::string& msg,
                 std::chrono::milliseconds timeout, const std::string& bind_src = "");

// One ICMP / ICMPv6 echo over an ICMP datagram ("ping") socket, not a raw one: raw sockets are
// refused to enforced workloads. Where net.ipv4.ping_group_range of the caller's network
// namespace excludes it, the range admits every group just for creating the socket. 0 on a
// matching reply, ETIMEDOUT, or the socket/send errno.
int ping(const std::string& dst, std::chrono::milliseconds timeout,
         const std::string& bind_src = "");

}  // namespace ztseg::test
