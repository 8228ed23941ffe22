#include "flows/enrich.hpp"

#include <arpa/inet.h>

#include <array>
#include <cmath>
#include <utility>

#include "common/error.hpp"
#include "flows/json_text.hpp"
#include "flows/ocsf_line.hpp"
#include "model/ip_prefix.hpp"
#include "model/names.hpp"
#include "policy/parser.hpp"

namespace ztseg::flows {

namespace {

std::string joinNames(const std::vector<std::string>& names) {
    std::string out;
    for (const std::string& n : names) {
        out += (out.empty() ? "" : ",") + n;
    }
    return out;
}

void resolveIdentity(const policy::CompiledPolicy& p, IdentityId id, FlowEndpoint& ep) {
    ep.identity = id;
    if (const policy::IdentityInfo* info = p.identity(id)) {
        ep.labels = info->labels;
        ep.name = joinNames(info->names);
        ep.workload = info->kind == policy::IdentityKind::Workload;
        if (ep.name.empty() && info->kind == policy::IdentityKind::Reserved) {
            auto it = info->labels.find(policy::kReservedLabel);
            if (it != info->labels.end()) {
                ep.name = it->second;
            }
        }
        return;
    }
    ep.name = reservedIdentityName(id);
}

bool hasPorts(uint8_t proto) {
    return proto == ZTSEG_PROTO_TCP || proto == ZTSEG_PROTO_UDP || proto == ZTSEG_PROTO_SCTP;
}

bool isIcmp(uint8_t proto) {
    return proto == ZTSEG_PROTO_ICMP || proto == ZTSEG_PROTO_ICMPV6;
}

// A failsafe rule's event: rule_id is its number in ztsegd's failsafe list
// (ztsegctl status), not a policy rule.
constexpr std::string_view kFailsafePolicy = "failsafe";
constexpr std::string_view kFailsafeLocation = "ztsegd.yaml";
constexpr std::string_view kFailsafeDescription =
    "failsafe rule of ztsegd.yaml: the number is its place in ztsegctl status";

std::string escaped(std::string_view s) {
    std::string out;
    appendJsonEscaped(out, s);
    return out;
}

std::string labelsJson(const policy::LabelSet& labels) {
    std::string out = "{";
    for (const auto& [k, v] : labels) {
        if (out.size() > 1) {
            out.push_back(',');
        }
        appendJsonString(out, k);
        out.push_back(':');
        appendJsonString(out, v);
    }
    out.push_back('}');
    return out;
}

// Protocol names by number, escaped (they are plain words or numbers).
const std::array<std::string, 256>& protocolNamesJson() {
    static const std::array<std::string, 256> names = [] {
        std::array<std::string, 256> a;
        for (unsigned i = 0; i < a.size(); ++i) {
            a[i] = escaped(policy::protocolName(uint8_t(i)));
        }
        return a;
    }();
    return names;
}

// inet_ntop's text for the event's address, into a stack buffer.
struct AddressText {
    char buf[INET6_ADDRSTRLEN];
    size_t len = 0;
    std::string_view view() const { return {buf, len}; }
};

void formatAddress(int family, const uint32_t* addr, AddressText& t) {
    if (family == 4) {
        // Dotted quad, as inet_ntop writes it, without its generic machinery.
        const auto* b = reinterpret_cast<const unsigned char*>(addr);
        char* p = t.buf;
        for (int i = 0; i < 4; ++i) {
            unsigned v = b[i];
            if (v >= 100) {
                *p++ = char('0' + v / 100);
                v %= 100;
                *p++ = char('0' + v / 10);
            } else if (v >= 10) {
                *p++ = char('0' + v / 10);
            }
            *p++ = char('0' + v % 10);
            if (i < 3) {
                *p++ = '.';
            }
        }
        t.len = size_t(p - t.buf);
        return;
    }
    if (!inet_ntop(AF_INET6, addr, t.buf, sizeof(t.buf))) {
        t.len = 0;
        return;
    }
    t.len = std::char_traits<char>::length(t.buf);
}

}  // namespace

struct EnrichView::PolicyText {
    struct Identity {
        std::string name_json;    // escaped name ("" when it has none)
        std::string labels_json;  // {"k":"v",...}
        bool workload = false;    // an inventory workload's identity
    };
    struct Rule {
        std::string policy_json, location_json, description_json;
    };

