#include "common/lab.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "common/cgroup.hpp"

extern char** environ;

namespace ztseg::test {
SockAddress sockAddress(const std::string& ip, uint16_t port) {
    SockAddress a;
    bool ok;
    if (ip.find(':') != std::string::npos) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&a.ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        ok = inet_pton(AF_INET6, ip.c_str(), &s6->sin6_addr) == 1;
        a.len = sizeof(*s6);
    } else {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&a.ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        ok = inet_pton(AF_INET, ip.c_str(), &s4->sin_addr) == 1;
        a.len = sizeof(*s4);
    }
    if (!ok) {
        throw std::runtime_error("address '" + ip + "': inet_pton: not a valid IP address");
    }
    return a;
}

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

[[noreturn]] void throwErrno(const std::string& object, const std::string& op) {
    int err = errno;  // save before any allocation below
    throw std::runtime_error(object + ": " + op + ": " + std::strerror(err));
}

// ---- shell ----

struct ShResult {
    int status = 0;  // raw waitpid status
    std::string out;
    std::string err;
};

std::string describeStatus(int status) {
    if (WIFEXITED(status)) {
        return "exit status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        return "killed by signal " + std::to_string(WTERMSIG(status));
    }
    return "status " + std::to_string(status);
}

ShResult runShell(const std::string& cmd) {
    const std::string object = "sh '" + cmd + "'";
    int out_pipe[2], err_pipe[2];
    if (pipe2(out_pipe, O_CLOEXEC) != 0) {
        throwErrno(object, "pipe2");
    }
    UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        throwErrno(object, "pipe2");
    }
    UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out_w.get(), STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err_w.get(), STDERR_FILENO);
    const char* argv[] = {"sh", "-c", cmd.c_str(), nullptr};
    pid_t pid;
    int rc =
        posix_spawn(&pid, "/bin/sh", &actions, nullptr, const_cast<char* const*>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        errno = rc;
        throwErrno(object, "posix_spawn /bin/sh");
    }
    out_w.reset();
    err_w.reset();

    ShResult res;
    pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
    std::string* sinks[2] = {&res.out, &res.err};
    for (int open = 2; open > 0;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !fds[i].revents) {
                continue;
            }
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof(buf));
            if (n > 0) {
                sinks[i]->append(buf, n);
            } else if (n == 0 || errno != EINTR) {
                fds[i].fd = -1;  // poll ignores negative fds
                --open;
            }
        }
    }
    while (waitpid(pid, &res.status, 0) < 0 && errno == EINTR) {
    }
    return res;
}

ShResult runShellChecked(const std::string& cmd) {
    ShResult r = runShell(cmd);
    if (r.status != 0) {
        throw std::runtime_error("sh '" + cmd + "': " + describeStatus(r.status) + ": " + r.out +
                                 r.err);
    }
    return r;
}

// ---- cgroup helpers ----

std::vector<pid_t> cgroupProcs(const std::string& dir) {
    std::vector<pid_t> pids;
    std::ifstream in(dir + "/cgroup.procs");
    for (pid_t pid; in >> pid;) {
        pids.push_back(pid);
    }
    return pids;
}

bool writeFile(const std::string& path, const std::string& data) noexcept {
    int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    close(fd);
    return ok;
}

// Empties and removes a cgroup directory, children first. Best effort, bounded, never throws.
void removeCgroupTree(const std::string& dir) noexcept {
    try {
        // cgroup.kill (5.14+) kills the whole subtree atomically, even processes being forked.
        const bool has_kill = writeFile(dir + "/cgroup.kill", "1");
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
            if (entry.is_directory(ec)) {
                removeCgroupTree(entry.path());
            }
        }
        const auto deadline = Clock::now() + 2s;
        while (true) {
            auto pids = cgroupProcs(dir);
            if (pids.empty() && (rmdir(dir.c_str()) == 0 || errno == ENOENT)) {
                return;
            }
            if (Clock::now() > deadline) {
                std::fprintf(stderr, "warning: cgroup %s: could not remove (%zu processes): %s\n",
                             dir.c_str(), pids.size(), std::strerror(errno));
                return;
            }
            if (!has_kill) {
                for (pid_t pid : pids) {
                    ::kill(pid, SIGKILL);
                }
            }
            std::this_thread::sleep_for(10ms);
        }
    } catch (...) {
    }
}

