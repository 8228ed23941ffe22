#include "flows/ocsf.hpp"

#include <chrono>
#include <utility>

#include "common/version.hpp"
#include "flows/json_text.hpp"
#include "flows/ocsf_line.hpp"

namespace ztseg::flows {
namespace {

using json = nlohmann::json;

// Unknown values are left out (ocsf_line.hpp says which).
json endpoint(const FlowEndpoint& e) {
    json j = {{"uid", std::to_string(e.identity)}};
    if (ocsfKnownIp(e.ip)) {
        j["ip"] = e.ip;
    }
    if (e.port != 0) {
        j["port"] = e.port;
    }
    if (ocsfNamed(e.identity, e.name)) {
        j["name"] = e.name;
    }
    return j;
}

json labels(const policy::LabelSet& l) {
    json j = json::object();
    for (const auto& [k, v] : l) {
        j[k] = v;
    }
    return j;
}

}  // namespace

json toOcsf(const FlowRecord& r) {
    const OcsfVerdict verdict = ocsfVerdict(r.verdict);
    const bool audit = verdict == OcsfVerdict::WouldDrop;
    const bool established = r.reason == "allow-conntrack" || r.reason == "allow-related";
    const OcsfClassification k = ocsfClassification(verdict, established);
    const bool inbound = r.direction == Direction::Ingress;
    const OcsfDirection dir = ocsfDirection(inbound, r.src.workload && r.dst.workload);

    int64_t ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(r.time.time_since_epoch()).count();

    json j;
    j["class_uid"] = kOcsfClassUid;
    j["class_name"] = "Network Activity";
    j["category_uid"] = kOcsfCategoryUid;
    j["category_name"] = "Network Activity";
    j["activity_id"] = k.activity_id;
    j["activity_name"] = std::string(k.activity);
    j["type_uid"] = kOcsfClassUid * 100 + k.activity_id;
    j["type_name"] = "Network Activity: " + std::string(k.activity);
    j["action_id"] = k.action_id;
    j["action"] = std::string(k.action);
    j["disposition_id"] = k.disposition_id;
    j["disposition"] = std::string(k.disposition);
    j["severity_id"] = k.severity_id;
    j["severity"] = std::string(k.severity);
    j["status_id"] = k.status_id;
    j["status"] = std::string(k.status);
    j["status_detail"] = r.reason;
    j["time"] = ms;
    j["count"] = r.summary ? uint64_t(r.suppressed) : uint64_t(r.suppressed) + 1;
    j["metadata"] = {
        {"version", kOcsfVersion},
        {"product", {{"name", "ztseg"}, {"vendor_name", "ztseg"}, {"version", buildVersion()}}},
        {"profiles", json::array({"host", "security_control"})},
        {"log_name", "flows"},
    };
    j["device"] = {{"hostname", r.host}, {"type_id", 1}, {"type", "Server"}};
    j["src_endpoint"] = endpoint(r.src);
    j["dst_endpoint"] = endpoint(r.dst);
    j["connection_info"] = {
        {"protocol_num", r.protocol},         {"protocol_name", r.protocol_name},
        {"protocol_ver_id", r.family},        {"direction_id", dir.id},
        {"direction", std::string(dir.name)},
    };
    if (r.rule_id != 0) {
        json rule = {{"uid", std::to_string(r.rule_id)}};
        if (!r.policy.empty()) {
            rule["name"] = r.policy;
        }
        if (!r.rule_location.empty()) {
            rule["condition"] = r.rule_location;
        }
        if (!r.rule_description.empty()) {
            rule["desc"] = r.rule_description;
        }
        j["firewall_rule"] = rule;
    }
    j["traffic"] = {{"packets", r.packets}, {"bytes", r.bytes}};
    j["message"] = r.verdict + " " + r.protocol_name + " " + r.src.ip + ":" +
                   std::to_string(r.src.port) + " -> " + r.dst.ip + ":" +
                   std::to_string(r.dst.port) + " (" + r.reason + ")";

    json z = {
        {"verdict", r.verdict},
        {"reason", r.reason},
        {"hook", r.hook},
        {"direction", inbound ? "ingress" : "egress"},
        {"audit", audit},
        {"generation", r.generation},
        {"cgroup_id", r.cgroup_id},
        {"ifindex", r.ifindex},
        {"suppressed", r.suppressed},
        {"src_labels", labels(r.src.labels)},
        {"dst_labels", labels(r.dst.labels)},
    };
    if (audit) {
        z["would_drop_reason"] = r.reason;
    }
    if (r.proven) {
        z["proven"] = true;
    }
    if (!r.workload.empty()) {
        z["workload"] = r.workload;
    }
    if (r.protocol == 1 || r.protocol == 58) {
        z["icmp"] = {{"type", r.icmp_type}, {"code", r.icmp_code}};
    }
    if (r.summary) {
        z["summary"] = {
            {"drops", r.suppressed},
            {"distinct_dst_ports", r.distinct_dst_ports},
            {"ports_estimated_by", kSummaryPortsMethod},
            {"window_start_time", std::chrono::duration_cast<std::chrono::milliseconds>(
                                      r.window_start.time_since_epoch())
                                      .count()},
        };
    }
    j["unmapped"] = {{"ztseg", z}};
    return j;
}

namespace {

// Escaped copies of a record's strings, kept in one growing buffer and only
// turned into views once every piece is in (appending may move the buffer).
class EscapedText {
  public:
    using Piece = std::pair<size_t, size_t>;
    Piece escaped(std::string_view s) {
        size_t at = buf_.size();
        appendJsonEscaped(buf_, s);
        return {at, buf_.size() - at};
    }
    Piece labels(const policy::LabelSet& l) {
        size_t at = buf_.size();
        buf_.push_back('{');
        for (const auto& [k, v] : l) {
            if (buf_.size() > at + 1) {
                buf_.push_back(',');
            }
            appendJsonString(buf_, k);
            buf_.push_back(':');
            appendJsonString(buf_, v);
        }
        buf_.push_back('}');
        return {at, buf_.size() - at};
    }
    std::string_view view(Piece p) const {
        return std::string_view(buf_).substr(p.first, p.second);
    }
    void clear() { buf_.clear(); }

