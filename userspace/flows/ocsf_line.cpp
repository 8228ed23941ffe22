#include "flows/ocsf_line.hpp"

#include <charconv>
#include <cstring>

#include "common/version.hpp"
#include "flows/json_text.hpp"
#include "flows/ocsf.hpp"

namespace ztseg::flows {
namespace {

// Writes through a raw pointer into room reserved for the line's upper
// bound: no capacity check per piece, literals copied with known sizes.
struct Cursor {
    char* p;

    template <size_t N>
    void lit(const char (&s)[N]) {
        std::memcpy(p, s, N - 1);
        p += N - 1;
    }
    void str(std::string_view s) {
        std::memcpy(p, s.data(), s.size());
        p += s.size();
    }
    void quoted(std::string_view s) {
        *p++ = '"';
        str(s);
        *p++ = '"';
    }
    void put(char c) { *p++ = c; }
    void num(uint64_t v) { p = std::to_chars(p, p + 20, v).ptr; }
    void snum(int64_t v) { p = std::to_chars(p, p + 20, v).ptr; }
};

const std::string& metadataJson() {
    static const std::string text = [] {
        std::string s = R"({"log_name":"flows","product":{"name":"ztseg","vendor_name":"ztseg",)";
        s += R"("version":)";
        appendJsonString(s, buildVersion());
        s += R"(},"profiles":["host","security_control"],"version":)";
        appendJsonString(s, kOcsfVersion);
        s += "}";
        return s;
    }();
    return text;
}

// Keys in byte order: ip, name, port, uid; unknown values left out.
void endpoint(Cursor& c, const OcsfLineParts::Endpoint& e) {
    c.put('{');
    if (ocsfKnownIp(e.ip)) {
        c.lit(R"("ip":)");
        c.quoted(e.ip);
        c.put(',');
    }
    if (ocsfNamed(e.identity, e.name)) {
        c.lit(R"("name":)");
        c.quoted(e.name);
        c.put(',');
    }
    if (e.port != 0) {
        c.lit(R"("port":)");
        c.num(e.port);
        c.put(',');
    }
    c.lit(R"("uid":")");
    c.num(e.identity);
    c.lit(R"("})");
}

// At most this many bytes: the fixed text (well under 1536 bytes), 20 per
// number, and each piece of text as often as the line repeats it (<= 4).
size_t bound(const OcsfLineParts& p) {
    const size_t text = p.host.size() + p.verdict.size() + p.reason.size() + p.hook.size() +
                        p.protocol_name.size() + p.src.ip.size() + p.src.name.size() +
                        p.src.labels_json.size() + p.dst.ip.size() + p.dst.name.size() +
                        p.dst.labels_json.size() + p.rule_policy.size() + p.rule_location.size() +
                        p.rule_description.size() + p.workload.size();
    return 1536 + metadataJson().size() + 32 * 20 + 4 * text;
}

}  // namespace

