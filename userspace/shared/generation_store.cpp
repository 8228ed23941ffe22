#include "shared/generation_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.hpp"
#include "common/file.hpp"
#include "common/unique_fd.hpp"

namespace ztseg {
namespace {

constexpr const char* kGenerationFile = "highest-generation";
constexpr const char* kBundleFile = "bundle.pb";
constexpr const char* kPreviousFile = "previous-bundle.pb";
constexpr const char* kReturnPointFile = "confirm-return-bundle.pb";

}  // namespace

GenerationStore::GenerationStore(std::string state_dir) : dir_(std::move(state_dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
        throw Error("create state directory " + dir_ + ": " + ec.message());
    }
    ::chmod(dir_.c_str(), 0700);
}

uint64_t GenerationStore::highest() const {
    auto text = readFileIfExists(dir_ + "/" + kGenerationFile);
    if (!text) {
        return 0;
    }
    uint64_t v = 0;
    std::string t = *text;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) {
        t.pop_back();
    }
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc() || end != t.data() + t.size()) {
        // Fail closed: an unreadable record must not reopen the door to rollbacks.
        throw Error("state file " + dir_ + "/" + kGenerationFile + " is corrupt ('" + t +
                    "'); refusing to guess the highest applied generation");
    }
    return v;
}

void GenerationStore::checkNewer(uint64_t generation) const {
    uint64_t h = highest();
    if (generation <= h) {
        throw Error("generation " + std::to_string(generation) + " is not newer than " +
                    std::to_string(h) + ", the highest this host applied (rollback refused)");
    }
}

void GenerationStore::recordApplied(uint64_t generation, const std::string& bundle_bytes,
                                    bool keep_previous) {
    if (keep_previous) {
        if (::access((dir_ + "/" + kBundleFile).c_str(), F_OK) == 0) {
            linkAtomically(kBundleFile, kPreviousFile);
        } else {
            ::unlink((dir_ + "/" + kPreviousFile).c_str());
        }
    }
    writeAtomically(kBundleFile, bundle_bytes);
    writeAtomically(kGenerationFile, std::to_string(generation) + "\n");
}

void GenerationStore::recordCurrent(const std::string& bundle_bytes) {
    writeAtomically(kBundleFile, bundle_bytes);
}

std::optional<std::string> GenerationStore::currentBundle() const {
    return currentBundleIn(dir_);
}

std::optional<std::string> GenerationStore::previousBundle() const {
    return readFileIfExists(dir_ + "/" + kPreviousFile);
}

void GenerationStore::swapCurrentAndPrevious() {
    std::string swap = std::string(kBundleFile) + ".swap";
    linkAtomically(kBundleFile, swap);
    std::string prev = dir_ + "/" + kPreviousFile, cur = dir_ + "/" + kBundleFile;
    if (::rename(prev.c_str(), cur.c_str()) != 0) {
        int err = errno;
        ::unlink((dir_ + "/" + swap).c_str());
        throwErrno("rename " + prev + " to " + cur, err);
    }
    if (::rename((dir_ + "/" + swap).c_str(), prev.c_str()) != 0) {
        throwErrno("rename " + dir_ + "/" + swap + " to " + prev, errno);
    }
    syncDir();
}

void GenerationStore::keepReturnPoint() {
    linkAtomically(kBundleFile, kReturnPointFile);
    syncDir();
}

std::optional<std::string> GenerationStore::returnPointBundle() const {
    return readFileIfExists(dir_ + "/" + kReturnPointFile);
}

void GenerationStore::restoreReturnPoint() {
    linkAtomically(kBundleFile, kPreviousFile);
    std::string from = dir_ + "/" + kReturnPointFile, to = dir_ + "/" + kBundleFile;
    if (::rename(from.c_str(), to.c_str()) != 0) {
        throwErrno("rename " + from + " to " + to, errno);
    }
    syncDir();
}

void GenerationStore::dropReturnPoint() {
    removeRecord(kReturnPointFile);
}

std::optional<std::string> GenerationStore::readRecord(const std::string& name) const {
    return readFileIfExists(dir_ + "/" + name);
}

void GenerationStore::removeRecord(const std::string& name) const {
    std::string path = dir_ + "/" + name;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        throwErrno("remove " + path, errno);
    }
    syncDir();
}

// `to` becomes a second name of `from`'s file, replacing any file named `to`.
void GenerationStore::linkAtomically(const std::string& from, const std::string& to) const {
    std::string src = dir_ + "/" + from, tmp = dir_ + "/" + to + ".tmp", dst = dir_ + "/" + to;
    ::unlink(tmp.c_str());
    if (::link(src.c_str(), tmp.c_str()) != 0) {
        throwErrno("link " + src + " to " + tmp, errno);
    }
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throwErrno("rename " + tmp + " to " + dst, err);
    }
}

void GenerationStore::syncDir() const {
    UniqueFd d(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d) {
        ::fsync(d.get());
    }
}

int64_t GenerationStore::currentSinceUnixMs() const {
    struct stat st {};
    if (::stat((dir_ + "/" + kBundleFile).c_str(), &st) != 0) {
        return 0;
    }
    return int64_t(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

std::optional<std::string> GenerationStore::currentBundleIn(const std::string& state_dir) {
    return readFileIfExists(state_dir + "/" + kBundleFile);
}

void GenerationStore::writeAtomically(const std::string& name, const std::string& data) const {
    std::string path = dir_ + "/" + name;
    std::string tmp = path + ".tmp";
    {
        UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!fd) {
            throwErrno("write " + tmp, errno);
        }
        size_t off = 0;
        while (off < data.size()) {
            ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                int err = errno;
                ::unlink(tmp.c_str());
                throwErrno("write " + tmp, err);
            }
            off += size_t(n);
        }
        if (::fsync(fd.get()) != 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            throwErrno("fsync " + tmp, err);
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        throwErrno("rename " + tmp + " to " + path, err);
    }
    syncDir();
}

}  // namespace ztseg