  private:
    std::string buf_;
};

}  // namespace

void appendOcsfLine(const FlowRecord& r, std::string& out) {
    thread_local TextBuffer line;
    line.clear();
    appendOcsfLine(r, line);
    out.append(line.view());
}

void appendOcsfLine(const FlowRecord& r, TextBuffer& out) {
    thread_local EscapedText text;
    text.clear();
    auto host = text.escaped(r.host), verdict = text.escaped(r.verdict),
         reason = text.escaped(r.reason), hook = text.escaped(r.hook),
         proto = text.escaped(r.protocol_name), src_ip = text.escaped(r.src.ip),
         src_name = text.escaped(r.src.name), src_labels = text.labels(r.src.labels),
         dst_ip = text.escaped(r.dst.ip), dst_name = text.escaped(r.dst.name),
         dst_labels = text.labels(r.dst.labels), rule_policy = text.escaped(r.policy),
         rule_location = text.escaped(r.rule_location),
         rule_description = text.escaped(r.rule_description), workload = text.escaped(r.workload);

    OcsfLineParts p;
    p.time_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(r.time.time_since_epoch()).count();
    p.host = text.view(host);
    p.verdict = text.view(verdict);
    p.reason = text.view(reason);
    p.hook = text.view(hook);
    p.protocol_name = text.view(proto);
    p.verdict_kind = ocsfVerdict(r.verdict);
    p.established = r.reason == "allow-conntrack" || r.reason == "allow-related";
    p.inbound = r.direction == Direction::Ingress;
    p.family = r.family;
    p.protocol = r.protocol;
    p.src = {.ip = text.view(src_ip),
             .port = r.src.port,
             .identity = r.src.identity,
             .name = text.view(src_name),
             .labels_json = text.view(src_labels),
             .workload = r.src.workload};
    p.dst = {.ip = text.view(dst_ip),
             .port = r.dst.port,
             .identity = r.dst.identity,
             .name = text.view(dst_name),
             .labels_json = text.view(dst_labels),
             .workload = r.dst.workload};
    p.rule_id = r.rule_id;
    p.rule_policy = text.view(rule_policy);
    p.rule_location = text.view(rule_location);
    p.rule_description = text.view(rule_description);
    p.workload = text.view(workload);
    p.cgroup_id = r.cgroup_id;
    p.generation = r.generation;
    p.ifindex = r.ifindex;
    p.packets = r.packets;
    p.bytes = r.bytes;
    p.suppressed = r.suppressed;
    p.proven = r.proven;
    p.summary = r.summary;
    p.window_start_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(r.window_start.time_since_epoch())
            .count();
    p.distinct_dst_ports = r.distinct_dst_ports;
    p.icmp_type = r.icmp_type;
    p.icmp_code = r.icmp_code;
    appendOcsfLine(p, out);
}

std::string toOcsfLine(const FlowRecord& r) {
    std::string line;
    appendOcsfLine(r, line);
    return line;
}

}  // namespace ztseg::flows
