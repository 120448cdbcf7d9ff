# stsproxy - one plain GNU Makefile.
#
# Modules are directories; each builds a static archive from its own
# sources, and the binary links them in layer order (core <- tls <- policy
# <- proxy, nfq), so an upward dependency fails to link. Tests live in
# tests/<module>/test_*.c and link exactly the sources they name.

BUILD     ?= build
SAN       ?= 0
CC        ?= cc
PREFIX    ?= /usr/local
DESTDIR   ?=
VERSION   := 0.1.0

PKGS      := openssl libunbound libconfig libnetfilter_queue libmnl libcurl sqlite3 jansson libsystemd libidn2 zlib hiredis

# pkg-config runs when a compile or a link first needs its answer (once),
# not when the Makefile is read: `make deps` and `make help` work before
# pkg-config and the libraries are there, and a target that installs them
# first (demo, test) builds in a second make that reads the fresh answer.
# A failure stops the build with pkg-config's own message, never a link
# with empty flags.
pkg_query = $(shell out=$$(pkg-config $(1) $(PKGS) 2>/dev/null) && echo "$$out" || \
	{ echo PKG-CONFIG-FAILED; pkg-config $(1) $(PKGS) 2>&1; })
pkg_check = $(if $(filter PKG-CONFIG-FAILED,$(2)),$(error pkg-config $(1) failed: \
	$(filter-out PKG-CONFIG-FAILED,$(2)) -- sudo make deps (or sh scripts/deps.sh build) installs what it needs),$(2))
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(call pkg_check,--cflags,$$(call pkg_query,--cflags)))$(PKG_CFLAGS)
PKG_LIBS   = $(eval PKG_LIBS := $$(call pkg_check,--libs,$$(call pkg_query,--libs)))$(PKG_LIBS)

ifeq ($(SAN),1)
override BUILD := $(BUILD)/san
SANFLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
endif

CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -DSTSPROXY_VERSION='"$(VERSION)"' \
             -I. $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP
LDFLAGS   += $(SANFLAGS)
LDLIBS     = $(PKG_LIBS) -lpthread

# Per-module source lists (one concept per file; every .c of a module is in it).
core_SRCS   := $(sort $(wildcard core/*.c))
tls_SRCS    := $(sort $(wildcard tls/*.c))
policy_SRCS := $(sort $(wildcard policy/*.c))
proxy_SRCS  := $(sort $(wildcard proxy/*.c))
nfq_SRCS    := $(sort $(wildcard nfq/*.c))
MODULES     := core tls policy proxy nfq

# The binary links the modules in layer order: a module may use only those after it.
main_DEPS   := proxy nfq policy tls core

lib = $(BUILD)/lib$(1).a
objs = $(patsubst %.c,$(BUILD)/%.o,$($(1)_SRCS))

BIN       := $(BUILD)/stsproxy
TEST_SRCS := $(sort $(wildcard tests/*/test_*.c))
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))

.PHONY: all help deps test check unit integration demo clean format format-check cppcheck \
        fuzz fuzz-run install uninstall bench bench-smoke deps-check all-tests valgrind lint \
        deb fresh-test deploy-test

all: $(BIN)

help:
	@echo "stsproxy $(VERSION) - targets:"
	@echo "  make              build $(BUILD)/stsproxy"
	@echo "  make deps         install every set of packages of scripts/deps.sh (root)"
	@echo "  make test         install deps if missing, build, run unit and integration tests (root)"
	@echo "  make test SAN=1   the same, built with ASan+UBSan (in build/san/)"
	@echo "  make unit         build and run the cmocka unit tests only"
	@echo "  make integration  run the integration suites in tests/integration (root)"
	@echo "  make valgrind     the unit tests under valgrind memcheck"
	@echo "  make demo         build, then show what stsproxy does (root)"
	@echo "  make fuzz         build the libFuzzer targets (clang) into build/fuzz/"
	@echo "  make fuzz-run SECONDS=N  run each fuzz target for N seconds"
	@echo "  make bench-smoke  quick run of the benchmarks (under two minutes)"
	@echo "  make format       clang-format every source file; format-check only checks"
	@echo "  make cppcheck     static analysis of the project's code"
	@echo "  make lint         format-check and cppcheck together"
	@echo "  make install      install under DESTDIR/PREFIX; make uninstall removes it"
	@echo "  make deb          the Debian package, $(DEB)"
	@echo "  make fresh-test   the README's quick start on a fresh Debian 12 root (root)"
	@echo "  make deploy-test  the package in a booted Debian 12 container, real mail (root)"
	@echo "  make clean        remove build/"

# --- build -------------------------------------------------------------------

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

define module_rules
$(call lib,$(1)): $(call objs,$(1))
	@mkdir -p $$(dir $$@)
	rm -f $$@
	$$(if $$^,ar rcs $$@ $$^,ar rcs $$@)
endef
$(foreach m,$(MODULES),$(eval $(call module_rules,$(m))))

