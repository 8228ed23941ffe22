#!/usr/bin/env bash
# Per-packet cost of the XDP and cgroup_skb paths, before (REV) and after (this
# tree), measured in one run: bench/hook_cost.cpp is built against REV (a
# temporary git worktree) and against this tree, then both binaries run
# alternately, ROUNDS times each (order flipped every round), so machine drift
# hits both sides alike. Prints per case: before ns, after ns (medians over
# rounds of each round's median), after/before, and the min–max of the
# per-round ratios.
#
#   sudo bench/compare_revisions.sh REV
#
# Environment: ROUNDS (5), HOOKS_ARGS (ztseg_bench_hooks options per run,
# default "--runs 3 --repeat 1000000 --distinct 10000"), BUILD_DIR (this
# tree's build dir, default build-bench), REV_BUILD_ROOT (default
# build-bench-rev: REV is built in REV_BUILD_ROOT/<sha>, kept between runs so
# that a re-run compiles only what changed), KEEP_CSV (a directory: the raw
# per-run CSV files are copied there).
# Needs root (BPF_PROG_TEST_RUN, cgroups). Measuring takes ~2-3 minutes; the
# first build of REV takes as long as any fresh build.
set -euo pipefail

usage() { echo "usage: $0 REV   (see the comment at the top)" >&2; exit 2; }
[[ $# -eq 1 ]] || usage
REV=$1
ROUNDS=${ROUNDS:-5}
HOOKS_ARGS=${HOOKS_ARGS:---runs 3 --repeat 1000000 --distinct 10000}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$here/build-bench}
REV_BUILD_ROOT=${REV_BUILD_ROOT:-$here/build-bench-rev}
if [[ $EUID -ne 0 ]]; then
    echo "$0: needs root (BPF_PROG_TEST_RUN, cgroups)" >&2
    exit 1
fi

rev_sha=$(git -C "$here" rev-parse --verify "$REV^{commit}")
head_sha=$(git -C "$here" rev-parse HEAD)
short=${rev_sha:0:12}
# A fixed path per revision: the build dir (which records absolute source
# paths) stays valid from one run to the next.
wt=${TMPDIR:-/tmp}/ztseg-bench-rev-$short
rev_build=$REV_BUILD_ROOT/$short
tmp=$(mktemp -d)

cleanup() {
    rm -rf "$tmp"
    if [[ -d $wt ]]; then
        git -C "$here" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
    fi
    git -C "$here" worktree prune 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[compare_revisions] $*" >&2; }

# ---- the REV tree: a worktree with today's hook_cost.cpp and its CMake block
if [[ -d $wt ]]; then
    git -C "$here" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
    git -C "$here" worktree prune
fi
log "worktree of $short at $wt"
git -C "$here" worktree add --detach --quiet "$wt" "$rev_sha"
# Every file as old as the commit: objects kept in $rev_build from an earlier
# run stay up to date (same sources), so only what is copied below can rebuild.
commit_time=$(git -C "$here" log -1 --format=%ct "$rev_sha")
(cd "$wt" && git ls-files -z | xargs -0 touch -h -d "@$commit_time")
cp -p "$here/bench/hook_cost.cpp" "$wt/bench/hook_cost.cpp"
if ! grep -q ztseg_bench_hooks "$wt/bench/CMakeLists.txt"; then
    block=$(sed -n '/^# >>> ztseg_bench_hooks/,/^# <<< ztseg_bench_hooks/p' "$here/bench/CMakeLists.txt")
    [[ -n $block ]] || { echo "$0: no ztseg_bench_hooks block in bench/CMakeLists.txt" >&2; exit 1; }
    printf '\n%s\n' "$block" >>"$wt/bench/CMakeLists.txt"
    touch -r "$here/bench/CMakeLists.txt" "$wt/bench/CMakeLists.txt"
fi

build() {  # source dir, build dir
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$tmp/cmake.log" 2>&1 &&
        cmake --build "$2" -j2 --target ztseg_bench_hooks >>"$tmp/cmake.log" 2>&1
}

log "building ztseg_bench_hooks at $short in $rev_build"
if ! build "$wt" "$rev_build"; then
    tail -40 "$tmp/cmake.log" >&2
    echo "$0: build of $short failed" >&2
    exit 1
fi
# This tree may be mid-edit by someone else: retry a failed build after a minute.
for attempt in 1 2 3; do
    log "building ztseg_bench_hooks here (HEAD ${head_sha:0:12}) in $BUILD_DIR, attempt $attempt"
    if build "$here" "$BUILD_DIR"; then
        break
    fi
    tail -20 "$tmp/cmake.log" >&2
    if [[ $attempt -eq 3 ]]; then
        echo "$0: build of this tree failed" >&2
        exit 1
    fi
    sleep 60
done
dirty=$(git -C "$here" status --porcelain --untracked-files=no -- . ':!bench' ':!docs/bench.md' || true)

before_bin=$rev_build/bench/ztseg_bench_hooks
after_bin=$BUILD_DIR/bench/ztseg_bench_hooks

# ---- measure: BEFORE and AFTER alternately
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order="before after"; else order="after before"; fi
    for side in $order; do
        bin=$before_bin
        [[ $side == after ]] && bin=$after_bin
        log "round $r/$ROUNDS: $side"
        # shellcheck disable=SC2086
        "$bin" $HOOKS_ARGS --csv "$tmp/$side-$r.csv" >"$tmp/$side-$r.md"
    done
done
if [[ -n ${KEEP_CSV:-} ]]; then
    mkdir -p "$KEEP_CSV"
    cp "$tmp"/*-*.csv "$KEEP_CSV"/
fi

# ---- report
echo "## hook cost: $short (before) vs ${head_sha:0:12} (after)"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'), kernel $(uname -r), $(nproc) CPUs"
echo "- before: $rev_sha ($(git -C "$here" log -1 --format=%s "$rev_sha" | cut -c1-60)...)"
echo "- after: $head_sha$( [[ -n $dirty ]] && echo " + uncommitted changes in: $(echo "$dirty" | awk '{print $2}' | tr '\n' ' ')")"
echo "- $ROUNDS rounds, alternating; per run: ztseg_bench_hooks $HOOKS_ARGS"
echo
awk -F, -v rounds="$ROUNDS" '
function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
function median(a, n) { sort(a, n); return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
FNR == 1 { split(FILENAME, p, "/"); f = p[length(p)]; side = substr(f, 1, index(f, "-") - 1); r = substr(f, index(f, "-") + 1) + 0; next }
{
    if (!($1 in label)) { order[++n] = $1; label[$1] = $4 }
    v[side, $1, r] = $5
}
END {
    print "| case | before ns/pkt | after ns/pkt | after / before | per-round ratio min–max |"
    print "|---|---:|---:|---:|---:|"
    for (i = 1; i <= n; i++) {
        k = order[i]; nb = na = nr = 0; lo = 1e9; hi = 0
        for (rr = 1; rr <= rounds; rr++) {
            if ((("before", k, rr) in v)) b[++nb] = v["before", k, rr]
            if ((("after", k, rr) in v)) a[++na] = v["after", k, rr]
            if ((("before", k, rr) in v) && (("after", k, rr) in v) && v["before", k, rr] > 0) {
                q = v["after", k, rr] / v["before", k, rr]
                if (q < lo) lo = q
                if (q > hi) hi = q
                nr++
            }
        }
        if (!nb || !na) { printf "| %s | %s | %s | — | — |\n", label[k], nb ? "" : "missing", na ? "" : "missing"; continue }
        mb = median(b, nb); ma = median(a, na)
        printf "| %s | %.1f | %.1f | %.2f× | %.2f–%.2f |\n", label[k], mb, ma, ma / mb, lo, hi
    }
}' "$tmp"/before-*.csv "$tmp"/after-*.csv
echo
echo "ns/packet: median over rounds of each run's median (repeated cases: kernel-reported whole ns"
echo "per packet; distinct-flow cases: mean of packets run once each, incl. timer reads)."
