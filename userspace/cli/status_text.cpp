#include "cli/status_text.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <memory>

#include "common/error.hpp"
#include "common/unix_time.hpp"

namespace ztseg::cli {

std::string statusTable(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> w;
    for (const auto& r : rows) {
        w.resize(std::max(w.size(), r.size()), 0);
        for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
    }
    std::string out;
    for (const auto& r : rows) {
        std::string line = " ";
        for (size_t i = 0; i < r.size(); ++i) {
            line += " " + r[i] + (i + 1 < r.size() ? std::string(w[i] - r[i].size() + 1, ' ') : "");
        }
        out += line + "\n";
    }
    return out;
}

namespace {

std::string utcTime(int64_t unix_ms) {
    std::time_t t = std::time_t(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// Apply with a confirm window: what awaits confirmation, the last automatic rollback.
std::string confirmText(const v1::StatusReply& st) {
    std::string out;
    if (st.has_confirm_pending()) {
        const auto& p = st.confirm_pending();
        const int64_t now = unixMillis();
        const int64_t left = std::max<int64_t>(0, p.deadline_unix_ms() - now);
        out += "confirm pending: generation " + std::to_string(p.generation()) + " rolls back to " +
               std::to_string(p.return_to()) + " in " + std::to_string((left + 999) / 1000) +
               "s (at " + utcTime(p.deadline_unix_ms()) + ") unless confirmed: ztsegctl confirm\n";
    }
    if (st.has_last_auto_rollback()) {
        const auto& r = st.last_auto_rollback();
        out += "last automatic rollback: " + utcTime(r.at_unix_ms()) + ": " + r.reason() + "\n";
    }
    return out;
}

}  // namespace

std::string statusText(const v1::StatusReply& st) {
    std::string out = "host " + st.host() + ": ";
    out += st.generation() == 0 ? "no policy applied"
                                : "policy generation " + std::to_string(st.generation());
    // ztsegd can roll back only to a generation it applied itself (it holds that policy).
    out += st.previous_generation() != 0
               ? " (rollback goes to " + std::to_string(st.previous_generation()) + ")\n"
           : st.generation() == 0 ? "\n"
                                  : " (no previous generation since this ztsegd started)\n";
    if (!st.version().empty()) {
        out += "ztsegd " + st.version() + " (commit " + st.commit() + ")\n";
    }
    if (st.highest_generation() != 0) {
        out += "rollback protection: bundles up to generation " +
               std::to_string(st.highest_generation()) + " are refused\n";
    }
    if (!st.raw_sockets().empty()) {
        out += "raw sockets of enforced workloads: " + st.raw_sockets() + "\n";
    }
    if (st.has_wire_proof()) {
        const v1::WireProofStatus& w = st.wire_proof();
        out += w.peers() == 0 ? "proven identity on the wire: off (no peers from the controller)"
                              : "proven identity on the wire: key epoch " +
                                    std::to_string(w.epoch()) + ", " + std::to_string(w.peers()) +
                                    " peer hosts (" + std::to_string(w.addresses()) + " prefixes)";
        out += w.error().empty() ? "\n" : "; last key push REFUSED: " + w.error() + "\n";
    }
    out += confirmText(st);

    out += "\ninterfaces (XDP/tcx): " + std::to_string(st.interfaces_size()) + "\n";
    if (st.interfaces_size() > 0) {
        std::vector<std::vector<std::string>> rows{{"NAME", "MODE"}};
        for (const auto& i : st.interfaces()) rows.push_back({i.name(), i.mode()});
        out += statusTable(rows);
    }

    if (st.failsafe_disabled()) {
        out +=
            "\nfailsafe rules: DISABLED (failsafe.enabled: false): a host policy can cut "
            "every path to this host\n";
    } else if (st.failsafe_size() > 0) {  // (none from a ztsegd that predates them)
        out += "\nfailsafe rules (admitted whatever the host policy says): " +
               std::to_string(st.failsafe_size()) + "\n";
        {
            std::vector<std::vector<std::string>> rows{
                {"NAME", "DIRECTION", "PROTO/PORT", "PEER", "FROM"}};
            for (const auto& f : st.failsafe()) {
                rows.push_back({f.name(), f.direction(),
                                f.protocol() + "/" + std::to_string(f.port()), f.peer(),
                                f.origin()});
            }
            out += statusTable(rows);
        }
    }

    out += "\nworkloads: " + std::to_string(st.endpoints_size()) + " local cgroups\n";
    if (st.endpoints_size() > 0) {
        std::vector<std::vector<std::string>> rows{
            {"WORKLOAD", "IDENTITY", "MODE", "CGROUP", "CGROUP ID"}};
        for (const auto& e : st.endpoints()) {
            rows.push_back({e.name(), std::to_string(e.identity()), e.mode(), e.cgroup_path(),
                            std::to_string(e.cgroup_id())});
        }
        out += statusTable(rows);
    }

    out += "\ncounters (packets since the datapath was loaded):\n";
    if (st.counters_size() == 0) {
        out += "  none yet\n";
    } else {
        std::vector<std::vector<std::string>> rows{{"HOOK", "REASON", "PACKETS", "BYTES"}};
        for (const auto& c : st.counters()) {
            rows.push_back(
                {c.hook(), c.reason(), std::to_string(c.packets()), std::to_string(c.bytes())});
        }
        out += statusTable(rows);
    }

    std::map<std::string, uint64_t> lost(st.events_lost().begin(), st.events_lost().end());
    uint64_t total = 0;
    std::string stages;
    for (const auto& [stage, n] : lost) {
        total += n;
        if (n)
            stages += (stages.empty() ? "" : ", ") + stage + " " + std::to_string(n);
    }
    out += "\nflow events: " + std::to_string(st.events_emitted()) + " emitted, " +
           std::to_string(total) + " lost" + (stages.empty() ? "" : " (" + stages + ")") + "\n";
    return out;
}

std::string protoJson(const google::protobuf::Message& m, bool pretty) {
    // Deterministic binary (sorted map keys), then binary -> JSON, which
    // keeps the wire order: the printer alone follows hash-map order.
    std::string binary;
    {
        google::protobuf::io::StringOutputStream raw(&binary);
        google::protobuf::io::CodedOutputStream coded(&raw);
        coded.SetSerializationDeterministic(true);
        if (!m.SerializeToCodedStream(&coded)) {
            throw Error("render " + m.GetTypeName() + " as JSON: cannot serialize it");
        }
    }
    static const std::unique_ptr<google::protobuf::util::TypeResolver> resolver(
        google::protobuf::util::NewTypeResolverForDescriptorPool(
            "type.googleapis.com", google::protobuf::DescriptorPool::generated_pool()));
    google::protobuf::util::JsonPrintOptions o;
    o.add_whitespace = pretty;
    o.always_print_primitive_fields = pretty;
    o.preserve_proto_field_names = true;
    std::string out;
    auto st = google::protobuf::util::BinaryToJsonString(
        resolver.get(), "type.googleapis.com/" + m.GetTypeName(), binary, &out, o);
    if (!st.ok()) {
        throw Error("render " + m.GetTypeName() + " as JSON: " + std::string(st.message()));
    }
    return out;
}

std::string statusJson(const v1::StatusReply& st) {
    return protoJson(st, true);
}

}  // namespace ztseg::cli
