// Thin adapter over BPF map syscalls: one owned fd plus the map's name, so
// every error says which map, which operation and which errno.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/unique_fd.hpp"

namespace ztseg {

class BpfMap {
  public:
    BpfMap() = default;
    BpfMap(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}

    static BpfMap openPinned(const std::string& path, const std::string& name);
    // Read-only fds (BPF_F_RDONLY): the kernel refuses every write through
    // them, so code that only inspects cannot change what is enforced.
    static BpfMap openPinnedReadOnly(const std::string& path, const std::string& name);
    static BpfMap openByIdReadOnly(uint32_t id, const std::string& name);
    // A fresh map (an inner map for a new generation).
    static BpfMap create(uint32_t type, const std::string& name, uint32_t key_size,
                         uint32_t value_size, uint32_t max_entries, uint32_t flags);

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }
    bool valid() const { return fd_.valid(); }

    void update(const void* key, const void* value, uint64_t flags = 0) const;
    // Bulk insert; falls back to single updates where the map type has no batch op.
    void updateBatch(const void* keys, const void* values, uint32_t count, uint32_t key_size,
                     uint32_t value_size) const;
    bool lookup(const void* key, void* value) const;  // false if absent
    bool erase(const void* key) const;                // false if absent
    // The key after `key` (nullptr: the first); false at the end.
    bool nextKey(const void* key, void* next) const;
    // Per-CPU maps: one value per possible CPU, value_size each (8-byte aligned).
    std::vector<uint8_t> lookupPerCpu(const void* key, uint32_t value_size) const;
    uint32_t countEntries(uint32_t key_size) const;
    void pin(const std::string& path) const;
    uint32_t maxEntries() const;

  private:
    UniqueFd fd_;
    std::string name_;
};

int possibleCpus();

}  // namespace ztseg
