# Vitamin build.
#   make            build ./vitamin (and the tools)
#   make run        install missing packages, build, run standalone on 127.0.0.1:8080
#   make test       install test packages, build, run every suite (unit, e2e, sanitizers)
#   make bench      Vitamin vs Redis vs memcached (docs/performance.md)
#   make bench-repl, make bench-expiry   replication and expiry-wave benchmarks
#   make bench-snapshot   save/load time of 1M keys, latency during background saves
#   make fuzz       libFuzzer campaigns, FUZZ_SECONDS (60) per target; fuzz-smoke: a short pass
#   make SAN=1 ...  build into build-san/ with AddressSanitizer + UBSan
#   make bench-resync   state transfer: a full one vs an incremental one
#   make bench-shard    through nutcracker (+ HAProxy) vs straight to a node (also run by make bench)
#   make install    binary, man page, systemd units, example config under
#                   DESTDIR + PREFIX (/usr/local); make uninstall removes them
# The core objects form one static library that the server, the unit tests,
# the fuzzers and the benchmark all link.

CC      ?= cc
PYTHON  ?= /usr/bin/python3
WERROR  ?= -Werror
OPT     ?= -O2

BUILD_PKGS = gcc make pkg-config libev-dev librabbitmq-dev libxxhash-dev
TEST_PKGS  = $(BUILD_PKGS) libcmocka-dev python3-pytest python3-pytest-xdist python3-pika python3-pymemcache python3-redis redis-tools redis-server \
             rabbitmq-server haproxy nutcracker procps clang libclang-rt-14-dev openssl \
             prometheus groff-base man-db
BENCH_PKGS = $(BUILD_PKGS) python3 redis-server redis-tools memcached gnuplot-nox util-linux haproxy nutcracker

ifeq ($(SAN),1)
BUILD    ?= build-san
SANFLAGS  = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       = -O1
else
BUILD    ?= build
SANFLAGS  =
endif

CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -g -pthread $(SANFLAGS) \
           -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
           -Wno-unused-parameter $(WERROR) -Iinclude -MMD -MP
LDFLAGS += -pthread $(SANFLAGS)
LDLIBS  += -lev -lrabbitmq -lxxhash -lm

