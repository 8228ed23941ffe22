#include "agent/link_watcher.hpp"

#include <fnmatch.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>

#include "common/error.hpp"

namespace ztseg::agent {
namespace {

constexpr size_t kBufSize = 32768;  // what the kernel uses at most per dump skb
constexpr int kDumpRetries = 5;

struct ParsedLink {
    LinkInfo info;
    uint16_t type = 0;  // RTM_NEWLINK / RTM_DELLINK
};

// Only AF_UNSPEC link messages describe links; AF_BRIDGE ones describe bridge ports (their
// RTM_DELLINK means "left the bridge", not "deleted").
std::optional<ParsedLink> parseLink(const nlmsghdr* nlh) {
    if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK) {
        return std::nullopt;
    }
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(ifinfomsg))) {
        return std::nullopt;
    }
    const auto* ifm = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    if (ifm->ifi_family != AF_UNSPEC) {
        return std::nullopt;
    }
    ParsedLink link;
    link.info.ifindex = ifm->ifi_index;
    link.info.up = (ifm->ifi_flags & IFF_UP) != 0;
    link.info.type = ifm->ifi_type;
    link.info.loopback = (ifm->ifi_flags & IFF_LOOPBACK) != 0;
    link.type = nlh->nlmsg_type;
    const auto* tail = static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
    for (auto* attr =
             static_cast<const nlattr*>(mnl_nlmsg_get_payload_offset(nlh, sizeof(ifinfomsg)));
         mnl_attr_ok(attr, static_cast<int>(tail - reinterpret_cast<const char*>(attr)));
         attr = mnl_attr_next(attr)) {
        if (mnl_attr_get_type(attr) == IFLA_IFNAME &&
            mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0) {
            link.info.name = mnl_attr_get_str(attr);
        }
    }
    if (link.info.name.empty()) {
        return std::nullopt;
    }
    return link;
}

std::string describe(const std::vector<std::string>& patterns) {
    std::string s;
    for (const auto& p : patterns) {
        s += (s.empty() ? "" : ",") + p;
    }
    return "link watcher [" + s + "]";
}

}  // namespace

bool isGlob(const std::string& pattern) {
    return pattern.find_first_of("*?[") != std::string::npos;
}

LinkWatcher::LinkWatcher(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {
    const std::string who = describe(patterns_);
    events_.reset(mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!events_) {
        throwErrno(who + ": open NETLINK_ROUTE event socket", errno);
    }
    if (mnl_socket_bind(events_.get(), RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
        throwErrno(who + ": bind event socket to RTMGRP_LINK", errno);
    }
    dumper_.reset(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
    if (!dumper_) {
        throwErrno(who + ": open NETLINK_ROUTE dump socket", errno);
    }
    if (mnl_socket_bind(dumper_.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
        throwErrno(who + ": bind dump socket", errno);
    }
    timeval tv{5, 0};
    if (setsockopt(mnl_socket_get_fd(dumper_.get()), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) !=
        0) {
        throwErrno(who + ": set dump socket receive timeout", errno);
    }
    seq_ = static_cast<uint32_t>(time(nullptr));
}

int LinkWatcher::fd() const {
    return mnl_socket_get_fd(events_.get());
}

bool LinkWatcher::matches(const std::string& name, bool loopback) const {
    for (const auto& p : patterns_) {
        if (isGlob(p) ? !loopback && fnmatch(p.c_str(), name.c_str(), 0) == 0 : p == name) {
            return true;
        }
    }
    return false;
}

std::map<int, LinkInfo> LinkWatcher::dumpAll() {
    const std::string who = describe(patterns_);
    std::vector<char> buf(kBufSize);
    for (int attempt = 0; attempt < kDumpRetries; ++attempt) {
        nlmsghdr* req = mnl_nlmsg_put_header(buf.data());
        req->nlmsg_type = RTM_GETLINK;
        req->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
        req->nlmsg_seq = ++seq_;
        auto* ifm = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(req, sizeof(ifinfomsg)));
        ifm->ifi_family = AF_UNSPEC;
        const uint32_t seq = req->nlmsg_seq;
        const uint32_t portid = mnl_socket_get_portid(dumper_.get());
        if (mnl_socket_sendto(dumper_.get(), req, req->nlmsg_len) < 0) {
            throwErrno(who + ": send RTM_GETLINK dump request", errno);
        }
        std::map<int, LinkInfo> links;
        bool done = false;
        bool interrupted = false;
        while (!done) {
            ssize_t n = mnl_socket_recvfrom(dumper_.get(), buf.data(), buf.size());
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                throwErrno(who + ": receive RTM_GETLINK dump", errno);
            }
            int len = static_cast<int>(n);
            for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
                 nlh = mnl_nlmsg_next(nlh, &len)) {
                if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != portid) {
                    continue;  // stale answer to an earlier, abandoned request
                }
                if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) {
                    interrupted = true;
                }
                if (nlh->nlmsg_type == NLMSG_DONE) {
                    done = true;
                    break;
                }
                if (nlh->nlmsg_type == NLMSG_ERROR) {
                    const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
                    if (err->error != 0) {
                        throwErrno(who + ": RTM_GETLINK dump", -err->error);
                    }
                    done = true;
                    break;
                }
                if (auto link = parseLink(nlh); link && link->type == RTM_NEWLINK) {
                    if (matches(link->info.name, link->info.loopback)) {
                        links[link->info.ifindex] = link->info;
                    }
                }
            }
        }
        if (!interrupted) {
            return links;
        }
        spdlog::debug("{}: link dump interrupted by a concurrent change, retrying", who);
    }
    throw Error(describe(patterns_) + ": RTM_GETLINK dump: interrupted " +
                std::to_string(kDumpRetries) + " times by concurrent changes");
}

