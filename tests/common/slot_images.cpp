#include "common/slot_images.hpp"

#include <bpf/bpf.h>

#include <cstring>
#include <vector>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace ztseg::test {

Images imagesOf(const SlotContent& c) {
    Images im;
    for (const SlotMapSpec& s : kSlotMaps) {
        if (s.id == ZTSEG_SLOT_RULES) {
            continue;  // see activeRuleSlots()
        }
        PackedEntries e = slotEntries(c, s.id);
        for (size_t i = 0; i < e.size(); ++i) {
            im[s.id].emplace(std::string(reinterpret_cast<const char*>(e.key(i)), e.keySize()),
                             std::string(reinterpret_cast<const char*>(e.value(i)), e.valueSize()));
        }
    }
    return im;
}

namespace {

uint32_t flagsOf(const Generation& g, IdentityId id) {
    auto m = g.modes.find(id);
    if (m == g.modes.end()) {
        return 0u;
    }
    uint32_t mode = m->second == WorkloadMode::Enforce ? ZTSEG_IDF_ENFORCE
                    : m->second == WorkloadMode::Audit ? ZTSEG_IDF_AUDIT
                                                       : 0u;
    return mode == 0u || !g.raw_sockets.count(id) ? mode : mode | ZTSEG_IDF_RAW_SOCKETS;
}

template <typename K, typename V>
void put(Image& im, const K& k, const V& v) {
    auto [key, value] = keyValueBytes(k, v);
    im[key] = value;
}

UniqueFd innerOf(const std::string& pin_dir, const char* outer_name, uint32_t slot) {
    std::string path = pin_dir + "/maps/" + outer_name;
    UniqueFd outer(bpf_obj_get(path.c_str()));
    if (!outer) {
        throwErrno("open " + path, errno);
    }
    uint32_t id = 0;
    if (bpf_map_lookup_elem(outer.get(), &slot, &id) != 0) {
        throwErrno(std::string("look up slot of ") + outer_name, errno);
    }
    UniqueFd inner(bpf_map_get_fd_by_id(id));
    if (!inner) {
        throwErrno(std::string("open inner map of ") + outer_name, errno);
    }
    return inner;
}

Image dump(int fd, size_t key_size, size_t value_size) {
    Image im;
    std::vector<char> key(key_size), next(key_size), value(value_size);
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
        if (bpf_map_lookup_elem(fd, next.data(), value.data()) != 0) {
            throwErrno("look up a dumped key", errno);
        }
        im[std::string(next.begin(), next.end())] = std::string(value.begin(), value.end());
        key.swap(next);
        prev = key.data();
    }
    return im;
}

}  // namespace

Images referenceImages(const Generation& g) {
    Images im;
    for (const auto& e : compilePolicyEntries(g.rules).entries) {
        put(im[ZTSEG_SLOT_POLICY], e.key, e.value);
    }
    for (const auto& ip : g.identities) {
        ztseg_identity_info info{ip.identity, flagsOf(g, ip.identity)};
        if (ip.prefix.family == 4 && ip.prefix.length == 32) {
            ztseg_host4_key k{};
            std::memcpy(k.addr, ip.prefix.addr.data(), 4);
            put(im[ZTSEG_SLOT_HOST4], k, info);
        } else if (ip.prefix.length == 128) {
            ztseg_host6_key k{};
            std::memcpy(k.addr, ip.prefix.addr.data(), 16);
            put(im[ZTSEG_SLOT_HOST6], k, info);
        } else if (ip.prefix.family == 4) {
            ztseg_ident4_key k{ip.prefix.length, {}};
            std::memcpy(k.addr, ip.prefix.addr.data(), 4);
            put(im[ZTSEG_SLOT_IDENT4], k, info);
        } else {
            ztseg_ident6_key k{ip.prefix.length, {}};
            std::memcpy(k.addr, ip.prefix.addr.data(), 16);
            put(im[ZTSEG_SLOT_IDENT6], k, info);
        }
    }
    for (const auto& ep : g.endpoints) {
        put(im[ZTSEG_SLOT_ENDPOINTS], ztseg_endpoint_key{ep.cgroup_id},
            ztseg_identity_info{ep.identity, flagsOf(g, ep.identity)});
    }
    return im;
}

Images activeSlotImages(const std::string& pin_dir) {
    std::string path = pin_dir + "/maps/ztseg_config";
    UniqueFd config(bpf_obj_get(path.c_str()));
    if (!config) {
        throwErrno("open " + path, errno);
    }
    uint32_t key = ZTSEG_CFG_ACTIVE_SLOT;
    uint64_t raw = 0;
    if (bpf_map_lookup_elem(config.get(), &key, &raw) != 0 || raw == 0) {
        throw Error("no active slot");
    }
    uint32_t slot = uint32_t(raw - 1);
    Images im;
    for (const SlotMapSpec& s : kSlotMaps) {
        if (s.id != ZTSEG_SLOT_RULES) {  // counter slots: activeRuleSlots()
            im[s.id] = dump(innerOf(pin_dir, s.name, slot).get(), s.key_size, s.value_size);
        }
    }
    return im;
}

std::map<uint32_t, uint32_t> activeRuleSlots(const std::string& pin_dir) {
    std::string path = pin_dir + "/maps/ztseg_config";
    UniqueFd config(bpf_obj_get(path.c_str()));
    uint32_t key = ZTSEG_CFG_ACTIVE_SLOT;
    uint64_t raw = 0;
    if (!config || bpf_map_lookup_elem(config.get(), &key, &raw) != 0 || raw == 0) {
        throw Error("no active slot");
    }
    std::map<uint32_t, uint32_t> out;
    Image im = dump(innerOf(pin_dir, "ztseg_rules", uint32_t(raw - 1)).get(),
                    sizeof(ztseg_rule_key), sizeof(ztseg_rule_ref));
    for (const auto& [k, v] : im) {
        ztseg_rule_key rk;
        ztseg_rule_ref rv;
        std::memcpy(&rk, k.data(), sizeof(rk));
        std::memcpy(&rv, v.data(), sizeof(rv));
        out[rk.rule_id] = rv.counter;
    }
    return out;
}

}  // namespace ztseg::test
