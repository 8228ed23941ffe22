#include "policy/parser.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/file.hpp"
#include "common/yaml_doc.hpp"

namespace fs = std::filesystem;

namespace ztseg::policy {
namespace {

const std::map<std::string, uint8_t> kProtocols = {
    {"tcp", ZTSEG_PROTO_TCP},         {"udp", ZTSEG_PROTO_UDP},   {"icmp", ZTSEG_PROTO_ICMP},
    {"icmpv6", ZTSEG_PROTO_ICMPV6},   {"sctp", ZTSEG_PROTO_SCTP}, {"any", ZTSEG_PROTO_ANY},
    {"udplite", ZTSEG_PROTO_UDPLITE}, {"dccp", ZTSEG_PROTO_DCCP},
};

// Label keys and values: what Kubernetes users can write, minus our reserved prefix.
bool validLabelText(const std::string& s, bool key) {
    if (key ? (s.empty() || s.size() > 253) : s.size() > 63) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [key](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
               (key && c == '/');
    });
}

std::string hexDigest(const std::vector<SourceText>& sources) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    for (const auto& s : sources) {
        // length-prefixed so ("ab","c") and ("a","bc") differ
        std::string head = std::to_string(s.name.size()) + ":" + s.name + ":" +
                           std::to_string(s.text.size()) + ":";
        EVP_DigestUpdate(ctx, head.data(), head.size());
        EVP_DigestUpdate(ctx, s.text.data(), s.text.size());
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += kHex[md[i] >> 4];
        out += kHex[md[i] & 15];
    }
    return out;
}

// Reads one document, reporting every problem with its location.
class DocReader {
  public:
    DocReader(std::string file, Diagnostics& diags) : file_(std::move(file)), diags_(diags) {}

    void read(const yaml::Node& root, PolicySet& out) {
        if (root.isNull()) {
            return;  // an empty file is fine
        }
        if (!mapping(root, "a policy document")) {
            return;
        }
        keys(root, "policy document", {"workloads", "externals", "hosts", "policies"});
        if (const yaml::Node* n_ptr = root.get("workloads")) {
            const yaml::Node& n = *n_ptr;
            for (const yaml::Node& w : list(n, "workloads")) {
                workload(w, out);
            }
        }
        if (const yaml::Node* n_ptr = root.get("externals")) {
            const yaml::Node& n = *n_ptr;
            for (const yaml::Node& e : list(n, "externals")) {
                external(e, out);
            }
        }
        if (const yaml::Node* n_ptr = root.get("hosts")) {
            const yaml::Node& n = *n_ptr;
            for (const yaml::Node& h : list(n, "hosts")) {
                if (auto p = prefix(h, "host address")) {
                    out.hosts.push_back(*p);
                    out.host_locations.push_back(loc(h));
                }
            }
        }
        if (const yaml::Node* n_ptr = root.get("policies")) {
            const yaml::Node& n = *n_ptr;
            for (const yaml::Node& p : list(n, "policies")) {
                policy(p, out);
            }
        }
    }

  private:
    SourceLocation loc(const yaml::Node& n) const {
        return {file_, n.mark().line, n.mark().column};
    }
    void error(const yaml::Node& n, const std::string& msg) { diags_.error(loc(n), msg); }

    bool mapping(const yaml::Node& n, const std::string& what) {
        if (!n.isMap()) {
            error(n, "expected " + what + " (a mapping)");
            return false;
        }
        return true;
    }

    std::vector<std::reference_wrapper<const yaml::Node>> list(const yaml::Node& n,
                                                               const std::string& what) {
        std::vector<std::reference_wrapper<const yaml::Node>> out;
        if (n.isNull()) {
            return out;
        }
        if (!n.isSequence()) {
            error(n, "expected '" + what + "' to be a list");
            return out;
        }
        for (const auto& item : n.items()) {
            out.push_back(std::cref(item));
        }
        return out;
    }