// ---- sockets ----

SockAddress anyAddr(int family, uint16_t port) {
    return sockAddress(family == AF_INET6 ? "::" : "0.0.0.0", port);
}

bool sameHost(const sockaddr_storage& from, const SockAddress& to) {
    if (from.ss_family != to.family()) {
        return false;
    }
    if (from.ss_family == AF_INET6) {
        return std::memcmp(&reinterpret_cast<const sockaddr_in6&>(from).sin6_addr,
                           &reinterpret_cast<const sockaddr_in6&>(to.ss).sin6_addr, 16) == 0;
    }
    return reinterpret_cast<const sockaddr_in&>(from).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(to.ss).sin_addr.s_addr;
}

// 0 when fd is ready for events, ETIMEDOUT at the deadline, else the poll errno.
int pollUntil(int fd, short events, Clock::time_point deadline) {
    while (true) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        pollfd p{fd, events, 0};
        int rc = poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
        if (rc > 0) {
            return 0;
        }
        if (rc == 0) {
            return ETIMEDOUT;
        }
        if (errno != EINTR) {
            return errno;
        }
    }
}

bool retryable(int err) {
    return err == EINTR || err == EAGAIN || err == EWOULDBLOCK;
}

// Binds to bind_src/bind_port if either is given. 0 or errno.
int bindSource(int fd, int family, const std::string& bind_src, uint16_t bind_port) {
    if (bind_src.empty() && bind_port == 0) {
        return 0;
    }
    SockAddress src =
        bind_src.empty() ? anyAddr(family, bind_port) : sockAddress(bind_src, bind_port);
    if (bind_port != 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    return bind(fd, src.sa(), src.len) == 0 ? 0 : errno;
}

UniqueFd bindServer(const std::string& addr, uint16_t port, int type, const char* what) {
    SockAddress a = sockAddress(addr, port);
    const std::string object =
        std::string(what) + " socket " + addr + " port " + std::to_string(port);
    UniqueFd fd(socket(a.family(), type | SOCK_CLOEXEC, 0));
    if (!fd) {
        throwErrno(object, "socket");
    }
    int one = 1;
    if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        throwErrno(object, "setsockopt SO_REUSEADDR");
    }
    if (bind(fd.get(), a.sa(), a.len) != 0) {
        throwErrno(object, "bind");
    }
    return fd;
}

// Nonblocking connect bounded by deadline; on success out holds the connected socket.
int connectTcp(const std::string& dst, uint16_t port, Clock::time_point deadline,
               const std::string& bind_src, uint16_t bind_port, UniqueFd& out) {
    SockAddress to = sockAddress(dst, port);
    UniqueFd fd(socket(to.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        return errno;
    }
    if (int err = bindSource(fd.get(), to.family(), bind_src, bind_port)) {
        return err;
    }
    if (connect(fd.get(), to.sa(), to.len) != 0) {
        if (errno != EINPROGRESS) {
            return errno;
        }
        if (int err = pollUntil(fd.get(), POLLOUT, deadline)) {
            return err;
        }
        int so_error = 0;
        socklen_t len = sizeof(so_error);
        if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
            return errno;
        }
        if (so_error != 0) {
            return so_error;
        }
    }
    out = std::move(fd);
    return 0;
}

// Sends all of data on a (possibly nonblocking) socket. 0 or errno.
int sendAll(int fd, const char* data, size_t size, Clock::time_point deadline) {
    while (size > 0) {
        if (int err = pollUntil(fd, POLLOUT, deadline)) {
            return err;
        }
        ssize_t n = send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (retryable(errno)) {
                continue;
            }
            return errno;
        }
        data += n;
        size -= n;
    }
    return 0;
}

