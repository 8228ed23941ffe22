#include "fleet/fleet_lab.hpp"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace ztseg::test {
namespace {

// exec argv in ns (and cgroup), stdout and stderr appended to `log`.
std::unique_ptr<Child> spawn(NetNs* ns, const fs::path& log, std::vector<std::string> argv) {
    std::string log_path = log.string();
    return std::make_unique<Child>(ns, nullptr, [argv, log_path] {
        int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ::dup2(fd, 1);
            ::dup2(fd, 2);
        }
        std::vector<const char*> args;
        for (const auto& a : argv) args.push_back(a.c_str());
        args.push_back(nullptr);
        ::execv(args[0], const_cast<char* const*>(args.data()));
        return 127;
    });
}

void terminate(std::unique_ptr<Child>& c) {
    if (c && c->running()) {
        ::kill(c->pid(), SIGTERM);
        try {
            c->wait(20s);
        } catch (const std::exception&) {
        }
    }
    c.reset();
}

std::unique_ptr<grpc::ClientContext> withDeadline(std::chrono::seconds s) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + s);
    return ctx;
}

}  // namespace

std::string hubAddr(int i) {
    return "10.214." + std::to_string(i + 1) + ".1";
}
std::string agentAddr(int i) {
    return "10.214." + std::to_string(i + 1) + ".2";
}

FleetLab::FleetLab(int n)
    : hub(uniqueName("ztfh")),
      pki(fs::temp_directory_path() / (hub.name() + "-pki")),
      dir(fs::temp_directory_path() / hub.name()),
      tag(uniqueName("ztfl")) {
    fs::create_directories(dir / "policy");
    fs::create_directories(dir / "keys");
    cg_root_ = std::make_unique<Cgroup2>(tag);
    pki.ca("ca");
    pki.ca("otherca");
    pki.leaf("controller", "DNS:controller.lab,URI:spiffe://lab/controller", "ca");
    pki.leaf("revoked", "URI:spiffe://lab/host/revoked", "ca");
    pki.leaf("rogue", "URI:spiffe://lab/host/rogue", "otherca");
    for (const char* k : {"A", "B", "C"}) {
        auto [rc, out] = ztsegctl("keygen --out " + keyPath(k, ""));
        if (rc != 0)
            throw std::runtime_error("ztsegctl keygen failed: " + out);
    }
    for (int i = 0; i < n; ++i) {
        Agent a;
        a.name = "agent" + std::to_string(i);
        a.ns = std::make_unique<NetNs>(uniqueName("ztfa"));
        a.veth = std::make_unique<VethPair>(uniqueName("zfh"), &hub, uniqueName("zfa"), a.ns.get());
        a.veth->addAddress(0, hubAddr(i) + "/24");
        a.veth->addAddress(1, agentAddr(i) + "/24");
        a.root = std::make_unique<Cgroup2>(tag + "/" + a.name);
        a.probe = std::make_unique<Cgroup2>(tag + "/" + a.name + "/probe");
        a.dir = dir / a.name;
        fs::create_directories(a.dir);
        a.pin_dir = "/sys/fs/bpf/" + tag + "-" + std::to_string(i);
        pki.leaf(a.name, "DNS:" + a.name + ".lab,URI:spiffe://lab/host/" + a.name, "ca");
        agents.push_back(std::move(a));
    }
}

FleetLab::~FleetLab() {
    terminate(controller_);
    for (size_t i = 0; i < agents.size(); ++i) {
        terminate(agents[i].proc);
        if (fs::exists(agents[i].dir / "ztsegd.yaml")) {
            auto c = spawn(
                agents[i].ns.get(), agents[i].dir / "ztsegd.log",
                {ZTSEGD_PATH, "--config", (agents[i].dir / "ztsegd.yaml").string(), "--uninstall"});
            try {
                c->wait(30s);
            } catch (const std::exception&) {
            }
        }
        std::error_code ec;
        fs::remove_all(agents[i].pin_dir, ec);
    }
    terminate(etcd_);
    agents.clear();  // cgroups, veths, namespaces
    cg_root_.reset();
    if (getenv("ZTSEG_KEEP_FLEET_LAB") == nullptr) {
        std::error_code ec;
        fs::remove_all(dir, ec);
        fs::remove_all(pki.dir(), ec);
    }
}

void FleetLab::writePolicy(const std::vector<uint16_t>& ports, const std::string& note) {
    std::ostringstream y;
    y << "# " << note << "\n"
      << "workloads:\n"
      << "  - name: probe\n"
      << "    labels: {app: probe}\n"
      << "    cgroup: " << tag << "/*/probe\n"
      << "externals:\n"
      << "  - name: hub\n"
      << "    labels: {role: hub}\n"
      << "    cidrs: [10.214.0.0/16]\n"
      << "policies:\n"
      << "  - name: probe\n"
      << "    selector: {matchLabels: {app: probe}}\n"
      << "    egress:\n"
      << "      - to: [{selector: {matchLabels: {role: hub}}}]\n"
      << "        description: \"" << note << "\"\n"
      << "        ports:\n";
    for (uint16_t p : ports) y << "          - {port: " << p << ", protocol: tcp}\n";
    std::ofstream(dir / "policy" / "fleet.yaml") << y.str();
}

