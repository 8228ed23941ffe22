#include "flows/jsonl_sink.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "common/error.hpp"
#include "flows/ocsf.hpp"

namespace ztseg::flows {

JsonlSink::JsonlSink(Options opts) : opts_(std::move(opts)) {
    if (opts_.path.empty()) {
        throw Error("flow log: create sink: path is empty");
    }
    std::lock_guard lock(mu_);
    int err = 0;
    if (!openLocked(err)) {
        spdlog::warn("flow log {}: cannot open yet: {}; will retry on every write", opts_.path,
                     std::strerror(err));
    }
}

JsonlSink::~JsonlSink() {
    std::lock_guard lock(mu_);
    closeLocked();
}

void JsonlSink::closeLocked() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

bool JsonlSink::openLocked(int& err) {
    closeLocked();
    int fd = ::open(opts_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        err = errno;
        return false;
    }
    struct stat st {};
    size_ = (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) ? uint64_t(st.st_size) : 0;
    fd_ = fd;
    return true;
}

void JsonlSink::rotateLocked() {
    closeLocked();
    const std::string& p = opts_.path;
    if (opts_.max_files == 0) {
        ::unlink(p.c_str());
        return;
    }
    std::string oldest = p + "." + std::to_string(opts_.max_files);
    ::unlink(oldest.c_str());
    for (unsigned i = opts_.max_files - 1; i >= 1; --i) {
        std::string from = p + "." + std::to_string(i);
        std::string to = p + "." + std::to_string(i + 1);
        ::rename(from.c_str(), to.c_str());  // ENOENT while files accumulate: fine
    }
    if (::rename(p.c_str(), (p + ".1").c_str()) != 0) {
        spdlog::warn("flow log {}: rotate: {}", p, std::strerror(errno));
    }
}

void JsonlSink::failLocked(int err, const char* what) {
    ++lost_;
    if (burst_lost_++ == 0) {
        spdlog::error(
            "flow log {}: {}: {}; flow records are being lost (counted) until writes "
            "succeed again",
            opts_.path, what, std::strerror(err));
    }
}

bool JsonlSink::write(const FlowRecord& r) {
    std::string line;
    try {
        line = toOcsfLine(r);
    } catch (const std::exception& e) {
        std::lock_guard lock(mu_);
        ++lost_;
        spdlog::error("flow log {}: cannot encode record: {}", opts_.path, e.what());
        return false;
    }
    return writeLine(line);
}

bool JsonlSink::writeLine(const std::string& text) {
    std::string line = text + "\n";
    std::lock_guard lock(mu_);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (fd_ < 0) {
            int err = 0;
            if (!openLocked(err)) {
                failLocked(err, "open");
                return false;
            }
        }
        if (attempt == 0 && opts_.max_bytes > 0 && size_ > 0 &&
            size_ + line.size() > opts_.max_bytes) {
            rotateLocked();  // closes the file; the second round opens a fresh one
            continue;
        }
        break;
    }
    const uint64_t before = size_;
    size_t done = 0;
    while (done < line.size()) {
        ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            if (done > 0) {
                // Never leave half a line behind: the next record starts clean.
                if (::ftruncate(fd_, off_t(before)) != 0) {
                    spdlog::debug("flow log {}: truncate partial line: {}", opts_.path,
                                  std::strerror(errno));
                }
            }
            closeLocked();  // reopen on the next write: the file may be gone or replaced
            failLocked(err, "write");
            return false;
        }
        done += size_t(n);
    }
    size_ += line.size();
    ++written_;
    if (burst_lost_ > 0) {
        spdlog::info("flow log {}: writing again after {} lost records", opts_.path, burst_lost_);
        burst_lost_ = 0;
    }
    return true;
}

void JsonlSink::flush() {
    std::lock_guard lock(mu_);
    if (fd_ >= 0) {
        ::fdatasync(fd_);
    }
}

void JsonlSink::setPath(std::string path) {
    if (path.empty()) {
        throw Error("flow log: set path: path is empty");
    }
    std::lock_guard lock(mu_);
    closeLocked();
    opts_.path = std::move(path);
    int err = 0;
    if (!openLocked(err)) {
        spdlog::warn("flow log {}: cannot open yet: {}; will retry on every write", opts_.path,
                     std::strerror(err));
    }
}

uint64_t JsonlSink::written() const {
    std::lock_guard lock(mu_);
    return written_;
}

uint64_t JsonlSink::lost() const {
    std::lock_guard lock(mu_);
    return lost_;
}

std::string JsonlSink::path() const {
    std::lock_guard lock(mu_);
    return opts_.path;
}

}  // namespace ztseg::flows
