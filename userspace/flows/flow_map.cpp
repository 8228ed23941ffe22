#include "flows/flow_map.hpp"

#include <algorithm>
#include <chrono>
#include <tuple>

namespace ztseg::flows {
namespace {

// Higher is more severe; a connection keeps its most severe verdict.
int severity(const std::string& verdict) {
    return verdict == "dropped" ? 2 : verdict == "would-drop" ? 1 : 0;
}

std::string reservedName(const FlowEndpoint& e) {
    if (!e.name.empty()) {
        return e.name;
    }
    if (e.identity == kUnlabeled) {
        return "unlabeled";
    }
    if (e.identity == kWorldIdentity) {
        return "world";
    }
    if (e.identity == kHostIdentity) {
        return "host";
    }
    return "reserved:" + std::to_string(e.identity);
}

bool knownAddress(const std::string& ip) {
    return !ip.empty() && ip != "0.0.0.0" && ip != "::";
}

// DOT double-quoted string: quotes and backslashes escaped; "\n" in `s`
// stays a line break of the label.
std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c == '\n' ? std::string("\\n") : std::string(1, c);
    }
    return out + "\"";
}

std::string join(const std::set<std::string>& items, const std::string& sep) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
    return out;
}

std::string nodeLabel(const MapNode& n) {
    std::string label = n.id;
    if (n.reserved) {
        if (!n.addresses.empty()) {
            size_t k = n.addresses.size();
            label += "\n" + std::to_string(k) + (k == 1 ? " address" : " addresses");
        }
    } else if (n.grouped) {
        if (!n.workloads.empty()) {
            label += "\n" + join(n.workloads, ", ");
        }
    } else if (!n.labels.empty() && !(n.labels.size() == 1 && *n.labels.begin() == n.id)) {
        label += "\n" + join(n.labels, "\n");
    }
    return label;
}

}  // namespace

std::string MapEdge::service() const {
    return port ? protocol + "/" + std::to_string(port) : protocol;
}

std::string verdictColor(const std::string& verdict) {
    return verdict == "allowed" ? "green4" : verdict == "dropped" ? "red" : "orange";
}

std::string mapNodeId(const FlowEndpoint& e, const FlowMapOptions& opts) {
    if (isReservedIdentity(e.identity)) {
        return reservedName(e);
    }
    if (!opts.group_by.empty()) {
        if (auto it = e.labels.find(opts.group_by); it != e.labels.end()) {
            return opts.group_by + "=" + it->second;
        }
    }
    if (!e.name.empty()) {
        return e.name;
    }
    if (!e.labels.empty()) {
        return policy::canonical(e.labels);
    }
    return "identity " + std::to_string(e.identity);
}

