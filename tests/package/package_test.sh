#!/bin/bash
# The Debian package end to end (ctest "package", docs/install.md): build it
# from this build tree with cpack, check its files and metadata, install it
# on this machine, verify the units, run the installed ztsegd on a namespace
# lab with the installed config (only the lines the lab needs changed),
# apply a policy with the installed ztsegctl and check it enforces, then
# `dpkg -r` (pins keep enforcing, conffiles stay) and `dpkg --purge` (nothing
# of ztseg is left). Root only. Everything is undone on any exit.
# usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tag=zpk$$                              # unique lab names (<= 15 chars)
ns=${tag}h peer=${tag}p                # the "host" where ztsegd runs, a client
dev=${tag}a peer_dev=${tag}b
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
cg=$cg2/$tag                           # cgroup_root; workload db in $cg/db
pins=/sys/fs/bpf/$tag
host_ip=10.77.0.1 peer_ip=10.77.0.2
work=$(mktemp -d /tmp/ztseg-package-XXXXXX)
installed_by_us=0
daemon_pid=""
server_pids=()
started=$(date +%s)

step() { echo "== $*"; }
fail() {
    echo "FAIL: $*" >&2
    if [ -s "$work/ztsegd.log" ]; then
        echo "---- ztsegd log ----" >&2
        cat "$work/ztsegd.log" >&2
    fi
    exit 1
}

