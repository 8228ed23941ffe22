#include "agent/cgroup_watcher.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/cgroup.hpp"
#include "common/error.hpp"

namespace ztseg::agent {
namespace {

constexpr uint32_t kWatchMask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK;

struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
};

std::string trimSlashes(std::string s) {
    while (s.size() > 1 && s.back() == '/') {
        s.pop_back();
    }
    return s;
}

std::string join(const std::string& rel, const std::string& name) {
    return rel.empty() ? name : rel + "/" + name;
}

bool isUnder(const std::string& path, const std::string& rel) {
    return rel.empty() || path == rel ||
           (path.size() > rel.size() && path.compare(0, rel.size(), rel) == 0 &&
            path[rel.size()] == '/');
}

std::string lastComponent(const std::string& rel) {
    auto pos = rel.rfind('/');
    return pos == std::string::npos ? rel : rel.substr(pos + 1);
}

bool patternMatches(const WorkloadPattern& p, const std::string& rel) {
    if (!p.cgroup_glob.empty() && fnmatch(p.cgroup_glob.c_str(), rel.c_str(), FNM_PATHNAME) == 0) {
        return true;
    }
    return !p.systemd_unit.empty() && lastComponent(rel) == p.systemd_unit;
}

}  // namespace

CgroupWatcher::CgroupWatcher(std::string root, std::vector<WorkloadPattern> patterns)
    : root_(trimSlashes(std::move(root))), patterns_(std::move(patterns)) {
    base_ = root_;
    try {
        std::string mount = trimSlashes(cgroup2MountPoint());
        if (mount == "/" ? root_.rfind('/', 0) == 0 : isUnder(root_, mount)) {
            base_ = mount;
        }
    } catch (const Error& e) {
        spdlog::debug("cgroup watcher {}: no cgroup2 mount ({}); paths relative to root", root_,
                      e.what());
    }
    if (root_ != base_) {
        root_rel_ = root_.substr(base_ == "/" ? 1 : base_.size() + 1);
    }
    inotify_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_) {
        throwErrno("cgroup watcher " + root_ + ": inotify_init1", errno);
    }
}

std::string CgroupWatcher::absPath(const std::string& rel) const {
    if (rel.empty()) {
        return base_;
    }
    return base_ == "/" ? "/" + rel : base_ + "/" + rel;
}

const WorkloadPattern* CgroupWatcher::classify(const std::string& rel) const {
    if (rel.empty()) {
        return nullptr;
    }
    const WorkloadPattern* first = nullptr;
    for (const auto& p : patterns_) {
        if (!patternMatches(p, rel)) {
            continue;
        }
        if (!first) {
            first = &p;
        } else if (p.workload != first->workload) {
            spdlog::warn("cgroup {} matches workloads '{}' and '{}'; using '{}' (first pattern)",
                         rel, first->workload, p.workload, first->workload);
        }
    }
    return first;
}

void CgroupWatcher::addTree(const std::string& rel, int depth,
                            std::map<std::string, CgroupMatch>& found) {
    if (depth > kMaxDepth) {
        return;
    }
    const std::string abs = absPath(rel);
    // Watch first, then list: a child created in between shows up in one or both.
    int wd = inotify_add_watch(inotify_.get(), abs.c_str(), kWatchMask);
    if (wd < 0) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return;  // removed meanwhile
        }
        if (errno == ENOSPC) {
            spdlog::error(
                "cgroup watcher: cannot watch {}: inotify watch limit reached "
                "(fs.inotify.max_user_watches)",
                abs);
        } else {
            spdlog::error("cgroup watcher: cannot watch {}: {}", abs, std::strerror(errno));
        }
    } else {
        if (auto old = rel_to_wd_.find(rel); old != rel_to_wd_.end() && old->second != wd) {
            wd_to_rel_.erase(old->second);
        }
        wd_to_rel_[wd] = rel;
        rel_to_wd_[rel] = wd;
    }
    if (const WorkloadPattern* p = classify(rel)) {
        try {
            found[rel] = CgroupMatch{p->workload, rel, cgroupIdOf(abs)};
        } catch (const Error& e) {
            spdlog::debug("cgroup watcher: skipping {}: {}", rel, e.what());
            return;
        }
    }
    std::unique_ptr<DIR, DirCloser> dir(opendir(abs.c_str()));
    if (!dir) {
        return;  // removed meanwhile
    }
    while (const dirent* de = readdir(dir.get())) {
        std::string name = de->d_name;
        if (name == "." || name == "..") {
            continue;
        }
        bool is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            is_dir = fstatat(dirfd(dir.get()), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                     S_ISDIR(st.st_mode);
        }
        if (is_dir) {
            addTree(join(rel, name), depth + 1, found);
        }
    }
}

void CgroupWatcher::removeTree(const std::string& rel, bool rm_watches,
                               std::vector<CgroupEvent>& out) {
    for (auto it = rel_to_wd_.begin(); it != rel_to_wd_.end();) {
        if (isUnder(it->first, rel)) {
            if (rm_watches) {
                inotify_rm_watch(inotify_.get(), it->second);
            }
            wd_to_rel_.erase(it->second);
            it = rel_to_wd_.erase(it);
        } else {
            ++it;
        }
    }
    for (auto it = known_.begin(); it != known_.end();) {
        if (isUnder(it->first, rel)) {
            out.push_back({CgroupEvent::Disappeared, it->second});
            it = known_.erase(it);
        } else {
            ++it;
        }
    }
}

