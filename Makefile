# ztseg: thin wrapper over CMake. `make test` and `make demo` work on a fresh
# Debian 12 machine: they install what they need, build, and mount bpffs.
BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
SUDO      := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the build and tests need (keep README in sync).
DEPS := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config cmake make g++ \
        libspdlog-dev libgtest-dev libgmock-dev googletest iproute2 clang-format \
        libyaml-dev libcli11-dev libprotobuf-dev protobuf-compiler libssl-dev clang-tidy \
        nlohmann-json3-dev libclang-rt-14-dev libmnl-dev libcpp-httplib-dev \
        libgrpc++-dev protobuf-compiler-grpc openssl \
        etcd-server iperf3 nftables iptables xdp-tools gnuplot-nox \
        libsystemd-dev help2man pandoc python3 dpkg-dev fakeroot bash-completion \
        iputils-ping graphviz patch

.PHONY: all deps build install package test test-unit sanitize tidy demo bench bench-smoke fuzz format format-check bpffs clean

all: build

# Idempotent: only runs apt when something is missing.
deps:
	@missing=$$(for p in $(DEPS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	else echo "deps: all installed"; fi

$(BUILD_DIR)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: $(BUILD_DIR)/Makefile
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Installs the daemons, ztsegctl, configs (PREFIX=/usr puts them in /etc), units,
# man pages, completion and docs: `make install DESTDIR=/tmp/x PREFIX=/usr`.
# Paths follow PREFIX at install time, so one build tree serves any prefix.
PREFIX  ?= /usr/local
DESTDIR ?=
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD_DIR) --prefix "$(PREFIX)"

# The Debian package (CPack DEB, prefix /usr; docs/install.md):
# build/package/ztseg_<version>-1_<arch>.deb.
package: build
	cd $(BUILD_DIR) && cpack -G DEB -B package
	@ls -1 $(BUILD_DIR)/package/*.deb

# BPF programs are pinned here; tests use unique subdirectories.
bpffs:
	@mountpoint -q /sys/fs/bpf || $(SUDO) mount -t bpf bpf /sys/fs/bpf

test: deps format-check build bpffs
	cd $(BUILD_DIR) && $(SUDO) ctest --output-on-failure --timeout 900
	$(MAKE) sanitize-address

# The unit tier: no root, no BPF; builds only what it runs.
UNIT_TESTS := unit_tests policy_tests flows_tests controller_tests
test-unit: $(BUILD_DIR)/Makefile
	cmake --build $(BUILD_DIR) -j $(JOBS) --target $(UNIT_TESTS)
	cd $(BUILD_DIR) && ctest -L unit --output-on-failure

# The unit tier under ASan+UBSan and under TSan (the daemon and controller are
# multi-threaded), each in its own build tree. `make test` runs the ASan tier.
sanitize: sanitize-address sanitize-thread
sanitize-%: $(BUILD_DIR)/Makefile
	cmake -S . -B $(BUILD_DIR)-$* -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZTSEG_SANITIZE=$*
	cmake --build $(BUILD_DIR)-$* -j $(JOBS) --target $(UNIT_TESTS)
	cd $(BUILD_DIR)-$* && ctest -L unit --output-on-failure

# clang-tidy with the short check list in .clang-tidy, over every userspace
# source (compile_commands.json of the build). Minutes on 2 cores: not part of
# `make test`; run it before sending a change.
tidy: build
	run-clang-tidy -p $(BUILD_DIR) -quiet -j $(JOBS) '$(CURDIR)/userspace/.*\.cpp$$'

# Pauses between steps in a terminal; ZTSEG_DEMO_NONINTERACTIVE=1 never pauses.
demo: deps build bpffs
	$(SUDO) $(BUILD_DIR)/tests/integration_demo \
		$(if $(filter-out 0,$(ZTSEG_DEMO_NONINTERACTIVE)),--non-interactive)

bench: deps build bpffs
	$(SUDO) bench/run.sh $(BUILD_DIR)

bench-smoke: deps build bpffs
	$(SUDO) bench/run.sh $(BUILD_DIR) --smoke

# Longer fuzzing of the policy front end (FUZZ_SECONDS, default 600).
FUZZ_SECONDS ?= 600
fuzz: deps build
	$(BUILD_DIR)/policy_fuzzer -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
		$(BUILD_DIR)/fuzz-corpus policies

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' '*.cpp' '*.hpp' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format: ok"

clean:
	rm -rf $(BUILD_DIR)
