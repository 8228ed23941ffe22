#include "common/cgroup.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.hpp"

namespace ztseg {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo octal.
std::string unescapeMountinfo(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size()) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

std::string cgroup2MountPoint() {
    std::ifstream f("/proc/self/mountinfo");
    std::string line;
    while (std::getline(f, line)) {
        // "<id> <parent> <maj:min> <root> <mount point> <opts> ... - <fstype> <source> ..."
        auto dash = line.find(" - ");
        if (dash == std::string::npos) {
            continue;
        }
        std::istringstream tail(line.substr(dash + 3));
        std::string fstype;
        tail >> fstype;
        if (fstype != "cgroup2") {
            continue;
        }
        std::istringstream head(line.substr(0, dash));
        std::string id, parent, dev, root, mount;
        head >> id >> parent >> dev >> root >> mount;
        return unescapeMountinfo(mount);
    }
    throw Error("no cgroup2 filesystem mounted (see /proc/self/mountinfo)");
}

uint64_t cgroupIdOf(const std::string& cgroup_path) {
    // kernfs file handles carry the 64-bit kernfs node id, which is the cgroup id.
    alignas(file_handle) unsigned char storage[sizeof(file_handle) + MAX_HANDLE_SZ] = {};
    auto* fh = reinterpret_cast<file_handle*>(storage);
    fh->handle_bytes = MAX_HANDLE_SZ;
    int mount_id = 0;
    if (name_to_handle_at(AT_FDCWD, cgroup_path.c_str(), fh, &mount_id, 0) != 0) {
        throwErrno("read cgroup id of " + cgroup_path, errno);
    }
    if (fh->handle_bytes != sizeof(uint64_t)) {
        throw Error("read cgroup id of " + cgroup_path + ": unexpected " +
                    std::to_string(fh->handle_bytes) + "-byte handle (not cgroup v2?)");
    }
    uint64_t id = 0;
    std::memcpy(&id, fh->f_handle, sizeof(id));
    return id;
}

std::string selfCgroupPath() {
    std::ifstream f("/proc/self/cgroup");
    std::string line;
    while (std::getline(f, line)) {
        if (line.rfind("0::", 0) == 0) {
            std::string rel = line.substr(3);
            return cgroup2MountPoint() + (rel == "/" ? "" : rel);
        }
    }
    throw Error("no cgroup v2 entry in /proc/self/cgroup");
}

}  // namespace ztseg