    // Unknown and repeated fields are errors: a typo must never silently
    // drop a rule, and a repeated key must not pick a winner behind the user's back.
    void keys(const yaml::Node& n, const std::string& what, std::set<std::string> allowed) {
        std::map<std::string, SourceLocation> seen;
        for (const auto& [key, value] : n.entries()) {
            std::string k = key.isScalar() ? key.scalar() : "?";
            if (auto [it, fresh] = seen.emplace(k, loc(key)); !fresh) {
                error(key, "duplicate field '" + k + "' in " + what + " (first at " +
                               it->second.str() + ")");
            } else if (!allowed.count(k)) {
                std::string list;
                for (const auto& a : allowed) {
                    list += (list.empty() ? "" : ", ") + a;
                }
                error(key,
                      "unknown field '" + k + "' in " + what + " (expected one of: " + list + ")");
            }
        }
    }

    std::optional<std::string> scalar(const yaml::Node& n, const std::string& what) {
        if (!n.isScalar()) {
            error(n, "expected " + what + " to be a single value");
            return std::nullopt;
        }
        return n.scalar();
    }

    std::optional<std::string> requiredString(const yaml::Node& parent, const char* key,
                                              const std::string& what) {
        const yaml::Node* n = parent.get(key);
        if (!n) {
            error(parent, what + " needs '" + key + "'");
            return std::nullopt;
        }
        auto s = scalar(*n, "'" + std::string(key) + "'");
        if (s && s->empty()) {
            error(*n, "'" + std::string(key) + "' must not be empty");
            return std::nullopt;
        }
        return s;
    }

    std::optional<IpPrefix> prefix(const yaml::Node& n, const std::string& what) {
        auto s = scalar(n, what);
        if (!s) {
            return std::nullopt;
        }
        try {
            return IpPrefix::parse(*s);
        } catch (const Error& e) {
            error(n, std::string(e.what()) + ": expected an IPv4/IPv6 address or CIDR");
            return std::nullopt;
        }
    }

    LabelSet labels(const yaml::Node& n, const std::string& what) {
        LabelSet out;
        if (!mapping(n, what + " (key: value pairs)")) {
            return out;
        }
        for (const auto& [key, value] : n.entries()) {
            auto k = scalar(key, "a label key");
            auto v = scalar(value, "a label value");
            if (!k || !v) {
                continue;
            }
            if (!validLabelText(*k, true)) {
                error(key, "invalid label key '" + *k +
                               "': expected letters, digits, '-', '_', '.', '/'");
            } else if (k->rfind("ztseg.io/", 0) == 0) {
                error(key, "label key '" + *k + "' uses the reserved prefix ztseg.io/");
            } else if (!validLabelText(*v, false)) {
                error(value, "invalid label value '" + *v +
                                 "': expected at most 63 letters, digits, '-', '_', '.'");
            } else if (!out.emplace(*k, *v).second) {
                error(key, "duplicate label key '" + *k + "'");
            }
        }
        return out;
    }

    Selector selector(const yaml::Node& n) {
        Selector s;
        if (!mapping(n, "a selector")) {
            return s;
        }
        keys(n, "selector", {"matchLabels", "matchExpressions"});
        if (const yaml::Node* m_ptr = n.get("matchLabels")) {
            const yaml::Node& m = *m_ptr;
            s.match_labels = labels(m, "matchLabels");
        }
        if (const yaml::Node* m_ptr = n.get("matchExpressions")) {
            const yaml::Node& m = *m_ptr;
            for (const yaml::Node& e : list(m, "matchExpressions")) {
                if (!mapping(e, "a match expression")) {
                    continue;
                }
                keys(e, "match expression", {"key", "operator", "values"});
                LabelRequirement r;
                auto key = requiredString(e, "key", "a match expression");
                auto op = requiredString(e, "operator", "a match expression");
                if (!key || !op) {
                    continue;
                }
                if (!validLabelText(*key, true)) {
                    error(*e.get("key"), "invalid label key '" + *key +
                                             "': expected letters, digits, '-', '_', '.', '/'");
                    continue;
                }
                r.key = *key;
                static const std::map<std::string, LabelRequirement::Op> kOps = {
                    {"In", LabelRequirement::Op::In},
                    {"NotIn", LabelRequirement::Op::NotIn},
                    {"Exists", LabelRequirement::Op::Exists},
                    {"DoesNotExist", LabelRequirement::Op::DoesNotExist}};
                auto it = kOps.find(*op);
                if (it == kOps.end()) {
                    error(*e.get("operator"), "unknown operator '" + *op +
                                                  "' (expected In, NotIn, Exists, DoesNotExist)");
                    continue;
                }
                r.op = it->second;
                bool wants_values =
                    r.op == LabelRequirement::Op::In || r.op == LabelRequirement::Op::NotIn;
                if (const yaml::Node* v_ptr = e.get("values")) {
                    const yaml::Node& v = *v_ptr;
                    if (!wants_values) {
                        error(v, "operator " + *op + " takes no values");
                    }
                    for (const yaml::Node& x : list(v, "values")) {
                        auto sx = scalar(x, "a value");
                        if (sx && !validLabelText(*sx, false)) {
                            error(x, "invalid label value '" + *sx +
                                         "': expected at most 63 letters, digits, '-', '_', '.'");
                        } else if (sx) {
                            r.values.push_back(*sx);
                        }
                    }
                    if (wants_values && (v.isNull() || (v.isSequence() && v.items().empty()))) {
                        error(v, "operator " + *op + " needs at least one value");
                    }
                } else if (wants_values) {
                    error(e, "operator " + *op + " needs 'values'");
                }
                s.match_expressions.push_back(std::move(r));
            }
        }
        return s;
    }

