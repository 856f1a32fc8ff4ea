# Makefile - builds simplegw, its unit tests and fuzz harnesses; `make check` runs them all.
#
#   make              release build: build/release/simplegw
#   make check        AddressSanitizer+UBSan build, unit tests, short fuzz runs, end-to-end tests
#   make unit         unit tests only (sanitized)
#   make e2e          end-to-end tests only (sanitized gateway against Prosody, slixmpp, sipp, Kamailio)
#   make faults       only the fault-injection and hostile-input end-to-end tests (also in check)
#   make fuzz         every libFuzzer harness for FUZZ_SECONDS each (default 300), or
#                     FUZZ_RUNS executions each; FUZZ="fuzz_pidf fuzz_msrp" picks harnesses
#   make install      the release build, man pages, systemd unit, sample and docs under
#                     $(DESTDIR)$(PREFIX) (default /usr/local); `make uninstall` removes them
#   WERROR=1          turn warnings into errors (CI does)
#   BUILD=dir         build somewhere other than build/ (parallel work trees)
#   CPPFLAGS, CFLAGS, LDFLAGS from the environment (dpkg-buildflags) go into the release build
#   only: the sanitizer and fuzz builds keep their own flags

SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -c
CC      ?= cc
CLANG   ?= clang-14
PYTHON  ?= /usr/bin/python3
PKGS    := libstrophe sofia-sip-ua libevent libevent_openssl expat openssl sqlite3
# -isystem: warnings in library headers are not ours to fix
PKG_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PKGS)))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
           -Wpointer-arith -Wvla -Wundef -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN    += -Werror
endif
OPT     ?= -O2 -g
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -I. -I$(BUILD) $(WARN) $(PKG_CFLAGS) -MMD -MP

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

