#include "shared/flow_stream.hpp"

#include "common/error.hpp"
#include "flows/filter.hpp"
#include "flows/ocsf.hpp"

namespace ztseg {
namespace {

void fillEndpoint(const flows::FlowEndpoint& in, v1::FlowEndpoint* out) {
    out->set_ip(in.ip);
    out->set_port(in.port);
    out->set_identity(in.identity);
    out->mutable_labels()->insert(in.labels.begin(), in.labels.end());
    out->set_name(in.name);
    out->set_workload(in.workload);
}

flows::FlowEndpoint endpointOf(const v1::FlowEndpoint& in) {
    flows::FlowEndpoint out;
    out.ip = in.ip();
    out.port = uint16_t(in.port());
    out.identity = in.identity();
    out.labels.insert(in.labels().begin(), in.labels().end());
    out.name = in.name();
    out.workload = in.workload();
    return out;
}

grpc::Status invalidArgument(const std::exception& e) {
    return grpc::Status(dynamic_cast<const Error*>(&e) != nullptr
                            ? grpc::StatusCode::INVALID_ARGUMENT
                            : grpc::StatusCode::INTERNAL,
                        e.what());
}

}  // namespace

v1::FlowEvent toFlowEvent(const flows::FlowRecord& r) {
    v1::FlowEvent e;
    e.set_time_unix_nanos(
        std::chrono::duration_cast<std::chrono::nanoseconds>(r.time.time_since_epoch()).count());
    e.set_host(r.host);
    e.set_verdict(r.verdict);
    e.set_reason(r.reason);
    e.set_hook(r.hook);
    e.set_direction(r.direction == Direction::Ingress ? "ingress" : "egress");
    e.set_family(uint32_t(r.family));
    e.set_protocol(r.protocol);
    e.set_protocol_name(r.protocol_name);
    fillEndpoint(r.src, e.mutable_src());
    fillEndpoint(r.dst, e.mutable_dst());
    e.set_rule_id(r.rule_id);
    e.set_policy(r.policy);
    e.set_rule_location(r.rule_location);
    e.set_rule_description(r.rule_description);
    e.set_workload(r.workload);
    e.set_cgroup_id(r.cgroup_id);
    e.set_generation(r.generation);
    e.set_ifindex(r.ifindex);
    e.set_packets(r.packets);
    e.set_bytes(r.bytes);
    e.set_suppressed(r.suppressed);
    e.set_summary(r.summary);
    e.set_window_start_unix_nanos(
        std::chrono::duration_cast<std::chrono::nanoseconds>(r.window_start.time_since_epoch())
            .count());
    e.set_distinct_dst_ports(r.distinct_dst_ports);
    e.set_icmp_type(r.icmp_type);
    e.set_icmp_code(r.icmp_code);
    e.set_ocsf_json(flows::toOcsfLine(r));
    return e;
}

flows::FlowRecord fromFlowEvent(const v1::FlowEvent& e) {
    flows::FlowRecord r;
    r.time = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(e.time_unix_nanos())));
    r.host = e.host();
    r.verdict = e.verdict();
    r.reason = e.reason();
    r.hook = e.hook();
    r.direction = e.direction() == "egress" ? Direction::Egress : Direction::Ingress;
    r.family = e.family() == 6 ? 6 : 4;  // FlowRecord holds 4 or 6
    r.protocol = uint8_t(e.protocol());
    r.protocol_name = e.protocol_name();
    r.src = endpointOf(e.src());
    r.dst = endpointOf(e.dst());
    r.rule_id = e.rule_id();
    r.policy = e.policy();
    r.rule_location = e.rule_location();
    r.rule_description = e.rule_description();
    r.workload = e.workload();
    r.cgroup_id = e.cgroup_id();
    r.generation = e.generation();
    r.ifindex = e.ifindex();
    r.packets = e.packets();
    r.bytes = e.bytes();
    r.suppressed = e.suppressed();
    r.summary = e.summary();
    r.window_start = std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(e.window_start_unix_nanos())));
    r.distinct_dst_ports = e.distinct_dst_ports();
    r.icmp_type = uint8_t(e.icmp_type());
    r.icmp_code = uint8_t(e.icmp_code());
    return r;
}

flows::FlowFilter filterOf(const v1::FlowsRequest& req) {
    flows::FlowFilter f;
    for (const auto& v : req.verdict()) f.verdicts.insert(flows::FlowFilter::parseVerdict(v));
    for (const auto& v : req.from_label())
        f.from_labels.push_back(flows::FlowFilter::parseSelector(v));
    for (const auto& v : req.to_label()) f.to_labels.push_back(flows::FlowFilter::parseSelector(v));
    for (const auto& v : req.from_ip()) f.from_ip.push_back(flows::FlowFilter::parseCidr(v));
    for (const auto& v : req.to_ip()) f.to_ip.push_back(flows::FlowFilter::parseCidr(v));
    for (uint32_t p : req.port())
        f.to_ports.insert(flows::FlowFilter::parsePort(std::to_string(p)));
    for (const auto& v : req.protocol()) f.protocols.insert(flows::FlowFilter::parseProtocol(v));
    return f;
}

grpc::Status serveFlows(grpc::ServerContext* ctx, const v1::FlowsRequest& req,
                        grpc::ServerWriter<v1::FlowEvent>* writer, FlowHub& hub) {
    flows::FlowFilter filter;
    try {
        filter = filterOf(req);
    } catch (const std::exception& e) {
        return invalidArgument(e);
    }
    if (!req.follow()) {
        for (const auto& r : hub.recent()) {
            if (filter.matches(r) && !writer->Write(toFlowEvent(r))) {
                break;
            }
        }
        return grpc::Status::OK;
    }
    auto sub = hub.subscribe(/*with_history=*/true);
    while (!ctx->IsCancelled()) {
        auto r = hub.next(*sub, std::chrono::milliseconds(250));
        if (!r) {
            if (hub.closed()) {
                break;
            }
            continue;
        }
        if (filter.matches(*r) && !writer->Write(toFlowEvent(*r))) {
            break;
        }
    }
    hub.unsubscribe(sub);
    return grpc::Status::OK;
}

}  // namespace ztseg