FlowMap buildFlowMap(const std::vector<FlowRecord>& records, const FlowMapOptions& opts) {
    FlowMap map;
    map.events = records.size();
    // One entry per connection: its 5-tuple, or the event's index for
    // events without a source port (counted one each).
    using ConnKey = std::tuple<std::string, uint16_t, std::string, uint16_t, uint8_t, size_t>;
    struct Conn {
        const FlowRecord* record;  // its endpoints (all events of a key share them)
        std::string verdict;       // the most severe of its events
        std::chrono::system_clock::time_point first;
    };
    std::map<ConnKey, Conn> conns;
    for (size_t i = 0; i < records.size(); ++i) {
        const FlowRecord& r = records[i];
        bool tuple = r.src.port != 0 && knownAddress(r.src.ip);
        ConnKey key{r.src.ip, r.src.port, r.dst.ip, r.dst.port, r.protocol, tuple ? 0 : i + 1};
        auto [it, added] = conns.emplace(key, Conn{&r, r.verdict, r.time});
        if (!added) {
            it->second.first = std::min(it->second.first, r.time);
            if (severity(r.verdict) > severity(it->second.verdict)) {
                it->second.verdict = r.verdict;
            }
        }
    }
    // Replies: a 5-tuple whose reverse is a connection too is that
    // connection's other direction (the server's answer, reported when the
    // first packet was allowed or only audited). The later one (same time:
    // the one to the higher port) is the reply; it adds its verdict only.
    for (auto it = conns.begin(); it != conns.end();) {
        const auto& [k, c] = *it;
        auto fwd = std::get<5>(k) == 0 ? conns.find({std::get<2>(k), std::get<3>(k), std::get<0>(k),
                                                     std::get<1>(k), std::get<4>(k), 0})
                                       : conns.end();
        if (fwd == conns.end() || fwd == it ||
            std::tuple(c.first, std::get<3>(k), k) <
                std::tuple(fwd->second.first, std::get<3>(fwd->first), fwd->first)) {
            ++it;
            continue;
        }
        if (severity(c.verdict) > severity(fwd->second.verdict)) {
            fwd->second.verdict = c.verdict;
        }
        it = conns.erase(it);
    }
    std::map<std::string, MapNode> nodes;
    auto node = [&](const FlowEndpoint& e) {
        std::string id = mapNodeId(e, opts);
        MapNode& n = nodes[id];
        n.id = id;
        n.reserved = isReservedIdentity(e.identity);
        n.grouped = !n.reserved && !opts.group_by.empty() && e.labels.count(opts.group_by);
        if (n.reserved) {
            if (knownAddress(e.ip)) {
                n.addresses.insert(e.ip);
            }
        } else {
            if (!e.name.empty()) {
                n.workloads.insert(e.name);
            }
            if (!e.labels.empty()) {
                n.labels.insert(policy::canonical(e.labels));
            }
        }
        return id;
    };
    using EdgeKey = std::tuple<std::string, std::string, std::string, uint16_t, int>;
    std::map<EdgeKey, MapEdge> edges;
    for (const auto& [key, c] : conns) {
        const FlowRecord* r = c.record;
        std::string src = node(r->src), dst = node(r->dst);
        std::string proto =
            r->protocol_name.empty() ? std::to_string(r->protocol) : r->protocol_name;
        MapEdge& e = edges[{src, dst, proto, r->dst.port, severity(c.verdict)}];
        e.src = src;
        e.dst = dst;
        e.protocol = proto;
        e.port = r->dst.port;
        e.verdict = c.verdict;
        ++e.connections;
        ++map.connections;
    }
    for (auto& [id, n] : nodes) map.nodes.push_back(std::move(n));
    for (auto& [k, e] : edges) map.edges.push_back(std::move(e));
    return map;
}

std::string flowMapDot(const FlowMap& map, const std::string& title) {
    std::string out = "// ztseg flow map";
    if (!title.empty()) {
        out += ": " + title;
    }
    out += "\n// " + std::to_string(map.connections) + " connections from " +
           std::to_string(map.events) +
           " flow events (each connection counted once); allowed green, dropped red, "
           "would-drop orange dashed\n";
    out +=
        "digraph ztseg {\n"
        "  rankdir=LR;\n"
        "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n"
        "  edge [fontname=\"Helvetica\", fontsize=10];\n";
    for (const MapNode& n : map.nodes) {
        out += "  " + quoted(n.id) + " [label=" + quoted(nodeLabel(n));
        if (n.reserved) {
            out += ", style=\"rounded,dashed\"";
        }
        out += "];\n";
    }
    for (const MapEdge& e : map.edges) {
        std::string color = verdictColor(e.verdict);
        out += "  " + quoted(e.src) + " -> " + quoted(e.dst) +
               " [label=" + quoted(e.service() + " ×" + std::to_string(e.connections)) +
               ", color=" + quoted(color) + ", fontcolor=" + quoted(color) +
               ", tooltip=" + quoted(e.verdict);
        if (e.verdict == "would-drop") {
            out += ", style=dashed";
        } else if (e.verdict == "dropped") {
            out += ", penwidth=2";
        }
        out += "];\n";
    }
    return out + "}\n";
}

}  // namespace ztseg::flows