    void workload(const yaml::Node& n, PolicySet& out) {
        if (!mapping(n, "a workload")) {
            return;
        }
        keys(n, "workload", {"name", "labels", "cgroup", "systemd", "addresses"});
        WorkloadSpec w;
        w.loc = loc(n);
        auto name = requiredString(n, "name", "a workload");
        if (!n.get("labels")) {
            error(n, "a workload needs 'labels' (its identity)");
        } else {
            w.labels = labels(*n.get("labels"), "labels");
            if (w.labels.empty()) {
                error(*n.get("labels"), "a workload needs at least one label");
            }
        }
        if (const yaml::Node* c_ptr = n.get("cgroup")) {
            const yaml::Node& c = *c_ptr;
            w.cgroup = scalar(c, "'cgroup'").value_or("");
        }
        if (const yaml::Node* s_ptr = n.get("systemd")) {
            const yaml::Node& s = *s_ptr;
            w.systemd_unit = scalar(s, "'systemd'").value_or("");
        }
        if (!w.cgroup.empty() && !w.systemd_unit.empty()) {
            error(n, "a workload is found by 'cgroup' or by 'systemd', not both");
        }
        if (const yaml::Node* a_ptr = n.get("addresses")) {
            const yaml::Node& a = *a_ptr;
            for (const yaml::Node& x : list(a, "addresses")) {
                if (auto p = prefix(x, "an address")) {
                    w.addresses.push_back(*p);
                }
            }
        }
        if (name) {
            w.name = *name;
            out.workloads.push_back(std::move(w));
        }
    }

    void external(const yaml::Node& n, PolicySet& out) {
        if (!mapping(n, "an external")) {
            return;
        }
        keys(n, "external", {"name", "cidrs", "labels"});
        ExternalSpec e;
        e.loc = loc(n);
        auto name = requiredString(n, "name", "an external");
        if (const yaml::Node* c_ptr = n.get("cidrs")) {
            const yaml::Node& c = *c_ptr;
            for (const yaml::Node& x : list(c, "cidrs")) {
                if (auto p = prefix(x, "a CIDR")) {
                    e.cidrs.push_back(*p);
                }
            }
        }
        if (e.cidrs.empty()) {
            error(n, "an external needs 'cidrs' (at least one range)");
        }
        if (const yaml::Node* l_ptr = n.get("labels")) {
            const yaml::Node& l = *l_ptr;
            e.labels = labels(l, "labels");
        }
        if (name) {
            e.name = *name;
            out.externals.push_back(std::move(e));
        }
    }

