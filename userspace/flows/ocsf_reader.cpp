#include "flows/ocsf_reader.hpp"

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "flows/ocsf.hpp"
#include "model/names.hpp"
#include "policy/parser.hpp"

namespace ztseg::flows {
namespace {

using json = nlohmann::json;

// Field access that names the path on failure.
const json& at(const json& j, const char* key, const char* where) {
    auto it = j.find(key);
    if (it == j.end()) {
        throw Error(std::string("missing field ") + where + "." + key);
    }
    return *it;
}

template <typename T>
T get(const json& j, const char* key, const char* where, T fallback) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        return fallback;
    }
    try {
        return it->get<T>();
    } catch (const json::exception&) {
        throw Error(std::string("field ") + where + "." + key + " has the wrong type");
    }
}

policy::LabelSet labelsOf(const json& z, const char* key) {
    policy::LabelSet out;
    auto it = z.find(key);
    if (it == z.end() || !it->is_object()) {
        return out;
    }
    for (const auto& [k, v] : it->items()) {
        if (!v.is_string()) {
            throw Error(std::string("field unmapped.ztseg.") + key + "." + k + " is not a string");
        }
        out[k] = v.get<std::string>();
    }
    return out;
}

// Left-out values come back as the record held them: an unknown address as
// the unspecified one of the family, a reserved identity's name from its uid.
// Lines before the OCSF fix (issue 14) put the name in `hostname` too.
FlowEndpoint endpointOf(const json& e, const char* where, int family) {
    FlowEndpoint ep;
    ep.ip = get<std::string>(e, "ip", where, family == 6 ? "::" : "0.0.0.0");
    ep.port = get<uint16_t>(e, "port", where, 0);
    std::string uid = get<std::string>(e, "uid", where, "0");
    try {
        ep.identity = IdentityId(std::stoul(uid));
    } catch (const std::exception&) {
        throw Error(std::string("field ") + where + ".uid '" + uid + "' is not an identity number");
    }
    ep.name = get<std::string>(e, "name", where, get<std::string>(e, "hostname", where, ""));
    if (ep.name.empty()) {
        ep.name = reservedIdentityName(ep.identity);
    }
    return ep;
}

std::string verdictOf(const json& j, const json& z) {
    if (auto v = get<std::string>(z, "verdict", "unmapped.ztseg", ""); !v.empty()) {
        return v;
    }
    // Without ztseg's fields: Denied is a drop; disposition Detected (or
    // action 3 "Observed", which lines before issue 14 used) a would-drop.
    int action = get<int>(j, "action_id", "event", 0);
    int disposition = get<int>(j, "disposition_id", "event", 0);
    return action == 2 ? "dropped" : (action == 3 || disposition == 15) ? "would-drop" : "allowed";
}

}  // namespace

FlowRecord parseOcsfLine(std::string_view line) {
    json j = json::parse(line.begin(), line.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        throw Error("not a JSON object");
    }
    if (get<int>(j, "class_uid", "event", 0) != kOcsfClassUid) {
        throw Error("not an OCSF Network Activity event (class_uid must be 4001)");
    }
    static const json kEmpty = json::object();
    const json& unmapped = j.contains("unmapped") ? j.at("unmapped") : kEmpty;
    const json& z = unmapped.contains("ztseg") ? unmapped.at("ztseg") : kEmpty;

    FlowRecord r;
    r.time = std::chrono::system_clock::time_point(
        std::chrono::milliseconds(get<int64_t>(j, "time", "event", 0)));
    if (j.contains("device")) {
        r.host = get<std::string>(j.at("device"), "hostname", "device", "");
    }
    r.verdict = verdictOf(j, z);
    r.reason = get<std::string>(z, "reason", "unmapped.ztseg",
                                get<std::string>(j, "status_detail", "event", ""));
    r.hook = get<std::string>(z, "hook", "unmapped.ztseg", "");
    const json& ci = at(j, "connection_info", "event");
    // ztseg's own direction first: connection_info says Lateral between two
    // workloads, and lines before issue 14 have only Inbound (1) / Outbound (2).
    const int direction_id = get<int>(ci, "direction_id", "connection_info", 1);
    std::string direction = get<std::string>(z, "direction", "unmapped.ztseg", "");
    if (direction.empty()) {
        direction = direction_id == 2 ? "egress" : "ingress";
    } else if (direction != "ingress" && direction != "egress") {
        throw Error("field unmapped.ztseg.direction '" + direction + "' is not ingress or egress");
    }
    r.direction = direction == "egress" ? Direction::Egress : Direction::Ingress;
    r.family = get<int>(ci, "protocol_ver_id", "connection_info", 4) == 6 ? 6 : 4;
    r.protocol = get<uint8_t>(ci, "protocol_num", "connection_info", 0);
    r.protocol_name =
        get<std::string>(ci, "protocol_name", "connection_info", policy::protocolName(r.protocol));
    r.src = endpointOf(at(j, "src_endpoint", "event"), "src_endpoint", r.family);
    r.dst = endpointOf(at(j, "dst_endpoint", "event"), "dst_endpoint", r.family);
    // Lateral: both ends are workloads. Otherwise the line does not say.
    r.src.workload = r.dst.workload = direction_id == 3;
    r.src.labels = labelsOf(z, "src_labels");
    r.dst.labels = labelsOf(z, "dst_labels");
    if (auto it = j.find("firewall_rule"); it != j.end() && it->is_object()) {
        std::string uid = get<std::string>(*it, "uid", "firewall_rule", "0");
        try {
            r.rule_id = uint32_t(std::stoul(uid));
        } catch (const std::exception&) {
            throw Error("field firewall_rule.uid '" + uid + "' is not a rule id");
        }
        r.policy = get<std::string>(*it, "name", "firewall_rule", "");
        r.rule_location = get<std::string>(*it, "condition", "firewall_rule", "");
        r.rule_description = get<std::string>(*it, "desc", "firewall_rule", "");
    }
    r.workload = get<std::string>(z, "workload", "unmapped.ztseg", "");
    r.cgroup_id = get<uint64_t>(z, "cgroup_id", "unmapped.ztseg", 0);
    r.generation = get<uint64_t>(z, "generation", "unmapped.ztseg", 0);
    r.ifindex = get<uint32_t>(z, "ifindex", "unmapped.ztseg", 0);
    r.suppressed = get<uint32_t>(z, "suppressed", "unmapped.ztseg", 0);
    r.proven = get<bool>(z, "proven", "unmapped.ztseg", false);
    if (auto it = z.find("summary"); it != z.end() && it->is_object()) {
        r.summary = true;
        r.distinct_dst_ports =
            get<uint32_t>(*it, "distinct_dst_ports", "unmapped.ztseg.summary", 0);
        r.window_start = std::chrono::system_clock::time_point(std::chrono::milliseconds(
            get<int64_t>(*it, "window_start_time", "unmapped.ztseg.summary", 0)));
    }
    if (auto it = j.find("traffic"); it != j.end() && it->is_object()) {
        r.packets = get<uint64_t>(*it, "packets", "traffic", 0);
        r.bytes = get<uint64_t>(*it, "bytes", "traffic", 0);
    }
    if (auto it = z.find("icmp"); it != z.end() && it->is_object()) {
        r.icmp_type = get<uint8_t>(*it, "type", "unmapped.ztseg.icmp", 0);
        r.icmp_code = get<uint8_t>(*it, "code", "unmapped.ztseg.icmp", 0);
    }
    return r;
}

