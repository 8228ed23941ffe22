#include "common/file.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.hpp"

namespace ztseg {

std::optional<std::string> readFileIfExists(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        throwErrno("read " + path, errno);
    }
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::string readFile(const std::string& path, const std::string& what) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        throw Error("read " + (what.empty() ? "" : what + " ") + path + ": " +
                    std::strerror(errno));
    }
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace ztseg
