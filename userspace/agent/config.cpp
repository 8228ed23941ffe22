#include "agent/config.hpp"

#include <unistd.h>

#include "agent/failsafe_config.hpp"
#include "common/config_reader.hpp"
#include "common/error.hpp"
#include "common/file.hpp"
#include "common/spiffe_id.hpp"

namespace ztseg::agent {
namespace {

// XDP is the only stage that judges what the kernel answers itself (host
// services, ICMP) on an interface: running without it must be asked for.
void checkInterfaces(ConfigReader& r, const yaml::Node& doc, AgentConfig& c) {
    const yaml::Node* list = doc.get("interfaces");
    const yaml::Node* opt_out = doc.get("cgroup_only");
    if (list != nullptr && list->isSequence()) {
        for (const yaml::Node& item : list->items()) {
            if (item.isScalar() && item.scalar() == "lo") {
                r.error(item,
                        "interfaces: 'lo' is the loopback device; XDP is never attached to "
                        "loopback (patterns such as '*' skip it)");
            }
        }
    }
    if (c.cgroup_only) {
        if (list != nullptr && !c.interfaces.empty()) {
            r.error(*opt_out, "cgroup_only: true contradicts the interfaces listed (remove one)");
        }
        c.interfaces.clear();
        return;
    }
    if (list != nullptr && (list->isSequence() || list->isNull()) && c.interfaces.empty()) {
        r.error(*list,
                "interfaces is empty: XDP would judge no interface, and traffic the kernel answers "
                "itself (host services, ICMP) would never be judged; list interfaces (default "
                "[\"*\"]: every interface but lo), or set cgroup_only: true to run with cgroup "
                "hooks only");
    }
}

// revoked: {serials: [...], crl: FILE}; the CRL itself is read and verified
// by the daemon (Revocation::load), which names this location on failure.
ConfigReader::Handler revokedField(ConfigReader& r, const std::string& file_name,
                                   RevocationSettings& out) {
    return [&r, &file_name, &out](const yaml::Node& n) {
        r.fields(n, "revoked",
                 {{"serials",
                   [&](const yaml::Node& v) {
                       r.strList(out.serials)(v);
                       if (!v.isSequence()) {
                           return;
                       }
                       for (const yaml::Node& item : v.items()) {
                           if (item.isScalar() && !isSerialText(item.scalar())) {
                               r.error(item, "revoked.serials: '" + item.scalar() +
                                                 "' is not a hexadecimal serial number (as "
                                                 "`openssl x509 -noout -serial` prints it)");
                           }
                       }
                   }},
                  {"crl", [&](const yaml::Node& v) {
                       r.str(out.crl)(v);
                       out.crl_where = file_name + ":" + std::to_string(v.mark().line) + ":" +
                                       std::to_string(v.mark().column);
                   }}});
    };
}

}  // namespace

AgentConfig parseConfig(const std::string& text, const std::string& file_name) {
    AgentConfig c;
    ConfigReader r(file_name);
    yaml::Node doc = r.parse(text);
    std::string xdp_mode = "auto";
    auto& dp = c.datapath;
    uint64_t drop_interval_ms = dp.drop_event_interval_ns / 1'000'000;
    if (!doc.isNull()) {
        r.fields(
            doc, "ztsegd config",
            {
                {"host_name", r.str(c.host_name)},
                {"fleet", r.str(c.fleet)},
                {"state_dir", r.str(c.state_dir)},
                {"pin_dir", r.str(dp.pin_dir)},
                {"cgroup_root", r.str(c.cgroup_root)},
                {"interfaces", r.strList(c.interfaces)},
                {"cgroup_only", r.flag(c.cgroup_only)},
                {"xdp_mode", r.str(xdp_mode)},
                {"bundle", r.str(c.bundle)},
                {"trusted_keys", r.strList(c.trusted_keys)},
                {"controller",
                 [&](const yaml::Node& n) {
                     r.fields(n, "controller",
                              {{"address", r.str(c.controller.address)},
                               {"server_name", r.str(c.controller.server_name)},
                               {"report_interval_ms",
                                r.num(c.controller.report_interval_ms, 100, 3'600'000)}});
                 }},
                {"etcd",
                 [&](const yaml::Node& n) {
                     r.fields(n, "etcd",
                              {{"endpoints", r.strList(c.etcd.endpoints)},
                               {"prefix", r.str(c.etcd.prefix)},
                               {"report_interval_ms",
                                r.num(c.etcd.report_interval_ms, 100, 3'600'000)}});
                 }},
                {"flows",
                 [&](const yaml::Node& n) {
                     r.fields(n, "flows",
                              {{"file", r.str(c.flow_file)},
                               {"max_bytes", r.num(c.flow_file_max_bytes, 4096, 1ull << 40)},
                               {"max_files", r.num(c.flow_file_max_files, 1, 1000)},
                               {"drop_event_interval_ms", r.num(drop_interval_ms, 0, 3'600'000)},
                               {"drop_event_source_budget",
                                r.num(dp.drop_event_source_budget, 0, 1'000'000)}});
                 }},
                {"api",
                 [&](const yaml::Node& n) {
                     r.fields(n, "api",
                              {{"unix_socket", r.str(c.unix_socket)},
                               {"tcp", r.str(c.tcp_listen)},
                               {"tls", [&](const yaml::Node& t) {
                                    r.fields(t, "api.tls",
                                             {{"cert", r.str(c.tls.cert)},
                                              {"key", r.str(c.tls.key)},
                                              {"ca", r.str(c.tls.ca)}});
                                }}});
                 }},
                {"revoked", revokedField(r, file_name, c.revoked)},
                {"failsafe", failsafeField(r, file_name, c.failsafe)},
                {"metrics",
                 [&](const yaml::Node& n) {
                     r.fields(n, "metrics",
                              {{"listen", r.str(c.metrics_listen)},
                               {"per_rule", r.flag(c.metrics_per_rule)}});
                 }},
                {"datapath",
                 [&](const yaml::Node& n) {
                     r.fields(n, "datapath",
                              {{"policy_capacity", r.num(dp.policy_capacity, 16, 1u << 26)},
                               {"identity_capacity", r.num(dp.identity_capacity, 16, 1u << 26)},
                               {"endpoint_capacity", r.num(dp.endpoint_capacity, 16, 1u << 22)},
                               {"rule_capacity", r.num(dp.rule_capacity, 16, 1u << 24)},
                               {"rule_counters", r.flag(dp.rule_counters)},
                               {"conntrack_capacity", r.num(dp.conntrack_capacity, 1024, 1u << 26)},
                               {"conntrack_new_capacity",
                                r.num(dp.conntrack_new_capacity, 256, 1u << 26)},
                               {"ringbuf_bytes", r.num(dp.ringbuf_bytes, 4096, 1u << 30)},
                               {"raw_socket_fallback", r.flag(dp.raw_socket_fallback)}});
                 }},
            });
        if (xdp_mode == "auto") {
            c.xdp_mode = XdpRequest::Auto;
        } else if (xdp_mode == "native") {
            c.xdp_mode = XdpRequest::Native;
        } else if (xdp_mode == "generic") {
            c.xdp_mode = XdpRequest::Generic;
        } else if (xdp_mode == "tcx") {
            c.xdp_mode = XdpRequest::Tcx;
        } else if (const yaml::Node* n = doc.get("xdp_mode")) {
            r.error(*n, "xdp_mode must be auto, native, generic or tcx");
        }
        checkInterfaces(r, doc, c);
        uint32_t rb = dp.ringbuf_bytes;
        if ((rb & (rb - 1)) != 0) {
            if (const yaml::Node* d = doc.get("datapath")) {
                r.error(*d, "datapath.ringbuf_bytes must be a power of two");
            }
        }
        if (!c.tcp_listen.empty() &&
            (c.tls.cert.empty() || c.tls.key.empty() || c.tls.ca.empty())) {
            if (const yaml::Node* a = doc.get("api")) {
                r.error(*a, "api.tcp needs api.tls.cert, key and ca (mutual TLS only)");
            }
        }
        if (!c.revoked.crl.empty() && c.tls.ca.empty()) {
            r.error(*doc.get("revoked"),
                    "revoked.crl needs api.tls.ca (the CA that signs the CRL)");
        }
        // Peers are named spiffe://<fleet>/...: a fleet that is no trust domain matches no one.
        if ((!c.tcp_listen.empty() || !c.controller.address.empty()) && !c.fleet.empty() &&
            !isValidTrustDomain(c.fleet)) {
            r.error(*doc.get("fleet"), "fleet '" + c.fleet +
                                           "' is not a SPIFFE trust domain (lowercase letters, "
                                           "digits, '.', '-', '_'): no certificate could name it");
        }
        // Bundles that arrive over the network are only ever trusted for their signature.
        auto remote = [&](const char* field, bool set) {
            const yaml::Node* n = doc.get(field);
            if (!set || n == nullptr) {
                return;
            }
            if (c.trusted_keys.empty()) {
                r.error(*n, std::string(field) + " needs trusted_keys (bundles are verified)");
            }
            if (c.fleet.empty()) {
                r.error(*n, std::string(field) + " needs fleet");
            }
        };
        remote("controller", !c.controller.address.empty());
        remote("etcd", !c.etcd.endpoints.empty());
        if (!c.controller.address.empty() &&
            (c.tls.cert.empty() || c.tls.key.empty() || c.tls.ca.empty())) {
            r.error(*doc.get("controller"),
                    "controller needs api.tls.cert, key and ca (this host's identity)");
        }
        if (!c.controller.address.empty() && !c.etcd.endpoints.empty()) {
            r.error(*doc.get("etcd"), "choose controller or etcd, not both");
        }
    }
    r.throwIfErrors();
    if (c.etcd.prefix.empty()) {
        c.etcd.prefix = "/ztseg/" + c.fleet;
    }
    dp.drop_event_interval_ns = drop_interval_ms * 1'000'000;
    if (c.host_name.empty()) {
        char buf[256] = {};
        gethostname(buf, sizeof(buf) - 1);
        c.host_name = buf;
    }
    return c;
}

AgentConfig loadConfig(const std::string& path) {
    return parseConfig(readFile(path, "config"), path);
}

}  // namespace ztseg::agent