CORE_SRCS := $(sort $(filter-out gateway/main.c,$(wildcard gateway/*.c conf/*.c mapping/*.c xmpp/*.c sip/*.c)))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRCS := $(sort $(wildcard fuzz/fuzz_*.c))

BUILD ?= build
REL := $(BUILD)/release
ASN := $(BUILD)/asan
FZ  := $(BUILD)/fuzz

REL_OBJS := $(CORE_SRCS:%.c=$(REL)/%.o)
ASN_OBJS := $(CORE_SRCS:%.c=$(ASN)/%.o)
FZ_OBJS  := $(CORE_SRCS:%.c=$(FZ)/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(ASN)/tests/%)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=$(FZ)/%)

# What the installed libraries offer, found by compiling against them (tools/probe-libs), never
# by version macros.  Re-probed when the probe or a probed library's header or binary changes.
PROBE := $(BUILD)/probe.h
PROBED_FILES := $(wildcard $(shell pkg-config --variable=includedir expat)/expat.h \
                           $(shell pkg-config --variable=libdir expat)/libexpat.so)

FUZZ_SECONDS ?= 300
CHECK_FUZZ_SECONDS ?= 10

.PHONY: all check unit e2e faults fuzz fuzz-build fuzz-smoke bench clean install uninstall
.DELETE_ON_ERROR:
.SECONDARY:

all: $(REL)/simplegw

$(PROBE): tools/probe-libs Makefile $(PROBED_FILES)
	tools/probe-libs $@ $(CC) $(PKG_CFLAGS) -- $(PKG_LIBS)

$(REL)/%.o: %.c | $(PROBE)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(BASE_CFLAGS) $(OPT) $(CFLAGS) -c -o $@ $<

$(REL)/simplegw: $(REL)/gateway/main.o $(REL_OBJS)
	$(CC) $(OPT) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(ASN)/%.o: %.c | $(PROBE)
	@mkdir -p $(dir $@)
	$(CC) $(BASE_CFLAGS) -O1 -g $(SAN_FLAGS) -c -o $@ $<

$(ASN)/simplegw: $(ASN)/gateway/main.o $(ASN_OBJS)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS)

$(ASN)/tests/%: $(ASN)/tests/unit/%.o $(ASN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(SAN_FLAGS) -o $@ $^ $(PKG_LIBS)

$(FZ)/%.o: %.c | $(PROBE)
	@mkdir -p $(dir $@)
	$(CLANG) $(BASE_CFLAGS) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<

$(FZ)/fuzz_%: $(FZ)/fuzz/fuzz_%.o $(FZ_OBJS)
	$(CLANG) -fsanitize=fuzzer,address,undefined -o $@ $^ $(PKG_LIBS)

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t; done

fuzz-build: $(FUZZ_BINS)

# Short runs over the seed corpus and a few seconds of mutation: part of `make check`.
# Findings (crash-*, leak-*, timeout-*) go to $(FZ)/artifacts/, never into the source tree.
fuzz-smoke: $(FUZZ_BINS)
	@set -e; mkdir -p $(FZ)/artifacts; for f in $(FUZZ_BINS); do n=$$(basename $$f); \
	  mkdir -p $(FZ)/corpus/$$n; \
	  echo "== $$n ($(CHECK_FUZZ_SECONDS)s)"; \
	  $$f -max_total_time=$(CHECK_FUZZ_SECONDS) -print_final_stats=1 -close_fd_mask=3 \
	    -artifact_prefix=$(FZ)/artifacts/$$n- \
	    $(FZ)/corpus/$$n fuzz/corpus/$$n > $(FZ)/$$n.log 2>&1 || { tail -n 40 $(FZ)/$$n.log; exit 1; }; \
	  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE)' $(FZ)/$$n.log || true; done

# FUZZ_RUNS=10000000 runs each harness for that many executions instead of FUZZ_SECONDS (the
# campaign issue 5 asks for); FUZZ=fuzz_pidf picks harnesses.  Findings go to $(FZ)/artifacts/.
FUZZ ?= $(notdir $(FUZZ_BINS))
fuzz: $(FUZZ_BINS)
	@set -e; mkdir -p $(FZ)/artifacts; for n in $(FUZZ); do f=$(FZ)/$$n; \
	  mkdir -p $(FZ)/corpus/$$n; \
	  if [ -n "$(FUZZ_RUNS)" ]; then limit=-runs=$(FUZZ_RUNS); else limit=-max_total_time=$(FUZZ_SECONDS); fi; \
	  echo "== $$n ($$limit)"; \
	  $$f $$limit -print_final_stats=1 -close_fd_mask=3 -artifact_prefix=$(FZ)/artifacts/$$n- \
	    $(FZ)/corpus/$$n fuzz/corpus/$$n; done

e2e: $(ASN)/simplegw
	$(PYTHON) tests/e2e/run.py --gateway $(ASN)/simplegw

faults: $(ASN)/simplegw
	$(PYTHON) tests/e2e/run.py --gateway $(ASN)/simplegw test_faults test_presence_faults test_hostile test_hardening

# The release build too: -O2 finds warnings (-Wformat-truncation...) the -O1 sanitizer build does not.
check: $(REL)/simplegw $(ASN)/simplegw $(UNIT_BINS) $(FUZZ_BINS)
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory fuzz-smoke
	$(MAKE) --no-print-directory e2e

bench: $(REL)/simplegw
	$(PYTHON) bench/run.py --gateway $(REL)/simplegw

clean:
	rm -rf $(BUILD)

# ---- install (docs/operations.md, "Installing and running as a daemon").  The sample gateway
# file goes to the examples, never to /etc: the unit starts only once /etc/simplegw/gateway.xml
# exists (ConditionPathExists), so an install does not run an unconfigured gateway.
PREFIX  ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/simplegw
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL ?= install
DOCS := README.md $(wildcard docs/*.md)

install: $(REL)/simplegw
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(DOCDIR)/examples
	$(INSTALL) -m 755 $(REL)/simplegw $(DESTDIR)$(SBINDIR)/simplegw
	$(INSTALL) -m 644 docs/man/simplegw.8 $(DESTDIR)$(MANDIR)/man8/simplegw.8
	$(INSTALL) -m 644 docs/man/simplegw.xml.5 $(DESTDIR)$(MANDIR)/man5/simplegw.xml.5
	sed 's|/usr/sbin/simplegw|$(SBINDIR)/simplegw|g' dist/simplegw.service > $(DESTDIR)$(SYSTEMDUNITDIR)/simplegw.service
	chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/simplegw.service
	$(INSTALL) -m 644 conf/gateway.xml $(DESTDIR)$(DOCDIR)/examples/gateway.xml
	$(INSTALL) -m 644 $(DOCS) $(DESTDIR)$(DOCDIR)/

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/simplegw $(DESTDIR)$(MANDIR)/man8/simplegw.8 \
	  $(DESTDIR)$(MANDIR)/man5/simplegw.xml.5 $(DESTDIR)$(SYSTEMDUNITDIR)/simplegw.service \
	  $(DESTDIR)$(DOCDIR)/examples/gateway.xml $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS)))
	rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
