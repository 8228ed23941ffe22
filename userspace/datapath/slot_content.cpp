#include "datapath/slot_content.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace ztseg {
namespace {

PolicyGroupKey groupKeyOf(const Rule& r) {
    return (PolicyGroupKey(r.local) << 8) | static_cast<uint8_t>(r.direction);
}

template <typename T>
bool bytesLess(const T& a, const T& b) {
    return std::memcmp(&a, &b, sizeof(T)) < 0;
}

template <typename T>
bool bytesEqual(const T& a, const T& b) {
    return std::memcmp(&a, &b, sizeof(T)) == 0;
}

// Sort by key; of equal keys the one given last wins (as sequential map
// updates would have it).
template <typename Entry>
void sortUniqueLastWins(std::vector<Entry>& v) {
    std::stable_sort(v.begin(), v.end(),
                     [](const Entry& a, const Entry& b) { return bytesLess(a.key, b.key); });
    auto out = v.begin();
    for (auto it = v.begin(); it != v.end(); ++it) {
        auto next = it + 1;
        if (next != v.end() && bytesEqual(next->key, it->key)) {
            continue;
        }
        *out++ = *it;
    }
    v.erase(out, v.end());
}

// Merge two key-sorted entry lists into the writes that turn `from` into `to`.
void mergeDiff(const PackedEntries& from, const PackedEntries& to, MapDiff& out) {
    const size_t ks = to.keySize(), vs = to.valueSize();
    auto keyCmp = [ks](const uint8_t* a, const uint8_t* b) { return std::memcmp(a, b, ks); };
    size_t f = 0, t = 0;
    while (f < from.size() || t < to.size()) {
        int c = f == from.size() ? 1 : t == to.size() ? -1 : keyCmp(from.key(f), to.key(t));
        if (c < 0) {
            out.deletes.pushBytes(from.key(f++), nullptr);
        } else if (c > 0) {
            out.upserts.pushBytes(to.key(t), to.value(t));
            ++t;
        } else {
            if (std::memcmp(from.value(f), to.value(t), vs) != 0) {
                out.upserts.pushBytes(to.key(t), to.value(t));
            }
            ++f;
            ++t;
        }
    }
}

// Key order of a slot map's entries: bytewise, except the rule counter map's,
// which is by rule id (its assignment is merged by id, datapath_rules.cpp).
template <typename Entry>
bool keyLess(const Entry& a, const Entry& b) {
    return bytesLess(a.key, b.key);
}
bool keyLess(const RuleRefEntry& a, const RuleRefEntry& b) {
    return a.key.rule_id < b.key.rule_id;
}

// The writes that turn one key-sorted run into another, without packing
// either: a one-rule change at 100k rules compares 100k entries in place.
template <typename Entry>
void mergeRuns(const std::vector<Entry>& from, const std::vector<Entry>& to, MapDiff& out) {
    auto f = from.begin(), t = to.begin();
    while (f != from.end() || t != to.end()) {
        if (t == to.end() || (f != from.end() && keyLess(*f, *t))) {
            out.deletes.pushKey(f->key);
            ++f;
        } else if (f == from.end() || keyLess(*t, *f)) {
            out.upserts.push(t->key, t->value);
            ++t;
        } else {
            if (!bytesEqual(f->value, t->value)) {
                out.upserts.push(t->key, t->value);
            }
            ++f;
            ++t;
        }
    }
}

// Where each slot map's entries live in a SlotContent: calls fn with every
// run of them (vectors of entries with .key and .value, in key order; the
// policy map's runs are its groups). The one switch over slot maps in
// userspace: -Wswitch names a new row that is missing here.
template <typename Fn>
void forEachRun(const SlotContent& c, ztseg_slot_map m, Fn&& fn) {
    static const IdentityTable kNoIdentities;
    const IdentityTable& ids = c.identities ? *c.identities : kNoIdentities;
    switch (m) {
        case ZTSEG_SLOT_POLICY:
            for (const auto& [key, g] : c.groups) {
                fn(g->entries.entries);
            }
            return;
        case ZTSEG_SLOT_IDENT4:
            return fn(ids.v4);
        case ZTSEG_SLOT_IDENT6:
            return fn(ids.v6);
        case ZTSEG_SLOT_HOST4:
            return fn(ids.h4);
        case ZTSEG_SLOT_HOST6:
            return fn(ids.h6);
        case ZTSEG_SLOT_ENDPOINTS:
            return fn(c.endpoints);
        case ZTSEG_SLOT_RULES:
            return fn(c.rules);
        case ZTSEG_SLOT_MAP_MAX:
            break;
    }
    throw std::logic_error("slot content has no entries for slot map " + std::to_string(m));
}

template <typename Entry>
void packInto(PackedEntries& out, const std::vector<Entry>& run) {
    for (const Entry& e : run) {
        out.push(e.key, e.value);
    }
}

PackedEntries packGroup(const PolicyGroup* g) {
    PackedEntries out(kSlotMaps[ZTSEG_SLOT_POLICY]);
    if (g != nullptr) {
        out.reserve(g->entries.entries.size());
        packInto(out, g->entries.entries);
    }
    return out;
}

// The runs of one slot map, as addresses: equal runs of two slots are the
// same shared object and need no diff.
std::vector<const void*> runsOf(const SlotContent& c, ztseg_slot_map m) {
    std::vector<const void*> runs;
    forEachRun(c, m, [&](const auto& run) { runs.push_back(&run); });
    return runs;
}

std::shared_ptr<const IdentityTable> buildIdentities(const Generation& gen) {
    auto t = std::make_shared<IdentityTable>();
    t->input = gen.identities;
    t->modes = gen.modes;
    t->raw_sockets = gen.raw_sockets;
    for (const IdentityPrefix& ip : gen.identities) {
        ztseg_identity_info info{ip.identity, identityFlags(gen, ip.identity)};
        if (ip.prefix.family == 4 && ip.prefix.length == 32) {
            Host4Entry e{{}, info};
            std::memcpy(e.key.addr, ip.prefix.addr.data(), 4);
            t->h4.push_back(e);
        } else if (ip.prefix.family == 4) {
            Ident4Entry e{{ip.prefix.length, {}}, info};
            std::memcpy(e.key.addr, ip.prefix.addr.data(), 4);
            t->v4.push_back(e);
        } else if (ip.prefix.length == 128) {
            Host6Entry e{{}, info};
            std::memcpy(e.key.addr, ip.prefix.addr.data(), 16);
            t->h6.push_back(e);
        } else {
            Ident6Entry e{{ip.prefix.length, {}}, info};
            std::memcpy(e.key.addr, ip.prefix.addr.data(), 16);
            t->v6.push_back(e);
        }
    }
    sortUniqueLastWins(t->v4);
    sortUniqueLastWins(t->v6);
    sortUniqueLastWins(t->h4);
    sortUniqueLastWins(t->h6);
    return t;
}

}  // namespace