void FleetLab::writeControllerConfig(Mode mode, const std::vector<std::string>& signing_keys) {
    std::ostringstream y;
    y << "fleet: " << kFleetName << "\n"
      << "policy_dir: " << (dir / "policy").string() << "\n"
      << "watch_interval_ms: 0\n"
      << "state_dir: " << controllerState().string() << "\n"
      << "signing_keys: [";
    for (size_t i = 0; i < signing_keys.size(); ++i) {
        y << (i ? ", " : "") << keyPath(signing_keys[i], ".key");
    }
    y << "]\n"
      << "api:\n"
      << "  unix_socket: " << (dir / "controller.sock").string() << "\n";
    if (mode == Mode::Direct) {
        y << "  listen: " << (service_ns != nullptr ? "0.0.0.0" : "127.0.0.1") << ":"
          << controller_port << "\n"
          << "  tls: {cert: " << pki.cert(controller_cert) << ", key: " << pki.key(controller_cert)
          << ", ca: " << pki.cert("ca") << "}\n";
    } else {
        y << "etcd:\n"
          << "  endpoints: [" << etcdEndpoint() << "]\n"
          << "  host_timeout_ms: " << etcd_host_timeout_ms << "\n";
    }
    y << "revoked: {serials: [\"" << pki.serial("revoked") << "\"]}\n";
    if (rollout_yaml.empty()) {
        y << "hosts:\n"
          << "  agent0: {labels: {role: canary}}\n"
          << "rollout:\n"
          << "  canary_labels: {role: canary}\n"
          << "  waves: [50, 100]\n"
          << "  ack_timeout_ms: 10000\n"
          << "  soak_ms: 1500\n"
          << "  max_default_deny_increase: 20\n";
    } else {
        y << rollout_yaml;
    }
    y << "flows: {file: " << flowFile().string() << "}\n"
      << "rollout_log: " << (dir / "rollout.jsonl").string() << "\n";
    std::ofstream(dir / "controller.yaml") << y.str();
}

void FleetLab::startController() {
    controller_ = spawn(service_ns, dir / "controller.log",
                        {ZTSEG_CONTROLLER_PATH, "--config", (dir / "controller.yaml").string()});
    if (!waitFor([&] { return !fleetStatus().fleet().empty(); }, 20s)) {
        throw std::runtime_error("ztseg-controller did not come up; see " +
                                 (dir / "controller.log").string());
    }
}

void FleetLab::stopController() {
    terminate(controller_);
}

void FleetLab::writeAgentConfig(int i, Mode mode) {
    const Agent& a = agents[size_t(i)];
    std::ostringstream y;
    y << "host_name: " << a.name << "\n"
      << "fleet: " << kFleetName << "\n"
      << "state_dir: " << (a.dir / "state").string() << "\n"
      << "pin_dir: " << a.pin_dir << "\n"
      << "cgroup_root: " << a.root->path() << "\n"
      << "cgroup_only: true\n"  // agents judge at cgroup hooks only: no XDP in the lab
      << "flows: {file: " << (a.dir / "flows.jsonl").string() << ", drop_event_interval_ms: 0}\n"
      << "api:\n"
      << "  unix_socket: " << (a.dir / "sock").string() << "\n"
      << (agent_api_tcp.empty() ? "" : "  tcp: \"" + agent_api_tcp + "\"\n")
      << "  tls: {cert: " << pki.cert(a.name) << ", key: " << pki.key(a.name)
      << ", ca: " << pki.cert("ca") << "}\n"
      << "metrics: {listen: \"\"}\n"
      << "trusted_keys: [" << keyPath("A", ".pub") << ", " << keyPath("B", ".pub") << "]\n";
    if (mode == Mode::Direct) {
        y << "controller: {address: \"" << hubAddr(i) << ":" << controller_port
          << "\", server_name: controller.lab, report_interval_ms: 1000}\n";
    } else {
        y << "etcd: {endpoints: [\"http://" << hubAddr(i) << ":" << etcd_port
          << "\"], report_interval_ms: 1000}\n";
    }
    y << agent_extra_yaml;
    std::ofstream(a.dir / "ztsegd.yaml") << y.str();
}

void FleetLab::startAgent(int i) {
    Agent& a = agents[size_t(i)];
    a.proc =
        spawn(a.ns.get(), a.dir / "ztsegd.log",
              {ZTSEGD_PATH, "--config", (a.dir / "ztsegd.yaml").string(), "--log-level", "info"});
}