// Echoes one connection until EOF, error or idle_timeout of silence.
void echoStream(int fd, std::chrono::milliseconds idle_timeout) {
    char buf[4096];
    while (pollUntil(fd, POLLIN, Clock::now() + idle_timeout) == 0) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && retryable(errno)) {
            continue;
        }
        if (n <= 0 || sendAll(fd, buf, n, Clock::now() + idle_timeout) != 0) {
            return;
        }
    }
}

void put16(uint8_t* p, uint16_t v) {
    p[0] = v >> 8;
    p[1] = v & 0xff;
}

uint16_t get16(const uint8_t* p) {
    return (p[0] << 8) | p[1];
}

std::string base36(uint64_t v, size_t width) {
    static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    std::string s;
    do {
        s.insert(s.begin(), kDigits[v % 36]);
        v /= 36;
    } while (v);
    if (s.size() < width) {
        s.insert(0, width - s.size(), '0');
    }
    return s;
}

}  // namespace

// ---- names and shell ----

std::string uniqueName(const std::string& prefix) {
    static std::atomic<uint64_t> counter{0};
    // Fixed-width pid keeps (pid, counter) pairs unambiguous. pid_max <= 2^22 < 36^5.
    std::string name = prefix + base36(getpid(), 5) + base36(counter++, 1);
    if (name.size() > 15) {
        throw std::runtime_error("uniqueName: '" + name + "' exceeds 15 characters; prefix '" +
                                 prefix + "' is too long");
    }
    return name;
}

void sh(const std::string& cmd) {
    runShellChecked(cmd);
}

std::string shOut(const std::string& cmd) {
    return runShellChecked(cmd).out;
}

bool trySh(const std::string& cmd) noexcept {
    try {
        return runShell(cmd).status == 0;
    } catch (...) {
        return false;
    }
}

// ---- NetNs ----

NetNs::NetNs(std::string name) : name_(std::move(name)) {
    sh("ip netns add " + name_);
    const std::string path = "/run/netns/" + name_;
    fd_.reset(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd_) {
        int err = errno;
        trySh("ip netns del " + name_);
        errno = err;
        throwErrno("netns " + name_, "open " + path);
    }
}

NetnsScope::NetnsScope(const NetNs& ns) {
    saved_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!saved_ || setns(ns.fd(), CLONE_NEWNET) != 0) {
        throwErrno("netns " + ns.name(), "enter");
    }
}

NetnsScope::~NetnsScope() {
    if (setns(saved_.get(), CLONE_NEWNET) != 0) {
        std::perror("setns back to the previous network namespace");
        std::abort();  // everything after would run in the wrong namespace
    }
}

NetNs::NetNs(NetNs&& other) noexcept
    : name_(std::exchange(other.name_, {})), fd_(std::move(other.fd_)) {}

NetNs& NetNs::operator=(NetNs&& other) noexcept {
    if (this != &other) {
        destroy();
        name_ = std::exchange(other.name_, {});
        fd_ = std::move(other.fd_);
    }
    return *this;
}

NetNs::~NetNs() {
    destroy();
}

void NetNs::destroy() noexcept {
    if (name_.empty()) {
        return;
    }
    fd_.reset();  // our fd would keep the namespace alive after the unmount
    trySh("ip netns del " + name_);
    name_.clear();
}

void NetNs::exec(const std::string& cmd) const {
    sh("ip netns exec " + name_ + " " + cmd);
}

std::string NetNs::execOut(const std::string& cmd) const {
    return shOut("ip netns exec " + name_ + " " + cmd);
}

// ---- VethPair ----

