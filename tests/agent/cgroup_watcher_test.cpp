// CgroupWatcher against the real cgroup2 hierarchy, in a private test subtree per test.
#include "agent/cgroup_watcher.hpp"

#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>
#include <stdexcept>

#include "common/cgroup.hpp"
#include "common/error.hpp"
#include "common/lab.hpp"

namespace ztseg::agent {
namespace {

using namespace std::chrono_literals;

// rmdir dir after its sub-cgroups (children first); never throws.
void removeCgroupTree(const std::string& dir) noexcept {
    if (DIR* d = opendir(dir.c_str())) {
        std::vector<std::string> subdirs;
        while (const dirent* de = readdir(d)) {
            if (de->d_type == DT_DIR && std::strcmp(de->d_name, ".") != 0 &&
                std::strcmp(de->d_name, "..") != 0) {
                subdirs.push_back(dir + "/" + de->d_name);
            }
        }
        closedir(d);
        for (const auto& s : subdirs) {
            removeCgroupTree(s);
        }
    }
    rmdir(dir.c_str());
}

// A test cgroup subtree <mount>/<unique>, removed with everything below it on destruction.
class CgroupTree {
  public:
    CgroupTree() : mount_(cgroup2MountPoint()), name_(test::uniqueName("ztcgw")) { mkdirRel(""); }
    ~CgroupTree() { removeCgroupTree(abs("")); }
    CgroupTree(const CgroupTree&) = delete;
    CgroupTree& operator=(const CgroupTree&) = delete;

    const std::string& mount() const { return mount_; }
    const std::string& name() const { return name_; }  // relative to the mount point
    std::string rel(const std::string& sub) const {
        return sub.empty() ? name_ : name_ + "/" + sub;
    }
    std::string abs(const std::string& sub) const { return mount_ + "/" + rel(sub); }
    void mkdirRel(const std::string& sub) const {
        if (mkdir(abs(sub).c_str(), 0755) != 0) {
            throw std::runtime_error("mkdir " + abs(sub) + ": " + std::strerror(errno));
        }
    }
    void rmdirRel(const std::string& sub) const {
        if (rmdir(abs(sub).c_str()) != 0) {
            throw std::runtime_error("rmdir " + abs(sub) + ": " + std::strerror(errno));
        }
    }
    uint64_t inode(const std::string& sub) const {
        struct stat st;
        if (stat(abs(sub).c_str(), &st) != 0) {
            throw std::runtime_error("stat " + abs(sub) + ": " + std::strerror(errno));
        }
        return st.st_ino;
    }

  private:
    std::string mount_;
    std::string name_;
};

std::vector<CgroupEvent> collect(CgroupWatcher& w, size_t want,
                                 std::chrono::milliseconds timeout = 3000ms) {
    std::vector<CgroupEvent> got;
    w.process([&](const CgroupEvent& ev) { got.push_back(ev); });  // pending diffs
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.size() < want) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left <= 0ms) {
            break;
        }
        pollfd pfd{w.fd(), POLLIN, 0};
        if (poll(&pfd, 1, static_cast<int>(left.count())) > 0) {
            w.process([&](const CgroupEvent& ev) { got.push_back(ev); });
        }
    }
    return got;
}

std::vector<CgroupEvent> drain(CgroupWatcher& w) {
    return collect(w, SIZE_MAX, 300ms);
}

std::set<std::string> paths(const std::vector<CgroupEvent>& evs, CgroupEvent::Kind kind) {
    std::set<std::string> out;
    for (const auto& e : evs) {
        if (e.kind == kind) {
            out.insert(e.match.path);
        }
    }
    return out;
}

TEST(CgroupWatcherTest, ScanFindsMatchesWithIds) {
    CgroupTree t;
    for (const char* d : {"a", "a/db", "a/web", "b", "b/db", "b/db/inner", "c"}) {
        t.mkdirRel(d);
    }
    CgroupWatcher w(t.abs(""), {{"db", t.name() + "/*/db", ""}, {"c", t.name() + "/c", ""}});
    auto found = w.scan();
    ASSERT_EQ(found.size(), 3u);  // sorted by path
    EXPECT_EQ(found[0], (CgroupMatch{"db", t.rel("a/db"), t.inode("a/db")}));
    EXPECT_EQ(found[1], (CgroupMatch{"db", t.rel("b/db"), t.inode("b/db")}));
    EXPECT_EQ(found[2], (CgroupMatch{"c", t.rel("c"), t.inode("c")}));
    EXPECT_EQ(found[0].cgroup_id, cgroupIdOf(t.abs("a/db")));
    EXPECT_TRUE(drain(w).empty());
}

TEST(CgroupWatcherTest, FirstPatternWinsOnOverlap) {
    CgroupTree t;
    t.mkdirRel("x");
    CgroupWatcher w(t.abs(""), {{"first", t.name() + "/*", ""}, {"second", t.name() + "/x", ""}});
    auto found = w.scan();
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0].workload, "first");
}

TEST(CgroupWatcherTest, MkdirAndRmdirAreReported) {
    CgroupTree t;
    t.mkdirRel("a");
    CgroupWatcher w(t.abs(""), {{"db", t.name() + "/*/db", ""}});
    EXPECT_TRUE(w.scan().empty());

    t.mkdirRel("a/db");
    auto evs = collect(w, 1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, CgroupEvent::Appeared);
    EXPECT_EQ(evs[0].match, (CgroupMatch{"db", t.rel("a/db"), t.inode("a/db")}));

    t.mkdirRel("a/web");  // not matching
    EXPECT_TRUE(drain(w).empty());

    const uint64_t id = t.inode("a/db");
    t.rmdirRel("a/db");
    evs = collect(w, 1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, CgroupEvent::Disappeared);
    EXPECT_EQ(evs[0].match, (CgroupMatch{"db", t.rel("a/db"), id}));
    EXPECT_TRUE(drain(w).empty());
    EXPECT_TRUE(w.matches().empty());
}