uint32_t IdentityTable::slotFlags() const {
    uint32_t host = 0;
    if (auto m = modes.find(kHostIdentity); m != modes.end()) {
        host = m->second == WorkloadMode::Enforce ? ZTSEG_SLOTF_HOST_ENFORCE
               : m->second == WorkloadMode::Audit ? ZTSEG_SLOTF_HOST_AUDIT
                                                  : 0u;
    }
    return (v4.empty() ? 0u : ZTSEG_SLOTF_LPM4) | (v6.empty() ? 0u : ZTSEG_SLOTF_LPM6) | host;
}

uint32_t identityFlags(WorkloadMode m, bool raw_sockets) {
    uint32_t raw = raw_sockets ? ZTSEG_IDF_RAW_SOCKETS : 0u;
    switch (m) {
        case WorkloadMode::Enforce:
            return ZTSEG_IDF_ENFORCE | raw;
        case WorkloadMode::Audit:
            return ZTSEG_IDF_AUDIT | raw;
        default:
            return 0;  // unmanaged: nothing to let it do
    }
}

uint32_t identityFlags(const Generation& gen, IdentityId id) {
    auto mode = gen.modes.find(id);
    return mode == gen.modes.end() ? 0u
                                   : identityFlags(mode->second, gen.raw_sockets.count(id) != 0);
}