namespace {
// How messages name a flow file ("-" is standard input).
std::string shownName(const std::string& path) {
    return path == "-" ? std::string("<stdin>") : path;
}
}  // namespace

std::vector<std::string> FlowReadReport::warnings() const {
    std::vector<std::string> out;
    const std::string name = shownName(path);
    if (skipped) {
        std::string lines;
        for (size_t n : bad_lines) {
            lines += (lines.empty() ? "" : ", ") + std::to_string(n);
        }
        if (skipped > bad_lines.size()) {
            lines += ", ...";
        }
        out.push_back("read flows " + name + ": skipped " + std::to_string(skipped) + " bad line" +
                      (skipped == 1 ? "" : "s") + " (" + lines + "); first: " + name + ":" +
                      first_error + " (--strict makes this an error)");
    }
    if (partial_line) {
        out.push_back("read flows " + name + ":" + std::to_string(partial_line) +
                      ": last line has no newline and does not parse (still being written, or "
                      "cut short): skipped");
    }
    return out;
}

std::vector<FlowRecord> readFlowFile(const std::string& path, const FlowReadOptions& opts,
                                     FlowReadReport* report) {
    std::vector<FlowRecord> out;
    FlowReadReport r = forEachFlowLine(
        path, [&](const FlowRecord& rec, const std::string&) { out.push_back(rec); }, opts);
    if (report) {
        *report = std::move(r);
    }
    return out;
}

FlowReadReport forEachFlowLine(const std::string& path,
                               const std::function<void(const FlowRecord&, const std::string&)>& fn,
                               const FlowReadOptions& opts) {
    std::ifstream file;
    std::istream* in = &std::cin;
    if (path != "-") {
        file.open(path);
        if (!file) {
            throwErrno("read flows " + path, errno);
        }
        in = &file;
    }
    FlowReadReport report;
    report.path = path;
    std::string line;
    for (size_t n = 1; std::getline(*in, line); ++n) {
        // getline stopped at end of file, not at a newline: the line may be partial.
        const bool unterminated = in->eof();
        if (line.find_first_not_of(" \t\r") == std::string::npos) {
            continue;
        }
        FlowRecord r;
        try {
            r = parseOcsfLine(line);
        } catch (const Error& e) {
            if (opts.strict) {
                throw Error("read flows " + shownName(path) + ":" + std::to_string(n) + ": " +
                            e.what());
            }
            if (unterminated) {
                report.partial_line = n;
            } else {
                if (report.skipped++ == 0) {
                    report.first_error = std::to_string(n) + ": " + e.what();
                }
                if (report.bad_lines.size() < FlowReadReport::kMaxNamed) {
                    report.bad_lines.push_back(n);
                }
            }
            continue;
        }
        ++report.events;
        fn(r, line);
    }
    if (in->bad()) {
        throwErrno("read flows " + path, errno);
    }
    return report;
}

}  // namespace ztseg::flows
