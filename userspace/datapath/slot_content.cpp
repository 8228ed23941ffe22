#include "datapath/slot_content.hpp"

#include <algorithm>
#include <cstring>

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

// Merge two key-sorted sequences into the writes that turn `from` into `to`.
template <typename Key, typename Value, typename FromIt, typename ToIt, typename KeyOf,
          typename ValueOf>
void mergeDiff(FromIt fb, FromIt fe, ToIt tb, ToIt te, KeyOf keyOf, ValueOf valueOf,
               MapDiff<Key, Value>& out) {
    while (fb != fe || tb != te) {
        if (tb == te || (fb != fe && bytesLess(keyOf(*fb), keyOf(*tb)))) {
            out.deletes.push_back(keyOf(*fb++));
        } else if (fb == fe || bytesLess(keyOf(*tb), keyOf(*fb))) {
            out.upsert_keys.push_back(keyOf(*tb));
            out.upsert_values.push_back(valueOf(*tb++));
        } else {
            if (!bytesEqual(valueOf(*fb), valueOf(*tb))) {
                out.upsert_keys.push_back(keyOf(*tb));
                out.upsert_values.push_back(valueOf(*tb));
            }
            ++fb;
            ++tb;
        }
    }
}

template <typename Key>
void diffKeyed(const std::vector<KeyedValue<Key>>& from, const std::vector<KeyedValue<Key>>& to,
               MapDiff<Key, ztseg_identity_info>& out) {
    mergeDiff(
        from.begin(), from.end(), to.begin(), to.end(),
        [](const KeyedValue<Key>& e) -> const Key& { return e.key; },
        [](const KeyedValue<Key>& e) -> const ztseg_identity_info& { return e.value; }, out);
}

void diffGroup(const PolicyGroup* from, const PolicyGroup* to,
               MapDiff<ztseg_policy_key, ztseg_policy_value>& out) {
    static const std::vector<PolicyMapEntry> kNone;
    const auto& f = from ? from->entries.entries : kNone;
    const auto& t = to ? to->entries.entries : kNone;
    mergeDiff(
        f.begin(), f.end(), t.begin(), t.end(),
        [](const PolicyMapEntry& e) -> const ztseg_policy_key& { return e.key; },
        [](const PolicyMapEntry& e) -> const ztseg_policy_value& { return e.value; }, out);
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
    return (v4.empty() ? 0u : ZTSEG_SLOTF_LPM4) | (v6.empty() ? 0u : ZTSEG_SLOTF_LPM6);
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

SlotDiff diffSlots(const SlotContent& from, const SlotContent& to) {
    SlotDiff d;
    auto f = from.groups.begin(), fe = from.groups.end();
    auto t = to.groups.begin(), te = to.groups.end();
    while (f != fe || t != te) {
        if (t == te || (f != fe && f->first < t->first)) {
            diffGroup(f->second.get(), nullptr, d.policy);
            ++f;
        } else if (f == fe || t->first < f->first) {
            diffGroup(nullptr, t->second.get(), d.policy);
            ++t;
        } else {
            if (f->second != t->second) {
                diffGroup(f->second.get(), t->second.get(), d.policy);
            }
            ++f;
            ++t;
        }
    }
    if (from.identities != to.identities) {
        static const IdentityTable kEmpty;
        const IdentityTable& fi = from.identities ? *from.identities : kEmpty;
        const IdentityTable& ti = to.identities ? *to.identities : kEmpty;
        diffKeyed(fi.v4, ti.v4, d.ident4);
        diffKeyed(fi.v6, ti.v6, d.ident6);
        diffKeyed(fi.h4, ti.h4, d.host4);
        diffKeyed(fi.h6, ti.h6, d.host6);
    }
    diffKeyed(from.endpoints, to.endpoints, d.endpoints);
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