void FleetLab::reloadAgent(int i) {
    const Agent& a = agents[size_t(i)];
    if (a.proc && a.proc->running()) {
        ::kill(a.proc->pid(), SIGHUP);
    }
}

std::string FleetLab::agentLog(int i) const {
    return slurp(agents[size_t(i)].dir / "ztsegd.log");
}

void FleetLab::stopAgent(int i) {
    terminate(agents[size_t(i)].proc);
}

void FleetLab::startEtcd() {
    fs::path data = dir / "etcd";
    std::string client = etcdEndpoint();
    std::string peer = "http://127.0.0.1:" + std::to_string(etcd_port + 1);
    std::string listen =
        service_ns != nullptr ? "http://0.0.0.0:" + std::to_string(etcd_port) : client;
    etcd_ = spawn(service_ns, dir / "etcd.log",
                  {"/usr/bin/etcd", "--name", "ztlab", "--data-dir", data.string(),
                   "--listen-client-urls", listen, "--advertise-client-urls", client,
                   "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                   "--initial-cluster", "ztlab=" + peer, "--log-level", "warn"});
    bool up = waitFor(
        [&] {
            uint16_t port = etcd_port;
            Child probe(service_ns, nullptr,
                        [port] { return tcpConnect("127.0.0.1", port, 200ms).err == 0 ? 0 : 1; });
            return probe.wait(5s) == 0;
        },
        30s);
    if (!up)
        throw std::runtime_error("etcd did not come up; see " + (dir / "etcd.log").string());
}

void FleetLab::stopEtcd() {
    terminate(etcd_);
}

void FleetLab::addHostCert(const std::string& name) {
    pki.leaf(name, "DNS:" + name + ".lab,URI:spiffe://lab/host/" + name, "ca");
}

std::string FleetLab::controllerAddress() const {
    return "127.0.0.1:" + std::to_string(controller_port);
}

std::string FleetLab::etcdEndpoint() const {
    return "http://127.0.0.1:" + std::to_string(etcd_port);
}

pid_t FleetLab::controllerPid() const {
    return controller_ && controller_->running() ? controller_->pid() : 0;
}

pid_t FleetLab::etcdPid() const {
    return etcd_ && etcd_->running() ? etcd_->pid() : 0;
}

std::unique_ptr<v1::Controller::Stub> FleetLab::controller() const {
    return v1::Controller::NewStub(grpc::CreateChannel("unix:" + (dir / "controller.sock").string(),
                                                       grpc::InsecureChannelCredentials()));
}

std::unique_ptr<v1::Agent::Stub> FleetLab::agentApi(int i) const {
    return v1::Agent::NewStub(grpc::CreateChannel(
        "unix:" + (agents[size_t(i)].dir / "sock").string(), grpc::InsecureChannelCredentials()));
}

v1::FleetStatusReply FleetLab::fleetStatus() const {
    v1::FleetStatusReply r;
    if (!controller()->FleetStatus(withDeadline(5s).get(), {}, &r).ok()) {
        return {};
    }
    return r;
}

v1::StatusReply FleetLab::agentStatus(int i) const {
    v1::StatusReply r;
    return agentApi(i)->Status(withDeadline(5s).get(), {}, &r).ok() ? r : v1::StatusReply();
}

uint64_t FleetLab::agentGeneration(int i) const {
    return agentStatus(i).generation();
}

v1::ReloadReply FleetLab::reload() const {
    v1::ReloadReply r;
    grpc::Status st = controller()->Reload(withDeadline(120s).get(), {}, &r);
    if (!st.ok())
        throw std::runtime_error("Reload: " + st.error_message());
    return r;
}

grpc::Status FleetLab::applyTo(int i, const std::string& bundle) const {
    v1::ApplyRequest req;
    req.set_bundle(bundle);
    v1::ApplyReply reply;
    return agentApi(i)->Apply(withDeadline(10s).get(), req, &reply);
}

std::vector<nlohmann::json> FleetLab::jsonLines(const fs::path& file) {
    std::string text = slurp(file);
    text.resize(text.rfind('\n') + 1);  // npos + 1 == 0: nothing complete yet
    std::vector<nlohmann::json> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty())
            out.push_back(nlohmann::json::parse(line));
    }
    return out;
}

std::vector<nlohmann::json> FleetLab::rolloutLog() const {
    return jsonLines(dir / "rollout.jsonl");
}

std::pair<int, std::string> FleetLab::ztsegctl(const std::string& args) const {
    fs::path out = dir / "ztsegctl.out";
    int rc = std::system((std::string(ZTSEGCTL_PATH) + " " + args + " >" + out.string() + " 2>>" +
                          (dir / "ztsegctl.err").string())
                             .c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out)};
}

bool FleetLab::waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred())
            return true;
        std::this_thread::sleep_for(50ms);
    }
    return pred();
}

}  // namespace ztseg::test
