#include "datapath/pins.hpp"

#include <bpf/bpf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/error.hpp"

namespace ztseg::pins {

std::string mapsDir(const std::string& pin) {
    return pin + "/maps";
}
std::string progsDir(const std::string& pin) {
    return pin + "/progs";
}
std::string linksDir(const std::string& pin) {
    return pin + "/links";
}
std::string xdpLinkPin(const std::string& pin, const std::string& ifname) {
    return linksDir(pin) + "/xdp-" + ifname;
}
std::string cgroupLinkPin(const std::string& pin, uint64_t cgid, const char* hook) {
    return linksDir(pin) + "/cg-" + std::to_string(cgid) + "-" + hook;
}

void mkdirOrThrow(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
        throwErrno("create directory " + path, errno);
    }
}

UniqueFd openPinnedObject(const std::string& path, const std::string& what) {
    int fd = bpf_obj_get(path.c_str());
    if (fd < 0) {
        throwErrno("open pinned " + what + " at " + path, errno);
    }
    return UniqueFd(fd);
}

void detachPinnedLink(const std::string& path) {
    int fd = bpf_obj_get(path.c_str());
    if (fd >= 0) {
        UniqueFd link(fd);
        // Tracing links cannot be detached (EOPNOTSUPP): removing the pin
        // drops the last reference, which detaches them.
        if (bpf_link_detach(link.get()) != 0 && errno != ENOLINK && errno != EINVAL &&
            errno != EOPNOTSUPP) {
            throwErrno("detach link " + path, errno);
        }
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        throwErrno("remove pin " + path, errno);
    }
}

}  // namespace ztseg::pins