namespace {

// Reusable groups of one earlier slot, consumed in key order.
class GroupCursor {
  public:
    explicit GroupCursor(const SlotContent* s) : s_(s) {}
    std::shared_ptr<const PolicyGroup> find(PolicyGroupKey key, const Rule* first,
                                            const Rule* last) {
        if (s_ == nullptr) {
            return nullptr;
        }
        const auto& gs = s_->groups;
        while (i_ < gs.size() && gs[i_].first < key) {
            ++i_;
        }
        if (i_ < gs.size() && gs[i_].first == key &&
            std::equal(first, last, gs[i_].second->rules.begin(), gs[i_].second->rules.end())) {
            return gs[i_].second;
        }
        return nullptr;
    }

  private:
    const SlotContent* s_;
    size_t i_ = 0;
};

}  // namespace

SlotContent buildSlotContent(const Generation& gen,
                             std::initializer_list<const SlotContent*> reuse) {
    SlotContent out;
    out.generation = gen.number;

    auto byGroup = [](const Rule& a, const Rule& b) { return groupKeyOf(a) < groupKeyOf(b); };
    const std::vector<Rule>* rules = &gen.rules;
    std::vector<Rule> sorted;
    if (!std::is_sorted(gen.rules.begin(), gen.rules.end(), byGroup)) {
        sorted = gen.rules;
        std::stable_sort(sorted.begin(), sorted.end(), byGroup);
        rules = &sorted;
    }
    std::vector<GroupCursor> cursors;
    for (const SlotContent* s : reuse) {
        cursors.emplace_back(s);
    }
    const Rule* begin = rules->data();
    const Rule* end = begin + rules->size();
    for (const Rule* first = begin; first != end;) {
        PolicyGroupKey key = groupKeyOf(*first);
        const Rule* last = first;
        while (last != end && groupKeyOf(*last) == key) {
            ++last;
        }
        std::shared_ptr<const PolicyGroup> found;
        for (GroupCursor& c : cursors) {
            if ((found = c.find(key, first, last))) {
                break;
            }
        }
        if (!found) {
            auto g = std::make_shared<PolicyGroup>();
            g->rules.assign(first, last);
            g->entries = compilePolicyEntries(g->rules);
            found = std::move(g);
        }
        out.policy_entries += found->entries.entries.size();
        for (size_t c = 0; c < out.probe_masks.size(); ++c) {
            out.probe_masks[c] |= found->entries.probe_masks[c];
        }
        out.groups.emplace_back(key, std::move(found));
        first = last;
    }

    for (const SlotContent* s : reuse) {
        if (s != nullptr && s->identities && s->identities->modes == gen.modes &&
            s->identities->raw_sockets == gen.raw_sockets &&
            s->identities->input == gen.identities) {
            out.identities = s->identities;
            break;
        }
    }
    if (!out.identities) {
        out.identities = buildIdentities(gen);
    }

    out.endpoints.reserve(gen.endpoints.size());
    for (const Endpoint& ep : gen.endpoints) {
        out.endpoints.push_back({{ep.cgroup_id}, {ep.identity, identityFlags(gen, ep.identity)}});
    }
    bool strictly_increasing =
        std::adjacent_find(out.endpoints.begin(), out.endpoints.end(),
                           [](const EndpointEntry& a, const EndpointEntry& b) {
                               return !bytesLess(a.key, b.key);
                           }) == out.endpoints.end();
    if (!strictly_increasing) {
        sortUniqueLastWins(out.endpoints);
    }
    return out;
}

