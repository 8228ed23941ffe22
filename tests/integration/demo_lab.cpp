#include "integration/demo_lab.hpp"

#include <stdexcept>

using namespace std::chrono_literals;

namespace ztseg::test {

DemoLab::DemoLab() : tag_(uniqueName("ztdemo")) {
    root_cg_ = std::make_unique<Cgroup2>(tag_);
    host_ = std::make_unique<NetNs>(uniqueName("zdh"));
    host_->exec("sysctl -qw net.ipv4.ip_forward=1");
    struct Spec {
        const char* name;
        int subnet;
        const char* host;
        const char* cgroup;
    };
    const Spec specs[] = {
        {"web", 1, "10", "web.service"},
        {"api", 2, "10", "api.service"},
        {"db", 3, "10", "system.slice/postgresql.service"},
        {"bastion", 5, "10", "bastion.service"},
        {"intruder", 9, "66", ""},
    };
    for (const Spec& s : specs) {
        auto p = std::make_unique<Party>();
        p->name = s.name;
        std::string net = "10.10." + std::to_string(s.subnet) + ".";
        p->address = net + s.host;
        p->cgroup_rel = s.cgroup;
        p->ns = std::make_unique<NetNs>(uniqueName("zd" + std::string(s.name).substr(0, 3)));
        p->veth = std::make_unique<VethPair>(uniqueName("zdh"), host_.get(), uniqueName("zdp"),
                                             p->ns.get());
        p->veth->addAddress(0, net + "1/24");
        p->veth->addAddress(1, p->address + "/24");
        p->ns->exec("ip route add default via " + net + "1");
        // Nested cgroups, outermost first (so destruction runs innermost first).
        std::string rel;
        for (size_t pos = 0; !p->cgroup_rel.empty() && pos != std::string::npos;) {
            size_t slash = p->cgroup_rel.find('/', pos);
            rel = p->cgroup_rel.substr(0, slash);
            p->cgroups.push_back(std::make_unique<Cgroup2>(tag_ + "/" + rel));
            pos = slash == std::string::npos ? slash : slash + 1;
        }
        parties_.push_back(std::move(p));
    }
}

DemoLab::~DemoLab() {
    servers_.clear();
    for (auto it = parties_.rbegin(); it != parties_.rend(); ++it) {
        auto& cgs = (*it)->cgroups;
        while (!cgs.empty()) cgs.pop_back();
        (*it)->veth.reset();
        (*it)->ns.reset();
    }
    parties_.clear();
    host_.reset();
    root_cg_.reset();
}

std::string DemoLab::cgroupRoot() const {
    return root_cg_->path();
}

std::vector<std::string> DemoLab::hostInterfaces() const {
    std::vector<std::string> out;
    for (const auto& p : parties_) out.push_back(p->veth->nameA());
    return out;
}

DemoLab::Party& DemoLab::party(const std::string& name) {
    for (auto& p : parties_) {
        if (p->name == name) {
            return *p;
        }
    }
    throw std::runtime_error("demo lab: no party '" + name + "'");
}

int DemoLab::in(const std::string& name, std::function<int()> fn) {
    Party& p = party(name);
    Child c(p.ns.get(), p.cgroups.empty() ? nullptr : p.cgroups.back().get(), std::move(fn));
    return c.wait(30s);
}

void DemoLab::serve(const std::string& name, uint16_t port) {
    Party& p = party(name);
    auto c = std::make_unique<Child>(
        p.ns.get(), p.cgroups.empty() ? nullptr : p.cgroups.back().get(), [port](Child::Ready& r) {
            UniqueFd fd = tcpListen("0.0.0.0", port);
            r.signal();
            tcpEchoServe(fd.get(), 1 << 30, 600s);
            return 0;
        });
    c->waitReady(5s);
    servers_.push_back(std::move(c));
}

}  // namespace ztseg::test
