// Watches network interfaces (rtnetlink RTMGRP_LINK via libmnl) whose names match a set of fnmatch
// globs ("eth*", "veth*", "*") or exact names ("eth0"). A glob never matches the loopback device
// (IFF_LOOPBACK): `interfaces: ["*"]` means every interface but lo. The watcher lives in the
// network namespace of the thread that constructs it: both netlink sockets are opened in the
// constructor.
#pragma once

#include <libmnl/libmnl.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ztseg::agent {

// A pattern with fnmatch wildcards ('*', '?', '['), as opposed to an exact interface name.
bool isGlob(const std::string& pattern);

struct LinkInfo {
    int ifindex = 0;
    std::string name;
    bool up = false;        // IFF_UP
    uint16_t type = 0;      // link type, ARPHRD_*
    bool loopback = false;  // IFF_LOOPBACK

    bool operator==(const LinkInfo&) const = default;
};

struct LinkEvent {
    enum Kind { Added, Removed };
    Kind kind;
    LinkInfo link;
};

class LinkWatcher {
  public:
    // Throws ztseg::Error if a netlink socket cannot be opened or bound.
    explicit LinkWatcher(std::vector<std::string> patterns);
    LinkWatcher(const LinkWatcher&) = delete;
    LinkWatcher& operator=(const LinkWatcher&) = delete;
    LinkWatcher(LinkWatcher&&) = default;
    LinkWatcher& operator=(LinkWatcher&&) = default;
    ~LinkWatcher() = default;

    // RTM_GETLINK dump of the matching links, sorted by ifindex. Also resets the watcher's view
    // of which links exist, so later events are relative to this dump.
    std::vector<LinkInfo> dump();

    // Event socket (non-blocking), for poll/epoll: readable when process() has work.
    int fd() const;

    // Reads all pending notifications without blocking and reports matching links that
    // appeared or disappeared (also through renames; a link whose type changes is reported as
    // removed and added again). On a netlink overrun (ENOBUFS) re-dumps
    // and reports the differences. Callbacks run after parsing; an exception from cb propagates
    // (events not yet delivered from that batch are lost).
    void process(const std::function<void(const LinkEvent&)>& cb);

    // Whether a link of this name (and kind) is watched: an exact name matches only itself; a
    // glob never matches a loopback link.
    bool matches(const std::string& name, bool loopback = false) const;
    const std::vector<std::string>& patterns() const { return patterns_; }

  private:
    struct SocketCloser {
        void operator()(mnl_socket* s) const { mnl_socket_close(s); }
    };
    using Socket = std::unique_ptr<mnl_socket, SocketCloser>;

    std::map<int, LinkInfo> dumpAll();
    void handle(const struct nlmsghdr* nlh, std::vector<LinkEvent>& out);
    void resync(std::vector<LinkEvent>& out);

    std::vector<std::string> patterns_;
    Socket events_;  // bound to RTMGRP_LINK, non-blocking
    Socket dumper_;  // request/response, blocking with a receive timeout
    uint32_t seq_ = 0;
    std::map<int, LinkInfo> known_;  // matching links by ifindex
};

}  // namespace ztseg::agent