main_SRCS   := $(sort $(wildcard main/*.c))

$(BIN): $(call objs,main) $(foreach m,$(main_DEPS),$(call lib,$(m)))
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A test tests/<module>/test_x.c names the sources it links in a
# "// sources: a.c b.c" line: its module's files, and fakes from tests/
# that replace a neighbouring module at link time.
test_sources = $(shell sed -n 's|^// sources: ||p' tests/$(1).c)
define test_rule
$(BUILD)/tests/$(1): $(BUILD)/tests/$(1).o $$(patsubst %.c,$(BUILD)/%.o,$$(call test_sources,$(1)))
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS) -lcmocka
endef
$(foreach t,$(patsubst tests/%.c,%,$(TEST_SRCS)),$(eval $(call test_rule,$(t))))

# --- dependencies ------------------------------------------------------------

# scripts/deps.sh installs by purpose: build, runtime, lab, test, dev, deb,
# deploy. make deps installs them all; each target below installs only the
# sets it needs, when something is missing (quietly when all is there).
# Those targets then build in a second make: this one read the Makefile
# before the packages were there.
deps:
	sh scripts/deps.sh

deps-check:
	@sh scripts/deps.sh --if-missing

# --- tests -------------------------------------------------------------------

unit: $(BIN) $(TEST_BINS)
	@bash tests/run-unit.sh $(BUILD) $(TEST_BINS)

integration: $(BIN)
	@bash tests/run-integration.sh $(BUILD)

test:
	@sh scripts/deps.sh --if-missing build runtime lab test
	@$(MAKE) --no-print-directory -j$$(nproc) all-tests

all-tests: $(BIN) $(TEST_BINS)
	@bash tests/run-all.sh $(BUILD) $(TEST_BINS)

check: test

valgrind: $(TEST_BINS)
	@bash tests/valgrind.sh $(BUILD) $(TEST_BINS)

demo:
	@sh scripts/deps.sh --if-missing build runtime lab
	@$(MAKE) --no-print-directory -j$$(nproc) $(BIN)
	@sh scripts/demo.sh $(BUILD)

# --- quality -----------------------------------------------------------------

SOURCES := $(sort $(wildcard core/*.[ch] tls/*.[ch] policy/*.[ch] proxy/*.[ch] nfq/*.[ch] main/*.[ch] tests/*/*.[ch] fuzz/*.[ch] bench/*.[ch]))

format:
	clang-format -i $(SOURCES)

format-check:
	clang-format --dry-run --Werror $(SOURCES)

lint: format-check cppcheck

cppcheck:
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability,performance \
		--inline-suppr --std=c11 -D__GNUC__ -I. core tls policy proxy nfq main

# --- fuzzing -----------------------------------------------------------------

FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BINS := $(patsubst fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
FUZZ_CFLAGS = -std=gnu11 -g -O1 -D_GNU_SOURCE -DFUZZING -I. $(PKG_CFLAGS) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
SECONDS ?= 60

fuzz: $(FUZZ_BINS)

# A fuzz target names the project sources it needs in "// sources: a.c b.c" lines.
fuzz_sources = $(shell sed -n 's|^// sources: ||p' fuzz/$(1).c)
define fuzz_rule
build/fuzz/$(1): fuzz/$(1).c $$(call fuzz_sources,$(1))
	@mkdir -p build/fuzz
	clang $$(FUZZ_CFLAGS) -o $$@ fuzz/$(1).c $$(call fuzz_sources,$(1)) $$(PKG_LIBS) -lpthread
endef
$(foreach f,$(patsubst fuzz/%.c,%,$(FUZZ_SRCS)),$(eval $(call fuzz_rule,$(f))))
# fuzz_session_reuse.c is fuzz_session.c with reuse on: it includes it.
build/fuzz/fuzz_session_reuse: fuzz/fuzz_session.c

fuzz-run: fuzz
	@bash fuzz/run.sh $(SECONDS) $(FUZZ_BINS)

# --- benchmarks --------------------------------------------------------------

# A micro-benchmark bench/bench_x.c names its sources like a test does.
BENCH_SRCS := $(sort $(wildcard bench/bench_*.c))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))
bench_sources = $(shell sed -n 's|^// sources: ||p' bench/$(1).c)
define bench_rule
$(BUILD)/bench/$(1): $(BUILD)/bench/$(1).o $$(patsubst %.c,$(BUILD)/%.o,$$(call bench_sources,$(1)))
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach b,$(patsubst bench/%.c,%,$(BENCH_SRCS)),$(eval $(call bench_rule,$(b))))

bench:
	@sh scripts/deps.sh --if-missing build runtime lab
	@$(MAKE) --no-print-directory $(BIN) $(BENCH_BINS)
	@bash bench/run.sh full $(BUILD)

bench-smoke: $(BIN) $(BENCH_BINS)
	@bash bench/run.sh smoke $(BUILD)

# --- install -----------------------------------------------------------------

install: $(BIN)
	sh scripts/install.sh install "$(DESTDIR)" "$(PREFIX)" $(BIN)

uninstall:
	sh scripts/install.sh uninstall "$(DESTDIR)" "$(PREFIX)"

# --- packaging and deployment --------------------------------------------------

# The package is built by dpkg-buildpackage from debian/, out of a copy of
# the tree in $(BUILD)/deb/ (see scripts/deb.sh).
DEB = $(BUILD)/stsproxy_$(VERSION)_$(shell dpkg --print-architecture 2>/dev/null || echo amd64).deb

deb:
	@sh scripts/deps.sh --if-missing build deb
	@sh scripts/deb.sh $(BUILD) $(VERSION)

# The README's quick start, word for word, in a fresh Debian 12 root.
fresh-test:
	@sh scripts/deps.sh --if-missing deploy
	@bash tests/deploy/fresh_root.sh

# The package installed in a booted Debian 12 container on the lab's gateway.
deploy-test: deb
	@sh scripts/deps.sh --if-missing build runtime lab deploy
	@bash tests/deploy/deploy.sh $(DEB)

clean:
	rm -rf build

-include $(shell find $(BUILD) -path '$(BUILD)/deb' -prune -o -type f -name '*.d' -print 2>/dev/null)
