// Keeps ztseg's interface ingress stage (XDP on physical NICs, tc at tcx
// ingress on virtual devices: Datapath::attachXdp) on the interfaces the config names (fnmatch
// patterns or exact names; a pattern never matches loopback): attached at start and as interfaces
// appear, cleaned up as they vanish. The program follows each link's type (Datapath::attachXdp); an
// interface whose link type is refused is logged and skipped, and the others are still attached. At
// start it reconciles with what a previous run left pinned: an attachment with the right program is
// kept (enforcement never pauses), one with the wrong program is replaced, and one on an interface
// the config no longer names is removed. Lives in the network namespace of the thread that
// constructs it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/link_watcher.hpp"
#include "datapath/datapath.hpp"

namespace ztseg::agent {

class XdpInterfaces {
  public:
    // Throws Error if the netlink sockets cannot be opened.
    XdpInterfaces(Datapath& dp, std::vector<std::string> patterns, XdpRequest mode);

    // Reconcile with what is pinned and what exists now. Per-interface
    // failures are logged, never thrown.
    void start();
    // Netlink socket for poll/epoll; process() handles what arrived.
    int fd() const { return links_.fd(); }
    void process();

    // Interface name -> "native" / "generic" / "tcx" of every attachment made
    // or kept; "generic (tcx fallback: <why>)" where tcx could not attach.
    std::map<std::string, std::string> attached() const;

  private:
    void attach(const LinkInfo& link);
    void detach(const std::string& ifname, const char* why);

    Datapath& dp_;
    std::vector<std::string> patterns_;
    XdpRequest mode_;
    LinkWatcher links_;
    mutable std::mutex mu_;  // guards attached_ (read by metrics and API threads)
    std::map<std::string, std::string> attached_;
};

}  // namespace ztseg::agent
