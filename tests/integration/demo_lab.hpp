// The lab of `make demo`: the three-tier example (policies/three-tier.yaml)
// on one host. ztsegd runs in the "host" namespace, which routes between one
// namespace per party; each workload's processes also live in its own cgroup.
// Addresses are the example's own (they only exist inside these namespaces).
//
//   web      10.10.1.10  cgroup LAB/web.service                        (three-tier.yaml)
//   api      10.10.2.10  cgroup LAB/api.service                        (three-tier.yaml)
//   db       10.10.3.10  cgroup LAB/system.slice/postgresql.service    (three-tier.yaml)
//   bastion  10.10.5.10  cgroup LAB/bastion.service                    (the lab's lab.yaml)
//   intruder 10.10.9.66  no cgroup, an address no policy declares
//
// Each party's namespace has a veth to the host namespace (10.10.N.1 there,
// default route), where ztsegd attaches XDP to the host ends. Everything is
// uniquely named and removed by the destructor, also on failure or Ctrl-C.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/lab.hpp"

namespace ztseg::test {

class DemoLab {
  public:
    struct Party {
        std::string name;
        std::string address;
        std::string cgroup_rel;  // below the lab's cgroup, "" = none
        std::unique_ptr<NetNs> ns;
        std::unique_ptr<VethPair> veth;                 // a: host side, b: the party's
        std::vector<std::unique_ptr<Cgroup2>> cgroups;  // outermost first
    };

    DemoLab();
    ~DemoLab();
    DemoLab(const DemoLab&) = delete;
    DemoLab& operator=(const DemoLab&) = delete;

    NetNs& host() { return *host_; }
    const std::string& tag() const { return tag_; }  // the lab's cgroup, relative to the mount
    std::string cgroupRoot() const;                  // absolute path of the lab's cgroup
    std::vector<std::string> hostInterfaces() const;
    const std::vector<std::unique_ptr<Party>>& parties() const { return parties_; }
    Party& party(const std::string& name);
    const std::string& address(const std::string& name) { return party(name).address; }

    // Runs fn as a process of the party (its namespace and cgroup); its result.
    int in(const std::string& name, std::function<int()> fn);
    // A TCP echo server of the party on `port`, ready on return.
    void serve(const std::string& name, uint16_t port);

  private:
    std::string tag_;
    std::unique_ptr<Cgroup2> root_cg_;
    std::unique_ptr<NetNs> host_;
    std::vector<std::unique_ptr<Party>> parties_;
    std::vector<std::unique_ptr<Child>> servers_;
};

}  // namespace ztseg::test
