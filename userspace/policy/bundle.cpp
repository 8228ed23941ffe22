#include "policy/bundle.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <map>
#include <set>

#include "bundle.pb.h"

namespace ztseg::policy {
namespace {

constexpr const char* kCompilerVersion = "ztseg 0.1.0";
constexpr size_t kMaxBundleBytes = 512u << 20;

void toProto(const IpPrefix& p, v1::Prefix* out) {
    out->set_addr(
        std::string(reinterpret_cast<const char*>(p.addr.data()), p.family == 4 ? 4 : 16));
    out->set_length(p.length);
}

IpPrefix fromProto(const v1::Prefix& p, const std::string& where) {
    IpPrefix out;
    if (p.addr().size() != 4 && p.addr().size() != 16) {
        throw Error("bundle: " + where + ": address of " + std::to_string(p.addr().size()) +
                    " bytes (expected 4 or 16)");
    }
    out.family = p.addr().size() == 4 ? 4 : 6;
    std::copy(p.addr().begin(), p.addr().end(), out.addr.begin());
    if (p.length() > out.maxLength()) {
        throw Error("bundle: " + where + ": prefix length " + std::to_string(p.length()));
    }
    out.length = uint8_t(p.length());
    return IpPrefix::parse(out.str());  // normalises host bits
}

void toProto(const SourceLocation& l, v1::SourceLocation* out) {
    out->set_file(l.file);
    out->set_line(uint32_t(l.line));
    out->set_column(uint32_t(l.column));
}

v1::Mode toProto(WorkloadMode m) {
    switch (m) {
        case WorkloadMode::Enforce:
            return v1::MODE_ENFORCE;
        case WorkloadMode::Audit:
            return v1::MODE_AUDIT;
        default:
            return v1::MODE_UNMANAGED;
    }
}

WorkloadMode fromProto(v1::Mode m) {
    switch (m) {
        case v1::MODE_ENFORCE:
            return WorkloadMode::Enforce;
        case v1::MODE_AUDIT:
            return WorkloadMode::Audit;
        default:
            return WorkloadMode::Unmanaged;
    }
}

Direction direction(v1::Direction d, const std::string& where) {
    if (d == v1::DIRECTION_INGRESS)
        return Direction::Ingress;
    if (d == v1::DIRECTION_EGRESS)
        return Direction::Egress;
    throw Error("bundle: " + where + ": invalid direction");
}

Action action(v1::Action a, const std::string& where) {
    if (a == v1::ACTION_ALLOW)
        return Action::Allow;
    if (a == v1::ACTION_DENY)
        return Action::Deny;
    throw Error("bundle: " + where + ": invalid action");
}

}  // namespace

std::string deterministicBytes(const google::protobuf::MessageLite& m) {
    std::string out;
    {
        google::protobuf::io::StringOutputStream sos(&out);
        google::protobuf::io::CodedOutputStream cos(&sos);
        cos.SetSerializationDeterministic(true);
        m.SerializeToCodedStream(&cos);
    }
    return out;
}

std::string serializeBundle(const CompiledPolicy& cp, const BundleMeta& meta) {
    v1::Bundle b;
    b.set_generation(cp.generation);
    b.set_fleet(meta.fleet);
    b.set_not_after_unix(meta.not_after_unix);
    b.set_compiler_version(kCompilerVersion);
    b.set_source_digest(cp.source_digest);
    for (const auto& f : cp.files) {
        b.add_source_files(f);
    }
    for (const auto& id : cp.identities) {
        auto* o = b.add_identities();
        o->set_id(id.id);
        o->set_kind(v1::IdentityKind(int(id.kind) + 1));
        for (const auto& [k, v] : id.labels) {
            auto* l = o->add_labels();
            l->set_key(k);
            l->set_value(v);
        }
        for (const auto& n : id.names) {
            o->add_names(n);
        }
    }
    for (const auto& e : cp.inventory) {
        auto* o = b.add_inventory();
        toProto(e.prefix, o->mutable_prefix());
        o->set_identity(e.identity);
    }
    for (const auto& w : cp.workloads) {
        auto* o = b.add_workloads();
        o->set_name(w.name);
        o->set_identity(w.identity);
        o->set_cgroup(w.cgroup);
        o->set_systemd_unit(w.systemd_unit);
        o->set_mode(toProto(w.mode));
        o->set_raw_sockets(w.raw_sockets);
    }
    if (auto host = cp.modes.find(kHostIdentity); host != cp.modes.end()) {
        b.set_host_mode(toProto(host->second));
    }
    for (const auto& r : cp.rules) {
        auto* o = b.add_rules();
        o->set_local(r.local);
        o->set_peer(r.peer);
        o->set_direction(v1::Direction(int(r.direction)));
        o->set_protocol(r.protocol);
        o->set_port_first(r.ports.first);
        o->set_port_last(r.ports.last);
        o->set_action(v1::Action(int(r.action)));
        o->set_rule_id(r.rule_id);
    }
    for (const auto& s : cp.sources) {
        auto* o = b.add_rule_sources();
        o->set_rule_id(s.rule_id);
        o->set_policy(s.policy);
        o->set_direction(v1::Direction(int(s.direction)));
        o->set_action(v1::Action(int(s.action)));
        toProto(s.loc, o->mutable_location());
        o->set_description(s.description);
        o->set_fingerprint(s.fingerprint);
    }
    return deterministicBytes(b);
}

CompiledPolicy parseBundle(const std::string& bytes, BundleMeta* meta) {
    if (bytes.size() > kMaxBundleBytes) {
        throw Error("bundle: " + std::to_string(bytes.size()) + " bytes exceeds the " +
                    std::to_string(kMaxBundleBytes) + "-byte limit");
    }
    v1::Bundle b;
    if (!b.ParseFromString(bytes)) {
        throw Error("bundle: not a valid ztseg bundle (protobuf parse failed, " +
                    std::to_string(bytes.size()) + " bytes)");
    }
    if (b.generation() == 0) {
        throw Error("bundle: generation 0 is invalid (generations start at 1)");
    }
    // compiler_version is the last field written: a bundle cut short at a
    // field boundary still parses, but lacks it.
    if (b.compiler_version().empty()) {
        throw Error("bundle: incomplete (no compiler_version; truncated?)");
    }
    CompiledPolicy cp;
    cp.generation = b.generation();
    cp.source_digest = b.source_digest();
    cp.files.assign(b.source_files().begin(), b.source_files().end());
    // Exact sizes: grown by doubling, these vectors would hold up to twice
    // what a 100k-rule policy needs for as long as it is in force.
    cp.identities.reserve(size_t(b.identities_size()));
    cp.inventory.reserve(size_t(b.inventory_size()));
    cp.workloads.reserve(size_t(b.workloads_size()));
    cp.rules.reserve(size_t(b.rules_size()));
    cp.sources.reserve(size_t(b.rule_sources_size()));
    std::set<IdentityId> ids;
    for (const auto& o : b.identities()) {
        if (o.id() == kUnlabeled || o.id() == kAnyIdentity || !ids.insert(o.id()).second) {
            throw Error("bundle: identity " + std::to_string(o.id()) +
                        " is reserved or listed twice");
        }
        if (o.kind() < v1::IDENTITY_KIND_RESERVED || o.kind() > v1::IDENTITY_KIND_CIDR) {
            throw Error("bundle: identity " + std::to_string(o.id()) + " has no valid kind");
        }
        IdentityInfo info;
        info.id = o.id();
        info.kind = IdentityKind(int(o.kind()) - 1);
        for (const auto& l : o.labels()) {
            info.labels[l.key()] = l.value();
        }
        info.names.assign(o.names().begin(), o.names().end());
        cp.identities.push_back(std::move(info));
    }
    std::sort(cp.identities.begin(), cp.identities.end(),
              [](const IdentityInfo& a, const IdentityInfo& c) { return a.id < c.id; });
    auto known = [&](IdentityId id, const std::string& where) {
        if (!ids.count(id)) {
            throw Error("bundle: " + where + " names unknown identity " + std::to_string(id));
        }
    };
    for (int i = 0; i < b.inventory_size(); ++i) {
        const auto& o = b.inventory(i);
        std::string where = "inventory entry " + std::to_string(i);
        known(o.identity(), where);
        IdentityPrefix ip{fromProto(o.prefix(), where), o.identity()};
        cp.inventory.push_back(ip);
    }
    std::map<IdentityId, IdentityInfo*> by_id;
    for (auto& info : cp.identities) {
        by_id[info.id] = &info;
    }
    for (const auto& ip : cp.inventory) {
        by_id.at(ip.identity)->prefixes.push_back(ip.prefix);
    }
    for (const auto& o : b.workloads()) {
        known(o.identity(), "workload '" + o.name() + "'");
        WorkloadMode m = fromProto(o.mode());
        // Raw sockets mean something only to a managed workload.
        bool raw = o.raw_sockets() && m != WorkloadMode::Unmanaged;
        cp.workloads.push_back({o.name(), o.identity(), o.cgroup(), o.systemd_unit(), m, raw});
        if (m != WorkloadMode::Unmanaged) {
            cp.modes[o.identity()] = m;
        }
        if (raw) {
            cp.raw_sockets.insert(o.identity());
        }
    }
    if (!v1::Mode_IsValid(b.host_mode())) {  // never read a mode we do not know as "unmanaged"
        throw Error("bundle: unknown host_mode " + std::to_string(int(b.host_mode())));
    }
    if (WorkloadMode m = fromProto(b.host_mode()); m != WorkloadMode::Unmanaged) {
        known(kHostIdentity, "host_mode");
        cp.modes[kHostIdentity] = m;
    }
    for (int i = 0; i < b.rules_size(); ++i) {
        const auto& o = b.rules(i);
        std::string where = "rule entry " + std::to_string(i);
        known(o.local(), where);
        if (o.peer() != kAnyIdentity) {
            known(o.peer(), where);
        }
        if (o.protocol() > 255 || o.port_first() > 65535 || o.port_last() > 65535 ||
            o.port_first() > o.port_last()) {
            throw Error("bundle: " + where + ": invalid protocol or port range");
        }
        cp.rules.push_back({o.local(),
                            o.peer(),
                            direction(o.direction(), where),
                            uint8_t(o.protocol()),
                            {uint16_t(o.port_first()), uint16_t(o.port_last())},
                            action(o.action(), where),
                            o.rule_id()});
    }
    for (const auto& o : b.rule_sources()) {
        std::string where = "rule source " + std::to_string(o.rule_id());
        cp.sources.push_back(
            {o.rule_id(),
             o.policy(),
             direction(o.direction(), where),
             action(o.action(), where),
             {o.location().file(), int(o.location().line()), int(o.location().column())},
             o.description(),
             o.fingerprint()});
    }
    std::sort(cp.sources.begin(), cp.sources.end(),
              [](const RuleSource& a, const RuleSource& c) { return a.rule_id < c.rule_id; });
    if (meta) {
        meta->fleet = b.fleet();
        meta->not_after_unix = b.not_after_unix();
        meta->compiler_version = b.compiler_version();
    }
    return cp;
}

}  // namespace ztseg::policy