VethPair::VethPair(const std::string& a, NetNs* ns_a, const std::string& b, NetNs* ns_b)
    : name_{a, b}, ns_{ns_a ? ns_a->name() : "", ns_b ? ns_b->name() : ""} {
    for (const auto& n : name_) {
        if (n.empty() || n.size() > 15) {
            throw std::runtime_error("veth '" + n + "': name must be 1..15 characters");
        }
    }
    auto netns = [](const std::string& ns) { return ns.empty() ? "" : " netns " + ns; };
    // Created directly in the target namespaces, so a failure never strands an end in root.
    sh("ip link add " + a + netns(ns_[0]) + " type veth peer name " + b + netns(ns_[1]));
    try {
        for (int side : {0, 1}) {
            sh(ipCmd(side) + "link set " + name_[side] + " up");
            if (!ns_[side].empty()) {
                sh(ipCmd(side) + "link set lo up");
            }
        }
        // Until linkwatch activates the qdisc, early packets are silently dropped.
        waitUp(0);
        waitUp(1);
    } catch (...) {
        destroy();
        throw;
    }
}

VethPair::VethPair(VethPair&& other) noexcept
    : name_{std::exchange(other.name_[0], {}), std::exchange(other.name_[1], {})},
      ns_{std::move(other.ns_[0]), std::move(other.ns_[1])} {}

VethPair& VethPair::operator=(VethPair&& other) noexcept {
    if (this != &other) {
        destroy();
        for (int i : {0, 1}) {
            name_[i] = std::exchange(other.name_[i], {});
            ns_[i] = std::move(other.ns_[i]);
        }
    }
    return *this;
}

VethPair::~VethPair() {
    destroy();
}

void VethPair::destroy() noexcept {
    if (name_[0].empty()) {
        return;
    }
    // Deleting one end removes both. Fails harmlessly if the netns (and with it the pair) is gone.
    trySh(ipCmd(0) + "link del " + name_[0]);
    name_[0].clear();
    name_[1].clear();
}

std::string VethPair::ipCmd(int side) const {
    return ns_[side].empty() ? "ip " : "ip -n " + ns_[side] + " ";
}

void VethPair::addAddress(int side, const std::string& cidr) {
    if (side != 0 && side != 1) {
        throw std::runtime_error("veth " + name_[0] + ": addAddress: side must be 0 or 1");
    }
    // nodad: the address is usable at once instead of "tentative" for ~1 s.
    bool v6 = cidr.find(':') != std::string::npos;
    sh(ipCmd(side) + "addr add " + cidr + " dev " + name_[side] + (v6 ? " nodad" : ""));
}

int VethPair::ifindex(int side) const {
    std::string out = shOut(ipCmd(side) + "-o link show " + name_[side]);
    try {
        return std::stoi(out);  // "7: name@if8: <...>"
    } catch (const std::exception&) {
        throw std::runtime_error("veth " + name_[side] + ": ifindex: cannot parse '" + out + "'");
    }
}

void VethPair::waitUp(int side) const {
    const auto deadline = Clock::now() + 3s;
    while (true) {
        std::string out = shOut(ipCmd(side) + "-o link show " + name_[side]);
        if (out.find("state UP") != std::string::npos) {
            return;
        }
        if (Clock::now() > deadline) {
            throw std::runtime_error("veth " + name_[side] + ": link did not come up: " + out);
        }
        std::this_thread::sleep_for(5ms);
    }
}

// ---- Cgroup2 ----

std::string Cgroup2::mountPoint() {
    static const std::string mount_point = ztseg::cgroup2MountPoint();
    return mount_point;
}

uint64_t Cgroup2::idOfPath(const std::string& path) {
    return ztseg::cgroupIdOf(path);
}

Cgroup2::Cgroup2(const std::string& name) : path_(mountPoint() + "/" + name) {
    if (mkdir(path_.c_str(), 0755) != 0) {
        throwErrno("cgroup " + path_, "mkdir");
    }
    fd_.reset(open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd_) {
        int err = errno;
        rmdir(path_.c_str());
        errno = err;
        throwErrno("cgroup " + path_, "open");
    }
}