void PackedEntries::checkSizes(size_t key_size, size_t value_size) const {
    if (key_size != key_size_ || value_size != value_size_) {
        throw std::logic_error("slot map entry of " + std::to_string(key_size) + "+" +
                               std::to_string(value_size) + " bytes where the map takes " +
                               std::to_string(key_size_) + "+" + std::to_string(value_size_) +
                               " (ZTSEG_SLOT_MAPS in abi.h)");
    }
}

void PackedEntries::pushBytes(const void* key, const void* value) {
    auto k = static_cast<const uint8_t*>(key);
    keys_.insert(keys_.end(), k, k + key_size_);
    if (value_size_ != 0) {
        auto v = static_cast<const uint8_t*>(value);
        values_.insert(values_.end(), v, v + value_size_);
    }
    ++count_;
}

void PackedEntries::reserve(size_t n) {
    keys_.reserve(n * key_size_);
    values_.reserve(n * value_size_);
}

PackedEntries slotEntries(const SlotContent& c, ztseg_slot_map m) {
    PackedEntries out(kSlotMaps[m]);
    out.reserve(slotEntryCount(c, m));
    forEachRun(c, m, [&](const auto& run) { packInto(out, run); });
    return out;
}

size_t slotEntryCount(const SlotContent& c, ztseg_slot_map m) {
    if (m == ZTSEG_SLOT_POLICY) {
        return c.policy_entries;
    }
    size_t n = 0;
    forEachRun(c, m, [&](const auto& run) { n += run.size(); });
    return n;
}

SlotDiff diffSlots(const SlotContent& from, const SlotContent& to) {
    SlotDiff d;
    for (const SlotMapSpec& s : kSlotMaps) {
        d[s.id].upserts = PackedEntries(s);
        d[s.id].deletes = PackedEntries(s.key_size, 0);
    }
    // Policy: group by group, skipping groups both slots share.
    MapDiff& policy = d[ZTSEG_SLOT_POLICY];
    auto f = from.groups.begin(), fe = from.groups.end();
    auto t = to.groups.begin(), te = to.groups.end();
    while (f != fe || t != te) {
        if (t == te || (f != fe && f->first < t->first)) {
            mergeDiff(packGroup(f->second.get()), packGroup(nullptr), policy);
            ++f;
        } else if (f == fe || t->first < f->first) {
            mergeDiff(packGroup(nullptr), packGroup(t->second.get()), policy);
            ++t;
        } else {
            if (f->second != t->second) {
                mergeDiff(packGroup(f->second.get()), packGroup(t->second.get()), policy);
            }
            ++f;
            ++t;
        }
    }
    for (const SlotMapSpec& s : kSlotMaps) {
        if (s.id == ZTSEG_SLOT_POLICY) {
            continue;
        }
        if (runsOf(from, s.id) == runsOf(to, s.id)) {
            continue;  // shared content (an identity table both slots use)
        }
        // Every map but the policy map is one run.
        forEachRun(from, s.id, [&](const auto& from_run) {
            forEachRun(to, s.id, [&](const auto& to_run) {
                if constexpr (std::is_same_v<decltype(from_run), decltype(to_run)>) {
                    mergeRuns(from_run, to_run, d[s.id]);
                }
            });
        });
    }
    return d;
}

void upsertEndpointEntry(std::vector<EndpointEntry>& table, const EndpointEntry& e) {
    auto it = std::lower_bound(
        table.begin(), table.end(), e,
        [](const EndpointEntry& a, const EndpointEntry& b) { return bytesLess(a.key, b.key); });
    if (it != table.end() && bytesEqual(it->key, e.key)) {
        it->value = e.value;
    } else {
        table.insert(it, e);
    }
}

void eraseEndpointEntry(std::vector<EndpointEntry>& table, uint64_t cgroup_id) {
    ztseg_endpoint_key k{cgroup_id};
    auto it = std::lower_bound(
        table.begin(), table.end(), k,
        [](const EndpointEntry& a, const ztseg_endpoint_key& b) { return bytesLess(a.key, b); });
    if (it != table.end() && bytesEqual(it->key, k)) {
        table.erase(it);
    }
}

}  // namespace ztseg
