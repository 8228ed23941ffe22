#include "agent/config.hpp"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/yaml_doc.hpp"

namespace ztseg::agent {
namespace {

// Walks the config tree; every problem is collected with its location.
class ConfigReader {
  public:
    explicit ConfigReader(std::string file) : file_(std::move(file)) {}

    void error(const yaml::Node& n, const std::string& msg) {
        errors_ += (errors_.empty() ? "" : "\n") + file_ + ":" + std::to_string(n.mark().line) +
                   ":" + std::to_string(n.mark().column) + ": " + msg;
    }
    const std::string& errors() const { return errors_; }

    using Handler = std::function<void(const yaml::Node&)>;
    // Dispatches each key of a mapping to its handler; unknown and repeated keys are errors.
    void fields(const yaml::Node& n, const std::string& what,
                const std::map<std::string, Handler>& handlers) {
        if (!n.isMap()) {
            error(n, "expected " + what + " to be a mapping");
            return;
        }
        std::map<std::string, bool> seen;
        for (const auto& [k, v] : n.entries()) {
            std::string key = k.isScalar() ? k.scalar() : "?";
            if (seen[key]) {
                error(k, "duplicate field '" + key + "' in " + what);
                continue;
            }
            seen[key] = true;
            auto it = handlers.find(key);
            if (it == handlers.end()) {
                std::string list;
                for (const auto& [name, h] : handlers) {
                    list += (list.empty() ? "" : ", ") + name;
                }
                error(k, "unknown field '" + key + "' in " + what + " (expected one of: " + list +
                             ")");
                continue;
            }
            it->second(v);
        }
    }

    Handler str(std::string& out) {
        return [this, &out](const yaml::Node& v) {
            if (v.isNull()) {
                out.clear();
            } else if (!v.isScalar()) {
                error(v, "expected a single value");
            } else {
                out = v.scalar();
            }
        };
    }

    template <typename T>
    Handler num(T& out, uint64_t min, uint64_t max) {
        return [this, &out, min, max](const yaml::Node& v) {
            uint64_t x = 0;
            const std::string& s = v.scalar();
            auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), x);
            if (!v.isScalar() || ec != std::errc() || end != s.data() + s.size() || x < min ||
                x > max) {
                error(v, "expected a whole number from " + std::to_string(min) + " to " +
                             std::to_string(max));
                return;
            }
            out = T(x);
        };
    }

    Handler strList(std::vector<std::string>& out) {
        return [this, &out](const yaml::Node& v) {
            out.clear();
            if (v.isNull()) {
                return;
            }
            if (!v.isSequence()) {
                error(v, "expected a list");
                return;
            }
            for (const auto& item : v.items()) {
                if (!item.isScalar() || item.scalar().empty()) {
                    error(item, "expected a non-empty name or pattern");
                } else {
                    out.push_back(item.scalar());
                }
            }
        };
    }

  private:
    std::string file_;
    std::string errors_;
};

}  // namespace

AgentConfig parseConfig(const std::string& text, const std::string& file_name) {
    AgentConfig c;
    ConfigReader r(file_name);
    std::vector<yaml::Node> docs;
    try {
        docs = yaml::parseAll(text);
    } catch (const yaml::ParseError& e) {
        throw Error(file_name + ":" + std::to_string(e.mark.line) + ":" +
                    std::to_string(e.mark.column) + ": invalid YAML: " + e.what());
    }
    if (docs.size() > 1) {
        throw Error(file_name + ": expected one YAML document, found " +
                    std::to_string(docs.size()));
    }
    std::string xdp_mode = "auto";
    auto& dp = c.datapath;
    uint64_t drop_interval_ms = dp.drop_event_interval_ns / 1'000'000;
    if (!docs.empty() && !docs[0].isNull()) {
        r.fields(
            docs[0], "ztsegd config",
            {
                {"host_name", r.str(c.host_name)},
                {"fleet", r.str(c.fleet)},
                {"state_dir", r.str(c.state_dir)},
                {"pin_dir", r.str(dp.pin_dir)},
                {"cgroup_root", r.str(c.cgroup_root)},
                {"interfaces", r.strList(c.interfaces)},
                {"xdp_mode", r.str(xdp_mode)},
                {"bundle", r.str(c.bundle)},
                {"flows",
                 [&](const yaml::Node& n) {
                     r.fields(n, "flows",
                              {{"file", r.str(c.flow_file)},
                               {"max_bytes", r.num(c.flow_file_max_bytes, 4096, 1ull << 40)},
                               {"max_files", r.num(c.flow_file_max_files, 1, 1000)},
                               {"drop_event_interval_ms", r.num(drop_interval_ms, 0, 3'600'000)}});
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
                {"metrics",
                 [&](const yaml::Node& n) {
                     r.fields(n, "metrics", {{"listen", r.str(c.metrics_listen)}});
                 }},
                {"datapath",
                 [&](const yaml::Node& n) {
                     r.fields(n, "datapath",
                              {{"policy_capacity", r.num(dp.policy_capacity, 16, 1u << 26)},
                               {"identity_capacity", r.num(dp.identity_capacity, 16, 1u << 26)},
                               {"endpoint_capacity", r.num(dp.endpoint_capacity, 16, 1u << 22)},
                               {"conntrack_capacity", r.num(dp.conntrack_capacity, 1024, 1u << 26)},
                               {"ringbuf_bytes", r.num(dp.ringbuf_bytes, 4096, 1u << 30)}});
                 }},
            });
        if (xdp_mode == "auto") {
            c.xdp_mode = XdpRequest::Auto;
        } else if (xdp_mode == "native") {
            c.xdp_mode = XdpRequest::Native;
        } else if (xdp_mode == "generic") {
            c.xdp_mode = XdpRequest::Generic;
        } else if (const yaml::Node* n = docs[0].get("xdp_mode")) {
            r.error(*n, "xdp_mode must be auto, native or generic");
        }
        uint32_t rb = dp.ringbuf_bytes;
        if ((rb & (rb - 1)) != 0) {
            if (const yaml::Node* d = docs[0].get("datapath")) {
                r.error(*d, "datapath.ringbuf_bytes must be a power of two");
            }
        }
        if (!c.tcp_listen.empty() &&
            (c.tls.cert.empty() || c.tls.key.empty() || c.tls.ca.empty())) {
            if (const yaml::Node* a = docs[0].get("api")) {
                r.error(*a, "api.tcp needs api.tls.cert, key and ca (mutual TLS only)");
            }
        }
    }
    if (!r.errors().empty()) {
        throw Error(r.errors());
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