    void policy(const yaml::Node& n, PolicySet& out) {
        if (!mapping(n, "a policy")) {
            return;
        }
        keys(n, "policy", {"name", "selector", "mode", "raw_sockets", "ingress", "egress"});
        PolicySpec p;
        p.loc = loc(n);
        auto name = requiredString(n, "name", "a policy");
        p.name = name.value_or("");
        if (!n.get("selector")) {
            error(n, "a policy needs 'selector' (the workloads it applies to)");
        } else {
            p.selector = selector(*n.get("selector"));
        }
        if (const yaml::Node* m_ptr = n.get("mode")) {
            const yaml::Node& m = *m_ptr;
            auto s = scalar(m, "'mode'");
            if (s == "enforce") {
                p.mode = WorkloadMode::Enforce;
            } else if (s == "audit") {
                p.mode = WorkloadMode::Audit;
            } else if (s) {
                error(m, "unknown mode '" + *s + "' (expected enforce or audit)");
            }
        }
        if (const yaml::Node* r_ptr = n.get("raw_sockets")) {
            const yaml::Node& r = *r_ptr;
            auto s = scalar(r, "'raw_sockets'");
            if (s == "allow" || s == "deny") {
                p.raw_sockets = *s == "allow";
            } else if (s) {
                error(r, "unknown raw_sockets value '" + *s + "' (expected allow or deny)");
            }
        }
        for (auto [key, dir, peer_key] : {std::tuple{"ingress", Direction::Ingress, "from"},
                                          std::tuple{"egress", Direction::Egress, "to"}}) {
            if (const yaml::Node* rules = n.get(key)) {
                for (const yaml::Node& r : list(*rules, key)) {
                    rule(r, dir, peer_key, p);
                }
            }
        }
        if (name) {
            out.policies.push_back(std::move(p));
        }
    }

    void rule(const yaml::Node& n, Direction dir, const char* peer_key, PolicySpec& p) {
        std::string what =
            std::string(dir == Direction::Ingress ? "an ingress" : "an egress") + " rule";
        if (!mapping(n, what)) {
            return;
        }
        keys(n, what.substr(what.find(' ') + 1), {peer_key, "ports", "action", "description"});
        RuleSpec r;
        r.loc = loc(n);
        r.policy = p.name;
        r.direction = dir;
        if (const yaml::Node* a_ptr = n.get("action")) {
            const yaml::Node& a = *a_ptr;
            auto s = scalar(a, "'action'");
            if (s == "allow") {
                r.action = Action::Allow;
            } else if (s == "deny") {
                r.action = Action::Deny;
            } else if (s) {
                error(a, "unknown action '" + *s + "' (expected allow or deny)");
            }
        }
        if (const yaml::Node* d_ptr = n.get("description")) {
            const yaml::Node& d = *d_ptr;
            r.description = scalar(d, "'description'").value_or("");
        }
        if (!n.get(peer_key)) {
            error(n,
                  what + " needs '" + peer_key + "' (its peers; use '- entity: any' for everyone)");
        } else {
            const yaml::Node& peers = *n.get(peer_key);
            if (peers.isNull() || (peers.isSequence() && peers.items().empty())) {
                error(peers, "'" + std::string(peer_key) +
                                 "' lists no peers (a rule for nobody; use '- entity: any' for "
                                 "everyone)");
            }
            for (const yaml::Node& x : list(peers, peer_key)) {
                peer(x, r);
            }
        }
        if (const yaml::Node* ports_ptr = n.get("ports")) {
            const yaml::Node& ports = *ports_ptr;
            for (const yaml::Node& x : list(ports, "ports")) {
                port(x, r);
            }
        }
        p.rules.push_back(std::move(r));
    }

