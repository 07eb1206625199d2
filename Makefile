# rawvec: build, run and test.  `make run` and `make check` install what
# they need first (scripts/deps.sh), so both work on a fresh Debian 12.
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -I. -Wall -Wextra -Werror -pthread
PKGS     = fuse3 liburing libnbd
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null)
PREFIX  ?= /usr/local
B        = build

VEC_SRC  = vec/pvec.c
# blockdev/: core/ (requests, rw, trace, the event loop), levels/ (the
# layer engine, each level, md metadata), members/ (leaf devices), and
# at the top the layout parser and the registry of kinds.
CORE_DIR_SRC = $(wildcard blockdev/core/*.c)
LEVELS_SRC   = $(wildcard blockdev/levels/*.c)
MEMBERS_SRC  = $(wildcard blockdev/members/*.c)
BDEV_SRC = $(CORE_DIR_SRC) $(LEVELS_SRC) $(MEMBERS_SRC) $(wildcard blockdev/*.c)
FS_SRC   = $(wildcard fs/*.c fs/clients/*.c)
CORE_SRC = $(VEC_SRC) $(BDEV_SRC)
# What the unit tests take from fs/ beside the core: pure code, no FUSE.
UNIT_FS_SRC = fs/json.c
HDRS     = $(wildcard vec/*.h blockdev/*.h blockdev/*/*.h fs/*.h)
UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(B)/unit_tests
SAN_BIN  = $(B)/unit_tests_san
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
# rawvec under ThreadSanitizer: check.sh runs the many-loops stress test
# (t_mq_stress) with it once more when it is built.
TSAN_BIN = $(B)/rawvec_tsan

.PHONY: all deps run stop check unit tsan e2e install clean bench

all: $(B)/rawvec

deps:
	@sh scripts/deps.sh

$(B)/rawvec: $(FS_SRC) $(CORE_SRC) $(HDRS) | $(B)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(FS_SRC) $(CORE_SRC) $(PKG_LIBS)

$(TSAN_BIN): $(FS_SRC) $(CORE_SRC) $(HDRS) | $(B)
	$(CC) $(CFLAGS) -O1 -g -fsanitize=thread $(PKG_CFLAGS) -o $@ $(FS_SRC) $(CORE_SRC) $(PKG_LIBS)

$(UNIT_BIN): $(UNIT_SRC) $(wildcard tests/unit/*.h) $(CORE_SRC) $(UNIT_FS_SRC) $(HDRS) | $(B)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(UNIT_SRC) $(CORE_SRC) $(UNIT_FS_SRC) $(CHECK_LIBS) $(PKG_LIBS)

$(SAN_BIN): $(UNIT_SRC) $(wildcard tests/unit/*.h) $(CORE_SRC) $(UNIT_FS_SRC) $(HDRS) | $(B)
	$(CC) $(CFLAGS) -O1 $(SAN) $(PKG_CFLAGS) -o $@ $(UNIT_SRC) $(CORE_SRC) $(UNIT_FS_SRC) $(CHECK_LIBS) $(PKG_LIBS)

$(B):
	mkdir -p $(B)

run: deps all
	@sh scripts/run.sh

stop:
	@sh scripts/run.sh --stop

unit: $(UNIT_BIN) $(SAN_BIN)

tsan: $(TSAN_BIN)

check: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all unit tsan
	@sh scripts/check.sh

bench: deps all
	@sh scripts/deps.sh --bench
	@bash scripts/bench.sh

install: all
	install -D -m 0755 $(B)/rawvec $(DESTDIR)$(PREFIX)/bin/rawvec
	install -D -m 0644 docs/rawvec.1 $(DESTDIR)$(PREFIX)/share/man/man1/rawvec.1

clean:
	rm -rf $(B)