CORE_SRCS := $(filter-out src/main.c,$(wildcard src/*.c))
CORE_OBJS := $(CORE_SRCS:src/%.c=$(BUILD)/%.o)
LIB       := $(BUILD)/libvitamin.a
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tools/%.c=$(BUILD)/%)
BENCH_OBJS := $(patsubst tools/%.c,$(BUILD)/tools/%.o,$(wildcard tools/bench/*.c))

.PHONY: all run test deps test-deps unit e2e san check clean install uninstall
all: $(BUILD)/vitamin $(TOOL_BINS)
ifneq ($(SAN),1)
	@ln -sf $(BUILD)/vitamin vitamin
endif

$(BUILD)/%.o: src/%.c | $(BUILD)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/tools/%.o: tools/%.c | $(BUILD)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(LIB): $(CORE_OBJS)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/vitamin: $(BUILD)/main.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/%: $(BUILD)/tools/%.o $(LIB)
	$(CC) $(LDFLAGS) $^ $(LDLIBS) -o $@
$(BUILD)/vitamin-benchmark: $(BENCH_OBJS)   # its modules in tools/bench/
# Each unit test links the modules it tests and those they call, not the
# whole library (as the fuzz targets do): a pure module's test needs
# neither libev nor librabbitmq. UNIT_OBJS_<test> names the modules
# (src/<name>.c; empty for a header-only module), UNIT_LIBS_<test> the
# libraries. A test without a list links the whole library: give it one.
STORE_MODS := store store_evict table ttlheap rdigest slab
UNIT_OBJS_test_config     := config options log
UNIT_OBJS_test_glob       := glob
UNIT_OBJS_test_http       := http
UNIT_OBJS_test_ksum       := ksum
UNIT_OBJS_test_latency    :=
UNIT_OBJS_test_mc_proto   := mc_proto mc_meta mc_reply
UNIT_OBJS_test_merge      := $(STORE_MODS)
UNIT_OBJS_test_options    := options config log
UNIT_OBJS_test_proto      := proto
UNIT_OBJS_test_rdigest    := $(STORE_MODS)
UNIT_OBJS_test_repl_codec := repl_codec
UNIT_OBJS_test_reply      := reply proto $(STORE_MODS)
UNIT_OBJS_test_resp       := resp resp_reply num
UNIT_OBJS_test_scan       := $(STORE_MODS)
UNIT_OBJS_test_seqtrack   := seqtrack
UNIT_OBJS_test_snapshot   := snapshot snap_codec repl_codec record log $(STORE_MODS)
UNIT_OBJS_test_store      := $(STORE_MODS)
UNIT_OBJS_test_table      := table
UNIT_OBJS_test_ttlheap    := ttlheap
UNIT_OBJS_test_slab       := slab
UNIT_OBJS_test_compact    := $(STORE_MODS)
$(foreach t,compact merge rdigest reply scan store table,$(eval UNIT_LIBS_test_$(t) := -lxxhash))
# The index's header is internal (src/table.h): its test reads it there.
UNIT_CFLAGS_test_table    := -Isrc
UNIT_LIBS_test_snapshot   := -lev -lxxhash
unit_listed = $(filter-out undefined,$(origin UNIT_OBJS_$1))
unit_objs = $(if $(call unit_listed,$1),$(UNIT_OBJS_$1:%=$(BUILD)/%.o),$(LIB))
unit_libs = $(if $(call unit_listed,$1),$(UNIT_LIBS_$1),$(LDLIBS))

.SECONDEXPANSION:
$(BUILD)/tests/%: tests/unit/%.c $$(call unit_objs,$$*) | $(BUILD)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $(UNIT_CFLAGS_$*) $< $(call unit_objs,$*) $(LDFLAGS) $(call unit_libs,$*) -lcmocka -o $@
$(BUILD):
	@mkdir -p $(BUILD)

deps:
	@scripts/ensure-packages.sh $(BUILD_PKGS)
test-deps:
	@scripts/ensure-packages.sh $(TEST_PKGS)

run: deps
	@$(MAKE) --no-print-directory all
	./vitamin --host 127.0.0.1 --port 8080

# Unit tests (cmocka), then end-to-end tests (pytest) against the real binary.
unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done
# The e2e tests mostly wait (brokers booting, faults timing out), so they
# run in PYTEST_JOBS processes (pytest-xdist); each test makes its own
# servers, brokers and ports. PYTEST_JOBS=0 runs them in this process.
PYTEST_JOBS ?= 3
e2e: all
	VITAMIN_BIN=$(CURDIR)/$(BUILD)/vitamin $(PYTHON) -m pytest -q -n $(PYTEST_JOBS) tests/e2e $(PYTEST_ARGS)

# The same suites under AddressSanitizer + UndefinedBehaviorSanitizer.
san:
	@$(MAKE) --no-print-directory SAN=1 unit
	@VITAMIN_SANITIZED=1 $(MAKE) --no-print-directory SAN=1 e2e PYTEST_ARGS="$(PYTEST_ARGS) -m 'not slow'"

check: unit e2e san fuzz-smoke

test: test-deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory check

clean:
	rm -rf build build-san vitamin

# make install [PREFIX=/usr/local] [DESTDIR=/staging]: the binary, vitamin(1),
# the systemd units (paths filled in) and, only if there is none yet, the
# example config. make uninstall removes them, and the config only if it
# is still the example (an edited one is kept and named). INSTALL_BIN: the
# binary to install (the e2e test installs the one it tests).
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
MANDIR     ?= $(PREFIX)/share/man
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL    ?= install
INSTALL_BIN ?= $(BUILD)/vitamin
UNITS      := vitamin.service vitamin@.service
CONF       := $(DESTDIR)$(SYSCONFDIR)/vitamin/vitamin.conf

install: $(INSTALL_BIN)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/vitamin
	$(INSTALL) -m 0755 $(INSTALL_BIN) $(DESTDIR)$(BINDIR)/vitamin
	$(INSTALL) -m 0644 docs/vitamin.1 $(DESTDIR)$(MANDIR)/man1/vitamin.1
	@set -e; for u in $(UNITS); do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/$$u \
	    > $(DESTDIR)$(UNITDIR)/$$u.tmp; \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp; mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u; \
	  echo "installed $(DESTDIR)$(UNITDIR)/$$u"; \
	done
	@if [ -e $(CONF) ]; then echo "kept $(CONF) (it exists)"; \
	 else $(INSTALL) -m 0644 etc/vitamin.conf $(CONF) && echo "installed $(CONF)"; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/vitamin $(DESTDIR)$(MANDIR)/man1/vitamin.1
	rm -f $(UNITS:%=$(DESTDIR)$(UNITDIR)/%)
	@if [ -e $(CONF) ] && ! cmp -s etc/vitamin.conf $(CONF); then \
	  echo "kept $(CONF): it was edited"; else rm -f $(CONF); fi
	@rmdir $(DESTDIR)$(SYSCONFDIR)/vitamin 2>/dev/null || true

# Side-by-side benchmark against redis-server and memcached, then the cost
# of the sharding proxy (bench/bench_shard.py; BENCH_SHARD=0 skips it). Not
# part of `make test`: see docs/performance.md. BENCH_QUICK=1 for a smoke run.
.PHONY: bench bench-shard
bench:
	@BENCH_PKGS="$(BENCH_PKGS)" PYTHON="$(PYTHON)" bench/run.sh
bench-shard:
	@scripts/ensure-packages.sh $(BUILD_PKGS) python3 haproxy nutcracker util-linux
	@$(MAKE) --no-print-directory all
	$(PYTHON) bench/bench_shard.py

# Replication benchmark (bench/bench_repl.py): a private RabbitMQ broker and
# two nodes; replicated write rate, lag at fixed rates, confirm vs async; a
# three-node RabbitMQ cluster with quorum queues vs the single broker with
# classic queues, and the time to resume after a broker node dies
# (BENCH_REPL_PARTS=d for that part alone, BENCH_QUICK=1 for a short run).
# Expiry-wave benchmark (bench/bench_expiry.py): 1M keys expiring together
# under a get load. Neither is part of `make test`; see docs/performance.md.
# Snapshot benchmark (bench/bench_snapshot.py): save and load of 1M keys,
# client latency while background saves run.
REPL_BENCH_PKGS   = $(BUILD_PKGS) python3 python3-pytest rabbitmq-server util-linux procps
EXPIRY_BENCH_PKGS = $(BUILD_PKGS) python3 util-linux
.PHONY: bench-repl bench-expiry bench-hits
# Hit ratio at a memory cap under a Zipf workload (bench/bench_hits.py):
# Vitamin's eviction policies vs memcached and Redis allkeys-lru.
bench-hits:
	@scripts/ensure-packages.sh $(BENCH_PKGS)
	@$(MAKE) --no-print-directory all
	$(PYTHON) bench/bench_hits.py
bench-repl:
	@scripts/ensure-packages.sh $(REPL_BENCH_PKGS)
	@$(MAKE) --no-print-directory all
	$(PYTHON) bench/bench_repl.py
bench-expiry:
	@scripts/ensure-packages.sh $(EXPIRY_BENCH_PKGS)
	@$(MAKE) --no-print-directory all
	$(PYTHON) bench/bench_expiry.py
bench-snapshot:
	@scripts/ensure-packages.sh $(EXPIRY_BENCH_PKGS)
	@$(MAKE) --no-print-directory all
	$(PYTHON) bench/bench_snapshot.py

# libFuzzer targets (tests/fuzz/). clang, not the gcc that builds
# libvitamin.a, so each target compiles its module's sources directly with
# the fuzzer and ASan+UBSan. Runs use a temp copy of tests/fuzz/corpus/<t>
# (new inputs never land in the repo); a crash fails the run and leaves its
# input in $(FUZZ_BUILD)/<t>-crash-*: add it to the corpus as a regression.
#   make fuzz          FUZZ_SECONDS (default 60) per target
#   make fuzz-smoke    FUZZ_SMOKE_SECONDS (default 20) per target (make check)
FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_BUILD         ?= $(BUILD)/fuzz
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
              -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
              -Wno-unused-parameter $(WERROR) -Iinclude
FUZZ_NAMES := proto codec resp mc_proto snapshot http
FUZZ_BINS  := $(FUZZ_NAMES:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/fuzz_proto: tests/fuzz/fuzz_proto.c src/proto.c include/proto.h
$(FUZZ_BUILD)/fuzz_codec: tests/fuzz/fuzz_codec.c src/repl_codec.c include/repl_codec.h
$(FUZZ_BUILD)/fuzz_resp: tests/fuzz/fuzz_resp.c src/resp.c src/resp_reply.c src/glob.c src/num.c \
                          include/resp.h include/resp_reply.h include/glob.h
$(FUZZ_BUILD)/fuzz_mc_proto: tests/fuzz/fuzz_mc_proto.c src/mc_proto.c src/mc_meta.c \
                             src/mc_reply.c src/mc_internal.h include/mc_proto.h \
                             include/mc_reply.h
$(FUZZ_BUILD)/fuzz_snapshot: tests/fuzz/fuzz_snapshot.c src/snap_codec.c src/repl_codec.c \
                              include/snap_codec.h include/repl_codec.h
$(FUZZ_BUILD)/fuzz_snapshot: FUZZ_LIBS = -lxxhash
$(FUZZ_BUILD)/fuzz_http: tests/fuzz/fuzz_http.c src/http.c include/http.h
$(FUZZ_BINS):
	@mkdir -p $(FUZZ_BUILD)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(filter %.c,$^) -o $@ $(FUZZ_LIBS)

# $(call fuzz_run,SECONDS): every target in turn; its log is in
# $(FUZZ_BUILD)/fuzz_<t>.log, the final stats are printed.
define fuzz_run
	@set -e; for t in $(FUZZ_NAMES); do \
	  tmp=$$(mktemp -d); \
	  cp tests/fuzz/corpus/$$t/* "$$tmp"/; \
	  log=$(FUZZ_BUILD)/fuzz_$$t.log; \
	  echo "== fuzz_$$t: $(1) s, log in $$log"; \
	  if ! $(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(1) -timeout=10 \
	       -dict=tests/fuzz/$$t.dict -print_final_stats=1 \
	       -artifact_prefix=$(FUZZ_BUILD)/$$t- "$$tmp" >"$$log" 2>&1; then \
	    rm -rf "$$tmp"; tail -n 60 "$$log"; \
	    echo "fuzz_$$t FAILED: crasher in $(FUZZ_BUILD)/$$t-*"; exit 1; \
	  fi; \
	  rm -rf "$$tmp"; \
	  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$$log" || true; \
	done
endef

.PHONY: fuzz fuzz-smoke
fuzz: $(FUZZ_BINS)
	$(call fuzz_run,$(FUZZ_SECONDS))
fuzz-smoke: $(FUZZ_BINS)
	$(call fuzz_run,$(FUZZ_SMOKE_SECONDS))

-include $(CORE_OBJS:.o=.d) $(BUILD)/main.d $(BENCH_OBJS:.o=.d)

# State transfer benchmark (bench/bench_resync.py): 1M keys of 32 B, a full
# transfer vs an incremental one after 1% of the keys changed, with a
# private broker. Not part of `make test`; see docs/performance.md.
.PHONY: bench-resync
bench-resync:
	@scripts/ensure-packages.sh $(REPL_BENCH_PKGS)
	@$(MAKE) --no-print-directory all
	$(PYTHON) bench/bench_resync.py