    void peer(const yaml::Node& n, RuleSpec& r) {
        if (!mapping(n, "a peer (selector, cidr or entity)")) {
            return;
        }
        keys(n, "peer", {"selector", "cidr", "except", "entity"});
        PeerSpec s;
        s.loc = loc(n);
        int kinds = bool(n.get("selector")) + bool(n.get("cidr")) + bool(n.get("entity"));
        if (kinds != 1) {
            error(n, "a peer is exactly one of 'selector', 'cidr' or 'entity'");
            return;
        }
        if (n.get("except") && !n.get("cidr")) {
            error(*n.get("except"), "'except' goes with 'cidr'");
        }
        if (const yaml::Node* sel_ptr = n.get("selector")) {
            const yaml::Node& sel = *sel_ptr;
            s.kind = PeerSpec::Kind::Selector;
            s.selector = selector(sel);
        } else if (const yaml::Node* c_ptr = n.get("cidr")) {
            const yaml::Node& c = *c_ptr;
            s.kind = PeerSpec::Kind::Cidr;
            auto p = prefix(c, "'cidr'");
            if (!p) {
                return;
            }
            s.cidr = *p;
            if (const yaml::Node* ex_ptr = n.get("except")) {
                const yaml::Node& ex = *ex_ptr;
                for (const yaml::Node& x : list(ex, "except")) {
                    auto e = prefix(x, "an 'except' CIDR");
                    if (!e) {
                        continue;
                    }
                    if (!p->contains(*e)) {
                        error(x, "except " + e->str() + " is not inside " + p->str());
                        continue;
                    }
                    s.except.push_back(*e);
                }
            }
        } else {
            auto e = scalar(*n.get("entity"), "'entity'");
            if (e == "any") {
                s.kind = PeerSpec::Kind::Any;
            } else if (e == "host") {
                s.kind = PeerSpec::Kind::Host;
            } else if (e == "world") {
                s.kind = PeerSpec::Kind::World;
            } else {
                if (e) {
                    error(*n.get("entity"),
                          "unknown entity '" + *e + "' (expected any, host, world)");
                }
                return;
            }
        }
        r.peers.push_back(std::move(s));
    }

    std::optional<PortRange> portRange(const yaml::Node& n) {
        auto s = scalar(n, "'port'");
        if (!s) {
            return std::nullopt;
        }
        auto num = [&](std::string_view t, unsigned& v) {
            auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
            return ec == std::errc() && end == t.data() + t.size() && !t.empty();
        };
        unsigned lo = 0, hi = 0;
        size_t dash = s->find('-');
        bool ok = dash == std::string::npos ? num(*s, lo) && (hi = lo, true)
                                            : num(std::string_view(*s).substr(0, dash), lo) &&
                                                  num(std::string_view(*s).substr(dash + 1), hi);
        if (!ok) {
            error(n, "invalid port '" + *s + "': expected a number or a range like 8000-8100");
            return std::nullopt;
        }
        if (lo < 1 || hi > 65535 || lo > hi) {
            error(n, "port '" + *s + "' out of range: ports are 1-65535, first <= last");
            return std::nullopt;
        }
        return PortRange{uint16_t(lo), uint16_t(hi)};
    }

    void port(const yaml::Node& n, RuleSpec& r) {
        if (!mapping(n, "a port entry ({port, protocol})")) {
            return;
        }
        keys(n, "port entry", {"port", "protocol"});
        std::vector<std::pair<uint8_t, const yaml::Node*>> protos;
        if (const yaml::Node* p_ptr = n.get("protocol")) {
            const yaml::Node& p = *p_ptr;
            if (p.isNull() || (p.isSequence() && p.items().empty())) {
                error(p, "'protocol' lists no protocol (omit it for any protocol)");
                return;
            }
            auto items = p.isSequence()
                             ? list(p, "protocol")
                             : std::vector<std::reference_wrapper<const yaml::Node>>{std::cref(p)};
            for (const yaml::Node& x : items) {
                auto s = scalar(x, "a protocol");
                if (!s) {
                    continue;
                }
                auto it = kProtocols.find(*s);
                if (it == kProtocols.end()) {
                    error(x, "unknown protocol '" + *s +
                                 "' (expected tcp, udp, icmp, icmpv6, sctp, udplite, dccp, any)");
                    continue;
                }
                protos.emplace_back(it->second, &x);
            }
        } else {
            protos.emplace_back(ZTSEG_PROTO_ANY, &n);
        }
        std::optional<PortRange> range;
        if (const yaml::Node* pn_ptr = n.get("port")) {
            const yaml::Node& pn = *pn_ptr;
            range = portRange(pn);
            if (!range) {
                return;
            }
        }
        for (const auto& [proto, node] : protos) {
            if (range && (proto == ZTSEG_PROTO_ICMP || proto == ZTSEG_PROTO_ICMPV6)) {
                error(*n.get("port"), "ports do not apply to " + protocolName(proto));
                continue;
            }
            PortSpec ps;
            ps.protocol = proto;
            ps.ports = range.value_or(PortRange{});
            ps.loc = loc(*node);
            r.ports.push_back(ps);
        }
    }