Cgroup2::Cgroup2(Cgroup2&& other) noexcept
    : path_(std::exchange(other.path_, {})), fd_(std::move(other.fd_)) {}

Cgroup2& Cgroup2::operator=(Cgroup2&& other) noexcept {
    if (this != &other) {
        destroy();
        path_ = std::exchange(other.path_, {});
        fd_ = std::move(other.fd_);
    }
    return *this;
}

Cgroup2::~Cgroup2() {
    destroy();
}

void Cgroup2::destroy() noexcept {
    if (path_.empty()) {
        return;
    }
    fd_.reset();
    removeCgroupTree(path_);
    path_.clear();
}

// ---- Child ----

void Child::Ready::signal() {
    if (fd_ < 0) {
        return;
    }
    while (write(fd_, "r", 1) < 0 && errno == EINTR) {
    }
    close(fd_);
    fd_ = -1;
}

Child::Child(NetNs* ns, Cgroup2* cg, std::function<int()> fn)
    : Child(ns, cg, [fn = std::move(fn)](Ready&) { return fn(); }) {}

Child::Child(NetNs* ns, Cgroup2* cg, std::function<int(Ready&)> fn) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        throwErrno("child", "pipe2");
    }
    UniqueFd ready_r(fds[0]), ready_w(fds[1]);
    const int ns_fd = ns ? ns->fd() : -1;
    const std::string procs = cg ? cg->path() + "/cgroup.procs" : "";

    std::fflush(nullptr);  // otherwise buffered output would be written twice
    pid_t pid = fork();
    if (pid < 0) {
        throwErrno("child", "fork");
    }
    if (pid == 0) {
        ready_r.reset();
        _exit(runChild(ns_fd, procs, fn, ready_w.release()));
    }
    pid_ = pid;
    ready_ = std::move(ready_r);
    // Via syscall(): Debian 12's <sys/pidfd.h> lacks extern "C".
    pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd_) {
        int err = errno;
        kill();
        errno = err;
        throwErrno("child " + std::to_string(pid), "pidfd_open");
    }
}

int Child::runChild(int ns_fd, const std::string& procs, const std::function<int(Ready&)>& fn,
                    int ready_fd) noexcept {
    if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) != 0) {
        std::perror("child: setns");
        return kExitSetupFailed;
    }
    if (!procs.empty() && !writeFile(procs, "0")) {  // "0" = the writing process
        std::perror(("child: write " + procs).c_str());
        return kExitSetupFailed;
    }
    int rc = kExitException;
    try {
        Ready ready(ready_fd);
        rc = fn(ready);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "child: exception: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "child: unknown exception\n");
    }
    std::fflush(nullptr);  // _exit() skips stdio flushing
    return rc;
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      ready_(std::move(other.ready_)),
      status_(std::exchange(other.status_, std::nullopt)) {}

Child& Child::operator=(Child&& other) noexcept {
    if (this != &other) {
        kill();
        pid_ = std::exchange(other.pid_, -1);
        pidfd_ = std::move(other.pidfd_);
        ready_ = std::move(other.ready_);
        status_ = std::exchange(other.status_, std::nullopt);
    }
    return *this;
}

Child::~Child() {
    kill();
}