std::vector<LinkInfo> LinkWatcher::dump() {
    known_ = dumpAll();
    std::vector<LinkInfo> out;
    out.reserve(known_.size());
    for (const auto& [idx, info] : known_) {
        out.push_back(info);
    }
    spdlog::debug("{}: dump found {} matching links", describe(patterns_), out.size());
    return out;
}

void LinkWatcher::handle(const nlmsghdr* nlh, std::vector<LinkEvent>& out) {
    auto link = parseLink(nlh);
    if (!link) {
        return;
    }
    const LinkInfo& info = link->info;
    auto it = known_.find(info.ifindex);
    if (link->type == RTM_DELLINK) {
        if (it != known_.end()) {
            out.push_back({LinkEvent::Removed, it->second});
            known_.erase(it);
        }
        return;
    }
    const bool match = matches(info.name, info.loopback);
    if (it == known_.end()) {
        if (match) {
            known_.emplace(info.ifindex, info);
            out.push_back({LinkEvent::Added, info});
        }
        return;
    }
    // Renamed, or a new link type (where its frames start, so which XDP
    // program it needs): report as the old link leaving and the new arriving.
    if (it->second.name != info.name || it->second.type != info.type) {
        out.push_back({LinkEvent::Removed, it->second});
        known_.erase(it);
        if (match) {
            known_.emplace(info.ifindex, info);
            out.push_back({LinkEvent::Added, info});
        }
        return;
    }
    it->second.up = info.up;  // flag changes are not events
}

void LinkWatcher::resync(std::vector<LinkEvent>& out) {
    std::map<int, LinkInfo> now = dumpAll();
    for (const auto& [idx, old] : known_) {
        auto it = now.find(idx);
        if (it == now.end() || it->second.name != old.name || it->second.type != old.type) {
            out.push_back({LinkEvent::Removed, old});
        }
    }
    for (const auto& [idx, cur] : now) {
        auto it = known_.find(idx);
        if (it == known_.end() || it->second.name != cur.name || it->second.type != cur.type) {
            out.push_back({LinkEvent::Added, cur});
        }
    }
    known_ = std::move(now);
}

void LinkWatcher::process(const std::function<void(const LinkEvent&)>& cb) {
    std::vector<char> buf(kBufSize);
    std::vector<LinkEvent> events;
    for (;;) {
        ssize_t n = recv(fd(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            if (errno == ENOBUFS) {
                spdlog::warn("{}: netlink overrun (ENOBUFS), re-dumping links",
                             describe(patterns_));
                // Drop whatever is still queued: the dump supersedes it.
                while (recv(fd(), buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
                }
                resync(events);
                continue;
            }
            throwErrno(describe(patterns_) + ": receive link notifications", errno);
        }
        int len = static_cast<int>(n);
        for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); mnl_nlmsg_ok(nlh, len);
             nlh = mnl_nlmsg_next(nlh, &len)) {
            handle(nlh, events);
        }
    }
    for (const auto& ev : events) {
        spdlog::info("{}: link {} {} (ifindex {})", describe(patterns_), ev.link.name,
                     ev.kind == LinkEvent::Added ? "added" : "removed", ev.link.ifindex);
        cb(ev);
    }
}

}  // namespace ztseg::agent
