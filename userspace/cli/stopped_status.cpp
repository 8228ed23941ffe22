#include "cli/stopped_status.hpp"

#include <nlohmann/json.hpp>

#include "cli/status_text.hpp"
#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "policy/bundle.hpp"
#include "policy/signing.hpp"
#include "shared/generation_store.hpp"

namespace ztseg::cli {
namespace {

std::string_view modeText(WorkloadMode m) {
    return m == WorkloadMode::Enforce ? "enforce"
           : m == WorkloadMode::Audit ? "audit"
                                      : "unmanaged";
}

// Relative to the cgroup2 mount, as the running status prints cgroups.
std::string relativeCgroup(const std::string& path, const std::string& mount) {
    if (path.rfind(mount + "/", 0) == 0) {
        return path.substr(mount.size() + 1);
    }
    return path == mount ? "/" : path;
}

// Names by identity from the bundle ztsegd recorded, if it is the one the
// datapath enforces (a stale bundle would name the wrong workloads).
void readNames(StoppedStatus& s) {
    std::optional<std::string> bytes = GenerationStore::currentBundleIn(s.state_dir);
    if (!bytes) {
        s.names_unavailable = "no bundle recorded in " + s.state_dir;
        return;
    }
    policy::CompiledPolicy cp;
    try {
        cp = policy::parseBundle(policy::openEnvelope(*bytes).bundle);
    } catch (const std::exception& e) {
        s.names_unavailable =
            "the bundle recorded in " + s.state_dir + " does not parse (" + e.what() + ")";
        return;
    }
    if (cp.generation != s.pinned->active_generation) {
        s.names_unavailable = "the bundle recorded in " + s.state_dir + " is generation " +
                              std::to_string(cp.generation) + ", the datapath enforces " +
                              std::to_string(s.pinned->active_generation);
        return;
    }
    // Workloads with the same labels share an identity: name them all.
    for (const policy::CompiledWorkload& w : cp.workloads) {
        std::string& n = s.names[w.identity];
        n += (n.empty() ? "" : ",") + w.name;
    }
}

std::string nameOf(const StoppedStatus& s, IdentityId id) {
    auto it = s.names.find(id);
    return it == s.names.end() ? "" : it->second;
}

std::string rawSocketsText(const PinnedDatapath& p) {
    return p.raw_guard == RawGuardKind::None
               ? "NOT confined: no raw-socket guard is linked under " + p.pin_dir
               : "confined (" + p.raw_guard_mode + ")";
}

std::string notRunning(const StoppedStatus& s) {
    return "ztsegd is not running (nobody answers on " + s.socket + ")";
}

std::string nothingPinned(const StoppedStatus& s) {
    return "ztsegd is not running and nothing is pinned under " + s.pin_dir +
           ": this host enforces nothing";
}

}  // namespace

StoppedStatus readStoppedStatus(const std::string& socket, const std::string& pin_dir,
                                const std::string& state_dir) {
    StoppedStatus s{socket, pin_dir, state_dir, inspectPinned(pin_dir), {}, {}, {}, {}};
    if (auto text = readFileIfExists(state_dir + "/" + kPendingConfirmFile)) {
        try {
            s.confirm_pending = parsePending(*text);
        } catch (const Error& e) {
            s.confirm_unreadable = e.what();
        }
    }
    if (s.pinned) {
        const std::string mount = cgroup2MountPoint();
        for (PinnedEndpoint& e : s.pinned->endpoints) {
            e.cgroup_path = relativeCgroup(e.cgroup_path, mount);
        }
        for (PinnedCgroupHooks& c : s.pinned->cgroups) {
            c.cgroup_path = relativeCgroup(c.cgroup_path, mount);
        }
        if (s.pinned->active_generation == 0) {
            s.names_unavailable = "no policy generation is active";
        } else {
            readNames(s);
        }
    }
    return s;
}

namespace {

// A window ztsegd left open is acted on when it starts again, not before.
std::string confirmText(const StoppedStatus& s) {
    if (s.confirm_pending) {
        const PendingConfirm& c = *s.confirm_pending;
        return "confirm pending: generation " + std::to_string(c.generation) +
               " was never confirmed; ztsegd rolls back to " + std::to_string(c.return_to) +
               " when it starts (at once if the deadline, unix ms " +
               std::to_string(c.deadline_unix_ms) +
               ", has passed); nothing does while it is stopped\n";
    }
    if (!s.confirm_unreadable.empty()) {
        return "confirm pending: the record in " + s.state_dir + " is unreadable (" +
               s.confirm_unreadable +
               "); ztsegd returns to the recorded return point when it starts\n";
    }
    return "";
}

}  // namespace

std::string stoppedStatusText(const StoppedStatus& s) {
    if (!s.pinned) {
        return nothingPinned(s) + "\n";
    }
    const PinnedDatapath& p = *s.pinned;
    std::string out = notRunning(s) + ": this host still enforces what is pinned under " +
                      p.pin_dir + "; nothing follows new cgroups, interfaces or policy until " +
                      "it runs again (systemctl start ztsegd)\n";
    out += p.active_generation == 0 ? "no policy applied"
                                    : "policy generation " + std::to_string(p.active_generation);
    out += p.previous_generation == 0
               ? " (no previous generation to roll back to)\n"
               : " (rollback goes to " + std::to_string(p.previous_generation) + ")\n";
    out += "raw sockets of enforced workloads: " + rawSocketsText(p) + "\n";
    out += confirmText(s);

    out += "\ninterfaces (XDP/tcx): " + std::to_string(p.xdp.size()) + "\n";
    if (!p.xdp.empty()) {
        std::vector<std::vector<std::string>> rows{{"NAME", "MODE"}};
        for (const XdpAttachment& a : p.xdp)
            rows.push_back({a.ifname, std::string(xdpModeName(a.mode))});
        out += statusTable(rows);
    }

    out += "\ncgroup hooks: " + std::to_string(p.cgroups.size()) + " cgroups\n";
    if (!p.cgroups.empty()) {
        std::vector<std::vector<std::string>> rows{{"CGROUP", "CGROUP ID", "HOOKS"}};
        for (const PinnedCgroupHooks& c : p.cgroups) {
            std::string hooks;
            for (const std::string& h : c.hooks) hooks += (hooks.empty() ? "" : ",") + h;
            const std::string& path = c.cgroup_path;
            rows.push_back({path.empty() ? "(gone)" : path, std::to_string(c.cgroup_id), hooks});
        }
        out += statusTable(rows);
    }

    out += "\nworkloads: " + std::to_string(p.endpoints.size()) + " local cgroups\n";
    if (!p.endpoints.empty()) {
        std::vector<std::vector<std::string>> rows{
            {"WORKLOAD", "IDENTITY", "MODE", "CGROUP", "CGROUP ID"}};
        for (const PinnedEndpoint& e : p.endpoints) {
            const std::string name = nameOf(s, e.identity);
            const std::string& path = e.cgroup_path;
            rows.push_back({name.empty() ? "-" : name, std::to_string(e.identity),
                            std::string(modeText(e.mode)), path.empty() ? "(gone)" : path,
                            std::to_string(e.cgroup_id)});
        }
        out += statusTable(rows);
    }
    if (!s.names_unavailable.empty()) {
        out += "workload names unavailable: " + s.names_unavailable + "\n";
    }
    return out;
}

std::string stoppedStatusJson(const StoppedStatus& s) {
    using nlohmann::ordered_json;
    ordered_json j;
    j["daemon"] = "stopped";
    j["socket"] = s.socket;
    j["pin_dir"] = s.pin_dir;
    j["enforcing"] = s.pinned.has_value();
    if (!s.pinned) {
        j["summary"] = nothingPinned(s);
        return j.dump(2) + "\n";
    }
    const PinnedDatapath& p = *s.pinned;
    j["summary"] = notRunning(s) + ": this host still enforces what is pinned under " + p.pin_dir;
    j["generation"] = std::to_string(p.active_generation);
    j["previous_generation"] = std::to_string(p.previous_generation);
    j["raw_sockets"] = rawSocketsText(p);
    j["interfaces"] = ordered_json::array();
    for (const XdpAttachment& a : p.xdp) {
        j["interfaces"].push_back({{"name", a.ifname},
                                   {"mode", std::string(xdpModeName(a.mode))},
                                   {"program", a.program}});
    }
    j["cgroup_hooks"] = ordered_json::array();
    for (const PinnedCgroupHooks& c : p.cgroups) {
        j["cgroup_hooks"].push_back({{"cgroup_path", c.cgroup_path},
                                     {"cgroup_id", std::to_string(c.cgroup_id)},
                                     {"hooks", c.hooks}});
    }
    j["endpoints"] = ordered_json::array();
    for (const PinnedEndpoint& e : p.endpoints) {
        j["endpoints"].push_back({{"name", nameOf(s, e.identity)},
                                  {"identity", e.identity},
                                  {"mode", std::string(modeText(e.mode))},
                                  {"cgroup_path", e.cgroup_path},
                                  {"cgroup_id", std::to_string(e.cgroup_id)},
                                  {"raw_sockets", e.raw_sockets}});
    }
    j["state_dir"] = s.state_dir;
    j["names_unavailable"] = s.names_unavailable;
    if (s.confirm_pending) {
        // The names and types of the running status's confirm_pending.
        j["confirm_pending"] = {
            {"generation", std::to_string(s.confirm_pending->generation)},
            {"return_to", std::to_string(s.confirm_pending->return_to)},
            {"deadline_unix_ms", std::to_string(s.confirm_pending->deadline_unix_ms)},
            {"window_ms", s.confirm_pending->window_ms}};
    } else if (!s.confirm_unreadable.empty()) {
        j["confirm_unreadable"] = s.confirm_unreadable;
    }
    return j.dump(2) + "\n";
}

}  // namespace ztseg::cli