cleanup() {
    set +e
    [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
    for p in "${server_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    if [ "$installed_by_us" = 1 ] && dpkg-query -W ztseg >/dev/null 2>&1; then
        dpkg --purge ztseg >/dev/null 2>&1 || echo "cleanup: dpkg --purge ztseg failed" >&2
    fi
    ip netns del "$ns" 2>/dev/null
    ip netns del "$peer" 2>/dev/null
    ip link del "$dev" 2>/dev/null
    rm -rf "$pins" 2>/dev/null
    for d in "$cg/db" "$cg"; do
        [ -d "$d" ] && rmdir "$d" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i, namespaces, BPF)"
[ -n "$cg2" ] || fail "no cgroup2 hierarchy mounted"
if dpkg-query -W -f='${db:Status-Status}' ztseg 2>/dev/null | grep -qv '^not-installed$'; then
    echo "FAIL: a ztseg package is installed on this machine ($(dpkg-query -W ztseg));" \
        "this test installs and purges its own and will not touch it" >&2
    trap - EXIT
    rm -rf "$work"
    exit 1
fi
for p in /etc/ztseg /var/lib/ztseg /var/log/ztseg /run/ztseg; do
    [ ! -e "$p" ] || {
        echo "FAIL: $p exists without a ztseg package; purge would delete it" >&2
        trap - EXIT
        rm -rf "$work"
        exit 1
    }
done

# ---- the package ----
step "cpack -G DEB from $build"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/pkg" >"$work/cpack.log" 2>&1) ||
    { cat "$work/cpack.log"; fail "cpack failed"; }
debs=("$work"/pkg/ztseg_*.deb)
if [ ${#debs[@]} != 1 ] || [ ! -f "${debs[0]}" ]; then fail "expected one ztseg_*.deb, got: ${debs[*]}"; fi
deb=${debs[0]}
echo "package: $(basename "$deb") ($(du -h "$deb" | cut -f1))"

step "contents (dpkg -c)"
dpkg -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/files"
for f in /usr/sbin/ztsegd /usr/sbin/ztseg-controller /usr/bin/ztsegctl \
    /lib/systemd/system/ztsegd.service /lib/systemd/system/ztseg-controller.service \
    /etc/ztseg/ztsegd.yaml /etc/ztseg/ztseg-controller.yaml \
    /usr/share/man/man8/ztsegd.8.gz /usr/share/man/man8/ztseg-controller.8.gz \
    /usr/share/man/man1/ztsegctl.1.gz /usr/share/man/man5/ztsegd.yaml.5.gz \
    /usr/share/man/man5/ztseg-controller.yaml.5.gz \
    /usr/share/bash-completion/completions/ztsegctl \
    /usr/share/doc/ztseg/README.md /usr/share/doc/ztseg/copyright /usr/share/doc/ztseg/install.md \
    /usr/share/doc/ztseg/examples/three-tier.yaml; do
    grep -qx "$f" "$work/files" || fail "$f is not in the package"
done
programs=$(grep -E '^/usr/s?bin/.' "$work/files" | sort | tr '\n' ' ')
[ "$programs" = "/usr/bin/ztsegctl /usr/sbin/ztseg-controller /usr/sbin/ztsegd " ] ||
    fail "programs in the package: $programs (only the three binaries belong there)"
if grep -E '(_tests|integration_demo|policy_fuzzer|/bench|fuzz-corpus|\.o)$' "$work/files"; then
    fail "test, bench or fuzzer files in the package (above)"
fi
grep -v '/$' "$work/files" | sed 's/^/  /'

step "metadata (dpkg-deb -f)"
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
dpkg-deb -f "$deb" | sed 's/^/  /' | grep -v '^  [[:space:]]' || true
[ "$(dpkg-deb -f "$deb" Package)" = ztseg ] || fail "Package is not ztseg"
[ "$(dpkg-deb -f "$deb" Version)" = "$version-1" ] || fail "Version is not $version-1"
[ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture"
for field in Maintainer Description Homepage Section; do
    [ -n "$(dpkg-deb -f "$deb" "$field")" ] || fail "$field is empty"
done
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libc6 libbpf1 libstdc++6 libyaml-0-2; do
    [[ $depends == *"$lib "* || $depends == *"$lib," || $depends == *"$lib" ]] ||
        fail "Depends lacks $lib (dpkg-shlibdeps): $depends"
done
dpkg-deb -I "$deb" conffiles >"$work/conffiles"
grep -qx /etc/ztseg/ztsegd.yaml "$work/conffiles" || fail "ztsegd.yaml is not a conffile"
grep -qx /etc/ztseg/ztseg-controller.yaml "$work/conffiles" || fail "controller config not a conffile"
for script in postinst prerm postrm; do
    dpkg-deb -I "$deb" "$script" >/dev/null || fail "no $script in the package"
done

step "man pages and completion (from the package)"
dpkg-deb -x "$deb" "$work/x"
man1=$(zcat "$work/x/usr/share/man/man1/ztsegctl.1.gz")
for sub in $("$work/x/usr/bin/ztsegctl" completion commands | tr ' ' '_'); do
    [[ $man1 == *"ztsegctl ${sub//_/ }"* ]] || fail "ztsegctl(1) does not document '${sub//_/ }'"
done
man5=$(MANWIDTH=200 man -l "$work/x/usr/share/man/man5/ztsegd.yaml.5.gz" 2>&1)
for key in $(grep -oE '^#? ?[a-z_]+:' "$src/dist/ztsegd.yaml" | tr -d '#: '); do
    [[ $man5 == *"$key"* ]] || fail "ztsegd.yaml(5) does not document '$key'"
done
MANWIDTH=80 man -l "$work/x/usr/share/man/man8/ztsegd.8.gz" 2>&1 | grep -q -- '--config' ||
    fail "ztsegd(8) lacks --config"
bash -n "$work/x/usr/share/bash-completion/completions/ztsegctl" || fail "completion: bash -n"

if command -v lintian >/dev/null; then
    step "lintian (findings are reported, not failures)"
    lintian --no-tag-display-limit "$deb" 2>&1 | sed 's/^/  /' || true
fi

# ---- install ----
step "dpkg -i"
installed_by_us=1
dpkg -i "$deb" 2>&1 | sed 's/^/  /'
[ "$(dpkg-query -W -f='${db:Status-Status}' ztseg)" = installed ] || fail "not installed"
for f in /usr/sbin/ztsegd /usr/sbin/ztseg-controller /usr/bin/ztsegctl; do
    [ -x "$f" ] || fail "$f missing after install"
done
[ "$(stat -c %a /var/lib/ztseg)" = 700 ] || fail "/var/lib/ztseg mode $(stat -c %a /var/lib/ztseg)"
[ "$(stat -c %a /var/log/ztseg)" = 750 ] || fail "/var/log/ztseg mode $(stat -c %a /var/log/ztseg)"
# A fresh install enforces nothing and enables nothing.
ls /etc/systemd/system/*.wants/ztsegd.service 2>/dev/null && fail "install enabled ztsegd"
[ ! -e /sys/fs/bpf/ztseg ] || fail "install created pins in /sys/fs/bpf/ztseg"
grep -q "ExecStart=/usr/sbin/ztsegd --config /etc/ztseg/ztsegd.yaml" \
    /lib/systemd/system/ztsegd.service || fail "ztsegd.service does not run /usr/sbin/ztsegd"
/usr/bin/ztsegctl --help >/dev/null || fail "installed ztsegctl --help"

step "systemd-analyze verify"
verify=$(systemd-analyze verify /lib/systemd/system/ztsegd.service \
    /lib/systemd/system/ztseg-controller.service 2>&1) || true
echo "$verify" | sed 's/^/  /'
if echo "$verify" | grep -E 'ztsegd\.service|ztseg-controller\.service'; then
    fail "systemd-analyze verify reports problems in our units (above)"
fi

# ---- the installed ztsegd on a lab ----
step "lab $tag: netns $ns ($dev $host_ip) <-> $peer ($peer_dev $peer_ip), cgroup $cg"
ip netns add "$ns"
ip netns add "$peer"
ip link add "$dev" type veth peer name "$peer_dev"
ip link set "$dev" netns "$ns"
ip link set "$peer_dev" netns "$peer"
ip -n "$ns" addr add "$host_ip/24" dev "$dev"
ip -n "$peer" addr add "$peer_ip/24" dev "$peer_dev"
for n in "$ns" "$peer"; do ip -n "$n" link set lo up; done
ip -n "$ns" link set "$dev" up
ip -n "$peer" link set "$peer_dev" up
mkdir "$cg" "$cg/db"

# The operator edits the installed config; the lab needs only these lines.
cp /etc/ztseg/ztsegd.yaml "$work/ztsegd.yaml.packaged"
sed -i -e "s|^pin_dir: .*|pin_dir: $pins|" \
    -e "s|^cgroup_root: .*|cgroup_root: $cg|" \
    -e "s|^interfaces: .*|interfaces: [$dev]|" /etc/ztseg/ztsegd.yaml
diff -U0 "$work/ztsegd.yaml.packaged" /etc/ztseg/ztsegd.yaml | grep '^[-+][^-+]' >"$work/diff" || true
sed 's/^/  /' "$work/diff"
[ "$(wc -l <"$work/diff")" = 6 ] || fail "the lab config differs in more than pin_dir, cgroup_root, interfaces"

step "start /usr/sbin/ztsegd (in $ns)"
nsenter --net="/run/netns/$ns" /usr/sbin/ztsegd --config /etc/ztseg/ztsegd.yaml \
    >"$work/ztsegd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
    /usr/bin/ztsegctl status >/dev/null 2>&1 && break
    kill -0 "$daemon_pid" 2>/dev/null || fail "ztsegd exited"
    sleep 0.2
done
/usr/bin/ztsegctl status | sed 's/^/  /'
[ -e "$pins/links/xdp-$dev" ] || fail "no XDP link pinned for $dev"
# The interface's ingress program: native/generic XDP shows in `ip link`; tcx
# (the default on virtual devices such as this veth) is a BPF link only.
ingress_attached() {
    ip -n "$ns" link show "$dev" | grep -q xdp && return 0
    bpftool link show pinned "$pins/links/xdp-$dev" >/dev/null 2>&1 &&
        [ -n "$(bpftool prog show name ztseg_tcx 2>/dev/null)" ]
}
ingress_attached || fail "no XDP or tcx program on $dev"

# db (in its cgroup) listens on 5432, which web may reach, and on 5433, which it may not.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
for port in 5432 5433; do
    sh -c 'echo $$ >"$1/cgroup.procs" && exec nsenter --net="/run/netns/$2" "$3" -c "
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"0.0.0.0\", int(sys.argv[1])))
s.listen(16)
while True:
    s.accept()[0].close()
" "$4"' sh "$cg/db" "$ns" "$python" "$port" &
    server_pids+=($!)
done
cat >"$work/lab.yaml" <<POLICY
workloads:
  - name: db
    labels: {app: db}
    cgroup: $tag/db
    addresses: [$host_ip]
  - name: web
    labels: {app: web}
    addresses: [$peer_ip]
policies:
  - name: db
    selector: {matchLabels: {app: db}}
    ingress:
      - from: [{selector: {matchLabels: {app: web}}}]
        ports: [{port: "5432", protocol: tcp}]
POLICY
connects() { # port: does a TCP connect from web to db succeed within 3 s?
    nsenter --net="/run/netns/$peer" timeout 3 bash -c "exec 3<>/dev/tcp/$host_ip/$1" 2>/dev/null
}
for port in 5432 5433; do # wait for both servers
    for _ in $(seq 50); do
        nsenter --net="/run/netns/$ns" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break
        sleep 0.1
    done
done

step "ztsegctl apply, status"
/usr/bin/ztsegctl apply "$work/lab.yaml" | sed 's/^/  /'
/usr/bin/ztsegctl status -o json >"$work/status.json"
grep -q '"generation": "1"' "$work/status.json" || fail "status does not show generation 1"
grep -q '"cgroup_path": "'"$tag"'/db"' "$work/status.json" || fail "status does not show db's cgroup"
connects 5432 || fail "web -> db:5432 is allowed but did not connect"
connects 5433 && fail "web -> db:5433 is not allowed but connected"
echo "  web -> db:5432 connects, web -> db:5433 is dropped"

step "stop ztsegd: the pinned datapath keeps enforcing"
kill -TERM "$daemon_pid"
wait "$daemon_pid" || true
daemon_pid=""
[ -d "$pins/links" ] || fail "pins gone after ztsegd stopped"
connects 5433 && fail "5433 connected after ztsegd stopped"

# ---- remove ----
step "dpkg -r ztseg"
dpkg -r ztseg 2>&1 | sed 's/^/  /'
[ "$(dpkg-query -W -f='${db:Status-Status}' ztseg)" = config-files ] || fail "not in config-files state"
for f in /usr/sbin/ztsegd /usr/sbin/ztseg-controller /usr/bin/ztsegctl \
    /lib/systemd/system/ztsegd.service /usr/share/man/man1/ztsegctl.1.gz \
    /usr/share/bash-completion/completions/ztsegctl; do
    [ ! -e "$f" ] || fail "$f still there after dpkg -r"
done
grep -q "^pin_dir: $pins" /etc/ztseg/ztsegd.yaml || fail "dpkg -r did not keep the edited conffile"
[ -f /etc/ztseg/ztseg-controller.yaml ] || fail "dpkg -r did not keep ztseg-controller.yaml"
[ -d "$pins/links" ] || fail "dpkg -r removed the pins"
ingress_attached || fail "XDP/tcx detached by dpkg -r"
connects 5433 && fail "dpkg -r opened the host: 5433 connects"
connects 5432 || fail "5432 no longer connects after dpkg -r"
echo "  binaries gone; conffiles and pins kept; db:5433 still dropped"

# ---- purge ----
step "dpkg --purge ztseg"
dpkg --purge ztseg 2>&1 | sed 's/^/  /'
if dpkg -L ztseg >/dev/null 2>&1; then fail "dpkg -L ztseg still answers"; fi
for p in /etc/ztseg /var/lib/ztseg /var/log/ztseg /run/ztseg "$pins" \
    /lib/systemd/system/ztsegd.service /lib/systemd/system/ztseg-controller.service \
    /usr/share/man/man8/ztsegd.8.gz /usr/share/man/man5/ztsegd.yaml.5.gz \
    /usr/share/bash-completion/completions/ztsegctl /usr/share/doc/ztseg; do
    [ ! -e "$p" ] || fail "$p still there after purge"
done
ip -n "$ns" link show "$dev" | grep -q xdp && fail "XDP still attached to $dev after purge"
[ -z "$(bpftool prog show name ztseg_tcx 2>/dev/null)" ] || fail "tcx program still loaded after purge"
[ -z "$(bpftool cgroup show "$cg/db" 2>/dev/null | tail -n +2)" ] ||
    fail "programs still attached to $cg/db after purge"
connects 5433 || fail "after purge nothing should enforce, but 5433 does not connect"
echo "  nothing of ztseg left; programs detached (db:5433 connects again)"
installed_by_us=0

echo "PASS ($(($(date +%s) - started)) s)"
