// Maps cgroup v2 directories to workloads by path glob or systemd unit name, and follows the
// tree with inotify so workloads appearing and disappearing are reported.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/unique_fd.hpp"

namespace ztseg::agent {

struct WorkloadPattern {
    std::string workload;
    // fnmatch glob (FNM_PATHNAME: '*' stays within one component) over the cgroup path relative
    // to the cgroup2 mount point, e.g. "system.slice/postgresql.service" or "ztlab/*/db".
    std::string cgroup_glob;
    // Matches any cgroup whose last path component equals it, e.g. "web.service".
    std::string systemd_unit;
};

struct CgroupMatch {
    std::string workload;
    std::string path;  // relative to the cgroup2 mount point (see CgroupWatcher), no leading '/'
    uint64_t cgroup_id = 0;

    bool operator==(const CgroupMatch&) const = default;
};

struct CgroupEvent {
    enum Kind { Appeared, Disappeared };
    Kind kind;
    CgroupMatch match;
};

class CgroupWatcher {
  public:
    static constexpr int kMaxDepth = 16;  // directories deeper below root are ignored

    // root: the cgroup2 mount point or a directory below it. Paths (and globs) are relative to
    // the mount point when root lies under it, else relative to root. Throws ztseg::Error if
    // inotify cannot be set up. Call scan() to start watching.
    CgroupWatcher(std::string root, std::vector<WorkloadPattern> patterns);

    // Walks the tree (adding inotify watches) and returns every matching cgroup, sorted by path.
    // Resets the watcher's view: later events are relative to this scan. A directory matching
    // several patterns goes to the first one (a warning is logged).
    std::vector<CgroupMatch> scan();

    // inotify fd (non-blocking), for poll/epoll.
    int fd() const { return inotify_.get(); }

    // Delivers pending differences (from setPatterns), then reads all pending inotify events
    // without blocking and reports matching cgroups that appeared or disappeared. On an inotify
    // queue overflow rescans and reports the differences.
    void process(const std::function<void(const CgroupEvent&)>& cb);

    // Full rescan, reporting differences from the current view.
    void rescan(const std::function<void(const CgroupEvent&)>& cb);

    // Replaces the patterns; the resulting differences are reported by the next process().
    void setPatterns(std::vector<WorkloadPattern> patterns);

    // The workload a path (relative, as in CgroupMatch::path) would be classified as, "" if none.
    std::string workloadOf(const std::string& rel) const {
        const WorkloadPattern* p = classify(rel);
        return p ? p->workload : std::string();
    }
    // Paths are relative to this directory (the cgroup2 mount point, normally).
    const std::string& base() const { return base_; }

    // Current matches by relative path.
    const std::map<std::string, CgroupMatch>& matches() const { return known_; }

  private:
    std::string absPath(const std::string& rel) const;
    // Workload for a relative path, or nullptr.
    const WorkloadPattern* classify(const std::string& rel) const;
    // Watches rel and its subdirectories (depth-bounded); adds matches to `found`.
    void addTree(const std::string& rel, int depth, std::map<std::string, CgroupMatch>& found);
    // Forgets rel and everything below it; reports known matches there as Disappeared.
    void removeTree(const std::string& rel, bool rm_watches, std::vector<CgroupEvent>& out);
    std::map<std::string, CgroupMatch> fullScan();
    void diffInto(std::map<std::string, CgroupMatch> now, std::vector<CgroupEvent>& out);
    static void deliver(std::vector<CgroupEvent>& events,
                        const std::function<void(const CgroupEvent&)>& cb);

    std::string root_;
    std::string base_;      // paths are relative to this
    std::string root_rel_;  // root relative to base_ ("" when root == base_)
    std::vector<WorkloadPattern> patterns_;
    UniqueFd inotify_;
    std::map<int, std::string> wd_to_rel_;
    std::map<std::string, int> rel_to_wd_;  // every watched directory
    std::map<std::string, CgroupMatch> known_;
    std::vector<CgroupEvent> pending_;
};

}  // namespace ztseg::agent
