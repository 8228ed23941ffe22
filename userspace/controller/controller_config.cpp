#include "controller/controller_config.hpp"

#include "common/config_reader.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/spiffe_id.hpp"
#include "model/ip_prefix.hpp"
#include "shared/confirm_duration.hpp"

namespace ztseg::controller {

ControllerConfig parseControllerConfig(const std::string& text, const std::string& file_name) {
    ControllerConfig c;
    ConfigReader r(file_name);
    yaml::Node doc = r.parse(text);
    auto& ro = c.rollout;
    auto hosts = [&](const yaml::Node& n) {
        if (!n.isMap()) {
            r.error(n, "expected hosts to map host names to {labels: {...}, addresses: [...]}");
            return;
        }
        std::vector<std::pair<IpPrefix, std::string>> seen;  // one host per address
        for (const auto& [k, v] : n.entries()) {
            auto& labels = c.host_labels[k.scalar()];
            auto addresses = [&, host = k.scalar()](const yaml::Node& list) {
                if (!list.isSequence()) {
                    r.error(list, "expected a list of addresses or prefixes");
                    return;
                }
                for (const yaml::Node& item : list.items()) {
                    try {
                        IpPrefix p = IpPrefix::parse(item.scalar());
                        for (const auto& [q, other] : seen) {
                            if (q.contains(p) || p.contains(q)) {
                                r.error(item, p.str() + " overlaps " + q.str() + " of host '" +
                                                  other + "': an address belongs to one host");
                            }
                        }
                        seen.emplace_back(p, host);
                        c.host_addresses[host].push_back(p.str());
                    } catch (const Error& e) {
                        r.error(item, e.what());
                    }
                }
            };
            r.fields(v, "hosts." + k.scalar(),
                     {{"labels", r.strMap(labels)},
                      {"addresses", addresses},
                      {"workloads", r.strList(c.host_workloads[k.scalar()])}});
        }
    };
    auto& wp = c.wire_proof;
    auto wire_proof = [&](const yaml::Node& n) {
        r.fields(n, "wire_proof",
                 {{"secret_file", r.str(wp.secret_file)},
                  {"rotate_every_s", r.num(wp.rotate_every_s, 6, 365u * 86400)},
                  {"overlap_s", r.num(wp.overlap_s, 1, 86400)},
                  {"window_s", r.num(wp.window_s, 1, 3600)}});
        if (uint64_t(wp.overlap_s) * 3 > wp.rotate_every_s) {
            r.error(n, "wire_proof.overlap_s " + std::to_string(wp.overlap_s) +
                           " must be at most a third of rotate_every_s (" +
                           std::to_string(wp.rotate_every_s) +
                           "): at most two keys are in force at once");
        }
    };
    auto waves = [&](const yaml::Node& n) {
        std::vector<std::string> items;
        r.strList(items)(n);
        ro.waves.clear();
        uint32_t last = 0;
        for (size_t i = 0; i < items.size(); ++i) {
            uint32_t p = 0;
            r.num(p, 1, 100)(n.items()[i]);
            if (p <= last) {
                r.error(n.items()[i], "waves must grow: cumulative percentages up to 100");
            }
            last = p;
            ro.waves.push_back(p);
        }
        if (!ro.waves.empty() && ro.waves.back() != 100) {
            r.error(n, "the last wave must be 100 (every host)");
        }
    };
    if (!doc.isNull()) {
        r.fields(doc, "ztseg-controller config",
                 {
                     {"fleet", r.str(c.fleet)},
                     {"policy_dir", r.str(c.policy_dir)},
                     {"watch_interval_ms", r.num(c.watch_interval_ms, 0, 3'600'000)},
                     {"state_dir", r.str(c.state_dir)},
                     {"signing_keys", r.strList(c.signing_keys)},
                     {"api",
                      [&](const yaml::Node& n) {
                          r.fields(n, "api",
                                   {{"unix_socket", r.str(c.unix_socket)},
                                    {"listen", r.str(c.listen)},
                                    {"tls", [&](const yaml::Node& t) {
                                         r.fields(t, "api.tls",
                                                  {{"cert", r.str(c.tls.cert)},
                                                   {"key", r.str(c.tls.key)},
                                                   {"ca", r.str(c.tls.ca)}});
                                     }}});
                      }},
                     {"revoked",
                      [&](const yaml::Node& n) {
                          r.fields(n, "revoked",
                                   {{"serials", r.strList(c.revoked_serials)},
                                    {"hosts", r.strList(c.revoked_hosts)}});
                      }},
                     {"hosts", hosts},
                     {"wire_proof", wire_proof},
                     {"rollout",
                      [&](const yaml::Node& n) {
                          r.fields(n, "rollout",
                                   {{"canary_labels", r.strMap(ro.canary_labels)},
                                    {"canary_percent", r.num(ro.canary_percent, 1, 100)},
                                    {"waves", waves},
                                    {"ack_timeout_ms", r.num(ro.ack_timeout_ms, 100, 3'600'000)},
                                    {"soak_ms", r.num(ro.soak_ms, 0, 3'600'000)},
                                    {"max_default_deny_increase",
                                     r.num(ro.max_default_deny_increase, 0, UINT64_MAX)},
                                    {"confirm_within_ms",
                                     r.num(ro.confirm_within_ms, 0, kMaxConfirmWindowMs)},
                                    {"confirm_settle_ms",
                                     r.num(ro.confirm_settle_ms, 0, kMaxConfirmWindowMs)}});
                          if (ro.confirm_within_ms != 0 &&
                              (ro.confirm_within_ms < 1000 ||
                               ro.confirm_settle_ms * 2 > ro.confirm_within_ms)) {
                              r.error(n, "rollout.confirm_within_ms " +
                                             std::to_string(ro.confirm_within_ms) +
                                             " must be at least 1000 and at least twice "
                                             "confirm_settle_ms (" +
                                             std::to_string(ro.confirm_settle_ms) +
                                             "): the agent would roll back before it could be "
                                             "confirmed (0 turns confirm windows off)");
                          }
                      }},
                     {"flows",
                      [&](const yaml::Node& n) {
                          r.fields(n, "flows",
                                   {{"file", r.str(c.flow_file)},
                                    {"max_bytes", r.num(c.flow_file_max_bytes, 4096, 1ull << 40)},
                                    {"max_files", r.num(c.flow_file_max_files, 1, 1000)}});
                      }},
                     {"rollout_log", r.str(c.rollout_log)},
                     {"etcd",
                      [&](const yaml::Node& n) {
                          r.fields(
                              n, "etcd",
                              {{"endpoints", r.strList(c.etcd_endpoints)},
                               {"prefix", r.str(c.etcd_prefix)},
                               {"host_timeout_ms", r.num(c.etcd_host_timeout_ms, 500, 3'600'000)}});
                      }},
                 });
        auto require = [&](const std::string& value, const char* field) {
            if (value.empty()) {
                r.error(doc, std::string(field) + " is required");
            }
        };
        require(c.fleet, "fleet");
        require(c.policy_dir, "policy_dir");
        if (c.signing_keys.empty()) {
            r.error(doc, "signing_keys is required (make one with `ztsegctl keygen`)");
        }
        if (c.etcd_endpoints.empty() && c.listen.empty()) {
            r.error(doc, "api.listen (agents connect) or etcd.endpoints is required");
        }
        if (!c.etcd_endpoints.empty() && !c.listen.empty()) {
            r.error(*doc.get("etcd"), "choose api.listen (direct mode) or etcd, not both");
        }
        // Agents are spiffe://<fleet>/host/<name>: a fleet that is no trust domain matches no one.
        if (!c.listen.empty() && !c.fleet.empty() && !isValidTrustDomain(c.fleet)) {
            r.error(*doc.get("fleet"), "fleet '" + c.fleet +
                                           "' is not a SPIFFE trust domain (lowercase letters, "
                                           "digits, '.', '-', '_'): no certificate could name it");
        }
        if (!wp.secret_file.empty() && c.listen.empty()) {
            r.error(*doc.get("wire_proof"),
                    "wire_proof needs direct mode (api.listen): keys travel only over the agents' "
                    "mutual-TLS streams, never through etcd");
        }
        if (!c.listen.empty() && (c.tls.cert.empty() || c.tls.key.empty() || c.tls.ca.empty())) {
            r.error(*doc.get("api"), "api.listen needs api.tls.cert, key and ca (mutual TLS only)");
        }
    } else {
        r.error(doc, "empty configuration: fleet, policy_dir and signing_keys are required");
    }
    r.throwIfErrors();
    if (c.etcd_prefix.empty()) {
        c.etcd_prefix = "/ztseg/" + c.fleet;
    }
    return c;
}

ControllerConfig loadControllerConfig(const std::string& path) {
    return parseControllerConfig(readFile(path, "config"), path);
}

}  // namespace ztseg::controller
