#include "controller/wire_key_pusher.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/unix_time.hpp"

namespace ztseg::controller {

namespace {

std::string loadSecret(const std::string& path) {
    if (path.empty()) {
        return "";
    }
    std::string secret = readFile(path, "wire_proof.secret_file");
    if (secret.size() < 32) {
        throw Error("wire_proof.secret_file " + path + ": " + std::to_string(secret.size()) +
                    " bytes; at least 32 random bytes are needed (head -c 32 /dev/urandom)");
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
        spdlog::warn(
            "wire_proof.secret_file {} is readable by group or others: every pairwise "
            "key of the fleet derives from it (chmod 600)",
            path);
    }
    return secret;
}

}  // namespace

WireKeyPusher::WireKeyPusher(const ControllerConfig& cfg, AgentSessions& sessions,
                             WorkloadIdentities identities)
    : fleet_(cfg.fleet),
      settings_(cfg.wire_proof),
      host_addresses_(cfg.host_addresses),
      host_workloads_(cfg.host_workloads),
      identities_(std::move(identities)),
      secret_(loadSecret(cfg.wire_proof.secret_file)),
      sessions_(sessions) {
    if (!secret_.empty()) {
        thread_ = std::thread([this] { run(); });
    }
}

WireKeyPusher::~WireKeyPusher() {
    {
        std::lock_guard lock(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
}

WireFleet WireKeyPusher::wireFleet() const {
    WireFleet f;
    f.addresses = host_addresses_;
    if (secret_.empty()) {
        return f;
    }
    const std::map<std::string, uint32_t> ids = identities_();
    for (const auto& [host, workloads] : host_workloads_) {
        for (const std::string& w : workloads) {
            auto it = ids.find(w);
            if (it == ids.end()) {
                spdlog::warn(
                    "hosts.{}.workloads: '{}' is no workload of the policy in force: "
                    "{}'s proofs cannot name it",
                    host, w, host);
                continue;
            }
            f.identities[host].push_back(it->second);
        }
    }
    return f;
}

void WireKeyPusher::pushTo(const std::string& host) {
    std::lock_guard lock(mu_);
    pushLocked(host, unixSeconds(), wireFleet());
}

void WireKeyPusher::pushAll() {
    if (secret_.empty()) {
        return;  // hosts were told "proofs off" when they connected; a new policy changes nothing
    }
    std::lock_guard lock(mu_);
    pushAllLocked(unixSeconds());
}

void WireKeyPusher::pushAllLocked(int64_t now) {
    const WireFleet fleet = wireFleet();
    std::vector<std::string> hosts = sessions_.hosts();
    spdlog::info("wire proof keys: epoch {} to {} connected hosts",
                 wireKeyPlan(settings_, now).epoch, hosts.size());
    for (const std::string& h : hosts) pushLocked(h, now, fleet);
}

void WireKeyPusher::pushLocked(const std::string& host, int64_t now, const WireFleet& fleet) {
    v1::ControllerMessage m;
    *m.mutable_wire_proof() = wireProofFor(host, fleet_, secret_, settings_, fleet, now);
    if (!sessions_.send(host, m)) {
        spdlog::debug("wire proof keys for {}: not sent (disconnected)", host);
    }
}

void WireKeyPusher::run() {
    std::unique_lock lock(mu_);
    int64_t next = wireKeyPlan(settings_, unixSeconds()).next_change_unix_s;
    while (!stop_) {
        cv_.wait_until(lock, std::chrono::system_clock::time_point(std::chrono::seconds(next)),
                       [&] { return stop_ || unixSeconds() >= next; });
        if (stop_) {
            break;
        }
        const int64_t now = unixSeconds();
        pushAllLocked(now);
        next = wireKeyPlan(settings_, now).next_change_unix_s;
    }
}

}  // namespace ztseg::controller
