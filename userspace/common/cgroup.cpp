#include "common/cgroup.hpp"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

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

std::string mountPointOfType(const std::string& fstype) {
    std::ifstream f("/proc/self/mountinfo");
    std::string line;
    while (std::getline(f, line)) {
        // "<id> <parent> <maj:min> <root> <mount point> <opts> ... - <fstype> <source> ..."
        auto dash = line.find(" - ");
        if (dash == std::string::npos) {
            continue;
        }
        std::istringstream tail(line.substr(dash + 3));
        std::string type;
        tail >> type;
        if (type != fstype) {
            continue;
        }
        std::istringstream head(line.substr(0, dash));
        std::string id, parent, dev, root, mount;
        head >> id >> parent >> dev >> root >> mount;
        return unescapeMountinfo(mount);
    }
    return "";
}

std::string cgroup2MountPoint() {
    std::string mount = mountPointOfType("cgroup2");
    if (mount.empty()) {
        throw Error("no cgroup2 filesystem mounted (see /proc/self/mountinfo)");
    }
    return mount;
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

std::optional<std::string> cgroupPathOfId(uint64_t id) {
    static const std::string mount = cgroup2MountPoint();
    int mfd = ::open(mount.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (mfd < 0) {
        throwErrno("open cgroup2 mount " + mount, errno);
    }
    alignas(file_handle) unsigned char storage[sizeof(file_handle) + sizeof(uint64_t)] = {};
    auto* fh = reinterpret_cast<file_handle*>(storage);
    fh->handle_bytes = sizeof(uint64_t);
    fh->handle_type = 0xfe;  // FILEID_KERNFS
    std::memcpy(fh->f_handle, &id, sizeof(id));
    int fd = open_by_handle_at(mfd, fh, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err = errno;
    ::close(mfd);
    if (fd < 0) {
        if (err == ESTALE || err == ENOENT) {
            return std::nullopt;
        }
        throwErrno("find cgroup with id " + std::to_string(id), err);
    }
    char buf[PATH_MAX];
    std::string link = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
    err = errno;
    ::close(fd);
    if (n < 0) {
        throwErrno("resolve cgroup with id " + std::to_string(id), err);
    }
    std::string path(buf, size_t(n));
    if (path.rfind(mount, 0) != 0) {  // "/" + relative path inside the mount namespace's view
        path = mount + (path == "/" ? "" : path);
    }
    return path;
}

std::optional<int> cgroupLevelOfId(uint64_t id) {
    static const std::string mount = cgroup2MountPoint();
    auto path = cgroupPathOfId(id);
    if (!path) {
        return std::nullopt;
    }
    std::string rel = path->substr(std::min(path->size(), mount.size()));
    int level = 0;
    for (size_t i = 0; i < rel.size(); ++i) {
        if (rel[i] == '/' && i + 1 < rel.size() && rel[i + 1] != '/') {
            ++level;
        }
    }
    return level;
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