bool Child::reap(bool block) {
    if (status_) {
        return true;
    }
    if (pid_ < 0) {
        return false;
    }
    int status;
    pid_t r;
    while ((r = waitpid(pid_, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
    }
    if (r < 0) {
        status_ = -1;  // reaped elsewhere (e.g. SIGCHLD ignored): the status is lost
        return true;
    }
    if (r != pid_) {
        return false;
    }
    status_ = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    return true;
}

bool Child::waitExit(std::chrono::steady_clock::time_point deadline) {
    while (!reap(false)) {
        if (pollUntil(pidfd_.get(), POLLIN, deadline) != 0) {  // readable once it has exited
            return reap(false);
        }
    }
    return true;
}

void Child::kill() noexcept {
    if (pid_ < 0 || status_) {
        return;
    }
    ::kill(pid_, SIGKILL);
    reap(true);
}

void Child::waitReady(std::chrono::milliseconds timeout) {
    const std::string object = "child " + std::to_string(pid_);
    if (!ready_) {
        throw std::runtime_error(object + ": waitReady: already waited or no child");
    }
    if (pollUntil(ready_.get(), POLLIN, Clock::now() + timeout) == ETIMEDOUT) {
        throw std::runtime_error(object + ": waitReady: not ready after " +
                                 std::to_string(timeout.count()) + " ms");
    }
    char c;
    ssize_t n;
    while ((n = read(ready_.get(), &c, 1)) < 0 && errno == EINTR) {
    }
    if (n < 0) {
        throwErrno(object, "waitReady: read");
    }
    ready_.reset();
    if (n == 0) {  // write end closed without a byte: the child exited
        std::string how = waitExit(Clock::now() + 1s) ? std::to_string(*status_) : "unknown";
        throw std::runtime_error(object + ": waitReady: exited (status " + how +
                                 ") before signalling ready");
    }
}

int Child::wait(std::chrono::milliseconds timeout) {
    if (pid_ < 0) {
        throw std::runtime_error("child: wait: no process");
    }
    if (!waitExit(Clock::now() + timeout)) {
        kill();
        throw std::runtime_error("child " + std::to_string(pid_) + ": wait: still running after " +
                                 std::to_string(timeout.count()) + " ms (killed)");
    }
    return *status_;
}

bool Child::running() {
    return pid_ >= 0 && !reap(false);
}

// ---- sockets ----

UniqueFd tcpListen(const std::string& addr, uint16_t port) {
    UniqueFd fd = bindServer(addr, port, SOCK_STREAM, "tcp");
    if (listen(fd.get(), 64) != 0) {
        throwErrno("tcp socket " + addr + " port " + std::to_string(port), "listen");
    }
    return fd;
}

UniqueFd udpBind(const std::string& addr, uint16_t port) {
    return bindServer(addr, port, SOCK_DGRAM, "udp");
}

uint16_t localPort(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        throwErrno("socket fd " + std::to_string(fd), "getsockname");
    }
    return ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port
                                          : reinterpret_cast<sockaddr_in&>(ss).sin_port);
}

int tcpEchoServe(int listen_fd, int max_conns, std::chrono::milliseconds idle_timeout) {
    int served = 0;
    while (served < max_conns && pollUntil(listen_fd, POLLIN, Clock::now() + idle_timeout) == 0) {
        UniqueFd conn(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn) {
            if (retryable(errno) || errno == ECONNABORTED) {
                continue;
            }
            break;
        }
        ++served;
        echoStream(conn.get(), idle_timeout);
    }
    return served;
}

ConnectResult tcpConnect(const std::string& dst, uint16_t port, std::chrono::milliseconds timeout,
                         const std::string& bind_src, uint16_t bind_port) {
    const auto start = Clock::now();
    UniqueFd fd;
    int err = connectTcp(dst, port, start + timeout, bind_src, bind_port, fd);
    return {err, std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start)};
}