    std::shared_ptr<const policy::CompiledPolicy> policy;
    std::unordered_map<IdentityId, Identity> identities;  // every identity with a name or labels
    std::array<const Identity*, 256> reserved{};          // the same for ids < 256, no hashing
    std::unordered_map<uint32_t, Rule> rules;
    Identity unknown{"", "{}", false};

    const Identity& identity(IdentityId id) const {
        if (id < reserved.size()) {
            return reserved[id] ? *reserved[id] : unknown;
        }
        auto it = identities.find(id);
        return it == identities.end() ? unknown : it->second;
    }
};

struct EnrichView::NamesText {
    std::shared_ptr<const WorkloadNames> names;
    std::unordered_map<uint64_t, std::string> workloads_json;  // cgroup id -> escaped name
};

std::shared_ptr<const EnrichView::PolicyText> EnrichView::makePolicyText(
    std::shared_ptr<const policy::CompiledPolicy> policy) {
    if (!policy) {
        throw Error("flow enricher: set policy: policy is null");
    }
    auto t = std::make_shared<PolicyText>();
    // The same resolution enrich() does, done once per identity.
    auto add = [&](IdentityId id) {
        FlowEndpoint ep;
        resolveIdentity(*policy, id, ep);
        if (!ep.name.empty() || !ep.labels.empty() || ep.workload) {
            t->identities[id] = {escaped(ep.name), labelsJson(ep.labels), ep.workload};
        }
    };
    for (const policy::IdentityInfo& info : policy->identities) {
        add(info.id);
    }
    for (IdentityId id : {kUnlabeled, kHostIdentity, kWorldIdentity}) {
        add(id);
    }
    for (const policy::RuleSource& s : policy->sources) {
        if (const policy::RuleSource* found = policy->source(s.rule_id); found == &s) {
            t->rules[s.rule_id] = {escaped(s.policy),
                                   escaped(s.loc.file + ":" + std::to_string(s.loc.line)),
                                   escaped(s.description)};
        }
    }
    for (const auto& [id, text] : t->identities) {
        if (id < t->reserved.size()) {
            t->reserved[id] = &text;
        }
    }
    t->policy = std::move(policy);
    return t;
}

std::shared_ptr<const EnrichView::NamesText> EnrichView::makeNamesText(
    std::shared_ptr<const WorkloadNames> names) {
    auto t = std::make_shared<NamesText>();
    for (const auto& [cgroup, name] : *names) {
        t->workloads_json[cgroup] = escaped(name);
    }
    t->names = std::move(names);
    return t;
}

EnrichView::EnrichView(std::shared_ptr<const PolicyText> policy,
                       std::shared_ptr<const NamesText> names, std::string host)
    : policy_(std::move(policy)),
      names_(std::move(names)),
      host_(std::move(host)),
      host_json_(escaped(host_)) {}

const std::shared_ptr<const policy::CompiledPolicy>& EnrichView::policy() const {
    return policy_->policy;
}

FlowRecord EnrichView::enrich(const ztseg_flow_event& ev, const EventClock& clock) const {
    const policy::CompiledPolicy& p = *policy_->policy;
    FlowRecord r;
    r.time = clock.wallTime(ev.ts_ns);
    r.host = host_;
    r.verdict = std::string(verdictName(ev.verdict));
    r.reason = std::string(reasonName(ev.reason));
    r.hook = std::string(hookName(ev.hook));
    r.direction = ev.direction == ZTSEG_DIR_EGRESS ? Direction::Egress : Direction::Ingress;
    r.family = ev.family == 6 ? 6 : 4;
    r.protocol = ev.proto;
    r.protocol_name = policy::protocolName(ev.proto);
    r.src.ip = addressToString(r.family, ev.saddr);
    r.dst.ip = addressToString(r.family, ev.daddr);
    if (hasPorts(ev.proto)) {
        r.src.port = ev.sport;
        r.dst.port = ev.dport;
    }
    if (isIcmp(ev.proto)) {
        r.icmp_type = ev.icmp_type;
        r.icmp_code = ev.icmp_code;
    }
    resolveIdentity(p, ev.src_identity, r.src);
    resolveIdentity(p, ev.dst_identity, r.dst);

    r.rule_id = ev.rule_id;
    if (ev.reason == ZTSEG_REASON_ALLOW_FAILSAFE) {
        r.policy = kFailsafePolicy;
        r.rule_location = kFailsafeLocation;
        r.rule_description = kFailsafeDescription;
    } else if (ev.rule_id != 0) {
        if (const policy::RuleSource* s = p.source(ev.rule_id)) {
            r.policy = s->policy;
            r.rule_location = s->loc.file + ":" + std::to_string(s->loc.line);
            r.rule_description = s->description;
        }
    }

    r.cgroup_id = ev.cgroup_id;
    const WorkloadNames& names = *names_->names;
    if (auto it = names.find(ev.cgroup_id); ev.cgroup_id != 0 && it != names.end()) {
        r.workload = it->second;
    } else {
        // Not in the map (or at XDP): the local side's identity names the workload.
        r.workload = r.direction == Direction::Egress ? r.src.name : r.dst.name;
    }
    r.generation = ev.generation;
    r.ifindex = ev.ifindex;
    r.packets = 1;
    r.bytes = ev.pkt_len;
    r.suppressed = ev.suppressed;
    r.proven = (ev.flags & ZTSEG_EVF_PROVEN) != 0;
    if (ev.kind == ZTSEG_EVENT_SUMMARY) {
        r.summary = true;
        r.packets = ev.suppressed;
        r.window_start = clock.wallTime(ev.window_start_ns);
        r.distinct_dst_ports = summaryPorts(ev.port_bits);
    }
    return r;
}

// The same decisions as enrich() + appendOcsfLine(FlowRecord), on the
// pre-escaped text; tests check the two agree byte for byte.
void EnrichView::appendOcsfLine(const ztseg_flow_event& ev, const EventClock& clock,
                                TextBuffer& out) const {
    const int family = ev.family == 6 ? 6 : 4;
    AddressText src_ip, dst_ip;
    formatAddress(family, ev.saddr, src_ip);
    formatAddress(family, ev.daddr, dst_ip);
    const PolicyText::Identity& src = policy_->identity(ev.src_identity);
    const PolicyText::Identity& dst = policy_->identity(ev.dst_identity);
    const bool egress = ev.direction == ZTSEG_DIR_EGRESS;
    const bool ports = hasPorts(ev.proto);

    OcsfLineParts p;
    p.time_ms = clock.wallNanos(ev.ts_ns) / 1'000'000;
    p.host = host_json_;
    // Datapath names are plain words: nothing to escape.
    p.verdict = verdictName(ev.verdict);
    p.reason = reasonName(ev.reason);
    p.hook = hookName(ev.hook);
    p.protocol_name = protocolNamesJson()[ev.proto];
    p.verdict_kind = ev.verdict == ZTSEG_VERDICT_DROPPED      ? OcsfVerdict::Dropped
                     : ev.verdict == ZTSEG_VERDICT_WOULD_DROP ? OcsfVerdict::WouldDrop
                                                              : OcsfVerdict::Allowed;
    p.established =
        ev.reason == ZTSEG_REASON_ALLOW_CONNTRACK || ev.reason == ZTSEG_REASON_ALLOW_RELATED;
    p.inbound = !egress;
    p.family = family;
    p.protocol = ev.proto;
    p.src = {.ip = src_ip.view(),
             .port = ports ? ev.sport : uint16_t(0),
             .identity = ev.src_identity,
             .name = src.name_json,
             .labels_json = src.labels_json,
             .workload = src.workload};
    p.dst = {.ip = dst_ip.view(),
             .port = ports ? ev.dport : uint16_t(0),
             .identity = ev.dst_identity,
             .name = dst.name_json,
             .labels_json = dst.labels_json,
             .workload = dst.workload};
    p.rule_id = ev.rule_id;
    if (ev.reason == ZTSEG_REASON_ALLOW_FAILSAFE) {
        p.rule_policy = kFailsafePolicy;  // plain words: nothing to escape
        p.rule_location = kFailsafeLocation;
        p.rule_description = kFailsafeDescription;
    } else if (ev.rule_id != 0) {
        if (auto it = policy_->rules.find(ev.rule_id); it != policy_->rules.end()) {
            p.rule_policy = it->second.policy_json;
            p.rule_location = it->second.location_json;
            p.rule_description = it->second.description_json;
        }
    }
    auto wl = ev.cgroup_id != 0 ? names_->workloads_json.find(ev.cgroup_id)
                                : names_->workloads_json.end();
    if (wl != names_->workloads_json.end()) {
        p.workload = wl->second;
    } else {
        p.workload = egress ? src.name_json : dst.name_json;
    }
    p.cgroup_id = ev.cgroup_id;
    p.generation = ev.generation;
    p.ifindex = ev.ifindex;
    p.packets = 1;
    p.bytes = ev.pkt_len;
    p.suppressed = ev.suppressed;
    p.proven = (ev.flags & ZTSEG_EVF_PROVEN) != 0;
    if (ev.kind == ZTSEG_EVENT_SUMMARY) {
        p.summary = true;
        p.packets = ev.suppressed;
        p.window_start_ms = clock.wallNanos(ev.window_start_ns) / 1'000'000;
        p.distinct_dst_ports = summaryPorts(ev.port_bits);
    }
    if (isIcmp(ev.proto)) {
        p.icmp_type = ev.icmp_type;
        p.icmp_code = ev.icmp_code;
    }
    ::ztseg::flows::appendOcsfLine(p, out);
}

uint32_t summaryPorts(uint32_t bits_set) {
    constexpr double m = ZTSEG_SRCLIMIT_PORT_BITS;
    if (bits_set >= ZTSEG_SRCLIMIT_PORT_BITS) {
        return uint32_t(std::lround(m * std::log(m)));
    }
    return uint32_t(std::lround(-m * std::log1p(-double(bits_set) / m)));
}

Enricher::Enricher(const policy::CompiledPolicy& policy, std::string host, WorkloadNames names)
    : Enricher(std::make_shared<const policy::CompiledPolicy>(policy), std::move(host),
               std::move(names)) {}

Enricher::Enricher(std::shared_ptr<const policy::CompiledPolicy> policy, std::string host,
                   WorkloadNames names)
    : host_(std::move(host)),
      names_(EnrichView::makeNamesText(std::make_shared<const WorkloadNames>(std::move(names)))) {
    setPolicy(std::move(policy));
}

void Enricher::setPolicy(std::shared_ptr<const policy::CompiledPolicy> policy) {
    std::lock_guard update(update_mu_);
    install(EnrichView::makePolicyText(std::move(policy)), names_);  // throws on null
}

void Enricher::setWorkloadNames(WorkloadNames names) {
    std::lock_guard update(update_mu_);
    install(policy_,
            EnrichView::makeNamesText(std::make_shared<const WorkloadNames>(std::move(names))));
}

// Under update_mu_: the only place policy_ and names_ change.
void Enricher::install(std::shared_ptr<const EnrichView::PolicyText> policy,
                       std::shared_ptr<const EnrichView::NamesText> names) {
    auto view = std::make_shared<const EnrichView>(policy, names, host_);
    std::lock_guard lock(mu_);
    policy_ = std::move(policy);
    names_ = std::move(names);
    view_ = std::move(view);
}

std::shared_ptr<const policy::CompiledPolicy> Enricher::policy() const {
    std::lock_guard lock(mu_);
    return policy_->policy;
}

std::shared_ptr<const EnrichView> Enricher::view() const {
    std::lock_guard lock(mu_);
    return view_;
}

FlowRecord Enricher::enrich(const ztseg_flow_event& ev) const {
    return view()->enrich(ev, EventClock());
}

}  // namespace ztseg::flows
