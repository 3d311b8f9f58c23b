# ohreq: build, test, demo. The library itself is built by cargo; this file builds the C
# side (tests, examples, the Node-API addon) and runs everything.

CARGO     ?= cargo
CC        ?= gcc
REL       := target/release
LIB       := $(REL)/libohreq.so
BUILD     := build
CFLAGS    := -std=c11 -Wall -Wextra -Wpedantic -Werror -g -O1 -Iinclude
# These flags are for our C programs only: cargo must not hand them to the C dependencies it
# builds (they take theirs from .cargo/config.toml, which a CFLAGS in the environment would
# override).
unexport CFLAGS
LDLIBS    := -L$(REL) -lohreq -Wl,-rpath,$(CURDIR)/$(REL) -lpthread
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

C_TESTS   := $(patsubst c-tests/%.c,%,$(filter-out c-tests/harness.c,$(wildcard c-tests/test_*.c)))
TEST_BINS := $(addprefix $(BUILD)/,$(C_TESTS))
ASAN_BINS := $(addprefix $(BUILD)/asan-,$(C_TESTS))
NAPI_SRC  := $(wildcard bindings/napi/*.c) $(wildcard bindings/napi/*.h)

# The valgrind subset: fast tests that still cross every layer (program, then test names).
VALGRIND_RUNS := "test_api" "test_download simple_download http_errors redirects tls" \
                 "test_upload multipart_fields_files put_two_files create_errors http_500"

.PHONY: all lib test test-rust test-header test-static test-c test-asan test-valgrind test-node demo header deps clean bench

all: lib $(BUILD)/ohreq $(TEST_BINS) $(BUILD)/ohreq.node

lib:
	$(CARGO) build --release --workspace

$(LIB): lib

$(BUILD):
	mkdir -p $(BUILD)

$(BUILD)/ohreq: examples-c/ohreq.c include/ohreq.h lib | $(BUILD)
	$(CC) $(CFLAGS) -O2 -o $@ $< $(LDLIBS)

# The Node-API addon: plain cc against the headers that ship with nodejs (no node-gyp).
$(BUILD)/ohreq.node: $(NAPI_SRC) include/ohreq.h lib | $(BUILD)
	$(CC) -std=c11 -O2 -Wall -Wextra -Werror -shared -fPIC -I/usr/include/node -Iinclude -o $@ $(filter %.c,$(NAPI_SRC)) $(LDLIBS)

$(BUILD)/test_%: c-tests/test_%.c c-tests/harness.c c-tests/harness.h include/ohreq.h lib | $(BUILD)
	$(CC) $(CFLAGS) -o $@ c-tests/harness.c $< $(LDLIBS)

$(BUILD)/asan-test_%: c-tests/test_%.c c-tests/harness.c c-tests/harness.h include/ohreq.h lib | $(BUILD)
	$(CC) $(CFLAGS) $(SAN) -o $@ c-tests/harness.c $< $(LDLIBS)

# Regenerates include/ohreq.h from src/ffi with the pinned cbindgen (a dev-dependency).
header:
	OHREQ_WRITE_HEADER=1 $(CARGO) test --release --test header

test: deps all test-rust test-header test-static test-c test-asan test-valgrind test-node
	@echo "== all tests passed"

test-rust:
	$(CARGO) test --release --workspace

# The header compiles on its own as C11 and as C++17.
test-header: | $(BUILD)
	printf '#include "ohreq.h"\nint main(void) { return OHREQ_OK; }\n' > $(BUILD)/header_alone.c
	$(CC) -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude -o $(BUILD)/header_c $(BUILD)/header_alone.c
	cp $(BUILD)/header_alone.c $(BUILD)/header_alone.cpp
	g++ -std=c++17 -Wall -Wextra -Wpedantic -Werror -Iinclude -o $(BUILD)/header_cpp $(BUILD)/header_alone.cpp

# The static link line the README gives builds and runs the CLI.
test-static: lib | $(BUILD)
	line=$$(grep -o 'target/release/libohreq.a -l[^`]*' README.md | head -1); test -n "$$line"; \
	$(CC) -std=c11 -Iinclude -o $(BUILD)/ohreq-static examples-c/ohreq.c $$line
	./$(BUILD)/ohreq-static --version | grep -q "ohreq $$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)"

test-c: $(TEST_BINS) $(BUILD)/ohreq
	@set -e; for t in $(TEST_BINS); do echo "== $$t"; timeout 600 ./$$t; done

test-asan: $(ASAN_BINS) $(BUILD)/ohreq
	@nm $(BUILD)/asan-$(firstword $(C_TESTS)) | grep -q __asan_init || { echo "ASan not linked"; exit 1; }
	@set -e; for t in $(ASAN_BINS); do echo "== $$t (ASan+UBSan)"; \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 timeout 900 ./$$t; done

test-valgrind: $(TEST_BINS)
	@set -e; for run in $(VALGRIND_RUNS); do echo "== $$run (valgrind)"; \
	  timeout 900 valgrind -q --error-exitcode=99 --track-origins=yes ./$(BUILD)/$$run; done

test-node: $(BUILD)/ohreq.node
	timeout 900 node --test bindings/napi/test/

# The demo and the benchmarks need the library, the testserver and the CLI only (not the
# Node addon, whose headers a fresh machine lacks until `make deps`).
demo: deps lib $(BUILD)/ohreq
	@sh examples-c/demo.sh

bench: lib $(BUILD)/ohreq
	@bash benches/run.sh

# Installs what a fresh Debian machine lacks for building and testing.
deps:
	@missing=""; \
	for p in gcc:gcc valgrind:valgrind pkg-config:pkg-config; do \
	  cmd=$${p%%:*}; pkg=$${p##*:}; command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	[ -f /usr/include/openssl/ssl.h ] || missing="$$missing libssl-dev"; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	[ -f /usr/include/node/node_api.h ] || missing="$$missing libnode-dev"; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) || exit 1; fi

clean:
	rm -rf $(BUILD)