std::map<std::string, CgroupMatch> CgroupWatcher::fullScan() {
    struct stat st;
    if (stat(root_.c_str(), &st) != 0) {
        throwErrno("cgroup watcher: scan " + root_, errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        throw Error("cgroup watcher: scan " + root_ + ": not a directory");
    }
    std::map<std::string, CgroupMatch> found;
    addTree(root_rel_, 0, found);
    return found;
}

std::vector<CgroupMatch> CgroupWatcher::scan() {
    known_ = fullScan();
    pending_.clear();
    std::vector<CgroupMatch> out;
    out.reserve(known_.size());
    for (const auto& [rel, m] : known_) {
        out.push_back(m);
    }
    spdlog::debug("cgroup watcher {}: scan found {} matching cgroups, {} watched dirs", root_,
                  out.size(), rel_to_wd_.size());
    return out;
}

void CgroupWatcher::diffInto(std::map<std::string, CgroupMatch> now,
                             std::vector<CgroupEvent>& out) {
    for (const auto& [rel, old] : known_) {
        auto it = now.find(rel);
        if (it == now.end() || !(it->second == old)) {
            out.push_back({CgroupEvent::Disappeared, old});
        }
    }
    for (const auto& [rel, cur] : now) {
        auto it = known_.find(rel);
        if (it == known_.end() || !(it->second == cur)) {
            out.push_back({CgroupEvent::Appeared, cur});
        }
    }
    known_ = std::move(now);
}

void CgroupWatcher::deliver(std::vector<CgroupEvent>& events,
                            const std::function<void(const CgroupEvent&)>& cb) {
    std::vector<CgroupEvent> batch;
    batch.swap(events);
    for (const auto& ev : batch) {
        spdlog::info("cgroup {} (id {}) of workload '{}' {}", ev.match.path, ev.match.cgroup_id,
                     ev.match.workload,
                     ev.kind == CgroupEvent::Appeared ? "appeared" : "disappeared");
        cb(ev);
    }
}

void CgroupWatcher::rescan(const std::function<void(const CgroupEvent&)>& cb) {
    // Start from scratch so watches of vanished directories are forgotten.
    for (const auto& [wd, rel] : wd_to_rel_) {
        inotify_rm_watch(inotify_.get(), wd);
    }
    wd_to_rel_.clear();
    rel_to_wd_.clear();
    diffInto(fullScan(), pending_);
    deliver(pending_, cb);
}

void CgroupWatcher::setPatterns(std::vector<WorkloadPattern> patterns) {
    patterns_ = std::move(patterns);
    std::map<std::string, CgroupMatch> now;
    for (const auto& [rel, wd] : rel_to_wd_) {
        const WorkloadPattern* p = classify(rel);
        if (!p) {
            continue;
        }
        if (auto it = known_.find(rel); it != known_.end()) {
            now[rel] = CgroupMatch{p->workload, rel, it->second.cgroup_id};
            continue;
        }
        try {
            now[rel] = CgroupMatch{p->workload, rel, cgroupIdOf(absPath(rel))};
        } catch (const Error& e) {
            spdlog::debug("cgroup watcher: skipping {}: {}", rel, e.what());
        }
    }
    diffInto(std::move(now), pending_);
}

void CgroupWatcher::process(const std::function<void(const CgroupEvent&)>& cb) {
    alignas(inotify_event) char buf[65536];
    bool overflow = false;
    for (;;) {
        ssize_t n = read(inotify_.get(), buf, sizeof(buf));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            throwErrno("cgroup watcher " + root_ + ": read inotify events", errno);
        }
        for (ssize_t off = 0; off < n;) {
            const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
            off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
            if (ev->mask & IN_Q_OVERFLOW) {
                overflow = true;
                continue;
            }
            auto wit = wd_to_rel_.find(ev->wd);
            if (ev->mask & IN_IGNORED) {
                if (wit != wd_to_rel_.end()) {  // directory gone without a parent event
                    removeTree(wit->second, false, pending_);
                }
                continue;
            }
            if (wit == wd_to_rel_.end()) {
                continue;  // stale watch of a directory already forgotten
            }
            const std::string parent = wit->second;
            if (ev->mask & IN_DELETE_SELF) {
                removeTree(parent, false, pending_);
                continue;
            }
            if (!(ev->mask & IN_ISDIR) || ev->len == 0) {
                continue;
            }
            const std::string rel = join(parent, ev->name);
            if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
                removeTree(rel, (ev->mask & IN_MOVED_FROM) != 0, pending_);
            } else if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
                int depth = 0;
                const std::string below =
                    root_rel_.empty() ? rel
                                      : rel.substr(std::min(rel.size(), root_rel_.size() + 1));
                for (char c : below) {
                    depth += c == '/';
                }
                std::map<std::string, CgroupMatch> found;
                addTree(rel, depth + 1, found);
                for (auto& [r, m] : found) {
                    auto it = known_.find(r);
                    if (it == known_.end()) {
                        known_.emplace(r, m);
                        pending_.push_back({CgroupEvent::Appeared, m});
                    } else if (!(it->second == m)) {  // recreated under the same name
                        pending_.push_back({CgroupEvent::Disappeared, it->second});
                        it->second = m;
                        pending_.push_back({CgroupEvent::Appeared, m});
                    }
                }
            }
        }
    }
    if (overflow) {
        spdlog::warn("cgroup watcher {}: inotify queue overflow, rescanning", root_);
        rescan(cb);  // delivers what was pending too
        return;
    }
    deliver(pending_, cb);
}

}  // namespace ztseg::agent