TEST(CgroupWatcherTest, NewDirectoriesAreWatchedRecursively) {
    CgroupTree t;
    CgroupWatcher w(t.abs(""), {{"db", t.name() + "/*/*/db", ""}});
    EXPECT_TRUE(w.scan().empty());
    t.mkdirRel("p");
    t.mkdirRel("p/q");
    t.mkdirRel("p/q/db");  // may be created before the watcher sees p: still found
    auto evs = collect(w, 1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, CgroupEvent::Appeared);
    EXPECT_EQ(evs[0].match.path, t.rel("p/q/db"));
    EXPECT_TRUE(drain(w).empty());

    t.mkdirRel("p/r");  // new dir, created after the watcher processed p
    EXPECT_TRUE(drain(w).empty());
    t.mkdirRel("p/r/db");
    evs = collect(w, 1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].match.path, t.rel("p/r/db"));
    EXPECT_EQ(evs[0].match.cgroup_id, t.inode("p/r/db"));

    // Removing a whole subtree (children first, as the kernel requires).
    t.rmdirRel("p/q/db");
    t.rmdirRel("p/q");
    t.rmdirRel("p/r/db");
    evs = collect(w, 2);
    EXPECT_EQ(paths(evs, CgroupEvent::Disappeared),
              (std::set<std::string>{t.rel("p/q/db"), t.rel("p/r/db")}));
    EXPECT_EQ(evs.size(), 2u);
}

TEST(CgroupWatcherTest, SystemdUnitMatchesLastComponentAnywhere) {
    CgroupTree t;
    const std::string unit = t.name() + "-web.service";
    t.mkdirRel("s");
    t.mkdirRel("s/" + unit);
    t.mkdirRel("s/" + unit + "x");  // near miss
    // Watch the whole hierarchy from the mount point, as the agent does.
    CgroupWatcher w(t.mount(), {{"web", "", unit}});
    auto found = w.scan();
    ASSERT_EQ(found.size(), 1u);
    EXPECT_EQ(found[0], (CgroupMatch{"web", t.rel("s/" + unit), t.inode("s/" + unit)}));

    t.mkdirRel(unit);
    auto evs = collect(w, 1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, CgroupEvent::Appeared);
    EXPECT_EQ(evs[0].match.path, t.rel(unit));
    t.rmdirRel(unit);
    evs = collect(w, 1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, CgroupEvent::Disappeared);
}

TEST(CgroupWatcherTest, SetPatternsReportsDifferences) {
    CgroupTree t;
    for (const char* d : {"a", "b", "c"}) {
        t.mkdirRel(d);
    }
    CgroupWatcher w(t.abs(""), {{"A", t.name() + "/a", ""}, {"B", t.name() + "/b", ""}});
    ASSERT_EQ(w.scan().size(), 2u);
    // b changes workload, a goes, c comes.
    w.setPatterns({{"B2", t.name() + "/b", ""}, {"C", t.name() + "/c", ""}});
    auto evs = collect(w, 4, 500ms);
    ASSERT_EQ(evs.size(), 4u);
    std::set<std::pair<std::string, std::string>> gone, came;
    for (const auto& e : evs) {
        (e.kind == CgroupEvent::Appeared ? came : gone).insert({e.match.workload, e.match.path});
    }
    EXPECT_EQ(gone, (std::set<std::pair<std::string, std::string>>{{"A", t.rel("a")},
                                                                   {"B", t.rel("b")}}));
    EXPECT_EQ(came, (std::set<std::pair<std::string, std::string>>{{"B2", t.rel("b")},
                                                                   {"C", t.rel("c")}}));
    EXPECT_EQ(evs[2].match.cgroup_id == 0, false);
    // New patterns apply to later events too.
    t.mkdirRel("c/d");
    EXPECT_TRUE(drain(w).empty());
    t.rmdirRel("c/d");
    t.rmdirRel("c");
    evs = collect(w, 1);
    ASSERT_EQ(evs.size(), 1u);
    EXPECT_EQ(evs[0].kind, CgroupEvent::Disappeared);
    EXPECT_EQ(evs[0].match.workload, "C");
}

TEST(CgroupWatcherTest, RescanReportsMissedChanges) {
    CgroupTree t;
    t.mkdirRel("old");
    CgroupWatcher w(t.abs(""), {{"any", t.name() + "/*", ""}});
    ASSERT_EQ(w.scan().size(), 1u);
    t.rmdirRel("old");
    t.mkdirRel("new");
    std::vector<CgroupEvent> evs;
    w.rescan([&](const CgroupEvent& e) { evs.push_back(e); });  // without reading inotify
    EXPECT_EQ(paths(evs, CgroupEvent::Disappeared), (std::set<std::string>{t.rel("old")}));
    EXPECT_EQ(paths(evs, CgroupEvent::Appeared), (std::set<std::string>{t.rel("new")}));
    EXPECT_EQ(evs.size(), 2u);
    EXPECT_TRUE(drain(w).empty());  // the queued inotify events are no news
}

TEST(CgroupWatcherTest, MissingRootThrows) {
    CgroupWatcher w("/sys/fs/cgroup/ztcgw-does-not-exist", {});
    EXPECT_THROW(w.scan(), Error);
}

}  // namespace
}  // namespace ztseg::agent