    std::string file_;
    Diagnostics& diags_;
};

// Policy files are UTF-8 text: control characters and invalid UTF-8 are
// refused with their exact location before YAML parsing starts.
bool checkText(const SourceText& s, Diagnostics& diags) {
    int line = 1, col = 1;
    const std::string& t = s.text;
    for (size_t i = 0; i < t.size();) {
        auto c = static_cast<unsigned char>(t[i]);
        size_t len = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xe  ? 3
                     : (c >> 3) == 0x1e ? 4
                                        : 0;
        bool ok = len != 0 && i + len <= t.size();
        for (size_t k = 1; ok && k < len; ++k) {
            ok = (static_cast<unsigned char>(t[i + k]) >> 6) == 0x2;
        }
        if (!ok) {
            diags.error({s.name, line, col}, "invalid UTF-8 (policy files are UTF-8 text)");
            return false;
        }
        if (len == 1 && ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f)) {
            char hex[8];
            std::snprintf(hex, sizeof(hex), "0x%02x", c);
            diags.error({s.name, line, col},
                        std::string("control character ") + hex + " (policy files are UTF-8 text)");
            return false;
        }
        if (c == '\n') {
            ++line;
            col = 1;
        } else {
            ++col;
        }
        i += len;
    }
    return true;
}

template <typename T>
void appendMoved(std::vector<T>& to, std::vector<T>& from) {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
}

// One file's share of the policy set, read on its own: documents only
// append to the set, so files can be read in any order and merged in file
// order afterwards.
struct ParsedFile {
    Diagnostics diags;
    PolicySet part;
    std::exception_ptr fatal;  // not about the input (out of memory)
};

ParsedFile parseFile(const SourceText& s) {
    ParsedFile f;
    try {
        if (!checkText(s, f.diags)) {
            return f;
        }
        try {
            for (const yaml::Node& doc : yaml::parseAll(s.text)) {
                DocReader(s.name, f.diags).read(doc, f.part);
            }
        } catch (const yaml::ParseError& e) {
            f.diags.error({s.name, e.mark.line, e.mark.column},
                          std::string("invalid YAML: ") + e.what());
        }
    } catch (...) {
        f.fatal = std::current_exception();
    }
    return f;
}

std::vector<ParsedFile> parseFiles(const std::vector<SourceText>& sources) {
    std::vector<ParsedFile> out(sources.size());
    size_t workers = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), 8);
    if (sources.size() < 2 || workers < 2) {
        for (size_t i = 0; i < sources.size(); ++i) {
            out[i] = parseFile(sources[i]);
        }
        return out;
    }
    std::atomic<size_t> next{0};
    auto work = [&] {
        for (size_t i; (i = next.fetch_add(1)) < sources.size();) {
            out[i] = parseFile(sources[i]);
        }
    };
    {
        std::vector<std::jthread> pool;
        for (size_t w = 1; w < std::min(workers, sources.size()); ++w) {
            pool.emplace_back(work);
        }
        work();
    }
    return out;
}

