# Duro: two commands from a fresh Debian 12 clone.
#
#   make sim        install what is missing, build, run the simulation suite
#                   (every scenario under the swarm fault profile)
#   make test       install what is missing, build, run every test
#   make test-asan  the same tests under AddressSanitizer + UBSan
#   make bench      the benchmarks (link-time optimized, a build of their own),
#                   with ratios against in-run references
#   make demo       the simulator's own demo: a message storm under faults
#   make fuzz       the libFuzzer target of the history file decoder, for
#                   FUZZ_SECONDS (default 60), in a clang build of its own
#   make golden     refresh replays/golden: record seeds of every scenario,
#                   keep a few histories per workflow type (deliberately:
#                   after `duro replay` showed what a workflow change breaks)
#
# BUILD_DIR, BUILD_TYPE, JOBS, SEEDS, FAULTS and PROFILES can be overridden:
# make sim SEEDS=100 FAULTS=chaos

BUILD_DIR ?= build
ASAN_BUILD_DIR ?= build-asan
BUILD_TYPE ?= Release
WERROR ?= ON
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BENCH_BUILD_DIR ?= build-bench
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 60
SEEDS ?= 40
FAULTS ?= swarm
PROFILES ?= none,mild,partitions,crashes,disk,chaos,swarm

PACKAGES := g++ cmake ninja-build pkg-config \
  libboost-context-dev librapidcheck-dev libfmt-dev libzstd-dev \
  libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev libmimalloc-dev

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps configure build sim demo test test-asan bench clean golden fuzz

all: build

# libFuzzer comes with clang; only `make fuzz` needs it.
FUZZ_PACKAGES := clang-14 libclang-rt-14-dev

# Installs only the packages dpkg does not already report as installed, so a
# second run costs one dpkg query.
deps:
	@missing=""; \
	for p in $(PACKAGES) $(EXTRA_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DDURO_WERROR=$(WERROR)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

# About three and a half minutes on 2 cores with the defaults (measured
# 2026-11-30: 40 seeds in 2m41s + 46s; 10 seeds took 4m03s before that
# session's speed-ups, and this VM is up to 1.8x slower on some days).
# Under swarm a seed of retry-storm (1,000 twins through a 30 min outage,
# the store restarting under them) takes about 9 s of CPU, most of the
# suite's; the other six scenarios take 1-25 s per ten seeds.
sim: build
	$(BUILD_DIR)/bin/duro run --all --faults $(FAULTS) --seeds $(SEEDS)

# About five minutes on 2 cores: three seeds of each scenario, each under
# its own fault profile.
golden: build
	$(BUILD_DIR)/bin/duro record-golden --out replays/golden --seeds 3

# The decoder of history files under libFuzzer (with ASan + UBSan), seeded
# with the golden histories, one fuzzing process per core (-fork); new inputs it finds go to $(FUZZ_BUILD_DIR)/corpus.
# A crash fails the target and leaves its input in $(FUZZ_BUILD_DIR)/crash-*
# (the log shows it in base64 too).
fuzz:
	@$(MAKE) --no-print-directory deps EXTRA_PACKAGES="$(FUZZ_PACKAGES)"
	@[ -f $(FUZZ_BUILD_DIR)/build.ninja ] || CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDURO_FUZZ=ON -DDURO_WERROR=$(WERROR)
	cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS)
	mkdir -p $(FUZZ_BUILD_DIR)/corpus
	$(FUZZ_BUILD_DIR)/bin/history_file_fuzzer -fork=$(JOBS) -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	  -max_len=65536 -print_funcs=0 -print_final_stats=1 -artifact_prefix=$(FUZZ_BUILD_DIR)/ \
	  $(FUZZ_BUILD_DIR)/corpus replays/golden

demo: build
	$(BUILD_DIR)/bin/duro_sim_demo --seeds 4 --profile $(PROFILES) --check-determinism

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The test binaries, and the command line that ctest's golden replays and
# kept failures run (without it they do not run: "Not Run" fails ctest).
# The sanitizer build has nothing to say about the benchmarks and the demo,
# which the Release build compiles warning-free.
TEST_TARGETS := duro_sim_tests duro_engine_tests duro_sdk_tests duro_scenario_tests duro
# What the sanitizer build makes and which ctest labels it runs (empty:
# every test). By default all of it; CI narrows it to the simulator's
# tests, which fit its time budget (see .ci/run).
ASAN_TARGETS ?= $(TEST_TARGETS)
ASAN_LABELS ?=

# -Og: GCC's optimizations that keep code debuggable. Under ASan + UBSan it
# compiles a third faster than -O1 and the tests run as fast. Measured, CPU
# seconds: sim/codec_test.cc 181 -> 118, the sdk tests' first unit
# 179 -> 115; the whole build 2,193 -> 1,477 (with more code by then);
# ctest 204 -> 208.
# -g1: line tables only. Sanitizer reports keep file:line; the build takes
# a third less time than with full debug info (measured on the history
# generators: 5m11s -> 3m31s of CPU).
test-asan: deps
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDURO_SANITIZE=ON -DDURO_WERROR=$(WERROR) \
	  -DCMAKE_CXX_FLAGS_DEBUG="-Og -g1"
	cmake --build $(ASAN_BUILD_DIR) -j $(JOBS) --target $(ASAN_TARGETS)
	cd $(ASAN_BUILD_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j $(JOBS) \
	  $(if $(ASAN_LABELS),-L '$(ASAN_LABELS)')

bench: deps
	cmake -S . -B $(BENCH_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DDURO_LTO=ON -DDURO_WERROR=$(WERROR)
	cmake --build $(BENCH_BUILD_DIR) -j $(JOBS) --target duro_bench
	$(BENCH_BUILD_DIR)/bin/duro_bench

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(BENCH_BUILD_DIR)