// Keys appear in byte order at every level: that is how nlohmann::json (an
// std::map per object) dumps toOcsf(), and tests compare the two byte by byte.
void appendOcsfLine(const OcsfLineParts& p, TextBuffer& out) {
    const OcsfClassification k = ocsfClassification(p.verdict_kind, p.established);
    const OcsfDirection dir = ocsfDirection(p.inbound, p.src.workload && p.dst.workload);
    const bool audit = p.verdict_kind == OcsfVerdict::WouldDrop;

    static const std::string_view metadata = metadataJson();
    Cursor c{out.reserve(bound(p))};
    c.lit(R"({"action":")");
    c.str(k.action);
    c.lit(R"(","action_id":)");
    c.num(uint64_t(k.action_id));
    c.lit(R"(,"activity_id":)");
    c.num(uint64_t(k.activity_id));
    c.lit(R"(,"activity_name":")");
    c.str(k.activity);
    static_assert(kOcsfCategoryUid == 4 && kOcsfClassUid == 4001, "update the literals below");
    c.lit(R"(","category_name":"Network Activity","category_uid":4)");
    c.lit(R"(,"class_name":"Network Activity","class_uid":4001)");

    c.lit(R"(,"connection_info":{"direction":")");
    c.str(dir.name);
    c.lit(R"(","direction_id":)");
    c.num(uint64_t(dir.id));
    c.lit(R"(,"protocol_name":)");
    c.quoted(p.protocol_name);
    c.lit(R"(,"protocol_num":)");
    c.num(p.protocol);
    c.lit(R"(,"protocol_ver_id":)");
    c.snum(p.family);

    c.lit(R"(},"count":)");
    c.num(p.summary ? uint64_t(p.suppressed) : uint64_t(p.suppressed) + 1);
    c.lit(R"(,"device":{"hostname":)");
    c.quoted(p.host);
    c.lit(R"(,"type":"Server","type_id":1},"disposition":")");
    c.str(k.disposition);
    c.lit(R"(","disposition_id":)");
    c.num(uint64_t(k.disposition_id));
    c.lit(R"(,"dst_endpoint":)");
    endpoint(c, p.dst);

    if (p.rule_id != 0) {
        c.lit(R"(,"firewall_rule":{)");
        if (!p.rule_location.empty()) {
            c.lit(R"("condition":)");
            c.quoted(p.rule_location);
            c.put(',');
        }
        if (!p.rule_description.empty()) {
            c.lit(R"("desc":)");
            c.quoted(p.rule_description);
            c.put(',');
        }
        if (!p.rule_policy.empty()) {
            c.lit(R"("name":)");
            c.quoted(p.rule_policy);
            c.put(',');
        }
        c.lit(R"("uid":")");
        c.num(p.rule_id);
        c.lit(R"("})");
    }

    // "verdict proto src:port -> dst:port (reason)": escaping each piece is the
    // same as escaping the whole, since ASCII separators stand between them.
    c.lit(R"(,"message":")");
    c.str(p.verdict);
    c.put(' ');
    c.str(p.protocol_name);
    c.put(' ');
    c.str(p.src.ip);
    c.put(':');
    c.num(p.src.port);
    c.lit(" -> ");
    c.str(p.dst.ip);
    c.put(':');
    c.num(p.dst.port);
    c.lit(" (");
    c.str(p.reason);
    c.lit(R"x()","metadata":)x");
    c.str(metadata);

    c.lit(R"(,"severity":")");
    c.str(k.severity);
    c.lit(R"(","severity_id":)");
    c.num(uint64_t(k.severity_id));
    c.lit(R"(,"src_endpoint":)");
    endpoint(c, p.src);
    c.lit(R"(,"status":")");
    c.str(k.status);
    c.lit(R"(","status_detail":)");
    c.quoted(p.reason);
    c.lit(R"(,"status_id":)");
    c.num(uint64_t(k.status_id));
    c.lit(R"(,"time":)");
    c.snum(p.time_ms);
    c.lit(R"(,"traffic":{"bytes":)");
    c.num(p.bytes);
    c.lit(R"(,"packets":)");
    c.num(p.packets);
    c.lit(R"(},"type_name":"Network Activity: )");
    c.str(k.activity);
    c.lit(R"(","type_uid":)");
    c.num(uint64_t(kOcsfClassUid) * 100 + uint64_t(k.activity_id));

    c.lit(R"(,"unmapped":{"ztseg":{"audit":)");
    if (audit) {
        c.lit("true");
    } else {
        c.lit("false");
    }
    c.lit(R"(,"cgroup_id":)");
    c.num(p.cgroup_id);
    c.lit(R"(,"direction":")");
    c.str(p.inbound ? "ingress" : "egress");
    c.put('"');
    c.lit(R"(,"dst_labels":)");
    c.str(p.dst.labels_json);
    c.lit(R"(,"generation":)");
    c.num(p.generation);
    c.lit(R"(,"hook":)");
    c.quoted(p.hook);
    if (p.protocol == 1 || p.protocol == 58) {
        c.lit(R"(,"icmp":{"code":)");
        c.num(p.icmp_code);
        c.lit(R"(,"type":)");
        c.num(p.icmp_type);
        c.put('}');
    }
    c.lit(R"(,"ifindex":)");
    c.num(p.ifindex);
    if (p.proven) {
        c.lit(R"(,"proven":true)");
    }
    c.lit(R"(,"reason":)");
    c.quoted(p.reason);
    c.lit(R"(,"src_labels":)");
    c.str(p.src.labels_json);
    if (p.summary) {
        c.lit(R"(,"summary":{"distinct_dst_ports":)");
        c.num(p.distinct_dst_ports);
        c.lit(R"(,"drops":)");
        c.num(p.suppressed);
        c.lit(R"(,"ports_estimated_by":")");
        c.str(kSummaryPortsMethod);
        c.lit(R"(","window_start_time":)");
        c.snum(p.window_start_ms);
        c.put('}');
    }
    c.lit(R"(,"suppressed":)");
    c.num(p.suppressed);
    c.lit(R"(,"verdict":)");
    c.quoted(p.verdict);
    if (!p.workload.empty()) {
        c.lit(R"(,"workload":)");
        c.quoted(p.workload);
    }
    if (audit) {
        c.lit(R"(,"would_drop_reason":)");
        c.quoted(p.reason);
    }
    c.lit("}}}");
    out.commit(c.p);
}

}  // namespace ztseg::flows