// Checks that need every document: unique names, overlapping declarations.
void validate(PolicySet& ps, Diagnostics& diags) {
    std::map<std::string, const WorkloadSpec*> wnames;
    std::map<std::string, const WorkloadSpec*> wlabels;
    for (const auto& w : ps.workloads) {
        if (auto [it, ok] = wnames.emplace(w.name, &w); !ok) {
            diags.error(w.loc,
                        "workload '" + w.name + "' is already defined at " + it->second->loc.str());
        }
    }
    std::map<std::string, const ExternalSpec*> enames;
    for (const auto& e : ps.externals) {
        if (auto [it, ok] = enames.emplace(e.name, &e); !ok) {
            diags.error(e.loc,
                        "external '" + e.name + "' is already defined at " + it->second->loc.str());
        }
        for (const auto& w : ps.workloads) {
            if (!e.labels.empty() && e.labels == w.labels) {
                diags.error(e.loc, "external '" + e.name + "' has the same labels as workload '" +
                                       w.name + "' (" + w.loc.str() +
                                       "): one label set is one identity");
            }
        }
    }
    // One owner per exact address prefix, so identity lookup is unambiguous.
    std::map<std::string, std::string> owner;
    auto claim = [&](const IpPrefix& p, const std::string& who, const SourceLocation& loc) {
        if (auto [it, ok] = owner.emplace(p.str(), who); !ok && it->second != who) {
            diags.error(
                loc, "address " + p.str() + " of " + who + " is already claimed by " + it->second);
        }
    };
    for (const auto& w : ps.workloads) {
        for (const auto& a : w.addresses) {
            claim(a, "workload '" + w.name + "'", w.loc);
        }
    }
    for (const auto& e : ps.externals) {
        for (const auto& c : e.cidrs) {
            claim(c, "external '" + e.name + "'", e.loc);
        }
    }
    for (size_t i = 0; i < ps.hosts.size(); ++i) {
        claim(ps.hosts[i], "hosts",
              i < ps.host_locations.size() ? ps.host_locations[i] : SourceLocation{});
    }
    std::map<std::string, const PolicySpec*> pnames;
    for (const auto& p : ps.policies) {
        if (auto [it, ok] = pnames.emplace(p.name, &p); !ok) {
            diags.error(p.loc,
                        "policy '" + p.name + "' is already defined at " + it->second->loc.str());
        }
    }
}

}  // namespace

std::string protocolName(uint8_t proto) {
    for (const auto& [name, num] : kProtocols) {
        if (num == proto) {
            return name;
        }
    }
    return std::to_string(proto);
}

PolicySet parsePolicies(std::vector<SourceText> sources, Diagnostics& diags) {
    std::sort(sources.begin(), sources.end(),
              [](const SourceText& a, const SourceText& b) { return a.name < b.name; });
    // Text checks, YAML parsing and reading are per file and take most of
    // the time for large policy trees: do them in parallel, then merge in
    // file order so ids and diagnostics do not depend on scheduling.
    std::vector<ParsedFile> parsed = parseFiles(sources);
    PolicySet ps;
    for (size_t i = 0; i < sources.size(); ++i) {
        ParsedFile& f = parsed[i];
        if (f.fatal) {
            std::rethrow_exception(f.fatal);
        }
        ps.files.push_back(sources[i].name);
        for (const Diagnostic& d : f.diags.all()) {
            if (d.severity == Diagnostic::Severity::Error) {
                diags.error(d.loc, d.message);
            } else {
                diags.warning(d.loc, d.message);
            }
        }
        appendMoved(ps.workloads, f.part.workloads);
        appendMoved(ps.externals, f.part.externals);
        appendMoved(ps.hosts, f.part.hosts);
        appendMoved(ps.host_locations, f.part.host_locations);
        appendMoved(ps.policies, f.part.policies);
    }
    validate(ps, diags);
    if (diags.hasErrors()) {
        throw PolicyError(diags.all());
    }
    // Rule ids follow source order, so they are stable for unchanged files.
    uint32_t next = 1;
    for (auto& p : ps.policies) {
        std::stable_sort(p.rules.begin(), p.rules.end(), [](const RuleSpec& a, const RuleSpec& b) {
            return std::tie(a.loc.line, a.loc.column) < std::tie(b.loc.line, b.loc.column);
        });
        for (auto& r : p.rules) {
            r.id = next++;
        }
    }
    ps.source_digest = hexDigest(sources);
    return ps;
}

PolicySet loadPolicies(const std::vector<std::string>& paths, Diagnostics& diags) {
    std::vector<SourceText> sources;
    for (const std::string& arg : paths) {
        fs::path p(arg);
        std::error_code ec;
        if (fs::is_directory(p, ec)) {
            for (const auto& e : fs::recursive_directory_iterator(p)) {
                auto ext = e.path().extension();
                if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) {
                    sources.push_back(
                        {fs::relative(e.path(), p).string(), readFile(e.path().string())});
                }
            }
        } else if (fs::exists(p, ec)) {
            sources.push_back({p.filename().string(), readFile(p.string())});
        } else {
            throw Error("policy input " + arg + " does not exist");
        }
    }
    if (sources.empty()) {
        throw Error("no *.yaml policy files found in the given paths");
    }
    return parsePolicies(std::move(sources), diags);
}

}  // namespace ztseg::policy
