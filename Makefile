# Vitamin build.
#   make            build ./vitamin (and the tools)
#   make run        install missing packages, build, run standalone on 127.0.0.1:8080
#   make test       install test packages, build, run every suite (unit, e2e, sanitizers)
#   make SAN=1 ...  build into build-san/ with AddressSanitizer + UBSan
# The core objects form one static library that the server, the unit tests,
# the fuzzers and the benchmark all link.

CC      ?= cc
PYTHON  ?= /usr/bin/python3
WERROR  ?= -Werror
OPT     ?= -O2

BUILD_PKGS = gcc make pkg-config libev-dev librabbitmq-dev libxxhash-dev
TEST_PKGS  = $(BUILD_PKGS) libcmocka-dev python3-pytest python3-pika \
             rabbitmq-server haproxy procps openssl

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

.PHONY: all run test deps test-deps unit e2e san check clean
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
$(BUILD)/tests/%: tests/unit/%.c $(LIB) | $(BUILD)
	@mkdir -p $(BUILD)/tests
	$(CC) $(CFLAGS) $< $(LIB) $(LDFLAGS) $(LDLIBS) -lcmocka -o $@
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
e2e: all
	VITAMIN_BIN=$(CURDIR)/$(BUILD)/vitamin $(PYTHON) -m pytest -q tests/e2e $(PYTEST_ARGS)

# The same suites under AddressSanitizer + UndefinedBehaviorSanitizer.
san:
	@$(MAKE) --no-print-directory SAN=1 unit
	@VITAMIN_SANITIZED=1 $(MAKE) --no-print-directory SAN=1 e2e PYTEST_ARGS="$(PYTEST_ARGS) -m 'not slow'"

check: unit e2e san

test: test-deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory check

clean:
	rm -rf build build-san vitamin

-include $(CORE_OBJS:.o=.d) $(BUILD)/main.d
