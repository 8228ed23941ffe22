#include "common/unix_socket.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/error.hpp"
#include "common/unique_fd.hpp"

namespace ztseg {

void prepareUnixSocket(const std::string& path, const std::string& what) {
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path)) {
        throw Error(what + " " + path + ": path too long");
    }
    namespace fs = std::filesystem;
    fs::path dir = fs::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !fs::exists(dir, ec)) {
        fs::create_directories(dir, ec);
        if (ec || ::chmod(dir.c_str(), 0700) != 0) {
            throw Error(what + ": create " + dir.string() + ": " +
                        (ec ? ec.message() : std::strerror(errno)));
        }
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        return;
    }
    if (!S_ISSOCK(st.st_mode)) {
        throw Error(what + " " + path + " exists and is not a socket");
    }
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size());
    if (fd && ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
        throw Error(what + " " + path + " is served by another process (already running?)");
    }
    ::unlink(path.c_str());
}

}  // namespace ztseg