int tcpEchoServeConcurrently(int listen_fd, std::chrono::milliseconds idle_timeout) {
    std::vector<UniqueFd> conns;
    int accepted = 0;
    while (true) {
        std::vector<pollfd> p{{listen_fd, POLLIN, 0}};
        for (const UniqueFd& c : conns) {
            p.push_back({c.get(), POLLIN, 0});
        }
        int rc = poll(p.data(), p.size(), static_cast<int>(idle_timeout.count()));
        if (rc == 0 || (rc < 0 && errno != EINTR)) {
            return accepted;
        }
        for (size_t i = p.size() - 1; rc > 0 && i >= 1; --i) {  // backwards: erase keeps indexes
            if (p[i].revents == 0) {
                continue;
            }
            char buf[4096];
            ssize_t n = recv(p[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
            if (n < 0 && retryable(errno)) {
                continue;
            }
            if (n <= 0 || sendAll(p[i].fd, buf, n, Clock::now() + idle_timeout) != 0) {
                conns.erase(conns.begin() + static_cast<ptrdiff_t>(i - 1));
            }
        }
        if (rc > 0 && (p[0].revents & POLLIN) != 0) {
            UniqueFd conn(accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
            if (conn) {
                ++accepted;
                conns.push_back(std::move(conn));
            } else if (!retryable(errno) && errno != ECONNABORTED) {
                return accepted;
            }
        }
    }
}

int tcpOpen(const std::string& dst, uint16_t port, std::chrono::milliseconds timeout, UniqueFd& out,
            const std::string& bind_src) {
    return connectTcp(dst, port, Clock::now() + timeout, bind_src, 0, out);
}

int tcpReadEcho(int fd, const std::string& msg, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::string echo;
    while (echo.size() < msg.size()) {
        if (int err = pollUntil(fd, POLLIN, deadline)) {
            return err;
        }
        char buf[4096];
        ssize_t n = recv(fd, buf, std::min(sizeof(buf), msg.size() - echo.size()), MSG_DONTWAIT);
        if (n < 0) {
            if (retryable(errno)) {
                continue;
            }
            return errno;
        }
        if (n == 0) {
            return ECONNRESET;  // closed before echoing everything
        }
        echo.append(buf, n);
    }
    return echo == msg ? 0 : EBADMSG;
}

int tcpEcho(int fd, const std::string& msg, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    if (int err = sendAll(fd, msg.data(), msg.size(), deadline)) {
        return err;
    }
    return tcpReadEcho(fd, msg,
                       std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()));
}

int tcpEchoRoundTrip(const std::string& dst, uint16_t port, const std::string& msg,
                     std::chrono::milliseconds timeout, const std::string& bind_src) {
    const auto deadline = Clock::now() + timeout;
    UniqueFd fd;
    if (int err = connectTcp(dst, port, deadline, bind_src, 0, fd)) {
        return err;
    }
    return tcpEcho(fd.get(), msg,
                   std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()));
}

int udpEchoServe(int fd, int max_msgs, std::chrono::milliseconds idle_timeout) {
    std::vector<char> buf(65536);
    int echoed = 0;
    while (echoed < max_msgs && pollUntil(fd, POLLIN, Clock::now() + idle_timeout) == 0) {
        sockaddr_storage from{};
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(fd, buf.data(), buf.size(), MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&from), &from_len);
        if (n < 0) {
            if (retryable(errno)) {
                continue;
            }
            break;
        }
        if (sendto(fd, buf.data(), n, 0, reinterpret_cast<sockaddr*>(&from), from_len) == n) {
            ++echoed;
        }
    }
    return echoed;
}

int udpEchoServe(const std::string& addr, uint16_t port, int max_msgs,
                 std::chrono::milliseconds idle_timeout) {
    return udpEchoServe(udpBind(addr, port).get(), max_msgs, idle_timeout);
}

