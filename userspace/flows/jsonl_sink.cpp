#include "flows/jsonl_sink.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

void JsonlSink::deletedLocked(uint64_t first, uint64_t end) {
    rotated_undelivered_ += end - std::clamp(delivered_, first, end);
}

void JsonlSink::rotateLocked() {
    closeLocked();
    const std::string& p = opts_.path;
    const std::pair<uint64_t, uint64_t> current{file_first_, written_};
    file_first_ = written_;
    if (opts_.max_files == 0) {
        ::unlink(p.c_str());
        deletedLocked(current.first, current.second);
        return;
    }
    std::string oldest = p + "." + std::to_string(opts_.max_files);
    ::unlink(oldest.c_str());
    if (rotated_.size() >= opts_.max_files) {
        deletedLocked(rotated_.back().first, rotated_.back().second);
        rotated_.pop_back();
    }
    rotated_.push_front(current);
    for (unsigned i = opts_.max_files - 1; i >= 1; --i) {
        std::string from = p + "." + std::to_string(i);
        std::string to = p + "." + std::to_string(i + 1);
        ::rename(from.c_str(), to.c_str());  // ENOENT while files accumulate: fine
    }
    if (::rename(p.c_str(), (p + ".1").c_str()) != 0) {
        spdlog::warn("flow log {}: rotate: {}", p, std::strerror(errno));
    }
}

void JsonlSink::Lines::clear() {
    text_.clear();
    ends_.clear();
    unrendered_ = 0;
    first_error_.clear();
}

void JsonlSink::failLocked(uint64_t lines, int err, const char* what) {
    if (lines == 0) {
        return;
    }
    lost_ += lines;
    if (burst_lost_ == 0) {
        spdlog::error(
            "flow log {}: {}: {}; flow records are being lost (counted) until writes "
            "succeed again",
            opts_.path, what, std::strerror(err));
    }
    burst_lost_ += lines;
}

// Writes lines [first, end) of the batch (they start at chunk_start) in as
// few write() calls as the kernel allows.
bool JsonlSink::writeChunkLocked(const Lines& lines, size_t first, size_t end,
                                 size_t& chunk_start) {
    if (first == end) {
        return true;
    }
    const std::vector<size_t>& ends = lines.ends_;
    const size_t bytes = ends[end - 1] - chunk_start;
    const char* data = lines.text_.data() + chunk_start;
    const uint64_t before = size_;
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = ::write(fd_, data + done, bytes - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            // Lines wholly written stay; a torn last line is cut off so the
            // next record starts clean.
            size_t whole = first, whole_bytes = 0;
            while (whole < end && ends[whole] - chunk_start <= done) {
                whole_bytes = ends[whole] - chunk_start;
                ++whole;
            }
            if (done > whole_bytes && ::ftruncate(fd_, off_t(before + whole_bytes)) != 0) {
                spdlog::debug("flow log {}: truncate partial line: {}", opts_.path,
                              std::strerror(errno));
            }
            size_ = before + whole_bytes;
            written_ += whole - first;
            closeLocked();  // reopen next time: the file may be gone or replaced
            failLocked(end - whole, err, "write");
            return false;
        }
        done += size_t(n);
    }
    size_ += bytes;
    written_ += end - first;
    chunk_start = ends[end - 1];
    if (burst_lost_ > 0) {
        spdlog::info("flow log {}: writing again after {} lost records", opts_.path, burst_lost_);
        burst_lost_ = 0;
    }
    return true;
}

void JsonlSink::writeLocked(Lines& lines, bool delivered) {
    if (lines.unrendered_ > 0) {
        lost_ += lines.unrendered_;
        spdlog::error("flow log {}: cannot encode {} record(s): {}", opts_.path, lines.unrendered_,
                      lines.first_error_);
    }
    const std::vector<size_t>& ends = lines.ends_;
    const size_t n = ends.size();
    size_t first = 0, chunk_start = 0;
    int err = 0;
    for (size_t i = 0; i < n; ++i) {
        if (fd_ < 0 && !openLocked(err)) {
            failLocked(n - first, err, "open");
            break;
        }
        // Rotate before a line that would take a non-empty file past max_bytes.
        const size_t line_start = i == 0 ? 0 : ends[i - 1];
        const uint64_t size_at_line = size_ + (line_start - chunk_start);
        if (opts_.max_bytes > 0 && size_at_line > 0 &&
            size_at_line + (ends[i] - line_start) > opts_.max_bytes) {
            if (!writeChunkLocked(lines, first, i, chunk_start)) {
                failLocked(n - i, EIO, "write");
                break;
            }
            if (delivered) {
                delivered_ = std::max(delivered_, written_);
            }
            rotateLocked();  // closes the file; the fresh one opens below
            first = i;
            if (!openLocked(err)) {
                failLocked(n - first, err, "open");
                break;
            }
        }
        if (i + 1 == n) {
            writeChunkLocked(lines, first, n, chunk_start);  // counts its own losses
        }
    }
    if (delivered) {
        delivered_ = std::max(delivered_, written_);
    }
    lines.clear();
}

void JsonlSink::write(Lines& lines, bool delivered) {
    std::lock_guard lock(mu_);
    writeLocked(lines, delivered);
}

bool JsonlSink::write(const FlowRecord& r) {
    std::lock_guard lock(mu_);
    single_.add([&](TextBuffer& out) { appendOcsfLine(r, out); });
    const uint64_t lost_before = lost_;
    writeLocked(single_);
    return lost_ == lost_before;
}

bool JsonlSink::writeLine(const std::string& text) {
    std::lock_guard lock(mu_);
    single_.add([&](TextBuffer& out) { out.append(text); });
    const uint64_t lost_before = lost_;
    writeLocked(single_);
    return lost_ == lost_before;
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
    rotated_.clear();  // another set of files
    file_first_ = written_;
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

void JsonlSink::markDelivered(uint64_t lines) {
    std::lock_guard lock(mu_);
    delivered_ = std::max(delivered_, lines);
}

uint64_t JsonlSink::rotatedUndelivered() const {
    std::lock_guard lock(mu_);
    return rotated_undelivered_;
}

std::string JsonlSink::path() const {
    std::lock_guard lock(mu_);
    return opts_.path;
}

}  // namespace ztseg::flows
