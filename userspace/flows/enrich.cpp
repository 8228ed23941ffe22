#include "flows/enrich.hpp"

#include <utility>

#include "common/error.hpp"
#include "datapath/event_reader.hpp"
#include "datapath/ip_prefix.hpp"
#include "datapath/names.hpp"
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
        if (ep.name.empty() && info->kind == policy::IdentityKind::Reserved) {
            auto it = info->labels.find(policy::kReservedLabel);
            if (it != info->labels.end()) {
                ep.name = it->second;
            }
        }
        return;
    }
    switch (id) {
        case kUnlabeled:
            ep.name = "unlabeled";
            break;
        case kHostIdentity:
            ep.name = "host";
            break;
        case kWorldIdentity:
            ep.name = "world";
            break;
        default:
            break;
    }
}

bool hasPorts(uint8_t proto) {
    return proto == ZTSEG_PROTO_TCP || proto == ZTSEG_PROTO_UDP || proto == ZTSEG_PROTO_SCTP;
}

}  // namespace

Enricher::Enricher(const policy::CompiledPolicy& policy, std::string host, WorkloadNames names)
    : Enricher(std::make_shared<const policy::CompiledPolicy>(policy), std::move(host),
               std::move(names)) {}

Enricher::Enricher(std::shared_ptr<const policy::CompiledPolicy> policy, std::string host,
                   WorkloadNames names)
    : host_(std::move(host)), names_(std::make_shared<const WorkloadNames>(std::move(names))) {
    setPolicy(std::move(policy));
}

void Enricher::setPolicy(std::shared_ptr<const policy::CompiledPolicy> policy) {
    if (!policy) {
        throw Error("flow enricher: set policy: policy is null");
    }
    std::lock_guard lock(mu_);
    policy_ = std::move(policy);
}

void Enricher::setWorkloadNames(WorkloadNames names) {
    auto p = std::make_shared<const WorkloadNames>(std::move(names));
    std::lock_guard lock(mu_);
    names_ = std::move(p);
}

std::shared_ptr<const policy::CompiledPolicy> Enricher::policy() const {
    std::lock_guard lock(mu_);
    return policy_;
}

FlowRecord Enricher::enrich(const ztseg_flow_event& ev) const {
    std::shared_ptr<const policy::CompiledPolicy> p;
    std::shared_ptr<const WorkloadNames> names;
    {
        std::lock_guard lock(mu_);
        p = policy_;
        names = names_;
    }

    FlowRecord r;
    r.time = eventWallTime(ev.ts_ns);
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
    if (ev.proto == ZTSEG_PROTO_ICMP || ev.proto == ZTSEG_PROTO_ICMPV6) {
        r.icmp_type = ev.icmp_type;
        r.icmp_code = ev.icmp_code;
    }
    resolveIdentity(*p, ev.src_identity, r.src);
    resolveIdentity(*p, ev.dst_identity, r.dst);

    r.rule_id = ev.rule_id;
    if (ev.rule_id != 0) {
        if (const policy::RuleSource* s = p->source(ev.rule_id)) {
            r.policy = s->policy;
            r.rule_location = s->loc.file + ":" + std::to_string(s->loc.line);
            r.rule_description = s->description;
        }
    }

    r.cgroup_id = ev.cgroup_id;
    if (auto it = names->find(ev.cgroup_id); ev.cgroup_id != 0 && it != names->end()) {
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
    return r;
}

}  // namespace ztseg::flows