int udpRoundTrip(const std::string& dst, uint16_t port, const std::string& msg,
                 std::chrono::milliseconds timeout, const std::string& bind_src) {
    const auto deadline = Clock::now() + timeout;
    SockAddress to = sockAddress(dst, port);
    UniqueFd fd(socket(to.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        return errno;
    }
    if (int err = bindSource(fd.get(), to.family(), bind_src, 0)) {
        return err;
    }
    if (sendto(fd.get(), msg.data(), msg.size(), 0, to.sa(), to.len) < 0) {
        return errno;
    }
    std::vector<char> buf(65536);
    while (true) {
        if (int err = pollUntil(fd.get(), POLLIN, deadline)) {
            return err;
        }
        sockaddr_storage from{};
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(fd.get(), buf.data(), buf.size(), 0,
                             reinterpret_cast<sockaddr*>(&from), &from_len);
        if (n < 0) {
            if (retryable(errno)) {
                continue;
            }
            return errno;
        }
        if (sameHost(from, to) && std::string_view(buf.data(), n) == msg) {
            return 0;
        }
    }
}

namespace {

// ICMP datagram ("ping") sockets are open to the groups in
// net.ipv4.ping_group_range of the caller's network namespace (it governs
// ICMPv6 too); the default, "1 0", admits nobody. While this lives the range
// admits every group; the old range comes back afterwards, so no namespace
// (the tests' own, or the root one) is left changed. The range is checked
// only when a socket is created. A range someone else opened meanwhile is
// theirs to restore.
class PingGroupRange {
  public:
    PingGroupRange() {
        std::ifstream in(kPath);
        long lo = 1, hi = 0;
        in >> lo >> hi;
        const long gid = static_cast<long>(getegid());
        if (!(lo <= gid && gid <= hi) && writeFile(kPath, "0 2147483647")) {
            old_ = std::to_string(lo) + " " + std::to_string(hi);
        }
    }
    ~PingGroupRange() {
        if (!old_.empty()) {
            writeFile(kPath, old_);
        }
    }
    PingGroupRange(const PingGroupRange&) = delete;
    PingGroupRange& operator=(const PingGroupRange&) = delete;

  private:
    static constexpr const char* kPath = "/proc/sys/net/ipv4/ping_group_range";
    std::string old_;
};

// A ping socket, or invalid with `err` set.
UniqueFd pingSocket(int family, int& err) {
    const int type = SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC;
    const int proto = family == AF_INET6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP};
    for (int attempt = 0; attempt < 5; ++attempt) {
        UniqueFd fd(socket(family, type, proto));
        err = errno;
        if (fd || err != EACCES) {
            return fd;
        }
        PingGroupRange open;
        fd.reset(socket(family, type, proto));
        err = errno;
        if (fd || err != EACCES) {
            return fd;
        }
        // another ping in this namespace put the range back meanwhile: again
    }
    return {};
}

}  // namespace

int ping(const std::string& dst, std::chrono::milliseconds timeout, const std::string& bind_src) {
    const auto deadline = Clock::now() + timeout;
    SockAddress to = sockAddress(dst, 0);
    const bool v6 = to.family() == AF_INET6;
    int socket_err = 0;
    UniqueFd fd = pingSocket(to.family(), socket_err);
    if (!fd) {
        return socket_err;
    }
    if (int err = bindSource(fd.get(), to.family(), bind_src, 0)) {
        return err;
    }

    // The kernel sets the echo identifier (the socket's "port") and, for
    // ICMPv4, the checksum; replies come back to this socket alone.
    static std::atomic<uint16_t> sequence{0};
    const uint16_t seq = ++sequence;
    std::vector<uint8_t> req(8 + 16, 'z');
    req[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    req[1] = 0;
    put16(&req[2], 0);
    put16(&req[4], 0);
    put16(&req[6], seq);
    if (sendto(fd.get(), req.data(), req.size(), 0, to.sa(), to.len) < 0) {
        return errno;
    }

    std::vector<uint8_t> buf(65536);
    while (true) {
        if (int err = pollUntil(fd.get(), POLLIN, deadline)) {
            return err;
        }
        sockaddr_storage from{};
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(fd.get(), buf.data(), buf.size(), 0,
                             reinterpret_cast<sockaddr*>(&from), &from_len);
        if (n < 0) {
            if (retryable(errno)) {
                continue;
            }
            return errno;
        }
        // Datagram ICMP sockets deliver the ICMP message without the IP header.
        if (static_cast<size_t>(n) < 8 || !sameHost(from, to)) {
            continue;
        }
        if (buf[0] == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) && get16(&buf[6]) == seq) {
            return 0;
        }
    }
}

}  // namespace ztseg::test
